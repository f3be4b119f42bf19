// MDMF segment ranges (see mdmf_segments.h).
#include "mutable/mdmf_segments.h"

#include <algorithm>

#include "cairn/caps/keys.h"
#include "cairn/core/endian.h"
#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/random.h"
#include "cairn/fec/fec.h"

namespace cairn::mutable_files {
namespace {

constexpr std::size_t kSalt = 16;

}  // namespace

std::vector<std::size_t> NeededTreeNodes(std::uint64_t leaf_count, std::uint64_t first, std::uint64_t last) {
  const std::size_t width = crypto::HashTreeWidth(static_cast<std::size_t>(leaf_count));
  std::size_t lo = width - 1 + static_cast<std::size_t>(first);
  std::size_t hi = width - 1 + static_cast<std::size_t>(last);
  std::vector<std::size_t> needed;
  // Level by level: the nodes [lo, hi] are on the paths; a left end that is
  // a right child (even index) needs its left sibling, a right end that is
  // a left child (odd index) its right sibling.
  while (hi != 0) {
    if (lo % 2 == 0) needed.push_back(lo - 1);
    if (hi % 2 == 1) needed.push_back(hi + 1);
    lo = (lo - 1) / 2;
    hi = (hi - 1) / 2;
  }
  std::sort(needed.begin(), needed.end());
  return needed;
}

std::vector<ByteRange> TreeNodeRanges(std::uint64_t tree_offset, const std::vector<std::size_t>& nodes,
                                      std::uint64_t gap) {
  std::vector<ByteRange> ranges;
  for (std::size_t node : nodes) {
    const std::uint64_t at = tree_offset + node * crypto::kHashSize;
    if (!ranges.empty() && at <= ranges.back().end() + gap) {
      ranges.back().length = at + crypto::kHashSize - ranges.back().offset;
    } else {
      ranges.push_back(ByteRange{at, crypto::kHashSize});
    }
  }
  return ranges;
}

Result<std::string> CompleteTree(std::size_t width, TreeNodes& nodes) {
  // Bottom up, level by level: each known node with an unknown parent
  // gives that parent once its sibling is known.
  std::size_t level_first = width - 1;
  while (level_first != 0) {
    const std::size_t level_last = 2 * level_first;  // the level is [level_first, 2 * level_first]
    std::vector<std::size_t> parents;
    for (auto it = nodes.lower_bound(level_first); it != nodes.end() && it->first <= level_last; ++it) {
      const std::size_t parent = (it->first - 1) / 2;
      if (parents.empty() || parents.back() != parent) parents.push_back(parent);
    }
    for (std::size_t p : parents) {
      auto left = nodes.find(2 * p + 1);
      auto right = nodes.find(2 * p + 2);
      if (left == nodes.end() || right == nodes.end()) {
        return Status::InvalidArgument("hash tree lacks node " +
                                       std::to_string(left == nodes.end() ? 2 * p + 1 : 2 * p + 2));
      }
      std::string h = crypto::InternalNodeHash(left->second, right->second);
      auto [at, fresh] = nodes.emplace(p, h);
      if (!fresh) at->second = std::move(h);  // a parent given too is recomputed, never trusted
    }
    level_first = (level_first - 1) / 2;
  }
  auto root = nodes.find(0);
  if (root == nodes.end()) return Status::InvalidArgument("hash tree has no nodes");
  return root->second;
}

Result<TreeNodes> ParseShareHashChain(std::string_view head, const ByteRange& range) {
  if (range.end() > head.size()) return Status::InvalidArgument("the share hash chain lies past the bytes read");
  if (range.length % (2 + crypto::kHashSize) != 0) return Status::InvalidArgument("the share hash chain is ragged");
  TreeNodes chain;
  for (std::uint64_t at = range.offset; at < range.end(); at += 2 + crypto::kHashSize) {
    chain[static_cast<std::size_t>(GetBe(head, static_cast<std::size_t>(at), 2))] =
        std::string(head.substr(static_cast<std::size_t>(at + 2), crypto::kHashSize));
  }
  return chain;
}

ByteRange SegmentRange(const MdmfGeometry& g, std::uint64_t first, std::uint64_t last) {
  const std::uint64_t from = g.SegmentOffset(first);
  return ByteRange{from, g.SegmentOffset(last) + kSalt + g.BlockSize(last) - from};
}

Result<SegmentBlocks> SplitSegments(const MdmfGeometry& g, std::uint64_t first, std::uint64_t last,
                                    std::string_view bytes) {
  if (first > last || last >= g.num_segments) return Status::InvalidArgument("segments out of range");
  if (bytes.size() != SegmentRange(g, first, last).length) {
    return Status::InvalidArgument("the segments read are " + std::to_string(bytes.size()) + " bytes, not " +
                                   std::to_string(SegmentRange(g, first, last).length));
  }
  SegmentBlocks out;
  out.first = first;
  std::size_t at = 0;
  for (std::uint64_t s = first; s <= last; ++s) {
    const std::size_t len = static_cast<std::size_t>(g.BlockSize(s));
    out.salts.emplace_back(bytes.substr(at, kSalt));
    out.blocks.emplace_back(bytes.substr(at + kSalt, len));
    at += kSalt + len;
  }
  return out;
}

Status VerifySegments(const ShareHeader& header, std::uint32_t shnum, const TreeNodes& chain, TreeNodes tree,
                      const SegmentBlocks& segments) {
  const std::string who = "share " + std::to_string(shnum) + ": ";
  const std::size_t width = crypto::HashTreeWidth(static_cast<std::size_t>(header.num_segments));
  for (std::size_t i = 0; i < segments.blocks.size(); ++i) {
    tree[width - 1 + static_cast<std::size_t>(segments.first) + i] = MdmfBlockHash(segments.salts[i], segments.blocks[i]);
  }
  auto root = CompleteTree(width, tree);
  if (!root.ok()) return Status::Integrity(who + std::string(root.status().message()));
  if (shnum >= header.n) return Status::Integrity(who + "not below N");
  Status st = crypto::VerifyHashTreeLeaf(header.root_hash, header.n, shnum, *root, chain);
  if (!st.ok()) return Status::Integrity(who + "its blocks do not reach the signed root: " + std::string(st.message()));
  return Status::Ok();
}

Result<std::string> DecodeSegments(const ShareHeader& header, const std::map<std::uint32_t, const SegmentBlocks*>& shares,
                                   std::string_view readkey) {
  const std::uint32_t k = header.k;
  if (shares.size() < k) {
    return Status::InvalidArgument("need " + std::to_string(k) + " shares, have " + std::to_string(shares.size()));
  }
  const SegmentBlocks& any = *shares.begin()->second;
  for (const auto& [num, s] : shares) {
    if (s->first != any.first || s->blocks.size() != any.blocks.size()) {
      return Status::InvalidArgument("the shares hold different segments");
    }
  }
  const MdmfGeometry g = MdmfGeometryOf(header.data_length, k);
  CAIRN_TRY_ASSIGN(fec::Codec codec, fec::Codec::Create(static_cast<int>(k), static_cast<int>(header.n)));
  std::string out;
  for (std::size_t i = 0; i < any.blocks.size(); ++i) {
    const std::uint64_t seg = any.first + i;
    const std::size_t piece = static_cast<std::size_t>(g.BlockSize(seg));
    std::vector<const std::uint8_t*> blocks;
    std::vector<int> nums;
    for (const auto& [num, s] : shares) {
      if (blocks.size() == k) break;
      if (s->blocks[i].size() != piece) return Status::InvalidArgument("a block has the wrong length");
      blocks.push_back(reinterpret_cast<const std::uint8_t*>(s->blocks[i].data()));
      nums.push_back(static_cast<int>(num));
    }
    std::string ct(piece * k, '\0');
    std::vector<std::uint8_t*> outs(k);
    for (std::uint32_t j = 0; j < k; ++j) outs[j] = reinterpret_cast<std::uint8_t*>(ct.data()) + j * piece;
    CAIRN_TRY(codec.Decode(blocks, nums, piece, outs));
    ct.resize(static_cast<std::size_t>(g.SegmentLength(seg)));
    CAIRN_TRY_ASSIGN(std::string pt, crypto::AesCtrTransform(caps::DataKeyOf(any.salts[i], readkey), ct));
    out += pt;
  }
  return out;
}

Result<EncodedSegments> EncodeSegments(const MdmfGeometry& g, std::uint32_t k, std::uint32_t n, std::uint64_t first,
                                       std::string_view plaintext, std::string_view readkey) {
  if (k < 1 || n < k || n > 255) return Status::InvalidArgument("MDMF needs 1 <= k <= N <= 255");
  CAIRN_TRY_ASSIGN(fec::Codec codec, fec::Codec::Create(static_cast<int>(k), static_cast<int>(n)));
  EncodedSegments out;
  out.shares.assign(n, SegmentBlocks{first, {}, {}});
  out.leaves.assign(n, {});
  std::size_t at = 0;
  for (std::uint64_t s = first; at < plaintext.size(); ++s) {
    if (s >= g.num_segments) return Status::InvalidArgument("the plaintext is longer than the file");
    const std::size_t len = static_cast<std::size_t>(g.SegmentLength(s));
    if (at + len > plaintext.size()) return Status::InvalidArgument("the plaintext ends inside a segment");
    const std::size_t piece = static_cast<std::size_t>(g.BlockSize(s));
    CAIRN_TRY_ASSIGN(std::string salt, crypto::RandomBytes(kSalt));
    CAIRN_TRY_ASSIGN(std::string ct, crypto::AesCtrTransform(caps::DataKeyOf(salt, readkey), plaintext.substr(at, len)));
    ct.resize(piece * k, '\0');
    std::vector<const std::uint8_t*> pieces(k);
    for (std::uint32_t i = 0; i < k; ++i) pieces[i] = reinterpret_cast<const std::uint8_t*>(ct.data()) + i * piece;
    std::vector<std::string> blocks(n, std::string(piece, '\0'));
    std::vector<int> nums(n);
    std::vector<std::uint8_t*> outs(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      nums[i] = static_cast<int>(i);
      outs[i] = reinterpret_cast<std::uint8_t*>(blocks[i].data());
    }
    CAIRN_TRY(codec.Encode(pieces, piece, nums, outs));
    for (std::uint32_t i = 0; i < n; ++i) {
      out.leaves[i].push_back(MdmfBlockHash(salt, blocks[i]));
      out.shares[i].salts.push_back(salt);
      out.shares[i].blocks.push_back(std::move(blocks[i]));
    }
    at += len;
  }
  return out;
}

}  // namespace cairn::mutable_files
