// An HTTP/1.1 request head (RFC 9112), parsed with hard limits before any handler sees it.
// Pure functions over bytes: the server feeds what it has read and gets back either "need more",
// a request, or the status code the protocol error deserves.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace cidrun::net {

struct HttpLimits {
  size_t max_request_line = 8 * 1024;  // 414 beyond (the target is most of it)
  size_t max_head = 32 * 1024;         // request line + headers; 431 beyond
  size_t max_headers = 100;            // header fields; 431 beyond
  size_t max_body = 64 * 1024;         // Content-Length accepted; 413 beyond
};

struct HttpRequest {
  std::string method;
  std::string target;     // as sent: "/ipfs/bafy...?format=car"
  std::string path;       // target's path, percent-decoded
  std::string query;      // after '?', still encoded ("" when none)
  int minor_version = 1;  // HTTP/1.<minor>
  // Field names lower-cased, values trimmed, in arrival order.
  std::vector<std::pair<std::string, std::string>> headers;
  uint64_t content_length = 0;
  std::string body;  // read by the server (at most max_body bytes)

  // The field's value; repeated fields are joined with ", " (RFC 9110 5.3). nullopt when absent.
  std::optional<std::string> header(std::string_view lower_name) const;
  // A query parameter's decoded value ("+" is a space); the first one when repeated.
  std::optional<std::string> query_param(std::string_view name) const;
  // Whether the connection may carry another request after this one.
  bool keep_alive() const;
  bool is_head() const { return method == "HEAD"; }
};

struct HttpParseError {
  int status;  // 400, 413, 414, 431, 501, 505
  std::string message;
};

struct HttpParsed {
  HttpRequest request;
  size_t head_bytes;  // bytes of the head, including the blank line
};

// Parses the request head at the start of buf. std::monostate: incomplete, read more (the caller
// enforces max_head on what it buffers through this same function: an incomplete head longer
// than the limit is reported as 431 here).
std::variant<std::monostate, HttpParsed, HttpParseError> parse_request_head(
    std::string_view buf, const HttpLimits& limits);

// "%2F" -> "/"; nullopt when an escape is malformed or decodes to NUL.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space = false);

}  // namespace cidrun::net
