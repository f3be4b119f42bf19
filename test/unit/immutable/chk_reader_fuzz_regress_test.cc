// What chk_share_fuzzer found in the URI extension block parser: the check
// that num_segments is ceil(size / segment_size) overflowed for sizes and
// segment sizes near 2^63, accepting no segments for a huge file; and a
// consistent geometry of more than 2^63 segments sent the hash tree width
// computation into an endless loop when the share's hashes were checked.
// The cap is made to match each block (its hash, k, N and size), as a
// writer who made both could.
#include <gtest/gtest.h>

#include "cairn/crypto/hash.h"
#include "cairn/crypto/tags.h"
#include "cairn/immutable/chk_reader.h"

namespace cairn::immutable {
namespace {

std::string Field(std::string_view key, std::string_view value) {
  return std::string(key) + ":" + std::to_string(value.size()) + ":" + std::string(value) + ",";
}

std::string Ueb(std::string_view size, std::string_view segment_size, std::string_view num_segments) {
  const std::string hash(32, 'h');
  return Field("crypttext_hash", hash) + Field("crypttext_root_hash", hash) + Field("needed_shares", "1") +
         Field("num_segments", num_segments) + Field("segment_size", segment_size) + Field("share_root_hash", hash) +
         Field("size", size) + Field("total_shares", "1");
}

caps::Cap CapOf(const std::string& ueb, std::uint64_t size) {
  caps::Cap cap;
  cap.kind = caps::CapKind::kChk;
  cap.key = std::string(16, 'k');
  cap.digest = crypto::TaggedHash(crypto::tags::kUriExtension, ueb);
  cap.k = 1;
  cap.n = 1;
  cap.size = size;
  return cap;
}

TEST(ChkReaderFuzzRegress, ConsistentGeometryIsAccepted) {
  const std::string ueb = Ueb("100", "64", "2");
  auto u = ParseChkUeb(ueb, CapOf(ueb, 100));
  ASSERT_TRUE(u.ok()) << u.status().ToString();
  EXPECT_EQ(u->num_segments, 2u);
  EXPECT_EQ(u->tail_padded_size, 36u);
}

TEST(ChkReaderFuzzRegress, SegmentCountOverflowIsRefused) {
  // (size + segment_size - 1) passes 2^64: the wrapped quotient was 0.
  const std::string ueb = Ueb("9500000000000000000", "9500000000000000000", "0");
  auto u = ParseChkUeb(ueb, CapOf(ueb, 9500000000000000000u));
  EXPECT_FALSE(u.ok());
  EXPECT_EQ(u.status().code(), Code::kInvalidArgument);
}

TEST(ChkReaderFuzzRegress, MoreSegmentsThanAHashTreeCanHoldAreRefused) {
  const std::string ueb = Ueb("9999999999999999999", "1", "9999999999999999999");
  auto reader = ChkReader::Create(CapOf(ueb, 9999999999999999999u), ueb);
  EXPECT_FALSE(reader.ok());
  EXPECT_EQ(reader.status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::immutable
