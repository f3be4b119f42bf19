// AES-128 with the x86 AES instructions (AES-NI), for CTR mode's key stream:
// mbedTLS 2.28 encrypts one 16-byte block per call, each call a chain of
// dependent AESENC instructions; here eight counter blocks go through the
// rounds together. Compiled through target attributes (aes_x86.cc), used
// only where CPUID reports AES-NI; elsewhere AesNiAvailable() is false and
// AesCtr keeps mbedTLS. Pure functions: any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cairn::crypto {

// True if this CPU (and build) has AES-NI, SSE2 and SSSE3.
bool AesNiAvailable();
// The 11 round keys of AES-128 for `key`, into `round_keys` (176 bytes).
// REQUIRES: AesNiAvailable().
void AesNiExpandKey128(const std::uint8_t key[16], std::uint8_t round_keys[176]);
// XORs the key stream of counter blocks first_block .. first_block+blocks-1
// into `data` (blocks * 16 bytes). A counter block is eight zero bytes and
// the block number big-endian (Tahoe's zero initial counter counting up).
// REQUIRES: AesNiAvailable().
void AesNiCtrXor(const std::uint8_t round_keys[176], std::uint64_t first_block, std::uint8_t* data,
                 std::size_t blocks);

}  // namespace cairn::crypto
