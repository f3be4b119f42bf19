// The key derivations of Tahoe-LAFS files (tahoe-protocol.md 2.3, 3.3, 5.2),
// each a tagged hash (crypto/tags.h):
//
//   mutable:   writekey = H(privkey PKCS#8 DER)[:16]   readkey = H(writekey)[:16]
//              storage index = H(readkey)[:16]          fingerprint = H(pubkey SPKI DER)
//              write-enabler master = H(writekey)       write enabler = H(master, server seed)
//              data key = H(salt, readkey)[:16]         encprivkey = AES-CTR(writekey, PKCS#8)
//   immutable: key = H(plaintext) under a tag that holds the convergence
//              secret, k, N and the segment size;  storage index = H(key)[:16]
//   leases:    client secret -> client renewal/cancel secret -> file secrets
//              (with the storage index) -> bucket secrets (with the server's seed)
//
// Pure functions and self-contained objects: any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/caps/cap.h"
#include "cairn/core/status.h"
#include "cairn/crypto/hash.h"

namespace cairn::caps {

// ---- mutable files ----------------------------------------------------------

struct MutableKeys {
  std::string writekey;              // 16 bytes
  std::string readkey;               // 16
  std::string storage_index;         // 16
  std::string fingerprint;           // 32
  std::string write_enabler_master;  // 32
};

// From the exact PKCS#8 DER bytes of the private key and the SPKI DER of the
// public key. Never re-encode a key fetched from a share: pass the stored bytes.
MutableKeys DeriveMutableKeys(std::string_view privkey_pkcs8_der, std::string_view pubkey_spki_der);

std::string ReadKeyOf(std::string_view writekey);
std::string MutableStorageIndexOf(std::string_view readkey);
std::string FingerprintOf(std::string_view pubkey_spki_der);
// The write enabler one server gets: `server_seed` is its 20-byte tubid.
std::string WriteEnablerOf(std::string_view write_enabler_master, std::string_view server_seed);
// The AES key of SDMF data or one MDMF segment: salt first, then the readkey.
std::string DataKeyOf(std::string_view salt, std::string_view readkey);
// The private key as stored in a share: AES-CTR under the writekey. Also the
// inverse (CTR is its own inverse).
std::string CryptPrivateKey(std::string_view writekey, std::string_view key_bytes);

// The write cap of a key pair, in either format.
Cap MutableWriteCap(const MutableKeys& keys, MutableFormat format);

// ---- immutable files --------------------------------------------------------

// The convergent encryption key of a CHK file, fed the plaintext in pieces.
// `convergence` is the raw secret (any length), k and n the encoding, and
// `segment_size` the file's segment size (the maximum segment size cut to the
// file and rounded up to a multiple of k, as Tahoe computes it).
class ConvergentKeyHasher {
 public:
  ConvergentKeyHasher(std::string_view convergence, std::uint32_t k, std::uint32_t n, std::uint64_t segment_size);
  void Update(std::string_view plaintext) { hasher_.Update(plaintext); }
  std::string Finish() { return hasher_.Finish(kKeySize); }

 private:
  crypto::Sha256dHasher hasher_;
};

std::string ChkStorageIndexOf(std::string_view key);

// Tahoe's segment size for a file: min(max_segment_size, size) rounded up to
// a multiple of k.
std::uint64_t ChkSegmentSize(std::uint64_t file_size, std::uint64_t max_segment_size, std::uint32_t k);

// ---- lease secrets ----------------------------------------------------------

struct LeaseSecrets {
  std::string renew;   // 32 bytes
  std::string cancel;  // 32 bytes
};

// The secrets a client presents to one server for one storage index.
// `client_secret` is the node's lease secret (base32-decoded
// private/secret); `server_seed` the server's 20-byte tubid.
LeaseSecrets LeaseSecretsFor(std::string_view client_secret, std::string_view storage_index,
                             std::string_view server_seed);

}  // namespace cairn::caps
