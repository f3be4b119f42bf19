// Authenticated encryption with associated data for TLS records: AES-128-GCM,
// AES-256-GCM (NIST SP 800-38D) and ChaCha20-Poly1305 (RFC 8439), each with a
// 12-byte nonce and a 16-byte tag. The implementation ("kernel") is chosen at
// run time from what the CPU offers, as the FEC kernels are; mbedTLS's own
// ciphers are the portable one. An Aead object holds one key; Seal and Open
// do not change it, so one object may be used from several threads at once
// (each call with its own buffers), which is how a body's records are sealed
// in parallel on the thread pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::crypto {

enum class AeadAlgorithm { kAes128Gcm, kAes256Gcm, kChaCha20Poly1305 };

inline constexpr std::size_t kAeadNonceSize = 12;
inline constexpr std::size_t kAeadTagSize = 16;

// The key size of an algorithm: 16 or 32 bytes.
std::size_t AeadKeySize(AeadAlgorithm algorithm);
const char* AeadAlgorithmName(AeadAlgorithm algorithm);  // "aes-128-gcm", ...

class Aead {
 public:
  virtual ~Aead() = default;
  virtual AeadAlgorithm algorithm() const = 0;
  // The kernel doing the work, for benchmarks and logs: "mbedtls",
  // "aesni-pclmul", "avx2", "neon", ...
  virtual const char* kernel() const = 0;

  // Encrypts `len` bytes of `in` into `out` and writes the 16-byte tag to
  // `tag`. `out` may equal `in` (in place) but must not otherwise overlap
  // it. `nonce` is 12 bytes. Never fails for valid arguments.
  virtual void Seal(const std::uint8_t* nonce, std::string_view aad, const std::uint8_t* in, std::size_t len,
                    std::uint8_t* out, std::uint8_t* tag) const = 0;
  // Checks `tag` over `aad` and the ciphertext, in constant time, and
  // decrypts `len` bytes of `in` into `out` (in place allowed, as Seal).
  // Integrity when the tag does not match; `out` then holds no plaintext
  // (it is zeroed), so nothing of a forged record can be used by mistake.
  virtual Status Open(const std::uint8_t* nonce, std::string_view aad, const std::uint8_t* in, std::size_t len,
                      const std::uint8_t* tag, std::uint8_t* out) const = 0;
};

// The fastest kernel this CPU runs for `algorithm`, or the one named by
// `kernel` (one of AeadKernels(algorithm)); InvalidArgument for a wrong key
// size or an unknown or unavailable kernel.
Result<std::unique_ptr<Aead>> NewAead(AeadAlgorithm algorithm, std::string_view key,
                                      std::string_view kernel = {});
// The kernels this CPU can run for `algorithm`, fastest first; "mbedtls" is
// always among them.
std::vector<const char*> AeadKernels(AeadAlgorithm algorithm);

// Times the default kernels of AES-128-GCM and ChaCha20-Poly1305 sealing
// 16 KiB records on this CPU (each suite's best of three rounds of 8
// records: about 1 ms with the fastest kernels, a few ms with mbedTLS's) and
// returns the nanoseconds per byte of each. Blocking and bounded: for a
// daemon's start-up. Any thread.
struct AeadSealCost {
  double aes_128_gcm_ns_per_byte = 0;
  double chacha20_poly1305_ns_per_byte = 0;
};
AeadSealCost MeasureAeadSealCost();

}  // namespace cairn::crypto
