#include "net/http_request.h"

#include <charconv>

namespace cidrun::net {
namespace {

bool is_tchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~':
      return true;
    default:
      return false;
  }
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Comma-separated list members of a field value (RFC 9110 5.6.1), trimmed and lower-cased.
bool list_has(std::string_view value, std::string_view token) {
  size_t i = 0;
  while (i <= value.size()) {
    size_t j = value.find(',', i);
    if (j == std::string_view::npos) j = value.size();
    if (lower(trim_ows(value.substr(i, j - i))) == token) return true;
    i = j + 1;
  }
  return false;
}

int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

HttpParseError bad(std::string message) {
  return {400, std::move(message)};
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hexval(s[i + 1]);
      int lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return std::nullopt;
      i += 2;
    } else if (c == '+' && plus_is_space) {
      c = ' ';
    }
    out.push_back(c);
  }
  return out;
}

std::optional<std::string> HttpRequest::header(std::string_view lower_name) const {
  std::optional<std::string> out;
  for (const auto& [name, value] : headers) {
    if (name != lower_name) continue;
    if (out) {
      *out += ", ";
      *out += value;
    } else {
      out = value;
    }
  }
  return out;
}

std::optional<std::string> HttpRequest::query_param(std::string_view name) const {
  std::string_view q = query;
  size_t i = 0;
  while (i < q.size()) {
    size_t j = q.find('&', i);
    if (j == std::string_view::npos) j = q.size();
    std::string_view pair = q.substr(i, j - i);
    size_t eq = pair.find('=');
    std::string_view key = pair.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? "" : pair.substr(eq + 1);
    if (auto k = percent_decode(key, true); k && *k == name) {
      // A malformed escape in a value reads as an empty value rather than a missing one, so
      // that the handler still sees that the parameter was given.
      return percent_decode(value, true).value_or("");
    }
    i = j + 1;
  }
  return std::nullopt;
}

bool HttpRequest::keep_alive() const {
  auto c = header("connection");
  if (minor_version == 0) return c && list_has(*c, "keep-alive");
  return !(c && list_has(*c, "close"));
}

std::variant<std::monostate, HttpParsed, HttpParseError> parse_request_head(
    std::string_view buf, const HttpLimits& limits) {
  // RFC 9112 2.2: empty lines before the request line are ignored (robustness).
  size_t start = 0;
  while (start < buf.size() && (buf[start] == '\r' || buf[start] == '\n') && start < 8) ++start;

  size_t first_end = buf.find('\n', start);
  if (first_end == std::string_view::npos) {
    if (buf.size() - start > limits.max_request_line) {
      return HttpParseError{414, "request line too long"};
    }
    return std::monostate{};
  }
  if (first_end - start > limits.max_request_line) {
    return HttpParseError{414, "request line too long"};
  }
  // The head ends at the first empty line.
  size_t end = std::string_view::npos;
  size_t line = first_end + 1;
  size_t header_lines = 0;
  while (line < buf.size()) {
    size_t nl = buf.find('\n', line);
    if (nl == std::string_view::npos) break;
    if (nl == line || (nl == line + 1 && buf[line] == '\r')) {
      end = nl + 1;
      break;
    }
    if (++header_lines > limits.max_headers) {
      return HttpParseError{431, "too many header fields"};
    }
    line = nl + 1;
  }
  if (end == std::string_view::npos) {
    if (buf.size() > limits.max_head) return HttpParseError{431, "request header too large"};
    return std::monostate{};
  }
  if (end > limits.max_head) return HttpParseError{431, "request header too large"};

  HttpParsed out;
  out.head_bytes = end;
  HttpRequest& req = out.request;

  auto next_line = [&](size_t& pos) {
    size_t nl = buf.find('\n', pos);
    std::string_view l = buf.substr(pos, nl - pos);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    pos = nl + 1;
    return l;
  };
  size_t pos = start;
  std::string_view request_line = next_line(pos);
  for (char c : request_line) {
    if (c == '\r' || c == '\0') return bad("control character in the request line");
  }
  size_t sp1 = request_line.find(' ');
  size_t sp2 = sp1 == std::string_view::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || request_line.find(' ', sp2 + 1) != std::string_view::npos) {
    return bad("malformed request line");
  }
  std::string_view method = request_line.substr(0, sp1);
  std::string_view target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = request_line.substr(sp2 + 1);
  if (!is_token(method)) return bad("malformed method");
  if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
      version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9') {
    return bad("malformed HTTP version");
  }
  if (version[5] != '1') return HttpParseError{505, "only HTTP/1.x is supported"};
  req.minor_version = version[7] - '0';
  req.method = std::string(method);
  if (target.empty()) return bad("empty request target");
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("invalid request target");
  }
  req.target = std::string(target);
  // absolute-form (RFC 9112 3.2.2): the path starts after the authority.
  if (target.substr(0, 7) == "http://" || target.substr(0, 8) == "https://") {
    size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  if (target != "*" && target.front() != '/') return bad("invalid request target");
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (size_t hash = path.find('#'); hash != std::string_view::npos) path = path.substr(0, hash);
  auto decoded = percent_decode(path);
  if (!decoded) return bad("malformed percent-encoding in the path");
  req.path = std::move(*decoded);
  if (q != std::string_view::npos) req.query = std::string(target.substr(q + 1));

  bool have_length = false;
  size_t hosts = 0;
  while (pos < end) {
    std::string_view l = next_line(pos);
    if (l.empty()) break;
    if (l.front() == ' ' || l.front() == '\t') return bad("obsolete header line folding");
    size_t colon = l.find(':');
    if (colon == std::string_view::npos) return bad("header line without a colon");
    std::string_view name = l.substr(0, colon);
    if (!is_token(name)) return bad("malformed header name");
    std::string_view value = trim_ows(l.substr(colon + 1));
    for (char c : value) {
      if (c == '\0' || c == '\r' || c == '\n') return bad("control character in a header value");
    }
    std::string lname = lower(name);
    if (lname == "host") ++hosts;
    if (lname == "content-length") {
      uint64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (value.empty() || ec != std::errc() || p != value.data() + value.size()) {
        return bad("malformed Content-Length");
      }
      if (have_length && n != req.content_length) return bad("conflicting Content-Length");
      have_length = true;
      req.content_length = n;
    }
    req.headers.emplace_back(std::move(lname), std::string(value));
  }
  if (req.minor_version >= 1 && hosts != 1) return bad("an HTTP/1.1 request needs one Host");
  if (req.header("transfer-encoding")) {
    // A body we cannot frame: answering would desynchronise the connection (RFC 9112 6.1).
    if (have_length) return bad("both Transfer-Encoding and Content-Length");
    return HttpParseError{501, "request bodies with a transfer coding are not supported"};
  }
  if (req.content_length > limits.max_body) {
    return HttpParseError{413, "request body too large"};
  }
  return out;
}

}  // namespace cidrun::net
