// Multibase text encodings of binary strings (https://github.com/multiformats/multibase).
#pragma once

#include <string>
#include <string_view>

#include "util/bytes.h"

namespace cidrun::multibase {

std::string base58btc(ByteView data);
std::string base32_lower(ByteView data);  // RFC 4648 alphabet, lower case, no padding
std::string base32_upper(ByteView data);
std::string base36_lower(ByteView data);

// Decoders throw cidrun::Error on characters outside the alphabet.
Bytes decode_base58btc(std::string_view text);
Bytes decode_base32(std::string_view text);  // either case, no padding
Bytes decode_base36(std::string_view text);
Bytes decode_base64(std::string_view text, bool url);

// Encodes with a multibase prefix: 'b' base32, 'B' base32 upper, 'z' base58btc, 'k' base36,
// 'f' base16.
std::string encode(char prefix, ByteView data);
// Decodes text that starts with a multibase prefix character.
Bytes decode(std::string_view text);

}  // namespace cidrun::multibase
