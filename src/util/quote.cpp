#include "util/quote.h"

namespace cidrun {
namespace {

std::string escaped(std::string_view text, bool in_quotes) {
  std::string out;
  out.reserve(text.size() + 2);
  auto hex = [&](unsigned char c) {
    static constexpr char kDigits[] = "0123456789abcdef";
    out += "\\x";
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  };
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    if (c < 0x20 || c == 0x7f || (in_quotes && (c == '\\' || c == '\''))) {
      hex(c);
    } else if (c == 0xc2 && next >= 0x80 && next <= 0x9f) {
      // U+0080..U+009F in UTF-8: the C1 controls (U+009B starts a terminal escape sequence).
      hex(c);
      hex(next);
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

}  // namespace

std::string quote(std::string_view text) {
  return "'" + escaped(text, true) + "'";
}

std::string escape_controls(std::string_view text) {
  return escaped(text, false);
}

}  // namespace cidrun
