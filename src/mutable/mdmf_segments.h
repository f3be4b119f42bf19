// MDMF shares a segment range at a time (tahoe-protocol.md 3.7, 3.8): what
// a ranged read and an in-place update read of a share (the salts and
// blocks of the segments, and only the block hash tree nodes those need),
// how those parts are checked against the signed root, decoded, and
// re-encoded. A reader never needs the whole share: for segments
// [first, last] it needs their salt ‖ block (one contiguous range), the
// siblings of their paths to the block tree's root (NeededTreeNodes), and
// the share hash chain (in the servermap's first read).
//
// Pure functions over self-contained values: any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"
#include "cairn/mutable/mdmf.h"
#include "cairn/mutable/share_format.h"

namespace cairn::mutable_files {

// Node index -> 32-byte hash, of one block hash tree or share hash tree.
using TreeNodes = std::map<std::size_t, std::string>;

// The node indices of a tree over `leaf_count` leaves that, with the leaves
// [first, last] (REQUIRES first <= last < leaf_count), give its root: the
// sibling of every node on their paths that is not itself on one. Sorted.
std::vector<std::size_t> NeededTreeNodes(std::uint64_t leaf_count, std::uint64_t first, std::uint64_t last);

// The share ranges that hold `nodes` of a block hash tree at
// `tree_offset`, adjacent nodes (and nodes at most `gap` bytes apart)
// joined into one range.
std::vector<ByteRange> TreeNodeRanges(std::uint64_t tree_offset, const std::vector<std::size_t>& nodes,
                                      std::uint64_t gap);

// Fills in every node of a tree of `width` padded leaves (a power of two)
// that `nodes` (which must hold the leaves of interest and the siblings
// NeededTreeNodes names) determines, up to the root, and returns the root.
// InvalidArgument if a node needed is missing.
Result<std::string> CompleteTree(std::size_t width, TreeNodes& nodes);

// The share hash chain at `range` of a share's first bytes `head`.
// InvalidArgument if the head does not hold it or it is ragged.
Result<TreeNodes> ParseShareHashChain(std::string_view head, const ByteRange& range);

// The salts and blocks of segments first .. first + blocks.size() - 1 of one share.
struct SegmentBlocks {
  std::uint64_t first = 0;
  std::vector<std::string> salts;
  std::vector<std::string> blocks;
};

// Where the salts and blocks of segments [first, last] lie in a share of
// this geometry: one range.
ByteRange SegmentRange(const MdmfGeometry& g, std::uint64_t first, std::uint64_t last);

// Splits the bytes read at SegmentRange(g, first, last).
// InvalidArgument if they are not exactly that long.
Result<SegmentBlocks> SplitSegments(const MdmfGeometry& g, std::uint64_t first, std::uint64_t last,
                                    std::string_view bytes);

// Checks the segments of share `shnum` of the version `header` describes
// (already signature-checked): each block hash (over salt ‖ block), with
// `tree` (the NeededTreeNodes of the block hash tree) to the block tree's
// root, and that root with `chain` to the signed root hash. Integrity on a
// mismatch; InvalidArgument if a node is missing.
Status VerifySegments(const ShareHeader& header, std::uint32_t shnum, const TreeNodes& chain, TreeNodes tree,
                      const SegmentBlocks& segments);

// The plaintext of the segments that k verified shares (share number ->
// their blocks of the same segments) hold, with the file's readkey.
// InvalidArgument if fewer than k or the ranges differ.
Result<std::string> DecodeSegments(const ShareHeader& header, const std::map<std::uint32_t, const SegmentBlocks*>& shares,
                                   std::string_view readkey);

// Segments [first, first + count) of a new version, encrypted under fresh
// salts and erasure-coded: share i's salts and blocks in shares[i], and
// the block hash of each (leaves[i][s - first]).
struct EncodedSegments {
  std::vector<SegmentBlocks> shares;
  std::vector<std::vector<std::string>> leaves;
};
// `plaintext` is the segments' contents, each segment g.segsize bytes but
// the file's last, which is shorter. InvalidArgument unless it fits.
Result<EncodedSegments> EncodeSegments(const MdmfGeometry& g, std::uint32_t k, std::uint32_t n, std::uint64_t first,
                                       std::string_view plaintext, std::string_view readkey);

}  // namespace cairn::mutable_files
