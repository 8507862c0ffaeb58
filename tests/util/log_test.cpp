// The --log record formats: runc's JSON lines and logrus's text lines, byte for byte, for the
// clients that parse them (podman, containerd).
#include "util/log.h"

#include <gtest/gtest.h>

namespace cidrun::log {
namespace {

constexpr long long kTime = 1700000000;  // 2023-11-14T22:13:20Z

TEST(LogRecord, JsonIsRuncsShape) {
  EXPECT_EQ(format_record(Level::kError, "container \"x\" does not exist", true, kTime),
            "{\"level\":\"error\",\"msg\":\"container \\\"x\\\" does not exist\","
            "\"time\":\"2023-11-14T22:13:20Z\"}\n");
  EXPECT_EQ(format_record(Level::kWarn, "w", true, kTime),
            "{\"level\":\"warning\",\"msg\":\"w\",\"time\":\"2023-11-14T22:13:20Z\"}\n");
}

TEST(LogRecord, JsonEscapesControlsAndReplacesBytesThatAreNotUtf8) {
  EXPECT_EQ(format_record(Level::kDebug, "a\\b\n\t\x01 \xc3\xa9 \xff \xe2\x82", true, kTime),
            "{\"level\":\"debug\",\"msg\":\"a\\\\b\\n\\t\\u0001 \xc3\xa9 \\ufffd \\ufffd\\ufffd\","
            "\"time\":\"2023-11-14T22:13:20Z\"}\n");
}

TEST(LogRecord, TextQuotesOnlyWhatLogrusQuotes) {
  EXPECT_EQ(format_record(Level::kError, "plain-word_1.2/x@y^z+", false, kTime),
            "time=\"2023-11-14T22:13:20Z\" level=error msg=plain-word_1.2/x@y^z+\n");
  EXPECT_EQ(format_record(Level::kInfo, "two words", false, kTime),
            "time=\"2023-11-14T22:13:20Z\" level=info msg=\"two words\"\n");
  EXPECT_EQ(format_record(Level::kError, "", false, kTime),
            "time=\"2023-11-14T22:13:20Z\" level=error msg=\n");
  EXPECT_EQ(
      format_record(Level::kWarn, "q\"b\\n\nc\x7f\xff \xc3\xa9", false, kTime),
      "time=\"2023-11-14T22:13:20Z\" level=warning msg=\"q\\\"b\\\\n\\nc\\x7f\\xff \xc3\xa9\"\n");
}

}  // namespace
}  // namespace cidrun::log
