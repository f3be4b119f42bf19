// What sdmf_share_fuzzer found in the MDMF share parser: a data length near
// 2^64 wrapped the segment count to zero, so a share with no segments
// parsed as holding that much data, and DecodeMdmf then tried to reserve
// it and aborted. Shares are built here without a real key because parsing
// and decoding do not check the signature (VerifyMdmfShare does).
#include <gtest/gtest.h>

#include "cairn/core/endian.h"
#include "cairn/mutable/mdmf.h"

namespace cairn::mutable_files {
namespace {

const std::string kReadKey(16, '\x33');

std::string Share(std::string_view plaintext) {
  auto enc = MdmfEncoding::Encode(kReadKey, "public key", "private key", plaintext, 1, 1, 1);
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  auto shares = enc->Shares(std::string(256, '\0'));
  EXPECT_TRUE(shares.ok());
  return (*shares)[0];
}

TEST(MdmfFuzzRegress, EmptyShareParsesAndDecodes) {
  auto s = ParseMdmfShare(Share(""));
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->num_segments(), 0u);
  auto plain = DecodeMdmf({{0, &*s}}, kReadKey);
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(*plain, "");
}

TEST(MdmfFuzzRegress, DataLengthThatWrapsTheSegmentCountIsRefused) {
  for (std::uint64_t length : {~std::uint64_t{0}, ~std::uint64_t{0} - 131070, std::uint64_t{1} << 63}) {
    std::string share = Share("");
    std::string be;
    PutBe(be, length, 8);
    share.replace(51, 8, be);  // the data length field of the signed prefix
    auto s = ParseMdmfShare(share);
    EXPECT_FALSE(s.ok()) << length;
  }
}

}  // namespace
}  // namespace cairn::mutable_files
