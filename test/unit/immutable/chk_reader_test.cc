// Reading CHK shares: everything ChkEncoder writes verifies and decodes from
// any k shares; a corrupt UEB, block, hash chain or crypttext tree is caught.
#include <gtest/gtest.h>

#include "cairn/caps/keys.h"
#include "cairn/immutable/chk.h"
#include "cairn/immutable/chk_reader.h"

namespace cairn::immutable {
namespace {

struct Upload {
  std::string data;
  caps::Cap cap;
  std::vector<std::string> shares;
};

Upload Make(std::size_t size, ChkParams p) {
  Upload u;
  u.data.resize(size);
  for (std::size_t i = 0; i < size; ++i) u.data[i] = static_cast<char>(i * 131 + 17);
  auto layout = ComputeChkLayout(p, size);
  caps::ConvergentKeyHasher h("convergence", p.k, p.n, layout->segment_size);
  h.Update(u.data);
  auto enc = ChkEncoder::Create(h.Finish(), p, size);
  u.shares.assign(p.n, enc->ShareHeader());
  for (std::uint64_t off = 0; off < size; off += layout->segment_size) {
    auto blocks = enc->EncodeSegment(u.data.substr(off, std::min<std::uint64_t>(layout->segment_size, size - off)));
    for (std::uint32_t i = 0; i < p.n; ++i) u.shares[i] += (*blocks)[i];
  }
  EXPECT_TRUE(enc->Finish().ok());
  for (std::uint32_t i = 0; i < p.n; ++i) u.shares[i] += enc->ShareTrailer(i);
  u.cap = enc->Cap();
  return u;
}

std::string_view Area(const std::string& share, std::uint64_t from, std::uint64_t to) {
  return std::string_view(share).substr(from, to - from);
}

std::string UebOf(const std::string& share) {
  auto h = ParseChkShareHeader(share);
  std::uint64_t o = h->o_uri_extension;
  std::uint64_t len = 0;
  for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<std::uint8_t>(share[o + i]);
  return share.substr(o + 4, len);
}

TEST(ChkReader, EncodedSharesVerifyAndDecodeFromAnyK) {
  ChkParams p{3, 10, 4096};
  Upload u = Make(4096 * 3 + 100, p);
  auto r = ChkReader::Create(u.cap, UebOf(u.shares[0]));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->ueb().num_segments, 4u);
  for (std::uint32_t i = 0; i < p.n; ++i) {
    auto h = ParseChkShareHeader(u.shares[i]);
    ASSERT_TRUE(h.ok());
    ASSERT_TRUE(r->AcceptShareHashes(i, Area(u.shares[i], h->o_block_hashes, h->o_share_hashes),
                                     Area(u.shares[i], h->o_share_hashes, h->o_uri_extension)).ok()) << i;
  }
  auto h0 = *ParseChkShareHeader(u.shares[0]);
  ASSERT_TRUE(r->AcceptCrypttextTree(Area(u.shares[0], h0.o_crypttext_hash_tree, h0.o_block_hashes)).ok());
  std::string out;
  std::uint64_t at = h0.o_data;
  for (std::uint64_t seg = 0; seg < 4; ++seg) {
    std::map<std::uint32_t, std::string> blocks;
    for (std::uint32_t i : {static_cast<std::uint32_t>(seg), 7u, 9u}) {  // a different set each time
      std::string b = u.shares[i].substr(at, r->BlockSize(seg));
      ASSERT_TRUE(r->VerifyBlock(i, seg, b).ok());
      blocks[i] = b;
    }
    auto pt = r->DecodeSegment(seg, blocks);
    ASSERT_TRUE(pt.ok()) << pt.status().ToString();
    out += *pt;
    at += r->BlockSize(seg);
  }
  EXPECT_EQ(out, u.data);
}

TEST(ChkReader, CorruptionIsCaught) {
  ChkParams p{2, 4, 1000};
  Upload u = Make(2500, p);
  std::string ueb = UebOf(u.shares[1]);
  std::string bad_ueb = ueb;
  bad_ueb[20] ^= 1;
  EXPECT_EQ(ChkReader::Create(u.cap, bad_ueb).status().code(), Code::kIntegrity);
  caps::Cap other = u.cap;
  other.size += 1;
  EXPECT_FALSE(ChkReader::Create(other, ueb).ok());
  auto r = ChkReader::Create(u.cap, ueb);
  ASSERT_TRUE(r.ok());
  auto h = *ParseChkShareHeader(u.shares[1]);
  auto bht = Area(u.shares[1], h.o_block_hashes, h.o_share_hashes);
  auto chain = Area(u.shares[1], h.o_share_hashes, h.o_uri_extension);
  EXPECT_EQ(r->AcceptShareHashes(2, bht, chain).code(), Code::kIntegrity);  // share 1's hashes as share 2's
  std::string bad_tree(bht);
  bad_tree[5] ^= 1;
  EXPECT_EQ(r->AcceptShareHashes(1, bad_tree, chain).code(), Code::kIntegrity);
  ASSERT_TRUE(r->AcceptShareHashes(1, bht, chain).ok());
  std::string block = u.shares[1].substr(h.o_data, r->BlockSize(0));
  EXPECT_TRUE(r->VerifyBlock(1, 0, block).ok());
  block[0] ^= 1;
  EXPECT_EQ(r->VerifyBlock(1, 0, block).code(), Code::kIntegrity);
  EXPECT_EQ(r->VerifyBlock(0, 0, block).code(), Code::kFailedPrecondition);  // share 0 not accepted
  std::string ct(Area(u.shares[1], h.o_crypttext_hash_tree, h.o_block_hashes));
  ct[40] ^= 1;
  EXPECT_EQ(r->AcceptCrypttextTree(ct).code(), Code::kIntegrity);
  EXPECT_FALSE(ParseChkShareHeader(std::string("\0\0\0\3", 4)).ok());
}

// VerifyBlocks (hashes two at a time) passes a good segment and names the
// share of the first bad block: in the first pair, the second of a pair, or
// the odd one out.
TEST(ChkReader, VerifyBlocksNamesTheBadShare) {
  ChkParams p{5, 8, 5000};
  Upload u = Make(5000 * 2 + 7, p);
  auto r = ChkReader::Create(u.cap, UebOf(u.shares[0]));
  ASSERT_TRUE(r.ok());
  std::map<std::uint32_t, std::string> blocks;
  for (std::uint32_t i = 0; i < p.n; ++i) {
    auto h = *ParseChkShareHeader(u.shares[i]);
    ASSERT_TRUE(r->AcceptShareHashes(i, Area(u.shares[i], h.o_block_hashes, h.o_share_hashes),
                                     Area(u.shares[i], h.o_share_hashes, h.o_uri_extension)).ok());
    if (i < 5) blocks[i] = u.shares[i].substr(h.o_data + r->BlockSize(0), r->BlockSize(1));  // segment 1
  }
  std::uint32_t bad = 99;
  ASSERT_TRUE(r->VerifyBlocks(1, blocks, &bad).ok());
  EXPECT_EQ(bad, 99u);
  for (std::uint32_t victim : {0u, 3u, 4u}) {
    auto copy = blocks;
    copy[victim][17] ^= 0x40;
    EXPECT_EQ(r->VerifyBlocks(1, copy, &bad).code(), Code::kIntegrity) << victim;
    EXPECT_EQ(bad, victim);
  }
  EXPECT_EQ(r->VerifyBlocks(0, blocks, &bad).code(), Code::kIntegrity);  // segment 1's blocks as segment 0's
  EXPECT_EQ(bad, 0u);
}

}  // namespace
}  // namespace cairn::immutable
