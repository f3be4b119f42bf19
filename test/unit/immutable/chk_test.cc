// CHK encoding against Tahoe-LAFS's vectors: every chk vector's cap (the
// convergent key, zfec, the hash trees and the URI extension block all enter
// the UEB hash), plus the share layout's sizes and offsets.
#include <gtest/gtest.h>

#include <cjson/cJSON.h>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/immutable/chk.h"
#include "support/vectors.h"

namespace cairn::immutable {
namespace {

std::string Sample(const cJSON* v) {
  std::string seed = testing::Base64Decode(testing::Str(v, "sample_seed_b64"));
  std::size_t length = static_cast<std::size_t>(testing::Num(v, "sample_length"));
  std::string data;
  data.reserve(length + seed.size());
  while (data.size() < length) data += seed;
  data.resize(length);
  return data;
}

TEST(ChkVectors, EveryCapFromItsData) {
  Json doc = testing::LoadVectors("caps.json");
  const cJSON* v;
  int checked = 0;
  cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(doc.get(), "vectors")) {
    if (testing::Str(v, "kind") != "chk") continue;
    ChkParams p;
    p.k = static_cast<std::uint32_t>(testing::Num(v, "required"));
    p.n = static_cast<std::uint32_t>(testing::Num(v, "total"));
    p.max_segment_size = testing::Num(v, "segment_size");
    auto cap = ChkCapOfBytes(Sample(v), testing::Base64Decode(testing::Str(v, "convergence_b64")), p);
    ASSERT_TRUE(cap.ok()) << cap.status().ToString();
    EXPECT_EQ(caps::FormatCap(*cap), testing::Str(v, "expected"));
    ++checked;
  }
  EXPECT_EQ(checked, 60);
}

TEST(Chk, LiteralUpTo55BytesThenChk) {
  ChkParams p;
  auto lit = ChkCapOfBytes(std::string(55, 'a'), "secret", p);
  ASSERT_TRUE(lit.ok());
  EXPECT_EQ(lit->kind, caps::CapKind::kLiteral);
  EXPECT_EQ(lit->literal, std::string(55, 'a'));
  auto chk = ChkCapOfBytes(std::string(56, 'a'), "secret", p);
  ASSERT_TRUE(chk.ok());
  EXPECT_EQ(chk->kind, caps::CapKind::kChk);
  EXPECT_EQ(ChkCapOfBytes("", "s", p)->literal, "");
}

TEST(Chk, LayoutAndShareBytes) {
  ChkParams p;  // 3-of-10, 1 MiB segments
  const std::uint64_t size = 2 * (1 << 20) + 100;
  auto layout = ComputeChkLayout(p, size);
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(layout->segment_size, 1048578u);  // 1 MiB rounded up to a multiple of 3
  EXPECT_EQ(layout->num_segments, 3u);
  EXPECT_EQ(layout->tail_size, size - 2 * 1048578);
  EXPECT_EQ(layout->data_size, (size + 2) / 3);
  EXPECT_EQ(layout->hash_tree_bytes, 7u * 32);  // 4 padded leaves
  EXPECT_EQ(layout->share_hash_count, 5u);      // 16 padded shares: 4 siblings and the leaf
  EXPECT_FALSE(layout->v2);

  std::string data(size, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 31 + 7);
  auto enc = ChkEncoder::Create(std::string(16, 'k'), p, size);
  ASSERT_TRUE(enc.ok());
  std::vector<std::string> shares(p.n);
  for (std::uint32_t i = 0; i < p.n; ++i) shares[i] = enc->ShareHeader();
  EXPECT_EQ(shares[0].size(), 36u);
  for (std::uint64_t off = 0; off < size; off += layout->segment_size) {
    auto blocks = enc->EncodeSegment(data.substr(off, std::min<std::uint64_t>(layout->segment_size, size - off)));
    ASSERT_TRUE(blocks.ok()) << blocks.status().ToString();
    for (std::uint32_t i = 0; i < p.n; ++i) shares[i] += (*blocks)[i];
  }
  EXPECT_FALSE(enc->EncodeSegment("x").ok());  // no segment left
  ASSERT_TRUE(enc->Finish().ok());
  for (std::uint32_t i = 0; i < p.n; ++i) {
    EXPECT_EQ(shares[i].size(), layout->o_plaintext_hash_tree());
    shares[i] += enc->ShareTrailer(i);
    EXPECT_EQ(shares[i].size(), enc->ShareSize());
  }
  // The UEB sits at o_uri_extension behind its u32 length; its hash is the cap's.
  const std::string& s0 = shares[0];
  std::uint64_t o = layout->o_uri_extension();
  std::uint32_t len = (static_cast<std::uint8_t>(s0[o]) << 24) | (static_cast<std::uint8_t>(s0[o + 1]) << 16) |
                      (static_cast<std::uint8_t>(s0[o + 2]) << 8) | static_cast<std::uint8_t>(s0[o + 3]);
  EXPECT_EQ(s0.substr(o + 4, len), enc->uri_extension());
  EXPECT_EQ(enc->uri_extension().substr(0, 17), "codec_name:3:crs,");
  // Shares 0..k-1 carry the ciphertext pieces unchanged: not the plaintext.
  EXPECT_NE(shares[0].substr(36, 100), data.substr(0, 100));
}

TEST(Chk, RefusesBadParameters) {
  EXPECT_FALSE(ComputeChkLayout({0, 10, 1 << 20}, 1000).ok());
  EXPECT_FALSE(ComputeChkLayout({4, 3, 1 << 20}, 1000).ok());
  EXPECT_FALSE(ComputeChkLayout({3, 257, 1 << 20}, 1000).ok());
  EXPECT_FALSE(ComputeChkLayout({3, 10, 1 << 20}, 55).ok());
  EXPECT_FALSE(ChkEncoder::Create("short", {3, 10, 1 << 20}, 1000).ok());
}

}  // namespace
}  // namespace cairn::immutable
