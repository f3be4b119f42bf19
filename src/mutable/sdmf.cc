// SDMF shares (see the header and tahoe-protocol.md 3.6).
#include "cairn/mutable/sdmf.h"

#include <algorithm>

#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/hash.h"
#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/rsa.h"
#include "cairn/crypto/tags.h"
#include "cairn/fec/fec.h"

namespace cairn::mutable_files {
namespace {

void PutBe(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

std::uint64_t GetBe(std::string_view in, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[at + static_cast<std::size_t>(i)]);
  return v;
}

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

Result<SdmfShare> ParseSdmfShare(std::string_view b) {
  if (b.size() < kSdmfHeaderSize) return Status::InvalidArgument("an SDMF share is at least 107 bytes");
  if (b[0] != 0) return Status::InvalidArgument("not an SDMF share (version byte " + std::to_string(+static_cast<std::uint8_t>(b[0])) + ")");
  SdmfShare s;
  s.seqnum = GetBe(b, 1, 8);
  s.root_hash = std::string(b.substr(9, 32));
  s.iv = std::string(b.substr(41, 16));
  s.k = static_cast<std::uint8_t>(b[57]);
  s.n = static_cast<std::uint8_t>(b[58]);
  s.segment_size = GetBe(b, 59, 8);
  s.data_length = GetBe(b, 67, 8);
  s.signed_prefix = std::string(b.substr(0, kSdmfSignedPrefixSize));
  const std::uint64_t o_sig = GetBe(b, 75, 4), o_chain = GetBe(b, 79, 4), o_bht = GetBe(b, 83, 4),
                      o_data = GetBe(b, 87, 4), o_encpriv = GetBe(b, 91, 8), o_eof = GetBe(b, 99, 8);
  if (!(kSdmfHeaderSize <= o_sig && o_sig + crypto::kRsaSignatureSize == o_chain && o_chain <= o_bht &&
        o_bht + crypto::kHashSize == o_data && o_data <= o_encpriv && o_encpriv <= o_eof && o_eof <= b.size())) {
    return Status::InvalidArgument("SDMF share offsets are out of order or past its end");
  }
  if ((o_bht - o_chain) % (2 + crypto::kHashSize) != 0) return Status::InvalidArgument("SDMF share hash chain is ragged");
  if (s.k < 1 || s.n < s.k) return Status::InvalidArgument("SDMF share has k/N out of range");
  auto sub = [&](std::uint64_t from, std::uint64_t to) {
    return std::string(b.substr(static_cast<std::size_t>(from), static_cast<std::size_t>(to - from)));
  };
  s.pubkey = sub(kSdmfHeaderSize, o_sig);
  s.signature = sub(o_sig, o_chain);
  for (std::uint64_t at = o_chain; at < o_bht; at += 2 + crypto::kHashSize) {
    s.share_hash_chain[static_cast<std::size_t>(GetBe(b, static_cast<std::size_t>(at), 2))] = sub(at + 2, at + 2 + crypto::kHashSize);
  }
  s.block_hash = sub(o_bht, o_data);
  s.block = sub(o_data, o_encpriv);
  s.encprivkey = sub(o_encpriv, o_eof);
  return s;
}

Status VerifySdmfShare(const SdmfShare& s, std::uint32_t shnum, std::string_view fingerprint) {
  if (caps::FingerprintOf(s.pubkey) != fingerprint) {
    return Status::Integrity("share " + std::to_string(shnum) + ": its public key is not the cap's");
  }
  CAIRN_TRY_ASSIGN(crypto::RsaKey pub, crypto::RsaKey::ParsePublicDer(s.pubkey));
  Status sig = pub.Verify(s.signed_prefix, s.signature);
  if (!sig.ok()) return Status::Integrity("share " + std::to_string(shnum) + ": bad signature");
  std::string leaf = s.data_length > 0 ? crypto::TaggedHash(crypto::tags::kBlock, s.block) : crypto::EmptyLeafHash(0);
  if (leaf != s.block_hash) return Status::Integrity("share " + std::to_string(shnum) + ": block hash mismatch");
  if (shnum >= s.n) return Status::Integrity("share number " + std::to_string(shnum) + " is not below N");
  Status chain = crypto::VerifyHashTreeLeaf(s.root_hash, s.n, shnum, leaf, s.share_hash_chain);
  if (!chain.ok()) return Status::Integrity("share " + std::to_string(shnum) + ": " + std::string(chain.message()));
  return Status::Ok();
}

Result<std::string> DecodeSdmf(const std::map<std::uint32_t, const SdmfShare*>& shares, std::string_view readkey) {
  if (shares.empty()) return Status::InvalidArgument("no shares");
  const SdmfShare& first = *shares.begin()->second;
  if (shares.size() < first.k) {
    return Status::InvalidArgument("need " + std::to_string(first.k) + " shares, have " + std::to_string(shares.size()));
  }
  for (const auto& [num, s] : shares) {
    if (s->signed_prefix != first.signed_prefix) return Status::InvalidArgument("the shares are of different versions");
  }
  if (first.data_length == 0) return std::string();
  const std::size_t piece = static_cast<std::size_t>(first.segment_size / first.k);
  if (first.data_length > piece * first.k) return Status::Integrity("the data length is past the end of the segment");
  std::vector<const std::uint8_t*> blocks;
  std::vector<int> nums;
  for (const auto& [num, s] : shares) {
    if (blocks.size() == first.k) break;
    if (s->block.size() != piece) return Status::Integrity("share " + std::to_string(num) + " has a block of the wrong size");
    blocks.push_back(reinterpret_cast<const std::uint8_t*>(s->block.data()));
    nums.push_back(static_cast<int>(num));
  }
  CAIRN_TRY_ASSIGN(fec::Codec codec, fec::Codec::Create(static_cast<int>(first.k), static_cast<int>(first.n)));
  std::string ct(piece * first.k, '\0');
  std::vector<std::uint8_t*> outs(first.k);
  for (std::uint32_t i = 0; i < first.k; ++i) outs[i] = reinterpret_cast<std::uint8_t*>(ct.data()) + i * piece;
  CAIRN_TRY(codec.Decode(blocks, nums, piece, outs));
  ct.resize(static_cast<std::size_t>(first.data_length));
  return crypto::AesCtrTransform(caps::DataKeyOf(first.iv, readkey), ct);
}

}  // namespace cairn::mutable_files
