// MDMF shares (see the header and tahoe-protocol.md 3.7).
#include "cairn/mutable/mdmf.h"

#include <algorithm>

#include "cairn/core/endian.h"
#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/random.h"
#include "cairn/crypto/rsa.h"
#include "cairn/crypto/tags.h"
#include "cairn/fec/fec.h"

namespace cairn::mutable_files {
namespace {

constexpr std::size_t kSalt = 16;
constexpr std::size_t kOffsetsAt = 59;

using Geometry = MdmfGeometry;

Geometry GeometryOf(std::uint64_t datalen, std::uint32_t k) { return MdmfGeometryOf(datalen, k); }

std::string BlockHash(std::string_view salt, std::string_view block) {
  std::string v(salt);
  v += block;
  return crypto::TaggedHash(crypto::tags::kBlock, v);
}

}  // namespace

std::uint64_t MdmfSegmentSize(std::uint32_t k) { return (kMdmfMaxSegmentSize + k - 1) / k * k; }

std::string MdmfSignedPrefix(std::uint64_t seqnum, std::string_view root, std::uint32_t k, std::uint32_t n,
                             std::uint64_t segsize, std::uint64_t data_length) {
  std::string p;
  p.push_back('\1');  // version 1: MDMF
  PutBe(p, seqnum, 8);
  p += root;
  p.push_back(static_cast<char>(k));
  p.push_back(static_cast<char>(n));
  PutBe(p, segsize, 8);
  PutBe(p, data_length, 8);
  return p;
}

MdmfGeometry MdmfGeometryOf(std::uint64_t datalen, std::uint32_t k) {
  MdmfGeometry g;
  g.data_length = datalen;
  g.segsize = MdmfSegmentSize(k);
  g.num_segments = datalen / g.segsize + (datalen % g.segsize != 0);
  g.tail_size = datalen == 0 ? 0 : datalen - (g.num_segments - 1) * g.segsize;
  g.block_size = g.segsize / k;
  g.tail_block_size = (g.tail_size + k - 1) / k;
  return g;
}

std::uint64_t MdmfGeometry::SegmentLength(std::uint64_t s) const {
  return s + 1 == num_segments ? tail_size : segsize;
}

std::uint64_t MdmfGeometry::BlockSize(std::uint64_t s) const {
  return s + 1 == num_segments ? tail_block_size : block_size;
}

std::uint64_t MdmfGeometry::SegmentOffset(std::uint64_t s) const {
  return kMdmfShareDataOffset + s * (kSalt + block_size);
}

std::uint64_t MdmfGeometry::BlockHashTreeOffset() const {
  return num_segments == 0 ? kMdmfShareDataOffset : SegmentOffset(num_segments - 1) + kSalt + tail_block_size;
}

std::uint64_t MdmfGeometry::BlockHashTreeNodes() const { return 2 * crypto::HashTreeWidth(num_segments) - 1; }

std::string MdmfBlockHash(std::string_view salt, std::string_view block) { return BlockHash(salt, block); }

std::uint64_t MdmfShare::num_segments() const { return blocks.size(); }

Result<MdmfEncoding> MdmfEncoding::Encode(std::string_view readkey, std::string_view pubkey_spki_der,
                                          std::string encprivkey, std::string_view plaintext, std::uint32_t k,
                                          std::uint32_t n, std::uint64_t seqnum) {
  if (k < 1 || n < k || n > 255) return Status::InvalidArgument("MDMF needs 1 <= k <= N <= 255");
  MdmfEncoding e;
  e.n_ = n;
  e.pubkey_ = std::string(pubkey_spki_der);
  e.encprivkey_ = std::move(encprivkey);
  const Geometry g = GeometryOf(plaintext.size(), k);
  CAIRN_TRY_ASSIGN(fec::Codec codec, fec::Codec::Create(static_cast<int>(k), static_cast<int>(n)));
  e.share_data_.assign(n, std::string());
  std::vector<std::vector<std::string>> block_hashes(n);
  for (std::uint64_t s = 0; s < g.num_segments; ++s) {
    const bool tail = s + 1 == g.num_segments;
    const std::size_t piece = static_cast<std::size_t>(tail ? g.tail_block_size : g.block_size);
    std::string_view seg = plaintext.substr(static_cast<std::size_t>(s * g.segsize),
                                            static_cast<std::size_t>(tail ? g.tail_size : g.segsize));
    CAIRN_TRY_ASSIGN(std::string salt, crypto::RandomBytes(kSalt));
    CAIRN_TRY_ASSIGN(std::string ct, crypto::AesCtrTransform(caps::DataKeyOf(salt, readkey), seg));
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
      block_hashes[i].push_back(BlockHash(salt, blocks[i]));
      e.share_data_[i] += salt;
      e.share_data_[i] += blocks[i];
    }
  }
  std::vector<std::string> roots;
  for (std::uint32_t i = 0; i < n; ++i) {
    crypto::HashTree tree(std::move(block_hashes[i]));
    e.block_trees_.push_back(tree.Flatten());
    roots.push_back(tree.Root());
  }
  crypto::HashTree share_tree(std::move(roots));
  e.root_hash_ = share_tree.Root();
  for (std::uint32_t i = 0; i < n; ++i) {
    std::map<std::size_t, std::string> chain;
    for (std::size_t idx : share_tree.NeededHashes(i, /*include_leaf=*/false)) chain[idx] = share_tree.Node(idx);
    e.chains_.push_back(std::move(chain));
  }
  e.prefix_ = MdmfSignedPrefix(seqnum, e.root_hash_, k, n, g.segsize, plaintext.size());
  return e;
}

Result<std::vector<std::string>> MdmfEncoding::Shares(std::string_view signature) const {
  if (signature.size() != crypto::kRsaSignatureSize) return Status::InvalidArgument("an RSA-2048 signature is 256 bytes");
  std::vector<std::string> shares;
  for (std::uint32_t i = 0; i < n_; ++i) {
    CAIRN_TRY_ASSIGN(std::string s, ShareAt(i, signature));
    shares.push_back(std::move(s));
  }
  return shares;
}

Result<std::string> MdmfEncoding::ShareAt(std::uint32_t i, std::string_view signature) const {
  const std::uint64_t o_chain = kMdmfPrivateKeyOffset + encprivkey_.size();
  const std::uint64_t o_sig = o_chain + chains_[i].size() * (2 + crypto::kHashSize);
  const std::uint64_t o_vk = o_sig + signature.size();
  const std::uint64_t o_vk_end = o_vk + pubkey_.size();
  const std::uint64_t o_bht = kMdmfShareDataOffset + share_data_[i].size();
  const std::uint64_t o_eof = o_bht + block_trees_[i].size();
  if (o_vk_end > kMdmfShareDataOffset) return Status::Internal("MDMF header fields overflow their reservation");
  std::string s = prefix_;
  for (std::uint64_t o : {kMdmfPrivateKeyOffset, o_chain, o_sig, o_vk, o_vk_end, kMdmfShareDataOffset, o_bht, o_eof}) {
    PutBe(s, o, 8);
  }
  s += encprivkey_;
  for (const auto& [idx, hash] : chains_[i]) {
    PutBe(s, idx, 2);
    s += hash;
  }
  s += signature;
  s += pubkey_;
  s.resize(static_cast<std::size_t>(kMdmfShareDataOffset), '\0');  // the reserved space reads as zeros
  s += share_data_[i];
  s += block_trees_[i];
  CAIRN_CHECK(s.size() == o_eof, "MDMF share length disagrees with its offsets");
  return s;
}

// The one parser of the MDMF header: fields, offsets, and every check the
// header alone allows (the share's length is checked by ParseMdmfShare).
Result<ShareHeader> ParseMdmfHeader(std::string_view b) {
  if (b.size() < kOffsetsAt + 64) return Status::InvalidArgument("an MDMF share is at least 123 bytes");
  if (b[0] != 1) return Status::InvalidArgument("not an MDMF share (version byte " + std::to_string(+static_cast<std::uint8_t>(b[0])) + ")");
  ShareHeader h;
  h.format = caps::MutableFormat::kMdmf;
  h.seqnum = GetBe(b, 1, 8);
  h.root_hash = std::string(b.substr(9, 32));
  h.k = static_cast<std::uint8_t>(b[41]);
  h.n = static_cast<std::uint8_t>(b[42]);
  h.segment_size = GetBe(b, 43, 8);
  h.data_length = GetBe(b, 51, 8);
  h.signed_prefix = std::string(b.substr(0, kMdmfSignedPrefixSize));
  h.checkstring = std::string(b.substr(0, kMdmfCheckstringSize));
  std::uint64_t o[8];
  for (int i = 0; i < 8; ++i) o[i] = GetBe(b, kOffsetsAt + static_cast<std::size_t>(i) * 8, 8);
  const std::uint64_t o_priv = o[0], o_chain = o[1], o_sig = o[2], o_vk = o[3], o_vk_end = o[4], o_data = o[5],
                      o_bht = o[6], o_eof = o[7];
  if (!(o_priv == kMdmfPrivateKeyOffset && o_priv <= o_chain && o_chain <= o_sig &&
        o_sig + crypto::kRsaSignatureSize == o_vk && o_vk <= o_vk_end && o_vk_end <= o_data && o_data <= o_bht &&
        o_bht <= o_eof)) {
    return Status::InvalidArgument("MDMF share offsets are out of order or past its end");
  }
  if ((o_sig - o_chain) % (2 + crypto::kHashSize) != 0 || (o_eof - o_bht) % crypto::kHashSize != 0) {
    return Status::InvalidArgument("MDMF share hash areas are ragged");
  }
  if (h.k < 1 || h.n < h.k || h.segment_size != MdmfSegmentSize(h.k)) {
    return Status::InvalidArgument("MDMF share has k/N or a segment size out of range");
  }
  h.num_segments = GeometryOf(h.data_length, h.k).num_segments;
  h.encprivkey = {o_priv, o_chain - o_priv};
  h.share_hash_chain = {o_chain, o_sig - o_chain};
  h.signature = {o_sig, o_vk - o_sig};
  h.verification_key = {o_vk, o_vk_end - o_vk};
  h.share_data = {o_data, o_bht - o_data};
  h.block_hash_tree = {o_bht, o_eof - o_bht};
  h.eof = o_eof;
  return h;
}

Result<MdmfShare> ParseMdmfShare(std::string_view b) {
  CAIRN_TRY_ASSIGN(const ShareHeader h, ParseMdmfHeader(b));
  if (h.eof > b.size()) return Status::InvalidArgument("MDMF share offsets are out of order or past its end");
  MdmfShare s;
  s.seqnum = h.seqnum;
  s.root_hash = h.root_hash;
  s.k = h.k;
  s.n = h.n;
  s.segment_size = h.segment_size;
  s.data_length = h.data_length;
  s.signed_prefix = h.signed_prefix;
  auto sub = [&](std::uint64_t from, std::uint64_t to) {
    return std::string(b.substr(static_cast<std::size_t>(from), static_cast<std::size_t>(to - from)));
  };
  s.encprivkey = sub(h.encprivkey.offset, h.encprivkey.end());
  for (std::uint64_t at = h.share_hash_chain.offset; at < h.share_hash_chain.end(); at += 2 + crypto::kHashSize) {
    s.share_hash_chain[static_cast<std::size_t>(GetBe(b, static_cast<std::size_t>(at), 2))] = sub(at + 2, at + 2 + crypto::kHashSize);
  }
  s.signature = sub(h.signature.offset, h.signature.end());
  s.pubkey = sub(h.verification_key.offset, h.verification_key.end());
  const Geometry g = GeometryOf(s.data_length, s.k);
  const std::uint64_t o_bht = h.block_hash_tree.offset, o_eof = h.eof;
  std::uint64_t at = h.share_data.offset;
  for (std::uint64_t seg = 0; seg < g.num_segments; ++seg) {
    const std::uint64_t len = seg + 1 == g.num_segments ? g.tail_block_size : g.block_size;
    if (at + kSalt + len > o_bht) return Status::InvalidArgument("MDMF share data is shorter than its segments");
    s.salts.push_back(sub(at, at + kSalt));
    s.blocks.push_back(sub(at + kSalt, at + kSalt + len));
    at += kSalt + len;
  }
  if (at != o_bht) return Status::InvalidArgument("MDMF share data is longer than its segments");
  for (std::uint64_t hh = o_bht; hh < o_eof; hh += crypto::kHashSize) s.block_hash_tree.push_back(sub(hh, hh + crypto::kHashSize));
  if (s.block_hash_tree.size() != 2 * crypto::HashTreeWidth(g.num_segments) - 1) {
    return Status::InvalidArgument("MDMF block hash tree has the wrong number of nodes");
  }
  return s;
}

Status VerifyMdmfShare(const MdmfShare& s, std::uint32_t shnum, std::string_view fingerprint) {
  const std::string who = "share " + std::to_string(shnum) + ": ";
  if (caps::FingerprintOf(s.pubkey) != fingerprint) return Status::Integrity(who + "its public key is not the cap's");
  CAIRN_TRY_ASSIGN(crypto::RsaKey pub, crypto::RsaKey::ParsePublicDer(s.pubkey));
  if (!pub.Verify(s.signed_prefix, s.signature).ok()) return Status::Integrity(who + "bad signature");
  std::vector<std::string> leaves;
  for (std::size_t i = 0; i < s.blocks.size(); ++i) leaves.push_back(BlockHash(s.salts[i], s.blocks[i]));
  crypto::HashTree tree(std::move(leaves));
  for (std::size_t i = 0; i < tree.NodeCount(); ++i) {
    if (tree.Node(i) != s.block_hash_tree[i]) return Status::Integrity(who + "block hash tree mismatch");
  }
  if (shnum >= s.n) return Status::Integrity(who + "not below N");
  Status chain = crypto::VerifyHashTreeLeaf(s.root_hash, s.n, shnum, tree.Root(), s.share_hash_chain);
  if (!chain.ok()) return Status::Integrity(who + std::string(chain.message()));
  return Status::Ok();
}

Result<std::string> DecodeMdmf(const std::map<std::uint32_t, const MdmfShare*>& shares, std::string_view readkey) {
  if (shares.empty()) return Status::InvalidArgument("no shares");
  const MdmfShare& first = *shares.begin()->second;
  if (shares.size() < first.k) {
    return Status::InvalidArgument("need " + std::to_string(first.k) + " shares, have " + std::to_string(shares.size()));
  }
  for (const auto& [num, s] : shares) {
    if (s->signed_prefix != first.signed_prefix) return Status::InvalidArgument("the shares are of different versions");
  }
  const Geometry g = GeometryOf(first.data_length, first.k);
  CAIRN_TRY_ASSIGN(fec::Codec codec, fec::Codec::Create(static_cast<int>(first.k), static_cast<int>(first.n)));
  std::string out;
  out.reserve(static_cast<std::size_t>(first.data_length));
  for (std::uint64_t seg = 0; seg < g.num_segments; ++seg) {
    const bool tail = seg + 1 == g.num_segments;
    const std::size_t piece = static_cast<std::size_t>(tail ? g.tail_block_size : g.block_size);
    std::vector<const std::uint8_t*> blocks;
    std::vector<int> nums;
    for (const auto& [num, s] : shares) {
      if (blocks.size() == first.k) break;
      blocks.push_back(reinterpret_cast<const std::uint8_t*>(s->blocks[seg].data()));
      nums.push_back(static_cast<int>(num));
    }
    std::string ct(piece * first.k, '\0');
    std::vector<std::uint8_t*> outs(first.k);
    for (std::uint32_t i = 0; i < first.k; ++i) outs[i] = reinterpret_cast<std::uint8_t*>(ct.data()) + i * piece;
    CAIRN_TRY(codec.Decode(blocks, nums, piece, outs));
    ct.resize(static_cast<std::size_t>(tail ? g.tail_size : g.segsize));
    CAIRN_TRY_ASSIGN(std::string pt, crypto::AesCtrTransform(caps::DataKeyOf(first.salts[seg], readkey), ct));
    out += pt;
  }
  return out;
}

namespace {

// The generic parts of an MDMF share, and back. MDMF is not yet published
// or retrieved by the operations, so these copy rather than share.
MutableShare ToMutableShare(ShareHeader h, MdmfShare s) {
  MutableShare m;
  m.header = std::move(h);
  m.verification_key = std::move(s.pubkey);
  m.signature = std::move(s.signature);
  m.share_hash_chain = std::move(s.share_hash_chain);
  m.block_hash_tree = std::move(s.block_hash_tree);
  m.salts = std::move(s.salts);
  m.blocks = std::move(s.blocks);
  m.encprivkey = std::move(s.encprivkey);
  return m;
}

MdmfShare ToMdmfShare(const MutableShare& m) {
  MdmfShare s;
  s.seqnum = m.header.seqnum;
  s.root_hash = m.header.root_hash;
  s.k = m.header.k;
  s.n = m.header.n;
  s.segment_size = m.header.segment_size;
  s.data_length = m.header.data_length;
  s.signed_prefix = m.header.signed_prefix;
  s.encprivkey = m.encprivkey;
  s.share_hash_chain = m.share_hash_chain;
  s.signature = m.signature;
  s.pubkey = m.verification_key;
  s.salts = m.salts;
  s.blocks = m.blocks;
  s.block_hash_tree = m.block_hash_tree;
  return s;
}

// MdmfEncoding behind the encoder interface: it encodes and hashes in one
// step, so HashBlocks and Seal have nothing left to do.
class MdmfEncoder final : public ShareEncoder {
 public:
  explicit MdmfEncoder(MdmfEncoding enc, std::uint32_t n) : enc_(std::move(enc)), n_(n) {}
  std::uint32_t n() const override { return n_; }
  void HashBlocks(std::uint32_t, std::uint32_t) override {}
  void Seal() override {}
  const std::string& signed_prefix() const override { return enc_.signed_prefix(); }
  void LayOut(std::uint32_t from, std::uint32_t to, std::vector<std::string>* out) const override {
    const std::string zero(crypto::kRsaSignatureSize, '\0');
    for (std::uint32_t i = from; i < to && i < n_; ++i) {
      auto share = enc_.ShareAt(i, zero);
      if (share.ok()) (*out)[i] = std::move(*share);  // it fails only on a key too large for its reservation
    }
  }
  Status SetSignature(std::string& share, std::string_view signature) const override {
    if (signature.size() != crypto::kRsaSignatureSize) return Status::InvalidArgument("an RSA-2048 signature is 256 bytes");
    if (share.size() < kMdmfPrivateKeyOffset) return Status::InvalidArgument("an MDMF share is at least 123 bytes");
    const std::uint64_t o_sig = GetBe(share, kOffsetsAt + 2 * 8, 8);
    if (o_sig + signature.size() > share.size()) return Status::InvalidArgument("the signature lies past the share");
    share.replace(static_cast<std::size_t>(o_sig), signature.size(), signature);
    return Status::Ok();
  }

 private:
  MdmfEncoding enc_;
  std::uint32_t n_;
};

class MdmfShareFormat final : public ShareFormat {
 public:
  caps::MutableFormat format() const override { return caps::MutableFormat::kMdmf; }
  const char* name() const override { return "MDMF"; }
  std::size_t header_size() const override { return kMdmfPrivateKeyOffset; }
  std::size_t signed_prefix_size() const override { return kMdmfSignedPrefixSize; }
  std::size_t checkstring_size() const override { return kMdmfCheckstringSize; }

  Result<ShareHeader> ParseHeader(std::string_view bytes) const override { return ParseMdmfHeader(bytes); }

  Result<MutableShare> ParseShare(std::string_view bytes) const override {
    CAIRN_TRY_ASSIGN(ShareHeader h, ParseMdmfHeader(bytes));
    CAIRN_TRY_ASSIGN(MdmfShare s, ParseMdmfShare(bytes));
    return ToMutableShare(std::move(h), std::move(s));
  }

  Status VerifyShare(const MutableShare& share, std::uint32_t shnum, std::string_view fingerprint) const override {
    return VerifyMdmfShare(ToMdmfShare(share), shnum, fingerprint);
  }

  Result<std::string> Decode(const std::map<std::uint32_t, const MutableShare*>& shares,
                             std::string_view readkey) const override {
    std::map<std::uint32_t, MdmfShare> owned;
    std::map<std::uint32_t, const MdmfShare*> view;
    for (const auto& [num, s] : shares) view[num] = &(owned[num] = ToMdmfShare(*s));
    return DecodeMdmf(view, readkey);
  }

  Result<std::unique_ptr<ShareEncoder>> NewEncoder(EncodeParams p) const override {
    const std::uint32_t n = p.n;
    CAIRN_TRY_ASSIGN(MdmfEncoding enc, MdmfEncoding::Encode(p.readkey, p.pubkey_spki_der, std::move(p.encprivkey),
                                                           p.plaintext, p.k, p.n, p.seqnum));
    return std::unique_ptr<ShareEncoder>(std::make_unique<MdmfEncoder>(std::move(enc), n));
  }
};

}  // namespace

const ShareFormat& MdmfFormat() {
  static const MdmfShareFormat format;
  return format;
}

}  // namespace cairn::mutable_files
