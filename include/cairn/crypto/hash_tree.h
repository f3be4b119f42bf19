// Merkle hash trees exactly as Tahoe-LAFS builds them (tahoe-protocol.md 0.1):
// the leaf row is padded to a power of two P with
// tagged_hash("Merkle tree empty leaf", "<decimal position>"); an interior
// node is tagged_pair_hash("Merkle tree internal node", left, right); nodes
// are numbered breadth-first (0 is the root, the children of i are 2i+1 and
// 2i+2, the leaves are P-1 .. 2P-2). One leaf is its own root; no leaves give
// the one empty-leaf node. Self-contained values: any thread.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::crypto {

class HashTree {
 public:
  // `leaves` are 32-byte hashes.
  explicit HashTree(std::vector<std::string> leaves);

  const std::string& Root() const { return nodes_[0]; }
  std::size_t NodeCount() const { return nodes_.size(); }  // 2P - 1
  std::size_t LeafCount() const { return leaf_count_; }     // as given, before padding
  const std::string& Node(std::size_t index) const { return nodes_[index]; }
  // Node index of leaf `leaf` (P - 1 + leaf).
  std::size_t LeafIndex(std::size_t leaf) const { return nodes_.size() / 2 + leaf; }

  // The node indices a reader needs to check leaf `leaf` against the root:
  // the sibling of every node from the leaf up to, not including, the root,
  // leaf level first; with `include_leaf` the leaf's own node comes first
  // (immutable share hash chains carry it, mutable ones do not).
  std::vector<std::size_t> NeededHashes(std::size_t leaf, bool include_leaf) const;

  // All nodes concatenated in index order: the flattened form stored in shares.
  std::string Flatten() const;

 private:
  std::vector<std::string> nodes_;
  std::size_t leaf_count_;
};

// The number of padded leaves for `leaf_count` leaves (1 for 0 and 1).
std::size_t HashTreeWidth(std::size_t leaf_count);

// The node indices NeededHashes gives for a tree with `leaf_count` leaves.
std::vector<std::size_t> HashTreeNeededHashes(std::size_t leaf_count, std::size_t leaf, bool include_leaf);

// Checks that `leaf_hash` is leaf `leaf` of the tree with `leaf_count`
// leaves whose root is `root`, from `hashes` (node index -> 32-byte hash)
// holding at least the siblings NeededHashes names. Integrity error if not,
// InvalidArgument if a needed hash is missing or the leaf is out of range.
Status VerifyHashTreeLeaf(std::string_view root, std::size_t leaf_count, std::size_t leaf,
                          std::string_view leaf_hash, const std::map<std::size_t, std::string>& hashes);

// tagged_hash("Merkle tree empty leaf", decimal(position)).
std::string EmptyLeafHash(std::size_t position);
// tagged_pair_hash("Merkle tree internal node", left, right).
std::string InternalNodeHash(std::string_view left, std::string_view right);

}  // namespace cairn::crypto
