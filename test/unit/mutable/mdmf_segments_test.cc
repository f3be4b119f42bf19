// The MDMF segment-range helpers (src/mutable/mdmf_segments.h) against the
// whole-tree code they must agree with: the block hash tree nodes a range
// of leaves needs give exactly the root of the full tree, for every range
// of trees of many sizes; node ranges are joined as asked; segments
// encoded, split, verified and decoded a range at a time equal the whole
// file's MDMF encoding.
#include "mutable/mdmf_segments.h"

#include <gtest/gtest.h>

#include <set>

#include "cairn/caps/keys.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/tags.h"
#include "cairn/mutable/mdmf.h"
#include "support/grid_fixture.h"

namespace cairn::mutable_files {
namespace {

std::vector<std::string> Leaves(std::size_t count) {
  std::vector<std::string> leaves;
  for (std::size_t i = 0; i < count; ++i) leaves.push_back(crypto::TaggedHash("leaf", std::to_string(i)));
  return leaves;
}

TEST(MdmfSegments, NeededNodesGiveTheRootOfEveryRange) {
  for (std::size_t count : {1, 2, 3, 4, 5, 7, 8, 9, 16, 33}) {
    crypto::HashTree full(Leaves(count));
    const std::size_t width = crypto::HashTreeWidth(count);
    for (std::size_t first = 0; first < count; ++first) {
      for (std::size_t last = first; last < count; ++last) {
        SCOPED_TRACE(std::to_string(count) + " leaves, [" + std::to_string(first) + ", " + std::to_string(last) + "]");
        std::vector<std::size_t> needed = NeededTreeNodes(count, first, last);
        TreeNodes nodes;
        for (std::size_t i : needed) nodes[i] = full.Node(i);
        for (std::size_t leaf = first; leaf <= last; ++leaf) nodes[full.LeafIndex(leaf)] = full.Node(full.LeafIndex(leaf));
        auto root = CompleteTree(width, nodes);
        ASSERT_TRUE(root.ok()) << root.status().ToString();
        EXPECT_EQ(*root, full.Root());
        // Every computed node is the full tree's, and nothing needed is spare:
        // without any one needed node the root cannot be made.
        for (const auto& [i, h] : nodes) EXPECT_EQ(h, full.Node(i)) << "node " << i;
        if (!needed.empty()) {
          TreeNodes less;
          for (std::size_t i : needed) less[i] = full.Node(i);
          less.erase(needed.front());
          for (std::size_t leaf = first; leaf <= last; ++leaf) less[full.LeafIndex(leaf)] = full.Node(full.LeafIndex(leaf));
          EXPECT_FALSE(CompleteTree(width, less).ok());
        }
        // One changed leaf changes the root: the nodes are not trusted.
        nodes.clear();
        for (std::size_t i : needed) nodes[i] = full.Node(i);
        for (std::size_t leaf = first; leaf <= last; ++leaf) nodes[full.LeafIndex(leaf)] = full.Node(full.LeafIndex(leaf));
        nodes[full.LeafIndex(last)] = crypto::TaggedHash("other", "x");
        auto changed = CompleteTree(width, nodes);
        ASSERT_TRUE(changed.ok());
        EXPECT_NE(*changed, full.Root());
      }
    }
  }
}

TEST(MdmfSegments, TreeNodeRangesJoinNeighbours) {
  auto r = TreeNodeRanges(1000, {0, 1, 2, 5, 40}, 0);
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0].offset, 1000u);
  EXPECT_EQ(r[0].length, 96u);
  EXPECT_EQ(r[1].offset, 1000u + 5 * 32);
  EXPECT_EQ(r[2].offset, 1000u + 40 * 32);
  auto joined = TreeNodeRanges(1000, {0, 1, 2, 5, 40}, 100);
  ASSERT_EQ(joined.size(), 2u);
  EXPECT_EQ(joined[0].length, 6u * 32);
}

// A whole MDMF share set made by MdmfEncoding, read a range of segments at
// a time through the helpers: every range verifies and decodes to its part
// of the file; a flipped block bit fails verification.
TEST(MdmfSegments, RangesOfAWholeEncodingVerifyAndDecode) {
  const std::string readkey(16, 'r');
  const std::uint32_t k = 2, n = 3;
  const MdmfGeometry g0 = MdmfGeometryOf(0, k);
  const std::string data = testing::Pattern(static_cast<std::size_t>(5 * g0.segsize + 99), 3);
  auto enc = MdmfEncoding::Encode(readkey, "pubkey", "encprivkey", data, k, n, 1);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  auto shares = enc->Shares(std::string(256, 's'));
  ASSERT_TRUE(shares.ok());
  std::vector<ShareHeader> headers;
  for (const std::string& s : *shares) headers.push_back(*ParseMdmfHeader(s));
  const MdmfGeometry g = MdmfGeometryOf(data.size(), k);
  ASSERT_EQ(g.num_segments, 6u);
  EXPECT_EQ(headers[0].block_hash_tree.offset, g.BlockHashTreeOffset());
  for (std::uint64_t first = 0; first < g.num_segments; ++first) {
    for (std::uint64_t last = first; last < g.num_segments; ++last) {
      std::map<std::uint32_t, SegmentBlocks> parts;
      for (std::uint32_t i = 0; i < n; ++i) {
        const std::string& share = (*shares)[i];
        auto chain = ParseShareHashChain(share, headers[i].share_hash_chain);
        ASSERT_TRUE(chain.ok());
        TreeNodes tree;
        for (std::size_t node : NeededTreeNodes(g.num_segments, first, last)) {
          tree[node] = share.substr(static_cast<std::size_t>(headers[i].block_hash_tree.offset + node * 32), 32);
        }
        ByteRange r = SegmentRange(g, first, last);
        auto segs = SplitSegments(g, first, last, std::string_view(share).substr(r.offset, r.length));
        ASSERT_TRUE(segs.ok()) << segs.status().ToString();
        Status st = VerifySegments(headers[i], i, *chain, tree, *segs);
        ASSERT_TRUE(st.ok()) << st.ToString();
        SegmentBlocks bad = *segs;
        bad.blocks.back()[0] ^= 1;
        EXPECT_EQ(VerifySegments(headers[i], i, *chain, tree, bad).code(), Code::kIntegrity);
        parts[i] = std::move(*segs);
      }
      std::map<std::uint32_t, const SegmentBlocks*> view{{1, &parts[1]}, {2, &parts[2]}};
      auto pt = DecodeSegments(headers[0], view, readkey);
      ASSERT_TRUE(pt.ok()) << pt.status().ToString();
      const std::uint64_t from = first * g.segsize;
      EXPECT_TRUE(*pt == data.substr(from, std::min<std::uint64_t>(data.size(), (last + 1) * g.segsize) - from));
    }
  }
}

// Segments encoded on their own, decoded by the same code: the plaintext
// comes back, each share's leaf is the hash of its salt and block.
TEST(MdmfSegments, EncodedSegmentsDecode) {
  const std::string readkey(16, 'q');
  const std::string data = testing::Pattern(3 * 131073 + 5, 9);
  const MdmfGeometry g = MdmfGeometryOf(data.size(), 3);
  auto enc = EncodeSegments(g, 3, 5, 1, std::string_view(data).substr(131073), readkey);
  ASSERT_TRUE(enc.ok()) << enc.status().ToString();
  ASSERT_EQ(enc->shares[0].blocks.size(), 3u);
  EXPECT_EQ(enc->leaves[4][2], MdmfBlockHash(enc->shares[4].salts[2], enc->shares[4].blocks[2]));
  ShareHeader h;
  h.k = 3;
  h.n = 5;
  h.data_length = data.size();
  std::map<std::uint32_t, const SegmentBlocks*> view{{0, &enc->shares[0]}, {3, &enc->shares[3]}, {4, &enc->shares[4]}};
  auto pt = DecodeSegments(h, view, readkey);
  ASSERT_TRUE(pt.ok()) << pt.status().ToString();
  EXPECT_TRUE(*pt == data.substr(131073));
  EXPECT_FALSE(EncodeSegments(g, 3, 5, 1, std::string_view(data).substr(131073, 1000), readkey).ok());
}

}  // namespace
}  // namespace cairn::mutable_files
