// SHA-256 (FIPS 180-4) of our own, so that CPUs with SHA extensions use
// them: the compression function is chosen once per process, the x86 SHA-NI
// one (sha256_x86.cc) when the CPU has it, else the portable one. mbedTLS
// 2.28 has only the portable kind, and SHA-256 is most of the CPU time of a
// CHK upload (the convergent key, the crypttext hashes, every block hash).
// Self-contained objects: one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cairn::crypto {

// Compresses `blocks` 64-byte blocks into `state`.
using Sha256BlocksFn = void (*)(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks);

// The 64 round constants K of FIPS 180-4.
const std::uint32_t* Sha256RoundConstants();
void Sha256BlocksPortable(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks);
// The SHA-NI compression function, or nullptr on CPUs (or builds) without it.
Sha256BlocksFn Sha256BlocksShaNi();
// Compresses `blocks` blocks of each of two messages. With SHA-NI both run
// interleaved: one message's rounds are a chain of dependent instructions,
// and the other's fill its gaps (nearly twice the rate of one on CPUs whose
// SHA256RNDS2 takes several cycles).
using Sha256Blocks2Fn = void (*)(std::uint32_t state_a[8], const std::uint8_t* a, std::uint32_t state_b[8],
                                 const std::uint8_t* b, std::size_t blocks);
Sha256Blocks2Fn Sha256Blocks2ShaNi();
// The implementation in use: "sha-ni" or "portable" ($CAIRN_SHA256=portable
// forces the portable one, for tests and benchmarks).
const char* Sha256Implementation();

class Sha256State {
 public:
  Sha256State();
  void Update(const void* data, std::size_t len);
  void Finish(std::uint8_t out[32]);
  // a.Update(pa, len) and b.Update(pb, len) at once: their whole blocks go
  // through the two-message function. Same results, faster with SHA-NI.
  static void UpdateTwo(Sha256State& a, const void* pa, Sha256State& b, const void* pb, std::size_t len);

 private:
  std::uint32_t h_[8];
  std::uint8_t buf_[64];
  std::size_t buffered_ = 0;
  std::uint64_t total_ = 0;
};

}  // namespace cairn::crypto
