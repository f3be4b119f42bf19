// Tahoe-LAFS key derivations (see the header for the map).
#include "cairn/caps/keys.h"

#include "cairn/crypto/aes_ctr.h"
#include "cairn/crypto/tags.h"

namespace cairn::caps {

using crypto::TaggedHash;
using crypto::TaggedPairHash;
namespace tags = crypto::tags;

std::string ReadKeyOf(std::string_view writekey) { return TaggedHash(tags::kReadKey, writekey, kKeySize); }

std::string MutableStorageIndexOf(std::string_view readkey) {
  return TaggedHash(tags::kMutableStorageIndex, readkey, kKeySize);
}

std::string FingerprintOf(std::string_view pubkey_spki_der) {
  return TaggedHash(tags::kPubkeyFingerprint, pubkey_spki_der);
}

MutableKeys DeriveMutableKeys(std::string_view privkey_pkcs8_der, std::string_view pubkey_spki_der) {
  MutableKeys keys;
  keys.writekey = TaggedHash(tags::kWriteKey, privkey_pkcs8_der, kKeySize);
  keys.readkey = ReadKeyOf(keys.writekey);
  keys.storage_index = MutableStorageIndexOf(keys.readkey);
  keys.fingerprint = FingerprintOf(pubkey_spki_der);
  keys.write_enabler_master = TaggedHash(tags::kWriteEnablerMaster, keys.writekey);
  return keys;
}

std::string WriteEnablerOf(std::string_view write_enabler_master, std::string_view server_seed) {
  return TaggedPairHash(tags::kWriteEnabler, write_enabler_master, server_seed);
}

std::string DataKeyOf(std::string_view salt, std::string_view readkey) {
  return TaggedPairHash(tags::kDataKey, salt, readkey, kKeySize);
}

std::string CryptPrivateKey(std::string_view writekey, std::string_view key_bytes) {
  auto out = crypto::AesCtrTransform(writekey, key_bytes);
  CAIRN_CHECK(out.ok(), "a writekey is always 16 bytes");
  return std::move(out).value();
}

Cap MutableWriteCap(const MutableKeys& keys, MutableFormat format) {
  Cap cap;
  cap.kind = CapKind::kMutableWrite;
  cap.format = format;
  cap.key = keys.writekey;
  cap.digest = keys.fingerprint;
  return cap;
}

namespace {

std::string ConvergenceTag(std::string_view convergence, std::uint32_t k, std::uint32_t n,
                           std::uint64_t segment_size) {
  std::string params = std::to_string(k) + "," + std::to_string(n) + "," + std::to_string(segment_size);
  return std::string(tags::kConvergentKeyPrefix) + crypto::Netstring(convergence) + crypto::Netstring(params);
}

}  // namespace

ConvergentKeyHasher::ConvergentKeyHasher(std::string_view convergence, std::uint32_t k, std::uint32_t n,
                                         std::uint64_t segment_size)
    : hasher_(ConvergenceTag(convergence, k, n, segment_size)) {}

std::string ChkStorageIndexOf(std::string_view key) {
  return TaggedHash(tags::kImmutableStorageIndex, key, kKeySize);
}

std::uint64_t ChkSegmentSize(std::uint64_t file_size, std::uint64_t max_segment_size, std::uint32_t k) {
  std::uint64_t s = file_size < max_segment_size ? file_size : max_segment_size;
  return (s + k - 1) / k * k;
}

LeaseSecrets LeaseSecretsFor(std::string_view client_secret, std::string_view storage_index,
                             std::string_view server_seed) {
  // The first step hashes the constant under the client's secret as the tag:
  // the roles are swapped on purpose in Tahoe (tahoe-protocol.md 2.3).
  std::string client_renew = TaggedHash(client_secret, tags::kClientRenewal);
  std::string client_cancel = TaggedHash(client_secret, tags::kClientCancel);
  std::string file_renew = TaggedPairHash(tags::kFileRenewal, client_renew, storage_index);
  std::string file_cancel = TaggedPairHash(tags::kFileCancel, client_cancel, storage_index);
  return LeaseSecrets{TaggedPairHash(tags::kBucketRenewal, file_renew, server_seed),
                      TaggedPairHash(tags::kBucketCancel, file_cancel, server_seed)};
}

}  // namespace cairn::caps
