// Tahoe-LAFS Merkle hash trees (see the header).
#include "cairn/crypto/hash_tree.h"

#include <utility>

#include "cairn/crypto/hash.h"
#include "cairn/crypto/tags.h"

namespace cairn::crypto {
namespace {

std::size_t Sibling(std::size_t i) { return (i % 2 == 1) ? i + 1 : i - 1; }
std::size_t Parent(std::size_t i) { return (i - 1) / 2; }

}  // namespace

std::string EmptyLeafHash(std::size_t position) {
  return TaggedHash(tags::kMerkleEmptyLeaf, std::to_string(position));
}

std::string InternalNodeHash(std::string_view left, std::string_view right) {
  return TaggedPairHash(tags::kMerkleInternalNode, left, right);
}

std::size_t HashTreeWidth(std::size_t leaf_count) {
  std::size_t p = 1;
  while (p < leaf_count) p *= 2;
  return p;
}

HashTree::HashTree(std::vector<std::string> leaves) : leaf_count_(leaves.size()) {
  const std::size_t p = HashTreeWidth(leaves.size());
  nodes_.resize(2 * p - 1);
  for (std::size_t i = 0; i < p; ++i) {
    nodes_[p - 1 + i] = i < leaves.size() ? std::move(leaves[i]) : EmptyLeafHash(i);
  }
  for (std::size_t i = p - 1; i-- > 0;) nodes_[i] = InternalNodeHash(nodes_[2 * i + 1], nodes_[2 * i + 2]);
}

std::vector<std::size_t> HashTreeNeededHashes(std::size_t leaf_count, std::size_t leaf, bool include_leaf) {
  std::size_t i = HashTreeWidth(leaf_count) - 1 + leaf;
  std::vector<std::size_t> needed;
  if (include_leaf) needed.push_back(i);
  for (; i != 0; i = Parent(i)) needed.push_back(Sibling(i));
  return needed;
}

std::vector<std::size_t> HashTree::NeededHashes(std::size_t leaf, bool include_leaf) const {
  return HashTreeNeededHashes(leaf_count_, leaf, include_leaf);
}

std::string HashTree::Flatten() const {
  std::string out;
  out.reserve(nodes_.size() * kHashSize);
  for (const std::string& n : nodes_) out += n;
  return out;
}

Status VerifyHashTreeLeaf(std::string_view root, std::size_t leaf_count, std::size_t leaf,
                          std::string_view leaf_hash, const std::map<std::size_t, std::string>& hashes) {
  const std::size_t width = HashTreeWidth(leaf_count);
  if (leaf >= width) {
    return Status::InvalidArgument("leaf " + std::to_string(leaf) + " is outside a tree of " +
                                   std::to_string(width) + " leaves");
  }
  std::string h(leaf_hash);
  for (std::size_t i = width - 1 + leaf; i != 0; i = Parent(i)) {
    auto it = hashes.find(Sibling(i));
    if (it == hashes.end()) {
      return Status::InvalidArgument("hash chain lacks node " + std::to_string(Sibling(i)));
    }
    h = (i % 2 == 1) ? InternalNodeHash(h, it->second) : InternalNodeHash(it->second, h);
  }
  if (h != root) return Status::Integrity("hash chain for leaf " + std::to_string(leaf) + " does not reach the root");
  return Status::Ok();
}

}  // namespace cairn::crypto
