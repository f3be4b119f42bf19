// MDMF shares: the layout of tahoe-protocol.md 3.7 (fixed offsets, zero
// padding to 2167, salted block hashes, full block hash tree), multi-segment
// round trips, the empty file, and tampering detected.
#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include "cairn/caps/keys.h"
#include "cairn/crypto/rsa.h"
#include "cairn/mutable/mdmf.h"
#include "support/vectors.h"
#include "unit/mutable/vector_key.h"

namespace cairn::mutable_files {
namespace {

std::vector<std::string> Publish(std::string_view plaintext, std::uint32_t k, std::uint32_t n) {
  const VectorKey& f = F();
  auto enc = MdmfEncoding::Encode(f.keys.readkey, f.pub, caps::CryptPrivateKey(f.keys.writekey, f.key.PrivatePkcs8Der()),
                                  plaintext, k, n, 3);
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  EXPECT_EQ(enc->signed_prefix().size(), kMdmfSignedPrefixSize);
  auto shares = enc->Shares(*f.key.Sign(enc->signed_prefix()));
  EXPECT_TRUE(shares.ok()) << shares.status().ToString();
  return *shares;
}

TEST(Mdmf, SegmentSizeIsRoundedUpToK) {
  EXPECT_EQ(MdmfSegmentSize(1), 131072u);
  EXPECT_EQ(MdmfSegmentSize(3), 131073u);
  EXPECT_EQ(MdmfSegmentSize(255), 131325u);  // 515 * 255
}

TEST(Mdmf, ThreeSegmentsRoundTripFromAnyKShares) {
  std::string plaintext(2 * 131073 + 1000, '\0');
  for (std::size_t i = 0; i < plaintext.size(); ++i) plaintext[i] = static_cast<char>(i * 13 + 5);
  std::vector<std::string> raw = Publish(plaintext, 3, 10);
  std::vector<MdmfShare> parsed;
  for (std::uint32_t i = 0; i < raw.size(); ++i) {
    auto s = ParseMdmfShare(raw[i]);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    EXPECT_EQ(s->num_segments(), 3u);
    EXPECT_EQ(s->segment_size, 131073u);
    EXPECT_EQ(s->blocks[2].size(), 334u);  // ceil(1000 / 3)
    EXPECT_EQ(s->block_hash_tree.size(), 7u);
    EXPECT_EQ(s->salts[0], parsed.empty() ? s->salts[0] : parsed[0].salts[0]);  // one salt per segment
    EXPECT_NE(s->salts[0], s->salts[1]);
    EXPECT_TRUE(VerifyMdmfShare(*s, i, F().keys.fingerprint).ok()) << i;
    parsed.push_back(*s);
  }
  auto out = DecodeMdmf({{7, &parsed[7]}, {1, &parsed[1]}, {9, &parsed[9]}}, F().keys.readkey);
  ASSERT_TRUE(out.ok()) << out.status().ToString();
  EXPECT_EQ(*out, plaintext);
  // Fixed offsets: the private key at 123, the share data at 2167, zeros between.
  EXPECT_EQ(raw[0].substr(123, parsed[0].encprivkey.size()), parsed[0].encprivkey);
  EXPECT_EQ(raw[0].substr(2167, 16), parsed[0].salts[0]);
}

TEST(Mdmf, EmptyFileIs2199Bytes) {
  std::vector<std::string> raw = Publish("", 3, 10);
  EXPECT_EQ(raw[0].size(), 2199u);
  auto s = ParseMdmfShare(raw[0]);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->num_segments(), 0u);
  EXPECT_TRUE(VerifyMdmfShare(*s, 0, F().keys.fingerprint).ok());
}

TEST(Mdmf, TamperingIsCaught) {
  std::vector<std::string> raw = Publish(std::string(140000, 'm'), 2, 3);
  auto check = [&](std::string bytes, std::uint32_t shnum) {
    auto s = ParseMdmfShare(bytes);
    if (!s.ok()) return s.status().code();
    return VerifyMdmfShare(*s, shnum, F().keys.fingerprint).code();
  };
  EXPECT_EQ(check(raw[1], 1), Code::kOk);
  EXPECT_EQ(check(raw[1], 2), Code::kIntegrity);
  std::string salt = raw[1];
  salt[2167] ^= 1;  // a salt is covered by its block's hash
  EXPECT_EQ(check(salt, 1), Code::kIntegrity);
  std::string block = raw[1];
  block[2167 + 16 + 100] ^= 1;
  EXPECT_EQ(check(block, 1), Code::kIntegrity);
  std::string len = raw[1];
  len[58] ^= 1;  // the data length is signed (and changes the geometry)
  EXPECT_NE(check(len, 1), Code::kOk);
  EXPECT_EQ(check(raw[1].substr(0, 3000), 1), Code::kInvalidArgument);
}

}  // namespace
}  // namespace cairn::mutable_files
