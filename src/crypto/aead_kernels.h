// The AEAD kernels behind NewAead (cairn/crypto/aead.h), one file each:
// aead.cc (the dispatch and the portable "mbedtls" kernel), aead_gcm_x86.cc
// ("aesni-pclmul", "vaes-avx2"), aead_chacha.cc (ChaCha20-Poly1305 around a vector
// ChaCha20: "avx2" in aead_chacha_avx2.cc, "neon" in aead_chacha_neon.cc).
// A kernel the build or the CPU lacks reports itself unavailable; its
// constructor is then never called. Pure functions: any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "cairn/crypto/aead.h"

namespace cairn::crypto::aead_internal {

// True if the two 16-byte tags are equal; the time taken does not depend on
// where they differ.
bool TagsEqual(const std::uint8_t* a, const std::uint8_t* b);

// AES-GCM with AES-NI and PCLMULQDQ (x86-64 only): true if the CPU has
// AES-NI, PCLMULQDQ, SSSE3 and SSE4.1.
bool AesGcmX86Available();
// REQUIRES: AesGcmX86Available(); `algorithm` is an AES-GCM one and `key`
// holds AeadKeySize(algorithm) bytes.
std::unique_ptr<Aead> NewAesGcmX86(AeadAlgorithm algorithm, const std::uint8_t* key);
// The same with VAES and VPCLMULQDQ on 256-bit registers: true if
// AesGcmX86Available() and the CPU and OS also have AVX2, VAES and
// VPCLMULQDQ.
bool AesGcmVaesAvailable();
// REQUIRES: AesGcmVaesAvailable(); as NewAesGcmX86.
std::unique_ptr<Aead> NewAesGcmVaes(AeadAlgorithm algorithm, const std::uint8_t* key);

// XORs the ChaCha20 (RFC 8439) key stream of `key` (8 little-endian words),
// `nonce` (3 words) and block counters counter, counter+1, ... into `in`,
// writing `out` (`len` bytes; `out` may equal `in`). The counter wraps
// modulo 2^32 as RFC 8439's 32-bit block counter does.
using ChaChaXorFn = void (*)(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                             const std::uint8_t* in, std::uint8_t* out, std::size_t len);
// ChaCha20-Poly1305 around `chacha` (whose name is `kernel`, a string
// literal); Poly1305 is ours on 64-bit CPUs (unsigned __int128), mbedTLS's
// elsewhere. REQUIRES: `key` holds 32 bytes.
std::unique_ptr<Aead> NewChaChaPoly(ChaChaXorFn chacha, const char* kernel, const std::uint8_t* key);

// ChaCha20 eight blocks at a time in AVX2 registers (x86-64 only).
bool ChaChaAvx2Available();
void ChaChaXorAvx2(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                   const std::uint8_t* in, std::uint8_t* out, std::size_t len);

// ChaCha20 four blocks at a time in NEON registers (ARM builds with NEON).
bool ChaChaNeonAvailable();
void ChaChaXorNeon(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                   const std::uint8_t* in, std::uint8_t* out, std::size_t len);

}  // namespace cairn::crypto::aead_internal
