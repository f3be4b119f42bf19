// The ARM kernel: products by nibble lookups, 16 bytes at a time, with
// vqtbl1q_u8 on aarch64 (where NEON is always present) or two vtbl2_u8 on
// 32-bit ARM (chosen there only when the CPU has NEON: kernels.cc). Same
// scheme as kernel_x86.cc. Any thread.
//
// On 32-bit ARM boards whose baseline has no NEON (helios4), this file and
// crypto/aead_chacha_neon.cc alone are compiled with -mfpu=neon (the
// Makefile's BOARD_NEON_CFLAGS). So this file includes no header with inline
// functions, whose copy emitted here could use NEON and be the one the linker
// keeps for every caller, and declares the two functions of fec/kernel.h it
// defines and calls (a mismatch with kernel.h would fail to link).
#include <cstddef>
#include <cstdint>

#if defined(CAIRN_ARM_NEON_KERNELS) && !defined(__ARM_NEON)
#error "CAIRN_ARM_NEON_KERNELS: this file must be compiled with BOARD_NEON_CFLAGS (-mfpu=neon)"
#endif

#if defined(__aarch64__) || defined(__ARM_NEON)

#include <arm_neon.h>

namespace cairn::fec {

void DotNibbleRange(std::size_t begin, std::size_t end, int k, int rows, const std::uint8_t* tables,
                    const std::uint8_t* const* in, std::uint8_t* const* out);
void DotNeon(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
             std::uint8_t* const* out);

namespace {

constexpr int kRows = 4;

inline uint8x16_t Lookup(uint8x16_t table, uint8x16_t index) {
#if defined(__aarch64__)
  return vqtbl1q_u8(table, index);
#else
  const uint8x8x2_t t = {{vget_low_u8(table), vget_high_u8(table)}};
  return vcombine_u8(vtbl2_u8(t, vget_low_u8(index)), vtbl2_u8(t, vget_high_u8(index)));
#endif
}

template <int R>
void NeonRows(std::size_t n, int k, const std::uint8_t* tables, const std::uint8_t* const* in,
              std::uint8_t* const* out) {
  const uint8x16_t mask = vdupq_n_u8(0x0f);
  const std::size_t stride = 32 * static_cast<std::size_t>(k);
  for (std::size_t i = 0; i < n; i += 16) {
    uint8x16_t acc[R];
    for (int r = 0; r < R; ++r) acc[r] = vdupq_n_u8(0);
    for (int c = 0; c < k; ++c) {
      const uint8x16_t x = vld1q_u8(in[c] + i);
      const uint8x16_t lo = vandq_u8(x, mask);
      const uint8x16_t hi = vshrq_n_u8(x, 4);
      const std::uint8_t* t = tables + 32 * c;
      for (int r = 0; r < R; ++r, t += stride) {
        acc[r] = veorq_u8(acc[r], veorq_u8(Lookup(vld1q_u8(t), lo), Lookup(vld1q_u8(t + 16), hi)));
      }
    }
    for (int r = 0; r < R; ++r) vst1q_u8(out[r] + i, acc[r]);
  }
}

using RowsFn = void (*)(std::size_t n, int k, const std::uint8_t* tables, const std::uint8_t* const* in,
                        std::uint8_t* const* out);
constexpr RowsFn kNeonRows[kRows] = {NeonRows<1>, NeonRows<2>, NeonRows<3>, NeonRows<4>};

}  // namespace

void DotNeon(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
             std::uint8_t* const* out) {
  const std::size_t n = len - len % 16;
  const std::size_t row_bytes = 32 * static_cast<std::size_t>(k);
  if (n > 0) {
    for (int r = 0; r < rows; r += kRows) {
      const int count = rows - r < kRows ? rows - r : kRows;
      kNeonRows[count - 1](n, k, tables + static_cast<std::size_t>(r) * row_bytes, in, out + r);
    }
  }
  if (n < len) DotNibbleRange(n, len, k, rows, tables, in, out);
}

}  // namespace cairn::fec

#endif
