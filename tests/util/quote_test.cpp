// Strangers' text in messages: one line on a terminal, nothing a terminal would obey.
#include "util/quote.h"

#include <gtest/gtest.h>

namespace cidrun {
namespace {

TEST(Quote, ControlsQuotesAndBackslashesAreEscaped) {
  EXPECT_EQ(quote("plain name.txt"), "'plain name.txt'");
  EXPECT_EQ(quote("a\nb\x1b[31mc\x7f"), "'a\\x0ab\\x1b[31mc\\x7f'");
  EXPECT_EQ(quote("it's\\"), "'it\\x27s\\x5c'");
  EXPECT_EQ(quote(std::string("nul\0x", 5)), "'nul\\x00x'");
  // UTF-8 stays as it is, but U+009B (CSI in UTF-8: c2 9b) is a C1 control.
  EXPECT_EQ(quote("caf\xc3\xa9 \xc2\x9b"
                  "2J"),
            "'caf\xc3\xa9 \\xc2\\x9b2J'");
}

TEST(Quote, EscapeControlsKeepsQuotes) {
  EXPECT_EQ(escape_controls("invalid CID 'x\ny': bad"), "invalid CID 'x\\x0ay': bad");
  EXPECT_EQ(escape_controls("tab\there"), "tab\\x09here");
}

}  // namespace
}  // namespace cidrun
