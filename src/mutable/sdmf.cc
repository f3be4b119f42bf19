// SDMF shares (see the header and tahoe-protocol.md 3.6).
#include "cairn/mutable/sdmf.h"

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

std::string SignedPrefix(std::uint64_t seqnum, std::string_view root, std::string_view iv, std::uint32_t k,
                         std::uint32_t n, std::uint64_t segsize, std::uint64_t datalen) {
  std::string p;
  p.push_back('\0');  // version 0: SDMF
  PutBe(p, seqnum, 8);
  p += root;
  p += iv;
  p.push_back(static_cast<char>(k));
  p.push_back(static_cast<char>(n));
  PutBe(p, segsize, 8);
  PutBe(p, datalen, 8);
  return p;
}

}  // namespace

Result<SdmfEncoding> SdmfEncoding::Encode(std::string_view readkey, std::string_view pubkey_spki_der,
                                          std::string encprivkey, std::string_view plaintext, std::uint32_t k,
                                          std::uint32_t n, std::uint64_t seqnum, std::string iv) {
  CAIRN_TRY_ASSIGN(SdmfEncoding e, EncodeBlocks(readkey, pubkey_spki_der, std::move(encprivkey), plaintext, k, n,
                                                seqnum, std::move(iv)));
  e.HashBlocks(0, n);
  e.Seal();
  return e;
}

Result<SdmfEncoding> SdmfEncoding::EncodeBlocks(std::string_view readkey, std::string_view pubkey_spki_der,
                                                std::string encprivkey, std::string_view plaintext, std::uint32_t k,
                                                std::uint32_t n, std::uint64_t seqnum, std::string iv) {
  if (k < 1 || n < k || n > 255) return Status::InvalidArgument("SDMF needs 1 <= k <= N <= 255");
  if (iv.size() != kSaltSize) return Status::InvalidArgument("the IV is 16 bytes");
  SdmfEncoding e;
  e.n_ = n;
  e.k_ = k;
  e.seqnum_ = seqnum;
  e.pubkey_ = std::string(pubkey_spki_der);
  e.encprivkey_ = std::move(encprivkey);
  e.datalen_ = plaintext.size();
  e.segsize_ = (e.datalen_ + k - 1) / k * k;
  e.blocks_.assign(n, std::string());
  e.block_roots_.assign(n, std::string());
  if (e.datalen_ > 0) {
    CAIRN_TRY_ASSIGN(std::string ct, crypto::AesCtrTransform(caps::DataKeyOf(iv, readkey), plaintext));
    ct.resize(static_cast<std::size_t>(e.segsize_), '\0');
    const std::size_t piece = static_cast<std::size_t>(e.segsize_ / k);
    CAIRN_TRY_ASSIGN(fec::Codec codec, fec::Codec::Create(static_cast<int>(k), static_cast<int>(n)));
    std::vector<const std::uint8_t*> pieces(k);
    for (std::uint32_t i = 0; i < k; ++i) pieces[i] = reinterpret_cast<const std::uint8_t*>(ct.data()) + i * piece;
    std::vector<int> nums(n);
    std::vector<std::uint8_t*> outs(n);
    for (std::uint32_t i = 0; i < n; ++i) {
      nums[i] = static_cast<int>(i);
      e.blocks_[i].assign(piece, '\0');
      outs[i] = reinterpret_cast<std::uint8_t*>(e.blocks_[i].data());
    }
    CAIRN_TRY(codec.Encode(pieces, piece, nums, outs));
  }
  e.iv_ = std::move(iv);
  return e;
}

// One segment: each share's block hash tree is its one block hash (the
// empty-leaf hash for an empty file).
void SdmfEncoding::HashBlocks(std::uint32_t from, std::uint32_t to) {
  for (std::uint32_t i = from; i < to && i < n_; ++i) {
    block_roots_[i] = datalen_ > 0 ? crypto::TaggedHash(crypto::tags::kBlock, blocks_[i]) : crypto::EmptyLeafHash(0);
  }
}

// The share hash tree over the block roots, each share's chain, the prefix.
void SdmfEncoding::Seal() {
  crypto::HashTree share_tree(block_roots_);
  root_hash_ = share_tree.Root();
  chains_.clear();
  for (std::uint32_t i = 0; i < n_; ++i) {
    std::map<std::size_t, std::string> chain;
    for (std::size_t idx : share_tree.NeededHashes(i, /*include_leaf=*/false)) chain[idx] = share_tree.Node(idx);
    chains_.push_back(std::move(chain));
  }
  prefix_ = SignedPrefix(seqnum_, root_hash_, iv_, k_, n_, segsize_, datalen_);
}

Result<std::vector<std::string>> SdmfEncoding::Shares(std::string_view signature) const {
  if (signature.size() != crypto::kRsaSignatureSize) return Status::InvalidArgument("an RSA-2048 signature is 256 bytes");
  std::vector<std::string> shares(n_);
  LayOut(0, n_, &shares);
  for (std::string& s : shares) CAIRN_TRY(SetSignature(s, signature));
  return shares;
}

void SdmfEncoding::LayOut(std::uint32_t from, std::uint32_t to, std::vector<std::string>* out) const {
  for (std::uint32_t i = from; i < to && i < n_; ++i) {
    const std::uint64_t o_sig = kSdmfHeaderSize + pubkey_.size();
    const std::uint64_t o_chain = o_sig + crypto::kRsaSignatureSize;
    const std::uint64_t o_bht = o_chain + chains_[i].size() * (2 + crypto::kHashSize);
    const std::uint64_t o_data = o_bht + crypto::kHashSize;
    const std::uint64_t o_encpriv = o_data + blocks_[i].size();
    const std::uint64_t o_eof = o_encpriv + encprivkey_.size();
    std::string s;
    s.reserve(static_cast<std::size_t>(o_eof));  // one allocation: growing a 350 KB share by appends copied it ~4 times
    s += prefix_;
    PutBe(s, o_sig, 4);
    PutBe(s, o_chain, 4);
    PutBe(s, o_bht, 4);
    PutBe(s, o_data, 4);
    PutBe(s, o_encpriv, 8);
    PutBe(s, o_eof, 8);
    s += pubkey_;
    s.append(crypto::kRsaSignatureSize, '\0');  // SetSignature
    for (const auto& [idx, hash] : chains_[i]) {  // sorted by node index
      PutBe(s, idx, 2);
      s += hash;
    }
    s += block_roots_[i];
    s += blocks_[i];
    s += encprivkey_;
    CAIRN_CHECK(s.size() == o_eof, "SDMF share length disagrees with its offsets");
    (*out)[i] = std::move(s);
  }
}

Status SdmfEncoding::SetSignature(std::string& share, std::string_view signature) {
  if (signature.size() != crypto::kRsaSignatureSize) return Status::InvalidArgument("an RSA-2048 signature is 256 bytes");
  if (share.size() < kSdmfHeaderSize) return Status::InvalidArgument("an SDMF share is at least 107 bytes");
  const std::uint64_t o_sig = GetBe(share, 75, 4);
  if (o_sig + signature.size() > share.size()) return Status::InvalidArgument("the signature lies past the share");
  share.replace(static_cast<std::size_t>(o_sig), signature.size(), signature);
  return Status::Ok();
}

// The one parser of the SDMF header: fields, offsets, and every check the
// header alone allows (the share's length is checked by ParseSdmfShare).
Result<ShareHeader> ParseSdmfHeader(std::string_view b) {
  if (b.size() < kSdmfHeaderSize) return Status::InvalidArgument("an SDMF share is at least 107 bytes");
  if (b[0] != 0) return Status::InvalidArgument("not an SDMF share (version byte " + std::to_string(+static_cast<std::uint8_t>(b[0])) + ")");
  ShareHeader h;
  h.format = caps::MutableFormat::kSdmf;
  h.seqnum = GetBe(b, 1, 8);
  h.root_hash = std::string(b.substr(9, 32));
  h.iv = std::string(b.substr(41, 16));
  h.k = static_cast<std::uint8_t>(b[57]);
  h.n = static_cast<std::uint8_t>(b[58]);
  h.segment_size = GetBe(b, 59, 8);
  h.data_length = GetBe(b, 67, 8);
  h.num_segments = 1;
  h.signed_prefix = std::string(b.substr(0, kSdmfSignedPrefixSize));
  h.checkstring = std::string(b.substr(0, kSdmfCheckstringSize));
  const std::uint64_t o_sig = GetBe(b, 75, 4), o_chain = GetBe(b, 79, 4), o_bht = GetBe(b, 83, 4),
                      o_data = GetBe(b, 87, 4), o_encpriv = GetBe(b, 91, 8), o_eof = GetBe(b, 99, 8);
  if (!(kSdmfHeaderSize <= o_sig && o_sig + crypto::kRsaSignatureSize == o_chain && o_chain <= o_bht &&
        o_bht + crypto::kHashSize == o_data && o_data <= o_encpriv && o_encpriv <= o_eof)) {
    return Status::InvalidArgument("SDMF share offsets are out of order or past its end");
  }
  if ((o_bht - o_chain) % (2 + crypto::kHashSize) != 0) return Status::InvalidArgument("SDMF share hash chain is ragged");
  if (h.k < 1 || h.n < h.k) return Status::InvalidArgument("SDMF share has k/N out of range");
  h.verification_key = {kSdmfHeaderSize, o_sig - kSdmfHeaderSize};
  h.signature = {o_sig, o_chain - o_sig};
  h.share_hash_chain = {o_chain, o_bht - o_chain};
  h.block_hash_tree = {o_bht, o_data - o_bht};
  h.share_data = {o_data, o_encpriv - o_data};
  h.encprivkey = {o_encpriv, o_eof - o_encpriv};
  h.eof = o_eof;
  return h;
}

namespace {

std::string Sub(std::string_view b, ByteRange r) {
  return std::string(b.substr(static_cast<std::size_t>(r.offset), static_cast<std::size_t>(r.length)));
}

std::map<std::size_t, std::string> ChainOf(std::string_view b, ByteRange r) {
  std::map<std::size_t, std::string> chain;
  for (std::uint64_t at = r.offset; at < r.end(); at += 2 + crypto::kHashSize) {
    chain[static_cast<std::size_t>(GetBe(b, static_cast<std::size_t>(at), 2))] = Sub(b, {at + 2, crypto::kHashSize});
  }
  return chain;
}

// The checks of VerifySdmfShare, over the parts of either share type.
Status VerifySdmfParts(std::uint32_t shnum, std::string_view fingerprint, const std::string& pubkey,
                       const std::string& signed_prefix, const std::string& signature, std::uint64_t data_length,
                       const std::string& block, const std::string& block_hash, std::uint32_t n,
                       const std::string& root_hash, const std::map<std::size_t, std::string>& share_hash_chain) {
  if (caps::FingerprintOf(pubkey) != fingerprint) {
    return Status::Integrity("share " + std::to_string(shnum) + ": its public key is not the cap's");
  }
  CAIRN_TRY_ASSIGN(crypto::RsaKey pub, crypto::RsaKey::ParsePublicDer(pubkey));
  Status sig = pub.Verify(signed_prefix, signature);
  if (!sig.ok()) return Status::Integrity("share " + std::to_string(shnum) + ": bad signature");
  std::string leaf = data_length > 0 ? crypto::TaggedHash(crypto::tags::kBlock, block) : crypto::EmptyLeafHash(0);
  if (leaf != block_hash) return Status::Integrity("share " + std::to_string(shnum) + ": block hash mismatch");
  if (shnum >= n) return Status::Integrity("share number " + std::to_string(shnum) + " is not below N");
  Status chain = crypto::VerifyHashTreeLeaf(root_hash, n, shnum, leaf, share_hash_chain);
  if (!chain.ok()) return Status::Integrity("share " + std::to_string(shnum) + ": " + std::string(chain.message()));
  return Status::Ok();
}

// One share's part in a decode: its signed prefix and its one block.
struct DecodePart {
  const std::string* signed_prefix;
  const std::string* block;
};

// DecodeSdmf over the parts of either share type; `first` is the header of
// the lowest-numbered share.
Result<std::string> DecodeSdmfParts(const std::map<std::uint32_t, DecodePart>& shares, std::uint32_t k,
                                    std::uint32_t n, std::uint64_t segment_size, std::uint64_t data_length,
                                    const std::string& iv, std::string_view readkey) {
  if (shares.empty()) return Status::InvalidArgument("no shares");
  if (shares.size() < k) {
    return Status::InvalidArgument("need " + std::to_string(k) + " shares, have " + std::to_string(shares.size()));
  }
  const std::string& prefix = *shares.begin()->second.signed_prefix;
  for (const auto& [num, s] : shares) {
    if (*s.signed_prefix != prefix) return Status::InvalidArgument("the shares are of different versions");
  }
  if (data_length == 0) return std::string();
  const std::size_t piece = static_cast<std::size_t>(segment_size / k);
  // A signed header may claim any length: one past the segment would be
  // allocated below (up to 2^64 bytes).
  if (data_length > piece * k) return Status::Integrity("the data length is past the end of the segment");
  std::vector<const std::uint8_t*> blocks;
  std::vector<int> nums;
  for (const auto& [num, s] : shares) {
    if (blocks.size() == k) break;
    if (s.block->size() != piece) return Status::Integrity("share " + std::to_string(num) + " has a block of the wrong size");
    blocks.push_back(reinterpret_cast<const std::uint8_t*>(s.block->data()));
    nums.push_back(static_cast<int>(num));
  }
  CAIRN_TRY_ASSIGN(fec::Codec codec, fec::Codec::Create(static_cast<int>(k), static_cast<int>(n)));
  std::string ct(piece * k, '\0');
  std::vector<std::uint8_t*> outs(k);
  for (std::uint32_t i = 0; i < k; ++i) outs[i] = reinterpret_cast<std::uint8_t*>(ct.data()) + i * piece;
  CAIRN_TRY(codec.Decode(blocks, nums, piece, outs));
  ct.resize(static_cast<std::size_t>(data_length));
  return crypto::AesCtrTransform(caps::DataKeyOf(iv, readkey), ct);
}

}  // namespace

Result<SdmfShare> ParseSdmfShare(std::string_view b) {
  CAIRN_TRY_ASSIGN(ShareHeader h, ParseSdmfHeader(b));
  if (h.eof > b.size()) return Status::InvalidArgument("SDMF share offsets are out of order or past its end");
  SdmfShare s;
  s.seqnum = h.seqnum;
  s.root_hash = std::move(h.root_hash);
  s.iv = std::move(h.iv);
  s.k = h.k;
  s.n = h.n;
  s.segment_size = h.segment_size;
  s.data_length = h.data_length;
  s.signed_prefix = std::move(h.signed_prefix);
  s.pubkey = Sub(b, h.verification_key);
  s.signature = Sub(b, h.signature);
  s.share_hash_chain = ChainOf(b, h.share_hash_chain);
  s.block_hash = Sub(b, h.block_hash_tree);
  s.block = Sub(b, h.share_data);
  s.encprivkey = Sub(b, h.encprivkey);
  return s;
}

Status VerifySdmfShare(const SdmfShare& s, std::uint32_t shnum, std::string_view fingerprint) {
  return VerifySdmfParts(shnum, fingerprint, s.pubkey, s.signed_prefix, s.signature, s.data_length, s.block,
                         s.block_hash, s.n, s.root_hash, s.share_hash_chain);
}

Result<std::string> DecodeSdmf(const std::map<std::uint32_t, const SdmfShare*>& shares, std::string_view readkey) {
  if (shares.empty()) return Status::InvalidArgument("no shares");
  std::map<std::uint32_t, DecodePart> parts;
  for (const auto& [num, s] : shares) parts[num] = DecodePart{&s->signed_prefix, &s->block};
  const SdmfShare& first = *shares.begin()->second;
  return DecodeSdmfParts(parts, first.k, first.n, first.segment_size, first.data_length, first.iv, readkey);
}

namespace {

// SdmfEncoding behind the encoder interface.
class SdmfEncoder final : public ShareEncoder {
 public:
  explicit SdmfEncoder(SdmfEncoding enc) : enc_(std::move(enc)) {}
  std::uint32_t n() const override { return enc_.n(); }
  void HashBlocks(std::uint32_t from, std::uint32_t to) override { enc_.HashBlocks(from, to); }
  void Seal() override { enc_.Seal(); }
  const std::string& signed_prefix() const override { return enc_.signed_prefix(); }
  void LayOut(std::uint32_t from, std::uint32_t to, std::vector<std::string>* out) const override {
    enc_.LayOut(from, to, out);
  }
  Status SetSignature(std::string& share, std::string_view signature) const override {
    return SdmfEncoding::SetSignature(share, signature);
  }

 private:
  SdmfEncoding enc_;
};

class SdmfShareFormat final : public ShareFormat {
 public:
  caps::MutableFormat format() const override { return caps::MutableFormat::kSdmf; }
  const char* name() const override { return "SDMF"; }
  std::size_t header_size() const override { return kSdmfHeaderSize; }
  std::size_t signed_prefix_size() const override { return kSdmfSignedPrefixSize; }
  std::size_t checkstring_size() const override { return kSdmfCheckstringSize; }

  Result<ShareHeader> ParseHeader(std::string_view bytes) const override { return ParseSdmfHeader(bytes); }

  Result<MutableShare> ParseShare(std::string_view b) const override {
    CAIRN_TRY_ASSIGN(ShareHeader h, ParseSdmfHeader(b));
    if (h.eof > b.size()) return Status::InvalidArgument("SDMF share offsets are out of order or past its end");
    MutableShare s;
    s.verification_key = Sub(b, h.verification_key);
    s.signature = Sub(b, h.signature);
    s.share_hash_chain = ChainOf(b, h.share_hash_chain);
    s.block_hash_tree.push_back(Sub(b, h.block_hash_tree));
    s.blocks.push_back(Sub(b, h.share_data));
    s.encprivkey = Sub(b, h.encprivkey);
    s.header = std::move(h);
    return s;
  }

  Status VerifyShare(const MutableShare& s, std::uint32_t shnum, std::string_view fingerprint) const override {
    if (s.blocks.size() != 1 || s.block_hash_tree.size() != 1) {
      return Status::Integrity("share " + std::to_string(shnum) + ": an SDMF share has one block");
    }
    const ShareHeader& h = s.header;
    return VerifySdmfParts(shnum, fingerprint, s.verification_key, h.signed_prefix, s.signature, h.data_length,
                           s.blocks[0], s.block_hash_tree[0], h.n, h.root_hash, s.share_hash_chain);
  }

  Result<std::string> Decode(const std::map<std::uint32_t, const MutableShare*>& shares,
                             std::string_view readkey) const override {
    if (shares.empty()) return Status::InvalidArgument("no shares");
    std::map<std::uint32_t, DecodePart> parts;
    for (const auto& [num, s] : shares) {
      if (s->blocks.size() != 1) return Status::InvalidArgument("an SDMF share has one block");
      parts[num] = DecodePart{&s->header.signed_prefix, &s->blocks[0]};
    }
    const ShareHeader& first = shares.begin()->second->header;
    return DecodeSdmfParts(parts, first.k, first.n, first.segment_size, first.data_length, first.iv, readkey);
  }

  Result<std::unique_ptr<ShareEncoder>> NewEncoder(EncodeParams p) const override {
    if (p.iv.empty()) {
      CAIRN_TRY_ASSIGN(p.iv, crypto::RandomBytes(kSaltSize));
    }
    CAIRN_TRY_ASSIGN(SdmfEncoding enc, SdmfEncoding::EncodeBlocks(p.readkey, p.pubkey_spki_der, std::move(p.encprivkey),
                                                                 p.plaintext, p.k, p.n, p.seqnum, std::move(p.iv)));
    return std::unique_ptr<ShareEncoder>(std::make_unique<SdmfEncoder>(std::move(enc)));
  }
};

}  // namespace

const ShareFormat& SdmfFormat() {
  static const SdmfShareFormat format;
  return format;
}

}  // namespace cairn::mutable_files
