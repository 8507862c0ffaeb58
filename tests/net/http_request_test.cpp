// The request-head parser on its own: framing, limits and the status each protocol error gets.
#include "net/http_request.h"

#include <gtest/gtest.h>

namespace cidrun::net {
namespace {

HttpLimits limits;

HttpParsed ok(std::string_view text) {
  auto r = parse_request_head(text, limits);
  if (auto* e = std::get_if<HttpParseError>(&r)) ADD_FAILURE() << e->status << " " << e->message;
  EXPECT_TRUE(std::holds_alternative<HttpParsed>(r)) << text;
  return std::holds_alternative<HttpParsed>(r) ? std::get<HttpParsed>(r) : HttpParsed{};
}

int error_status(std::string_view text, const HttpLimits& l = limits) {
  auto r = parse_request_head(text, l);
  if (auto* e = std::get_if<HttpParseError>(&r)) return e->status;
  return std::holds_alternative<HttpParsed>(r) ? 0 : -1;  // 0: parsed, -1: incomplete
}

TEST(httpRequest, ParsesTargetHeadersAndQuery) {
  auto p =
      ok("GET /ipfs/bafy%20x/a%2Fb?format=car&dag-scope=entity&x=a+b%21 HTTP/1.1\r\n"
         "Host: h\r\nAccept:  application/vnd.ipld.car \r\nX-A: 1\r\nx-a: 2\r\n\r\nrest");
  EXPECT_EQ(p.head_bytes, std::string_view("GET /ipfs/bafy%20x/a%2Fb?format=car&dag-scope=entity"
                                           "&x=a+b%21 HTTP/1.1\r\nHost: h\r\nAccept:  "
                                           "application/vnd.ipld.car \r\nX-A: 1\r\nx-a: 2\r\n\r\n")
                              .size());
  const auto& r = p.request;
  EXPECT_EQ(r.method, "GET");
  EXPECT_EQ(r.path, "/ipfs/bafy x/a/b");
  EXPECT_EQ(r.query, "format=car&dag-scope=entity&x=a+b%21");
  EXPECT_EQ(r.query_param("format"), "car");
  EXPECT_EQ(r.query_param("dag-scope"), "entity");
  EXPECT_EQ(r.query_param("x"), "a b!");
  EXPECT_EQ(r.query_param("missing"), std::nullopt);
  EXPECT_EQ(r.header("accept"), "application/vnd.ipld.car");
  EXPECT_EQ(r.header("x-a"), "1, 2");
  EXPECT_TRUE(r.keep_alive());
}

TEST(httpRequest, IncompleteUntilTheBlankLine) {
  EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost: h\r\n"), -1);
  EXPECT_EQ(error_status("GET / HT"), -1);
  EXPECT_EQ(error_status(""), -1);
  // Bare LF line ends are accepted (RFC 9112 2.2), and so are empty lines before the request.
  EXPECT_EQ(ok("\r\nGET / HTTP/1.1\nHost: h\n\n").request.path, "/");
}

TEST(httpRequest, KeepAliveByVersionAndConnection) {
  EXPECT_FALSE(ok("GET / HTTP/1.1\r\nHost: h\r\nConnection: Close\r\n\r\n").request.keep_alive());
  EXPECT_FALSE(ok("GET / HTTP/1.0\r\n\r\n").request.keep_alive());
  EXPECT_TRUE(ok("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").request.keep_alive());
  EXPECT_TRUE(ok("GET http://example/x?y=1 HTTP/1.1\r\nHost: e\r\n\r\n").request.path == "/x");
}

TEST(httpRequest, ProtocolErrorsGetTheirStatus) {
  EXPECT_EQ(error_status("GARBAGE\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET  / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET / HTTP/1.1\r\n\r\n"), 400);  // no Host
  EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
  EXPECT_EQ(error_status("GET / HTTP/1.1x\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET noslash HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_status("G(T / HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET /%zz HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET /%00 HTTP/1.1\r\nHost: h\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n"), 400);
  EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n"
                         "Content-Length: 2\r\n\r\n"),
            400);
  EXPECT_EQ(error_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                         "Content-Length: 2\r\n\r\n"),
            400);
  EXPECT_EQ(error_status("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
}

TEST(httpRequest, LimitsAreHard) {
  HttpLimits small;
  small.max_request_line = 100;
  small.max_head = 300;
  small.max_headers = 5;
  small.max_body = 10;
  EXPECT_EQ(error_status("GET /" + std::string(200, 'a'), small), 414);  // even before its end
  EXPECT_EQ(error_status("GET /" + std::string(200, 'a') + " HTTP/1.1\r\n\r\n", small), 414);
  std::string big_header = "GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(400, 'v');
  EXPECT_EQ(error_status(big_header, small), 431);  // incomplete but already too large
  std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
  for (int i = 0; i < 6; ++i) many += "X" + std::to_string(i) + ": v\r\n";
  EXPECT_EQ(error_status(many + "\r\n", small), 431);
  EXPECT_EQ(error_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", small), 413);
  EXPECT_EQ(error_status("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\n", small), 0);
}

TEST(httpRequest, PercentDecode) {
  EXPECT_EQ(percent_decode("a%41%2f"), "aA/");
  EXPECT_EQ(percent_decode("a+b"), "a+b");
  EXPECT_EQ(percent_decode("a+b", true), "a b");
  EXPECT_EQ(percent_decode("%4"), std::nullopt);
  EXPECT_EQ(percent_decode("%"), std::nullopt);
  EXPECT_EQ(percent_decode("%g1"), std::nullopt);
}

}  // namespace
}  // namespace cidrun::net
