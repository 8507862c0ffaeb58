#include "multiformats/multibase.h"

#include <algorithm>
#include <array>

#include "util/error.h"

namespace cidrun::multibase {
namespace {

constexpr std::string_view kBase58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
constexpr std::string_view kBase32Lower = "abcdefghijklmnopqrstuvwxyz234567";
constexpr std::string_view kBase32Upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view kBase36 = "0123456789abcdefghijklmnopqrstuvwxyz";

// Generic big-number base conversion for the non power-of-two bases (58, 36); leading zero bytes
// map to leading zero digits, as multibase requires.
std::string encode_radix(ByteView data, std::string_view alphabet) {
  const unsigned radix = static_cast<unsigned>(alphabet.size());
  size_t zeros = 0;
  while (zeros < data.size() && data[zeros] == 0) ++zeros;
  std::vector<uint8_t> digits;  // little-endian in radix
  digits.reserve(data.size() * 138 / 100 + 1);
  for (size_t i = zeros; i < data.size(); ++i) {
    unsigned carry = data[i];
    for (auto& d : digits) {
      carry += static_cast<unsigned>(d) << 8;
      d = static_cast<uint8_t>(carry % radix);
      carry /= radix;
    }
    while (carry) {
      digits.push_back(static_cast<uint8_t>(carry % radix));
      carry /= radix;
    }
  }
  std::string out(zeros, alphabet[0]);
  for (auto it = digits.rbegin(); it != digits.rend(); ++it) out.push_back(alphabet[*it]);
  return out;
}

Bytes decode_radix(std::string_view text, std::string_view alphabet, const char* name) {
  const unsigned radix = static_cast<unsigned>(alphabet.size());
  std::array<int, 256> value{};
  value.fill(-1);
  for (size_t i = 0; i < alphabet.size(); ++i)
    value[static_cast<uint8_t>(alphabet[i])] = static_cast<int>(i);
  size_t zeros = 0;
  while (zeros < text.size() && text[zeros] == alphabet[0]) ++zeros;
  Bytes bytes;  // little-endian base 256
  for (size_t i = zeros; i < text.size(); ++i) {
    int v = value[static_cast<uint8_t>(text[i])];
    if (v < 0) throw Error(std::string("invalid ") + name + " character");
    unsigned carry = static_cast<unsigned>(v);
    for (auto& b : bytes) {
      carry += static_cast<unsigned>(b) * radix;
      b = static_cast<uint8_t>(carry & 0xff);
      carry >>= 8;
    }
    while (carry) {
      bytes.push_back(static_cast<uint8_t>(carry & 0xff));
      carry >>= 8;
    }
  }
  Bytes out(zeros, 0);
  out.insert(out.end(), bytes.rbegin(), bytes.rend());
  return out;
}

std::string encode_base32(ByteView data, std::string_view alphabet) {
  std::string out;
  out.reserve((data.size() * 8 + 4) / 5);
  uint64_t buffer = 0;
  int bits = 0;
  for (uint8_t b : data) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out.push_back(alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0) out.push_back(alphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

}  // namespace

std::string base58btc(ByteView data) {
  return encode_radix(data, kBase58);
}
std::string base36_lower(ByteView data) {
  return encode_radix(data, kBase36);
}
std::string base32_lower(ByteView data) {
  return encode_base32(data, kBase32Lower);
}
std::string base32_upper(ByteView data) {
  return encode_base32(data, kBase32Upper);
}

Bytes decode_base58btc(std::string_view text) {
  return decode_radix(text, kBase58, "base58btc");
}

Bytes decode_base36(std::string_view text) {
  std::string lower(text);
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) {
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  });
  return decode_radix(lower, kBase36, "base36");
}

Bytes decode_base32(std::string_view text) {
  Bytes out;
  out.reserve(text.size() * 5 / 8);
  uint64_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'a' && c <= 'z')
      v = c - 'a';
    else if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= '2' && c <= '7')
      v = c - '2' + 26;
    else
      throw Error("invalid base32 character");
    buffer = (buffer << 5) | static_cast<unsigned>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
    }
  }
  // Leftover bits must be zero padding, or the text was not canonical base32.
  if (bits >= 5 || (buffer & ((1U << bits) - 1)) != 0)
    throw Error("invalid base32 length or padding");
  return out;
}

Bytes decode_base64(std::string_view text, bool url) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  Bytes out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == (url ? '-' : '+'))
      v = 62;
    else if (c == (url ? '_' : '/'))
      v = 63;
    else
      throw Error("invalid base64 character");
    buffer = (buffer << 6) | static_cast<unsigned>(v);
    bits += 6;
    if (bits >= 8) {
      out.push_back(static_cast<uint8_t>(buffer >> (bits - 8)));
      bits -= 8;
    }
  }
  return out;
}

std::string encode(char prefix, ByteView data) {
  switch (prefix) {
    case 'b':
      return "b" + base32_lower(data);
    case 'B':
      return "B" + base32_upper(data);
    case 'z':
      return "z" + base58btc(data);
    case 'k':
      return "k" + base36_lower(data);
    case 'f':
      return "f" + to_hex(data);
    default:
      throw Error(std::string("unsupported multibase prefix '") + prefix + "'");
  }
}

Bytes decode(std::string_view text) {
  if (text.empty()) throw Error("empty multibase string");
  std::string_view body = text.substr(1);
  switch (text[0]) {
    case 'b':
    case 'B':
      return decode_base32(body);
    case 'z':
      return decode_base58btc(body);
    case 'k':
    case 'K':
      return decode_base36(body);
    case 'f':
    case 'F':
      return from_hex(body);
    case 'm':
      return decode_base64(body, false);
    case 'u':
      return decode_base64(body, true);
    default:
      throw Error(std::string("unsupported multibase prefix '") + text[0] + "'");
  }
}

}  // namespace cidrun::multibase
