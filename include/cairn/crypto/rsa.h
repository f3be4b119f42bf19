// RSA-2048 keys as Tahoe-LAFS mutable files use them (tahoe-protocol.md 3.3,
// 3.4): generation with e = 65537, import of PEM or DER private keys (PKCS#1
// or PKCS#8), the PKCS#8 DER that feeds the writekey, the SubjectPublicKeyInfo
// DER that feeds the fingerprint, and RSASSA-PSS signatures over SHA-256 with
// MGF1-SHA-256 and a salt of exactly 32 bytes.
//
// Generation and signing take tens to hundreds of milliseconds on an ARM
// board: the daemon calls them through Loop::Offload, never on the loop
// thread. A key object may move between threads but is used by one at a time.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"

namespace cairn::crypto {

inline constexpr unsigned kRsaBits = 2048;
inline constexpr std::size_t kRsaSignatureSize = kRsaBits / 8;
inline constexpr int kPssSaltLength = 32;

class RsaKey {
 public:
  // A new 2048-bit key pair from the system's entropy. Slow: off the loop.
  static Result<RsaKey> Generate();
  // A private key in PEM ("RSA PRIVATE KEY" or "PRIVATE KEY") or DER
  // (PKCS#1 or PKCS#8). Refuses keys that are not 2048-bit RSA.
  static Result<RsaKey> ParsePrivate(std::string_view pem_or_der);
  // A public key from its SubjectPublicKeyInfo DER (as stored in shares).
  static Result<RsaKey> ParsePublicDer(std::string_view spki_der);

  ~RsaKey();
  RsaKey(RsaKey&&) noexcept;
  RsaKey& operator=(RsaKey&&) noexcept;

  bool has_private() const;
  // PKCS#8 PrivateKeyInfo DER (unencrypted). REQUIRES: has_private().
  std::string PrivatePkcs8Der() const;
  // X.509 SubjectPublicKeyInfo DER (294 bytes for RSA-2048).
  std::string PublicSpkiDer() const;

  // RSASSA-PSS (SHA-256, MGF1-SHA-256, 32-byte salt) over SHA-256(message).
  // 256 bytes. REQUIRES: has_private(). Slow: off the loop.
  Result<std::string> Sign(std::string_view message) const;
  // OK if `signature` is a valid signature of `message` under this key with
  // exactly those parameters, Integrity error otherwise.
  Status Verify(std::string_view message, std::string_view signature) const;

 private:
  struct State;
  explicit RsaKey(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

// The slow operations for callers on the loop thread: the work runs on
// libuv's thread pool and `done` runs on the loop thread, on a later turn,
// never inside the call.
void GenerateRsaKeyOffLoop(Loop& loop, Callback<void(Result<RsaKey>)> done);
void SignOffLoop(Loop& loop, std::shared_ptr<const RsaKey> key, std::string message,
                 Callback<void(Result<std::string>)> done);

// Wraps a PKCS#1 RSAPrivateKey DER in a PKCS#8 PrivateKeyInfo (version 0,
// rsaEncryption with NULL parameters), byte-identical to OpenSSL's.
std::string WrapPkcs1InPkcs8(std::string_view pkcs1_der);

}  // namespace cairn::crypto
