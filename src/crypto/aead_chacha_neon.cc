// ChaCha20 four blocks at a time in NEON registers (see aead_kernels.h), for
// the "neon" ChaCha20-Poly1305 kernel: on arm64 always, on 32-bit ARM when the
// CPU has NEON (AT_HWCAP). Pure function: any thread.
//
// Register i holds word i of four consecutive blocks (one block per 32-bit
// lane), as in aead_chacha_avx2.cc; the 16-bit rotation swaps half-words,
// the others are a shift and a shift-right-and-insert. A 4x4 transpose per
// group of four words turns lanes back into blocks.
//
// On 32-bit ARM boards whose baseline has no NEON (helios4: Debian armhf's
// VFPv3-D16), this file and fec/kernel_neon.cc alone are compiled with
// -mfpu=neon (the Makefile's BOARD_NEON_CFLAGS). So this file includes no
// header with inline functions: a copy of one emitted here could use NEON and
// be the one the linker keeps for every caller. It declares its two functions
// itself (aead_kernels.h declares them too; a mismatch would fail to link).
#include <cstddef>
#include <cstdint>

#if defined(CAIRN_ARM_NEON_KERNELS) && !defined(__ARM_NEON)
#error "CAIRN_ARM_NEON_KERNELS: this file must be compiled with BOARD_NEON_CFLAGS (-mfpu=neon)"
#endif

#if defined(__aarch64__) || defined(__ARM_NEON)

#include <arm_neon.h>
#if !defined(__aarch64__)
#include <sys/auxv.h>
#endif

namespace cairn::crypto::aead_internal {

bool ChaChaNeonAvailable();
void ChaChaXorNeon(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                   const std::uint8_t* in, std::uint8_t* out, std::size_t len);

namespace {

constexpr std::size_t kBlocks = 4;

template <int kBits>
inline uint32x4_t Rot(uint32x4_t x) {
  return vsriq_n_u32(vshlq_n_u32(x, kBits), x, 32 - kBits);
}
inline uint32x4_t Rot16(uint32x4_t x) { return vreinterpretq_u32_u16(vrev32q_u16(vreinterpretq_u16_u32(x))); }

inline void QuarterRound(uint32x4_t& a, uint32x4_t& b, uint32x4_t& c, uint32x4_t& d) {
  a = vaddq_u32(a, b);
  d = Rot16(veorq_u32(d, a));
  c = vaddq_u32(c, d);
  b = Rot<12>(veorq_u32(b, c));
  a = vaddq_u32(a, b);
  d = Rot<8>(veorq_u32(d, a));
  c = vaddq_u32(c, d);
  b = Rot<7>(veorq_u32(b, c));
}

// Four blocks of key stream: stream[64 j + 16 g ...] is words 4g .. 4g+3 of
// block j.
inline void Stretch(const uint32x4_t state[16], std::uint8_t stream[64 * kBlocks]) {
  uint32x4_t x[16];
  for (int i = 0; i < 16; ++i) x[i] = state[i];
  for (int round = 0; round < 10; ++round) {
    QuarterRound(x[0], x[4], x[8], x[12]);
    QuarterRound(x[1], x[5], x[9], x[13]);
    QuarterRound(x[2], x[6], x[10], x[14]);
    QuarterRound(x[3], x[7], x[11], x[15]);
    QuarterRound(x[0], x[5], x[10], x[15]);
    QuarterRound(x[1], x[6], x[11], x[12]);
    QuarterRound(x[2], x[7], x[8], x[13]);
    QuarterRound(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 16; ++i) x[i] = vaddq_u32(x[i], state[i]);
  for (int g = 0; g < 4; ++g) {
    uint32x4x2_t t01 = vtrnq_u32(x[4 * g], x[4 * g + 1]);
    uint32x4x2_t t23 = vtrnq_u32(x[4 * g + 2], x[4 * g + 3]);
    uint32x4_t b[4] = {vcombine_u32(vget_low_u32(t01.val[0]), vget_low_u32(t23.val[0])),
                       vcombine_u32(vget_low_u32(t01.val[1]), vget_low_u32(t23.val[1])),
                       vcombine_u32(vget_high_u32(t01.val[0]), vget_high_u32(t23.val[0])),
                       vcombine_u32(vget_high_u32(t01.val[1]), vget_high_u32(t23.val[1]))};
    for (int j = 0; j < 4; ++j) vst1q_u8(stream + 64 * j + 16 * g, vreinterpretq_u8_u32(b[j]));
  }
}

}  // namespace

bool ChaChaNeonAvailable() {
#if defined(__aarch64__)
  return true;
#else
  // 32-bit ARM: NEON is optional (the Armada 388's Cortex-A9 has it, a
  // VFPv3-D16-only core such as the Armada 370's does not).
  return (getauxval(AT_HWCAP) & HWCAP_ARM_NEON) != 0;
#endif
}

void ChaChaXorNeon(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                   const std::uint8_t* in, std::uint8_t* out, std::size_t len) {
  uint32x4_t state[16] = {vdupq_n_u32(0x61707865), vdupq_n_u32(0x3320646e), vdupq_n_u32(0x79622d32),
                          vdupq_n_u32(0x6b206574)};
  for (int i = 0; i < 8; ++i) state[4 + i] = vdupq_n_u32(key[i]);
  const std::uint32_t lanes[4] = {0, 1, 2, 3};
  state[12] = vaddq_u32(vdupq_n_u32(counter), vld1q_u32(lanes));
  for (int i = 0; i < 3; ++i) state[13 + i] = vdupq_n_u32(nonce[i]);
  std::uint8_t stream[64 * kBlocks];
  while (len > 0) {
    Stretch(state, stream);
    std::size_t n = len < sizeof stream ? len : sizeof stream;
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) vst1q_u8(out + i, veorq_u8(vld1q_u8(in + i), vld1q_u8(stream + i)));
    for (; i < n; ++i) out[i] = static_cast<std::uint8_t>(in[i] ^ stream[i]);
    in += n;
    out += n;
    len -= n;
    state[12] = vaddq_u32(state[12], vdupq_n_u32(kBlocks));
  }
  volatile std::uint8_t* wipe = stream;
  for (std::size_t i = 0; i < sizeof stream; ++i) wipe[i] = 0;
}

}  // namespace cairn::crypto::aead_internal

#else

#include <cstdlib>

#include "crypto/aead_kernels.h"

namespace cairn::crypto::aead_internal {
bool ChaChaNeonAvailable() { return false; }
void ChaChaXorNeon(const std::uint32_t*, const std::uint32_t*, std::uint32_t, const std::uint8_t*, std::uint8_t*,
                   std::size_t) {
  std::abort();
}
}  // namespace cairn::crypto::aead_internal

#endif
