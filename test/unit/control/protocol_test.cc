// Tests of the control-socket frame parsers (src/control/protocol.cc) on
// lines a client could send.
#include "cairn/control/protocol.h"

#include <gtest/gtest.h>

#include <string>

namespace cairn::control {
namespace {

TEST(ProtocolTest, DataFrameHeadIsReadWithItsSequenceNumber) {
  AttachmentHead h = ParseAttachmentHead(R"({"id":7,"data":3,"bytes":5,"eof":true})", 1 << 20);
  ASSERT_TRUE(h.present);
  ASSERT_TRUE(h.error.ok()) << h.error.ToString();
  EXPECT_TRUE(h.data);
  EXPECT_EQ(h.seq, 3u);
  EXPECT_EQ(h.bytes, 5u);
  EXPECT_TRUE(h.eof);
}

// Found by reading the decoder for its fuzzer: a sequence number past 2^64
// was cast to an integer before any range check (undefined behaviour, which
// UBSan reports). It is refused as any other bad sequence number.
TEST(ProtocolTest, HugeOrFractionalSequenceNumbersAreRefused) {
  for (const char* data : {"1e300", "18446744073709551616", "9007199254740993e3", "-1", "1.5"}) {
    SCOPED_TRACE(data);
    AttachmentHead h = ParseAttachmentHead(std::string(R"({"id":1,"data":)") + data + R"(,"bytes":3})", 1 << 20);
    ASSERT_TRUE(h.present);
    EXPECT_EQ(h.error.code(), Code::kInvalidArgument) << h.error.ToString();
    EXPECT_FALSE(h.data);
  }
}

TEST(ProtocolTest, AttachmentPastTheLimitIsRefused) {
  AttachmentHead h = ParseAttachmentHead(R"({"id":1,"data":0,"bytes":2000000})", 1 << 20);
  ASSERT_TRUE(h.present);
  EXPECT_EQ(h.error.code(), Code::kFrameTooLarge);
}

}  // namespace
}  // namespace cairn::control
