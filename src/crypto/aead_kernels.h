// The AEAD kernels behind NewAead (cairn/crypto/aead.h), one file each:
// aead.cc (the dispatch and the portable "mbedtls" kernel), aead_gcm_x86.cc
// ("aesni-pclmul", "vaes-avx2",
// "vaes-avx512"), aead_chacha.cc (ChaCha20-Poly1305 around a vector
// ChaCha20: "avx512" in aead_chacha_avx512.cc with aead_poly1305_ifma.cc,
// "avx2" in aead_chacha_avx2.cc with aead_poly1305_avx2.cc, "neon" in
// aead_chacha_neon.cc).
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
// The same on 512-bit registers: true if AesGcmVaesAvailable() and the CPU
// and OS also have AVX-512F and AVX-512BW.
bool AesGcmVaes512Available();
// REQUIRES: AesGcmVaes512Available(); as NewAesGcmX86.
std::unique_ptr<Aead> NewAesGcmVaes512(AeadAlgorithm algorithm, const std::uint8_t* key);

// XORs the ChaCha20 (RFC 8439) key stream of `key` (8 little-endian words),
// `nonce` (3 words) and block counters counter, counter+1, ... into `in`,
// writing `out` (`len` bytes; `out` may equal `in`). The counter wraps
// modulo 2^32 as RFC 8439's 32-bit block counter does.
using ChaChaXorFn = void (*)(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                             const std::uint8_t* in, std::uint8_t* out, std::size_t len);
// The start of a message: writes the key stream block of counter 0 (whose
// first 32 bytes are the Poly1305 key) to `block0`, and XORs the blocks of
// counters 1, 2, ... into the message's first `len` bytes (at most
// kChaChaStartBytes) as ChaChaXorFn does. A kernel has one where it can make
// block 0 beside the first blocks for less than on its own.
using ChaChaStartFn = void (*)(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint8_t block0[64],
                               const std::uint8_t* in, std::uint8_t* out, std::size_t len);
constexpr std::size_t kChaChaStartBytes = 1024;
struct Poly1305State;  // crypto/aead_poly1305.h
// Poly1305 over `blocks` whole 16-byte blocks at `p`, continuing `st`
// (crypto/aead_poly1305.h): the same result as the scalar
// Poly1305Blocks, for any number of blocks and any split of a message
// into calls.
using Poly1305BlocksFn = void (*)(Poly1305State* st, const std::uint8_t* p, std::size_t blocks);
// Eight blocks at a time in AVX2 registers (x86-64 only; fewer than 16
// blocks go to the scalar code).
bool Poly1305Avx2Available();
void Poly1305BlocksAvx2(Poly1305State* st, const std::uint8_t* p, std::size_t blocks);
// Sixteen blocks at a time with AVX-512 IFMA (x86-64 only; fewer than 16
// blocks go to the scalar code): true if ChaChaAvx512Available() and the
// CPU also has AVX-512 IFMA.
bool Poly1305IfmaAvailable();
void Poly1305BlocksIfma(Poly1305State* st, const std::uint8_t* p, std::size_t blocks);

// ChaCha20-Poly1305 around `chacha` (whose name is `kernel`, a string
// literal). Where this build's Poly1305 is ours (64-bit CPUs, unsigned
// __int128), `poly` (may be null: the scalar code) is its vector form,
// used over each chunk `chacha` has just encrypted. Elsewhere Poly1305 is
// mbedTLS's and `poly` is not used. `start` (may be null: block 0 is made
// by the scalar code) begins each message. REQUIRES: `key` holds 32 bytes.
std::unique_ptr<Aead> NewChaChaPoly(ChaChaXorFn chacha, Poly1305BlocksFn poly, const char* kernel,
                                    const std::uint8_t* key, ChaChaStartFn start = nullptr);

// For tests: the Poly1305 tag under `key` of `n` whole 16-byte blocks, with
// the Poly1305 that NewChaChaPoly's kernels use.
void TEST_Poly1305Blocks(const std::uint8_t key[32], const std::uint8_t* blocks, std::size_t n, std::uint8_t tag[16]);
// For tests: the same with the implementation `impl` ("scalar", or "avx2"
// or "ifma" where the CPU has it), the blocks given to it in `nparts` calls of
// parts[i] blocks each (their sum is the message's blocks). False if `impl`
// is unknown or unavailable here.
bool TEST_Poly1305Split(const char* impl, const std::uint8_t key[32], const std::uint8_t* blocks,
                        const std::size_t* parts, std::size_t nparts, std::uint8_t tag[16]);

// ChaCha20 sixteen blocks at a time in AVX-512 registers (x86-64 only):
// true if the CPU has AVX2, AVX-512F, AVX-512VL and AVX-512BW and the OS
// saves the ZMM state (XCR0).
bool ChaChaAvx512Available();
void ChaChaXorAvx512(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                     const std::uint8_t* in, std::uint8_t* out, std::size_t len);
// Its ChaChaStartFn: block 0 in scalar registers beside the vector rounds
// of blocks 1-16.
void ChaChaStartAvx512(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint8_t block0[64],
                       const std::uint8_t* in, std::uint8_t* out, std::size_t len);

// ChaCha20 eight blocks at a time in AVX2 registers (x86-64 only).
bool ChaChaAvx2Available();
void ChaChaXorAvx2(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                   const std::uint8_t* in, std::uint8_t* out, std::size_t len);

// ChaCha20 four blocks at a time in NEON registers (ARM builds with NEON).
bool ChaChaNeonAvailable();
void ChaChaXorNeon(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                   const std::uint8_t* in, std::uint8_t* out, std::size_t len);

}  // namespace cairn::crypto::aead_internal
