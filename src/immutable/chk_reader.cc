// Reading CHK shares (see the header).
#include "cairn/immutable/chk_reader.h"

#include <algorithm>

#include "cairn/core/endian.h"
#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/tags.h"
#include "cairn/fec/fec.h"

namespace cairn::immutable {
namespace {

bool ParseDecimal(std::string_view s, std::uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// The flattened tree as nodes; InvalidArgument unless a whole number of hashes.
Result<std::vector<std::string>> Nodes(std::string_view flat, std::size_t want) {
  if (flat.size() != want * crypto::kHashSize) {
    return Status::InvalidArgument("a hash tree of " + std::to_string(want) + " nodes is " +
                                   std::to_string(want * crypto::kHashSize) + " bytes, not " + std::to_string(flat.size()));
  }
  std::vector<std::string> out;
  for (std::size_t i = 0; i < want; ++i) out.emplace_back(flat.substr(i * crypto::kHashSize, crypto::kHashSize));
  return out;
}

// Integrity unless `nodes` is the full tree over its own leaves.
Status CheckTree(const std::vector<std::string>& nodes, std::size_t leaf_count, std::string_view root, const char* what) {
  const std::size_t width = crypto::HashTreeWidth(leaf_count);
  for (std::size_t i = width - 1; i-- > 0;) {
    if (crypto::InternalNodeHash(nodes[2 * i + 1], nodes[2 * i + 2]) != nodes[i]) {
      return Status::Integrity(std::string(what) + ": node " + std::to_string(i) + " does not match its children");
    }
  }
  for (std::size_t i = leaf_count; i < width; ++i) {
    if (nodes[width - 1 + i] != crypto::EmptyLeafHash(i)) return Status::Integrity(std::string(what) + ": bad padding leaf");
  }
  if (nodes[0] != root) return Status::Integrity(std::string(what) + ": root mismatch");
  return Status::Ok();
}

}  // namespace

Result<ChkShareHeader> ParseChkShareHeader(std::string_view b) {
  if (b.size() < 4) return Status::InvalidArgument("a CHK share header is at least 36 bytes");
  ChkShareHeader h;
  h.version = static_cast<std::uint32_t>(GetBe(b, 0, 4));
  int w;
  if (h.version == 1) {
    w = 4;
  } else if (h.version == 2) {
    w = 8;
  } else {
    return Status::InvalidArgument("unknown CHK share version " + std::to_string(h.version));
  }
  const std::size_t need = 4 + 8 * static_cast<std::size_t>(w);
  if (b.size() < need) return Status::InvalidArgument("truncated CHK share header");
  std::uint64_t f[8];
  for (int i = 0; i < 8; ++i) f[i] = GetBe(b, 4 + static_cast<std::size_t>(i * w), w);
  h.block_size = f[0];
  h.data_size = f[1];
  h.o_data = f[2];
  h.o_plaintext_hash_tree = f[3];
  h.o_crypttext_hash_tree = f[4];
  h.o_block_hashes = f[5];
  h.o_share_hashes = f[6];
  h.o_uri_extension = f[7];
  if (!(h.o_data == need && h.o_data + h.data_size == h.o_plaintext_hash_tree &&
        h.o_plaintext_hash_tree <= h.o_crypttext_hash_tree && h.o_crypttext_hash_tree <= h.o_block_hashes &&
        h.o_block_hashes <= h.o_share_hashes && h.o_share_hashes <= h.o_uri_extension)) {
    return Status::InvalidArgument("CHK share offsets are out of order");
  }
  return h;
}

Result<ChkUeb> ParseChkUeb(std::string_view ueb, const caps::Cap& cap) {
  if (ueb.size() >= 2000) return Status::InvalidArgument("a URI extension block is under 2000 bytes");
  if (crypto::TaggedHash(crypto::tags::kUriExtension, ueb) != cap.digest) {
    return Status::Integrity("the URI extension block does not hash to the cap's");
  }
  std::map<std::string, std::string> fields;
  std::string_view rest = ueb;
  while (!rest.empty()) {
    std::size_t colon = rest.find(':');
    if (colon == std::string_view::npos) return Status::InvalidArgument("malformed URI extension block");
    std::string key(rest.substr(0, colon));
    rest.remove_prefix(colon + 1);
    std::size_t len_end = rest.find(':');
    std::uint64_t len = 0;
    if (len_end == std::string_view::npos || !ParseDecimal(rest.substr(0, len_end), &len) ||
        rest.size() < len_end + 1 + len + 1 || rest[len_end + 1 + len] != ',') {
      return Status::InvalidArgument("malformed URI extension block field " + key);
    }
    fields[key] = std::string(rest.substr(len_end + 1, len));
    rest.remove_prefix(len_end + 2 + len);
  }
  ChkUeb u;
  auto num = [&](const char* key, std::uint64_t* out) -> Status {
    auto it = fields.find(key);
    if (it == fields.end() || !ParseDecimal(it->second, out)) {
      return Status::InvalidArgument(std::string("URI extension block lacks a number for ") + key);
    }
    return Status::Ok();
  };
  auto hash = [&](const char* key, std::string* out) -> Status {
    auto it = fields.find(key);
    if (it == fields.end() || it->second.size() != crypto::kHashSize) {
      return Status::InvalidArgument(std::string("URI extension block lacks the hash ") + key);
    }
    *out = it->second;
    return Status::Ok();
  };
  std::uint64_t k = 0, n = 0;
  CAIRN_TRY(num("segment_size", &u.segment_size));
  CAIRN_TRY(num("num_segments", &u.num_segments));
  CAIRN_TRY(num("size", &u.size));
  CAIRN_TRY(num("needed_shares", &k));
  CAIRN_TRY(num("total_shares", &n));
  CAIRN_TRY(hash("crypttext_hash", &u.crypttext_hash));
  CAIRN_TRY(hash("crypttext_root_hash", &u.crypttext_root_hash));
  CAIRN_TRY(hash("share_root_hash", &u.share_root_hash));
  u.k = static_cast<std::uint32_t>(k);
  u.n = static_cast<std::uint32_t>(n);
  if (u.k != cap.k || u.n != cap.n || u.size != cap.size) {
    return Status::Integrity("the URI extension block disagrees with the cap's k, N or size");
  }
  if (u.segment_size == 0 || u.segment_size % k != 0 ||
      u.num_segments != u.size / u.segment_size + (u.size % u.segment_size != 0)) {
    return Status::InvalidArgument("the URI extension block's segment geometry is inconsistent");
  }
  // A block hash tree over more segments would not fit a share's 64-bit
  // offsets (and computing its width would not end).
  if (u.num_segments > std::uint64_t{1} << 58) {
    return Status::InvalidArgument("the URI extension block has more segments than a hash tree can hold");
  }
  const std::uint64_t tail = u.size - (u.num_segments - 1) * u.segment_size;
  u.tail_padded_size = (tail + k - 1) / k * k;
  return u;
}

struct ChkReader::State {
  caps::Cap cap;
  ChkUeb ueb;
  fec::Codec codec;
  std::map<std::uint32_t, std::vector<std::string>> block_trees;  // accepted shares' trees
  std::vector<std::string> crypttext_tree;                         // once accepted
  explicit State(fec::Codec c) : codec(std::move(c)) {}
};

ChkReader::ChkReader(std::unique_ptr<State> s) : s_(std::move(s)) {}
ChkReader::~ChkReader() = default;
ChkReader::ChkReader(ChkReader&&) noexcept = default;
ChkReader& ChkReader::operator=(ChkReader&&) noexcept = default;

Result<ChkReader> ChkReader::Create(const caps::Cap& cap, std::string_view ueb) {
  if (cap.kind != caps::CapKind::kChk) return Status::BadCap("not a CHK read cap");
  CAIRN_TRY_ASSIGN(ChkUeb u, ParseChkUeb(ueb, cap));
  CAIRN_TRY_ASSIGN(fec::Codec codec, fec::Codec::Create(static_cast<int>(u.k), static_cast<int>(u.n)));
  auto s = std::make_unique<State>(std::move(codec));
  s->cap = cap;
  s->ueb = u;
  return ChkReader(std::move(s));
}

const ChkUeb& ChkReader::ueb() const { return s_->ueb; }

std::uint64_t ChkReader::BlockSize(std::uint64_t seg) const {
  const ChkUeb& u = s_->ueb;
  return (seg + 1 == u.num_segments ? u.tail_padded_size : u.segment_size) / u.k;
}

Status ChkReader::AcceptShareHashes(std::uint32_t shnum, std::string_view block_hash_tree,
                                    std::string_view share_hashes) {
  const ChkUeb& u = s_->ueb;
  if (shnum >= u.n) return Status::InvalidArgument("share number " + std::to_string(shnum) + " is not below N");
  const std::size_t nodes = 2 * crypto::HashTreeWidth(u.num_segments) - 1;
  CAIRN_TRY_ASSIGN(std::vector<std::string> tree, Nodes(block_hash_tree, nodes));
  // The tree must be internally consistent; its root is checked by the chain.
  CAIRN_TRY(CheckTree(tree, u.num_segments, tree[0], "block hash tree"));
  if (share_hashes.size() % (2 + crypto::kHashSize) != 0) return Status::InvalidArgument("ragged share hash chain");
  std::map<std::size_t, std::string> chain;
  for (std::size_t at = 0; at < share_hashes.size(); at += 2 + crypto::kHashSize) {
    chain[static_cast<std::size_t>(GetBe(share_hashes, at, 2))] = std::string(share_hashes.substr(at + 2, crypto::kHashSize));
  }
  // Immutable chains carry the share's own leaf: it must be this tree's root.
  const std::size_t leaf_index = crypto::HashTreeWidth(u.n) - 1 + shnum;
  auto own = chain.find(leaf_index);
  if (own != chain.end() && own->second != tree[0]) return Status::Integrity("share hash chain names another block tree");
  Status st = crypto::VerifyHashTreeLeaf(u.share_root_hash, u.n, shnum, tree[0], chain);
  if (!st.ok()) return Status::Integrity("share " + std::to_string(shnum) + ": " + std::string(st.message()));
  s_->block_trees[shnum] = std::move(tree);
  return Status::Ok();
}

Status ChkReader::AcceptCrypttextTree(std::string_view flat) {
  const ChkUeb& u = s_->ueb;
  CAIRN_TRY_ASSIGN(std::vector<std::string> tree, Nodes(flat, 2 * crypto::HashTreeWidth(u.num_segments) - 1));
  CAIRN_TRY(CheckTree(tree, u.num_segments, u.crypttext_root_hash, "crypttext hash tree"));
  s_->crypttext_tree = std::move(tree);
  return Status::Ok();
}

Result<const std::string*> ChkReader::ExpectedBlockHash(std::uint32_t shnum, std::uint64_t seg,
                                                        std::string_view block) const {
  auto it = s_->block_trees.find(shnum);
  if (it == s_->block_trees.end()) return Status::FailedPrecondition("share " + std::to_string(shnum) + "'s hashes not accepted");
  if (seg >= s_->ueb.num_segments || block.size() != BlockSize(seg)) {
    return Status::Integrity("share " + std::to_string(shnum) + " block " + std::to_string(seg) + " has the wrong size");
  }
  return &it->second[crypto::HashTreeWidth(s_->ueb.num_segments) - 1 + static_cast<std::size_t>(seg)];
}

Status ChkReader::VerifyBlock(std::uint32_t shnum, std::uint64_t seg, std::string_view block) const {
  CAIRN_TRY_ASSIGN(const std::string* want, ExpectedBlockHash(shnum, seg, block));
  if (crypto::TaggedHash(crypto::tags::kBlock, block) != *want) {
    return Status::Integrity("share " + std::to_string(shnum) + " block " + std::to_string(seg) + " is corrupt");
  }
  return Status::Ok();
}

Status ChkReader::VerifyBlocks(std::uint64_t seg, const std::map<std::uint32_t, std::string>& blocks,
                               std::uint32_t* bad) const {
  std::vector<const std::string*> want;
  std::vector<std::string_view> values;
  for (const auto& [shnum, block] : blocks) {
    Result<const std::string*> w = ExpectedBlockHash(shnum, seg, block);
    if (!w.ok()) {
      *bad = shnum;
      return w.status();
    }
    want.push_back(*w);
    values.push_back(block);
  }
  std::vector<std::string> got = crypto::TaggedHashes(crypto::tags::kBlock, values);
  std::size_t i = 0;
  for (const auto& [shnum, block] : blocks) {
    if (got[i] != *want[i]) {
      *bad = shnum;
      return Status::Integrity("share " + std::to_string(shnum) + " block " + std::to_string(seg) + " is corrupt");
    }
    ++i;
  }
  return Status::Ok();
}

Result<std::string> ChkReader::DecodeSegment(std::uint64_t seg, const std::map<std::uint32_t, std::string>& blocks) const {
  const ChkUeb& u = s_->ueb;
  if (s_->crypttext_tree.empty()) return Status::FailedPrecondition("the crypttext hash tree is not accepted");
  if (blocks.size() < u.k) return Status::InvalidArgument("need " + std::to_string(u.k) + " blocks");
  const std::size_t piece = static_cast<std::size_t>(BlockSize(seg));
  std::vector<const std::uint8_t*> in;
  std::vector<int> nums;
  for (const auto& [num, block] : blocks) {
    if (in.size() == u.k) break;
    if (block.size() != piece) return Status::InvalidArgument("a block of the wrong size");
    in.push_back(reinterpret_cast<const std::uint8_t*>(block.data()));
    nums.push_back(static_cast<int>(num));
  }
  std::string ct(piece * u.k, '\0');
  std::vector<std::uint8_t*> outs(u.k);
  for (std::uint32_t i = 0; i < u.k; ++i) outs[i] = reinterpret_cast<std::uint8_t*>(ct.data()) + i * piece;
  CAIRN_TRY(s_->codec.Decode(in, nums, piece, outs));
  const bool tail = seg + 1 == u.num_segments;
  ct.resize(static_cast<std::size_t>(tail ? u.size - seg * u.segment_size : u.segment_size));
  const std::size_t leaf = crypto::HashTreeWidth(u.num_segments) - 1 + static_cast<std::size_t>(seg);
  if (crypto::TaggedHash(crypto::tags::kCrypttextSegment, ct) != s_->crypttext_tree[leaf]) {
    return Status::Integrity("segment " + std::to_string(seg) + " does not match its crypttext hash");
  }
  CAIRN_TRY_ASSIGN(crypto::AesCtr aes, crypto::AesCtr::Create(s_->cap.key));
  aes.Seek(seg * u.segment_size);
  aes.Apply(ct);
  return ct;
}

}  // namespace cairn::immutable
