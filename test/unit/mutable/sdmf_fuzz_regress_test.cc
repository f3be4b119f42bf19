// What sdmf_share_fuzzer found in the SDMF share decoder: a share whose
// signed header claims more data than its one segment holds made DecodeSdmf
// allocate that claim (up to 2^64 bytes) and abort. A writer can sign any
// header, so the decoder must refuse it; shares are built here without a
// real key because decoding does not check the signature (VerifySdmfShare does).
#include <gtest/gtest.h>

#include "cairn/core/endian.h"
#include "cairn/mutable/sdmf.h"

namespace cairn::mutable_files {
namespace {

const std::string kReadKey(16, '\x33');

std::vector<std::string> Shares(std::string_view plaintext) {
  auto enc = SdmfEncoding::Encode(kReadKey, "public key", "private key", plaintext, 2, 3, 1, std::string(16, '\x42'));
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  auto shares = enc->Shares(std::string(256, '\0'));
  EXPECT_TRUE(shares.ok());
  return *shares;
}

// The data length field of the signed prefix (bytes 67..75).
void SetDataLength(std::string& share, std::uint64_t length) {
  std::string be;
  PutBe(be, length, 8);
  share.replace(67, 8, be);
}

Result<std::string> Decode(const std::vector<std::string>& shares) {
  auto a = ParseSdmfShare(shares[0]);
  auto b = ParseSdmfShare(shares[2]);
  EXPECT_TRUE(a.ok() && b.ok());
  return DecodeSdmf({{0, &*a}, {2, &*b}}, kReadKey);
}

TEST(SdmfFuzzRegress, DecodesTheShareAsWritten) {
  auto plain = Decode(Shares("mutable data"));
  ASSERT_TRUE(plain.ok()) << plain.status().ToString();
  EXPECT_EQ(*plain, "mutable data");
}

TEST(SdmfFuzzRegress, DataLengthPastTheSegmentIsRefused) {
  for (std::uint64_t length : {std::uint64_t{13}, std::uint64_t{1} << 40, ~std::uint64_t{0}}) {
    std::vector<std::string> shares = Shares("mutable data");
    for (std::string& s : shares) SetDataLength(s, length);
    auto plain = Decode(shares);
    EXPECT_FALSE(plain.ok()) << length;
    EXPECT_EQ(plain.status().code(), Code::kIntegrity) << length;
  }
}

}  // namespace
}  // namespace cairn::mutable_files
