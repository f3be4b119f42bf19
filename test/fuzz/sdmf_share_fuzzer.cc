// libFuzzer target: any bytes as one mutable share as a server returns it.
// Version byte 0: the SDMF header parser (what the servermap reads through
// the format interface) and the full SDMF share parser, which must agree on
// what both accept; version byte 1: the MDMF
// share parser. Then the share's public key through the DER parser, and
// decoding from k copies of the share (a writer can sign any header, so
// the decoders must hold for every header a share can carry; the RSA
// signature check itself is left out, as it would only slow the target).
// Checks the field sizes of an accepted share and that a decoded file has
// the share's data length. Single-threaded.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "cairn/crypto/hash_tree.h"
#include "cairn/crypto/rsa.h"
#include "cairn/mutable/mdmf.h"
#include "cairn/mutable/sdmf.h"
#include "cairn/mutable/share_format.h"

namespace {

namespace mf = cairn::mutable_files;

const std::string kReadKey(16, '\x33');

void CheckPublicKey(std::string_view der) {
  cairn::Result<cairn::crypto::RsaKey> key = cairn::crypto::RsaKey::ParsePublicDer(der);
  if (!key.ok()) return;
  if (!cairn::crypto::RsaKey::ParsePublicDer(key->PublicSpkiDer()).ok()) __builtin_trap();
}

// k copies of one share under the numbers 0..k-1 (all below N).
template <typename Share>
std::map<std::uint32_t, const Share*> Copies(const Share& s) {
  std::map<std::uint32_t, const Share*> shares;
  for (std::uint32_t i = 0; i < s.k; ++i) shares[i] = &s;
  return shares;
}

void Sdmf(std::string_view bytes) {
  cairn::Result<mf::ShareHeader> header = mf::ParseSdmfHeader(bytes);
  cairn::Result<mf::SdmfShare> share = mf::ParseSdmfShare(bytes);
  if (!share.ok()) return;
  const mf::SdmfShare& s = *share;
  // What the full parser accepts, the servermap's header parser reads the same way.
  if (!header.ok() || header->seqnum != s.seqnum || header->k != s.k || header->n != s.n ||
      header->signed_prefix != s.signed_prefix || header->checkstring != s.signed_prefix.substr(0, mf::kSdmfCheckstringSize)) {
    __builtin_trap();
  }
  if (s.k < 1 || s.n < s.k || s.n > 255 || s.root_hash.size() != 32 || s.iv.size() != 16 ||
      s.signature.size() != cairn::crypto::kRsaSignatureSize || s.block_hash.size() != 32 ||
      s.signed_prefix.size() != mf::kSdmfSignedPrefixSize) {
    __builtin_trap();
  }
  for (const auto& [index, hash] : s.share_hash_chain) {
    if (hash.size() != 32) __builtin_trap();
  }
  CheckPublicKey(s.pubkey);
  cairn::Result<std::string> plain = mf::DecodeSdmf(Copies(s), kReadKey);
  if (plain.ok() && plain->size() != s.data_length) __builtin_trap();
}

void Mdmf(std::string_view bytes) {
  cairn::Result<mf::MdmfShare> share = mf::ParseMdmfShare(bytes);
  if (!share.ok()) return;
  const mf::MdmfShare& s = *share;
  if (s.k < 1 || s.n < s.k || s.segment_size != mf::MdmfSegmentSize(s.k) || s.signature.size() != 256 ||
      s.signed_prefix.size() != mf::kMdmfSignedPrefixSize || s.salts.size() != s.blocks.size()) {
    __builtin_trap();
  }
  if (s.block_hash_tree.size() != 2 * cairn::crypto::HashTreeWidth(s.num_segments()) - 1) __builtin_trap();
  for (const std::string& salt : s.salts) {
    if (salt.size() != 16) __builtin_trap();
  }
  // The segments hold the data length: whole blocks, and a tail of at least a byte.
  using u128 = unsigned __int128;
  const std::uint64_t segments = s.num_segments();
  if (static_cast<u128>(segments) * s.segment_size < s.data_length) __builtin_trap();
  if (segments == 0 ? s.data_length != 0 : static_cast<u128>(segments - 1) * s.segment_size >= s.data_length) {
    __builtin_trap();
  }
  CheckPublicKey(s.pubkey);
  cairn::Result<std::string> plain = mf::DecodeMdmf(Copies(s), kReadKey);
  if (plain.ok() && plain->size() != s.data_length) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (bytes.empty()) return 0;
  if (bytes[0] == 0) Sdmf(bytes);
  if (bytes[0] == 1) Mdmf(bytes);
  return 0;
}
