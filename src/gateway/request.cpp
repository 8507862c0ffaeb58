#include "gateway/request.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <vector>

#include "util/error.h"

namespace cidrun::gateway {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t i = 0;
  for (;;) {
    size_t j = s.find(sep, i);
    out.push_back(s.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i));
    if (j == std::string_view::npos) return out;
    i = j + 1;
  }
}

std::optional<int64_t> parse_int(std::string_view s) {
  int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// What the Accept header allows us to answer (RFC 9110 12.5.1): media ranges by descending q
// (ties keep their order), the first one we can serve wins; q=0 means "not this".
enum class AcceptResult { kNone, kWildcardOnly, kRaw, kCar, kUnsupported };

struct Negotiated {
  AcceptResult result = AcceptResult::kNone;
  std::optional<bool> dups;  // a CAR's dups parameter, when the chosen range named it
};

struct MediaRange {
  std::string type;
  double q = 1.0;
  std::vector<std::pair<std::string, std::string>> params;  // lower-cased, q excluded
};

std::optional<double> parse_q(std::string_view v) {
  // qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )
  if (v.empty() || v.size() > 5 || (v[0] != '0' && v[0] != '1')) return std::nullopt;
  if (v.size() > 1 && v[1] != '.') return std::nullopt;
  double q = v[0] - '0';
  double scale = 0.1;
  for (size_t i = 2; i < v.size(); ++i) {
    if (v[i] < '0' || v[i] > '9') return std::nullopt;
    q += (v[i] - '0') * scale;
    scale /= 10;
  }
  if (q > 1.0) return std::nullopt;
  return q;
}

Negotiated negotiate(std::string_view accept) {
  if (trim(accept).empty()) return {};
  std::vector<MediaRange> ranges;
  for (auto item : split(accept, ',')) {
    auto parts = split(item, ';');
    MediaRange m;
    m.type = lower(trim(parts[0]));
    if (m.type.empty()) continue;
    for (size_t i = 1; i < parts.size(); ++i) {
      auto kv = trim(parts[i]);
      auto eq = kv.find('=');
      if (eq == std::string_view::npos) continue;
      std::string key = lower(trim(kv.substr(0, eq)));
      std::string val = lower(trim(kv.substr(eq + 1)));
      if (val.size() >= 2 && val.front() == '"' && val.back() == '"') {
        val = val.substr(1, val.size() - 2);
      }
      if (key == "q") {
        m.q = parse_q(val).value_or(0.0);  // a malformed weight never wins
      } else {
        m.params.emplace_back(std::move(key), std::move(val));
      }
    }
    ranges.push_back(std::move(m));
  }
  std::stable_sort(ranges.begin(), ranges.end(),
                   [](const MediaRange& a, const MediaRange& b) { return a.q > b.q; });
  bool wildcard = false;
  for (const auto& m : ranges) {
    if (m.q <= 0) continue;
    if (m.type == "application/vnd.ipld.raw") return {AcceptResult::kRaw, {}};
    if (m.type == "application/vnd.ipld.car") {
      // A variant we cannot produce (CARv2, an order we do not write) is not acceptable; the
      // next range may still be.
      bool ok = true;
      std::optional<bool> dups;
      for (const auto& [key, val] : m.params) {
        if (key == "version" && val != "1") ok = false;
        if (key == "order" && val != "dfs" && val != "unk") ok = false;
        if (key == "dups") {
          if (val == "y") {
            dups = true;
          } else if (val == "n") {
            dups = false;
          } else {
            ok = false;
          }
        }
      }
      if (ok) return {AcceptResult::kCar, dups};
      continue;
    }
    if (m.type == "*/*" || m.type == "application/*") wildcard = true;
  }
  return {wildcard ? AcceptResult::kWildcardOnly : AcceptResult::kUnsupported, {}};
}

}  // namespace

std::optional<ByteRange> parse_entity_bytes(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) return std::nullopt;
  ByteRange r;
  auto from = parse_int(text.substr(0, colon));
  if (!from) return std::nullopt;
  r.from = *from;
  auto to_text = text.substr(colon + 1);
  if (to_text != "*") {
    auto to = parse_int(to_text);
    if (!to) return std::nullopt;
    // A non-negative "to" before a non-negative "from" can never select anything.
    if (*to >= 0 && r.from >= 0 && *to < r.from) return std::nullopt;
    r.to = *to;
  }
  return r;
}

std::optional<std::pair<uint64_t, uint64_t>> resolve_range(const ByteRange& r, uint64_t size) {
  if (size == 0) return std::nullopt;
  // Unsigned arithmetic throughout: a node may claim any size up to 2^64-1 and a position may be
  // INT64_MIN, where signed sums overflow. back(v) is how far a negative v counts from the end.
  auto back = [](int64_t v) { return static_cast<uint64_t>(-(v + 1)) + 1; };
  uint64_t first = 0;
  if (r.from >= 0) {
    first = static_cast<uint64_t>(r.from);
  } else if (back(r.from) < size) {
    first = size - back(r.from);
  }
  uint64_t last = size - 1;
  if (r.to && *r.to >= 0) {
    last = std::min(static_cast<uint64_t>(*r.to), size - 1);
  } else if (r.to) {
    if (back(*r.to) > size) return std::nullopt;  // ends before the entity starts
    last = size - back(*r.to);
  }
  if (first >= size || last < first) return std::nullopt;
  return std::pair<uint64_t, uint64_t>(first, last);
}

std::variant<TrustlessRequest, Rejection> parse_request(std::string_view url_path,
                                                        const QueryLookup& query,
                                                        std::string_view accept) {
  if (url_path.rfind("/ipns/", 0) == 0) {
    return Rejection{501, "IPNS is not supported by this gateway (only /ipfs/{cid})"};
  }
  if (url_path.rfind("/ipfs/", 0) != 0) return Rejection{404, "not found: use /ipfs/{cid}"};
  std::string_view rest = url_path.substr(6);
  size_t slash = rest.find('/');
  TrustlessRequest req;
  try {
    req.cid = Cid::parse(rest.substr(0, slash));
  } catch (const Error& e) {
    return Rejection{400, "invalid CID '" + std::string(rest.substr(0, slash)) + "': " + e.what()};
  }
  if (slash != std::string_view::npos) {
    std::string_view p = rest.substr(slash + 1);
    while (!p.empty() && p.back() == '/') p.remove_suffix(1);
    for (auto comp : split(p, '/')) {
      if (comp == "..") return Rejection{400, "path component '..' is not allowed"};
    }
    req.path = std::string(p);
  }

  if (auto fmt = query("format")) {
    req.format_from_query = true;
    if (*fmt == "raw") {
      req.format = Format::kRaw;
    } else if (*fmt == "car") {
      req.format = Format::kCar;
      // The query chose CAR; the Accept header may still say which CAR (dups).
      if (Negotiated n = negotiate(accept); n.result == AcceptResult::kCar && n.dups) {
        req.dups = *n.dups;
      }
    } else {
      return Rejection{
          400, "unsupported format '" + *fmt + "': this trustless gateway serves raw and car"};
    }
  } else {
    Negotiated n = negotiate(accept);
    if (n.dups) req.dups = *n.dups;
    switch (n.result) {
      case AcceptResult::kRaw:
        req.format = Format::kRaw;
        break;
      case AcceptResult::kCar:
        req.format = Format::kCar;
        break;
      case AcceptResult::kNone:
      case AcceptResult::kWildcardOnly:
        return Rejection{400,
                         "this is a trustless gateway: ask for Accept: application/vnd.ipld.raw or "
                         "application/vnd.ipld.car (or ?format=raw|car)"};
      case AcceptResult::kUnsupported:
        return Rejection{406,
                         "not acceptable: this gateway serves application/vnd.ipld.raw and "
                         "application/vnd.ipld.car; version=1"};
    }
  }

  if (req.format == Format::kRaw) {
    if (!req.path.empty())
      return Rejection{400, "a raw block request takes no path (use format=car)"};
    return req;
  }
  if (auto v = query("car-version"); v && *v != "1") {
    return Rejection{400, "unsupported car-version '" + *v + "' (only 1)"};
  }
  if (auto o = query("car-order"); o && *o != "dfs" && *o != "unk") {
    return Rejection{400, "unsupported car-order '" + *o + "'"};
  }
  if (auto d = query("car-dups")) {
    if (*d != "y" && *d != "n") return Rejection{400, "unsupported car-dups '" + *d + "'"};
    req.dups = *d == "y";  // the query wins over Accept (spec)
  }
  if (auto s = query("dag-scope")) {
    if (*s == "block")
      req.scope = exchange::DagScope::kBlock;
    else if (*s == "entity")
      req.scope = exchange::DagScope::kEntity;
    else if (*s == "all")
      req.scope = exchange::DagScope::kAll;
    else
      return Rejection{400, "invalid dag-scope '" + *s + "' (block, entity or all)"};
  }
  if (auto eb = query("entity-bytes")) {
    auto r = parse_entity_bytes(*eb);
    if (!r) return Rejection{400, "invalid entity-bytes '" + *eb + "' (from:to, to may be *)"};
    req.entity_bytes = r;
    req.scope = exchange::DagScope::kEntity;  // the spec: entity-bytes implies entity
  }
  return req;
}

HttpRange parse_http_range(std::string_view header, uint64_t size) {
  // A position; nullopt when not all digits. Beyond 2^64 it saturates: still a valid position.
  auto number = [](std::string_view t) -> std::optional<uint64_t> {
    if (t.empty() || t.find_first_not_of("0123456789") != std::string_view::npos) {
      return std::nullopt;
    }
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (ec == std::errc::result_out_of_range) return UINT64_MAX;
    return v;
  };
  HttpRange whole;
  header = trim(header);
  if (header.size() < 6) return whole;
  std::string unit(header.substr(0, 6));
  for (char& ch : unit) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (unit != "bytes=") return whole;
  std::string_view spec = trim(header.substr(6));
  if (spec.find(',') != std::string_view::npos) return whole;  // several ranges: the whole body
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return whole;
  std::string_view a = trim(spec.substr(0, dash));
  std::string_view b = trim(spec.substr(dash + 1));
  HttpRange r;
  r.kind = HttpRange::Kind::kPart;
  if (a.empty()) {  // "-n": the last n bytes
    auto n = number(b);
    if (!n) return whole;
    if (*n == 0 || size == 0) return {HttpRange::Kind::kUnsatisfiable};
    r.first = size - std::min(*n, size);
    r.last = size - 1;
    return r;
  }
  auto first = number(a);
  if (!first) return whole;
  std::optional<uint64_t> last;
  if (!b.empty()) {
    last = number(b);
    if (!last || *last < *first) return whole;  // invalid: ignored, as the RFC asks
  }
  if (*first >= size) return {HttpRange::Kind::kUnsatisfiable};
  r.first = *first;
  r.last = std::min(last.value_or(size - 1), size - 1);
  return r;
}

}  // namespace cidrun::gateway
