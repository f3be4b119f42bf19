// SDMF mutable-file shares exactly as Tahoe-LAFS lays them out
// (tahoe-protocol.md 3.6, 3.8): one segment, AES-CTR under the data key of a
// random IV, zfec into N blocks, a one-leaf block hash tree per share, the
// share hash tree over the N block-tree roots, and a signed 75-byte prefix.
//
// Building is split around the signature so that the slow RSA step runs
// where the caller chooses (off the loop): Encode, sign signed_prefix(),
// then Shares(signature). Reading parses a share, verifies it against the
// cap's fingerprint (public key, signature, block hash and share hash chain
// up to the signed root) and decodes k verified shares to the plaintext.
// Encode can also run in steps spread over threads (EncodeBlocks, then
// HashBlocks over disjoint share ranges at once, then Seal; LayOut of
// disjoint ranges at once, the signature set afterwards). Otherwise
// self-contained values: one thread at a time. SdmfFormat()
// (share_format.h) offers the same behind the format interface.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/caps/keys.h"
#include "cairn/core/status.h"
#include "cairn/mutable/share_format.h"

namespace cairn::mutable_files {

inline constexpr std::size_t kSdmfHeaderSize = 107;
inline constexpr std::size_t kSdmfSignedPrefixSize = 75;
inline constexpr std::size_t kSdmfCheckstringSize = 57;
inline constexpr std::size_t kSaltSize = 16;

class SdmfEncoding {
 public:
  // `encprivkey` is the private key as stored (CryptPrivateKey of the exact
  // PKCS#8 bytes); `iv` 16 random bytes. InvalidArgument unless
  // 1 <= k <= N <= 255.
  static Result<SdmfEncoding> Encode(std::string_view readkey, std::string_view pubkey_spki_der,
                                     std::string encprivkey, std::string_view plaintext, std::uint32_t k,
                                     std::uint32_t n, std::uint64_t seqnum, std::string iv);

  // Encode in steps: encrypt and FEC-encode (as Encode's arguments), then
  // HashBlocks for every share (ranges that do not overlap may be hashed on
  // several threads at once), then Seal (the share hash tree and prefix).
  static Result<SdmfEncoding> EncodeBlocks(std::string_view readkey, std::string_view pubkey_spki_der,
                                           std::string encprivkey, std::string_view plaintext, std::uint32_t k,
                                           std::uint32_t n, std::uint64_t seqnum, std::string iv);
  void HashBlocks(std::uint32_t from, std::uint32_t to);
  void Seal();
  // Shares [from, to) into (*out)[from, to) (out has n() entries) with a
  // zero signature; disjoint ranges may be laid out at once. SetSignature
  // then writes the real one into each.
  void LayOut(std::uint32_t from, std::uint32_t to, std::vector<std::string>* out) const;
  static Status SetSignature(std::string& share, std::string_view signature);

  // The 75 bytes to sign (version, seqnum, root hash, IV, k, N, segment
  // size, data length).
  const std::string& signed_prefix() const { return prefix_; }
  const std::string& root_hash() const { return root_hash_; }
  std::uint32_t n() const { return n_; }
  // Every share, share i at index i. REQUIRES: a 256-byte signature.
  Result<std::vector<std::string>> Shares(std::string_view signature) const;

 private:
  SdmfEncoding() = default;
  std::uint32_t n_ = 0, k_ = 0;
  std::uint64_t seqnum_ = 0, segsize_ = 0, datalen_ = 0;
  std::string iv_;
  std::string prefix_;
  std::string root_hash_;
  std::string pubkey_;
  std::string encprivkey_;
  std::vector<std::string> blocks_;                            // per share
  std::vector<std::string> block_roots_;                       // per share (the one block hash)
  std::vector<std::map<std::size_t, std::string>> chains_;     // per share: node index -> hash
};

struct SdmfShare {
  std::uint64_t seqnum = 0;
  std::string root_hash;  // 32
  std::string iv;         // 16
  std::uint32_t k = 0;
  std::uint32_t n = 0;
  std::uint64_t segment_size = 0;
  std::uint64_t data_length = 0;
  std::string pubkey;     // SPKI DER
  std::string signature;  // 256
  std::map<std::size_t, std::string> share_hash_chain;
  std::string block_hash;  // the one-node block hash tree
  std::string block;
  std::string encprivkey;
  std::string signed_prefix;  // bytes [0, 75)
};

// Parses the 107-byte header (the one place it is parsed: ParseSdmfShare
// and SdmfFormat() use it): every field and range, each offset checked
// against the others; `bytes` may end before the share does.
// InvalidArgument (naming the field) on a short or garbled header.
Result<ShareHeader> ParseSdmfHeader(std::string_view bytes);

// Parses the byte layout; InvalidArgument (naming the field) on a
// malformed or truncated share or another version.
Result<SdmfShare> ParseSdmfShare(std::string_view bytes);

// Checks share `shnum` against the file's public-key fingerprint: the
// public key's fingerprint, the RSA-PSS signature over the prefix, the block
// hash, and the share hash chain up to the signed root. Integrity on any
// mismatch.
Status VerifySdmfShare(const SdmfShare& share, std::uint32_t shnum, std::string_view fingerprint);

// The plaintext from k verified shares of one version (share number ->
// share), with the file's readkey. InvalidArgument if fewer than k or the
// shares disagree on the version.
Result<std::string> DecodeSdmf(const std::map<std::uint32_t, const SdmfShare*>& shares, std::string_view readkey);

}  // namespace cairn::mutable_files
