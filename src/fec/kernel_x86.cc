// The x86 kernels: products by nibble lookups with pshufb, 16 bytes at a time
// (SSSE3) or 32 (AVX2). Compiled for those instruction sets through target
// attributes, so the rest of the build stays baseline; FindKernel calls them
// only on CPUs that have the instructions. Any thread.
//
// For each vector of input bytes x: lo = x & 15, hi = x >> 4, and
// c·x = shuffle(table_lo(c), lo) ^ shuffle(table_hi(c), hi). Up to kRows output
// rows are summed in registers, so each input vector is loaded once for them.
#include "fec/kernel.h"

#if defined(__x86_64__) || defined(__i386__)

#include <immintrin.h>

#define CAIRN_TARGET_SSSE3 __attribute__((target("ssse3")))
#define CAIRN_TARGET_AVX2 __attribute__((target("avx2")))

namespace cairn::fec {
namespace {

constexpr int kRows = 4;

template <int R>
CAIRN_TARGET_SSSE3 void Ssse3Rows(std::size_t n, int k, const std::uint8_t* tables, const std::uint8_t* const* in,
                                  std::uint8_t* const* out) {
  const __m128i mask = _mm_set1_epi8(0x0f);
  const std::size_t stride = 32 * static_cast<std::size_t>(k);
  for (std::size_t i = 0; i < n; i += 16) {
    __m128i acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm_setzero_si128();
    for (int c = 0; c < k; ++c) {
      const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in[c] + i));
      const __m128i lo = _mm_and_si128(x, mask);
      const __m128i hi = _mm_and_si128(_mm_srli_epi64(x, 4), mask);
      const std::uint8_t* t = tables + 32 * c;
      for (int r = 0; r < R; ++r, t += stride) {
        const __m128i tl = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t));
        const __m128i th = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16));
        acc[r] = _mm_xor_si128(acc[r], _mm_xor_si128(_mm_shuffle_epi8(tl, lo), _mm_shuffle_epi8(th, hi)));
      }
    }
    for (int r = 0; r < R; ++r) _mm_storeu_si128(reinterpret_cast<__m128i*>(out[r] + i), acc[r]);
  }
}

template <int R>
CAIRN_TARGET_AVX2 void Avx2Rows(std::size_t n, int k, const std::uint8_t* tables, const std::uint8_t* const* in,
                                std::uint8_t* const* out) {
  const __m256i mask = _mm256_set1_epi8(0x0f);
  const std::size_t stride = 32 * static_cast<std::size_t>(k);
  for (std::size_t i = 0; i < n; i += 32) {
    __m256i acc[R];
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_si256();
    for (int c = 0; c < k; ++c) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in[c] + i));
      const __m256i lo = _mm256_and_si256(x, mask);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi64(x, 4), mask);
      const std::uint8_t* t = tables + 32 * c;
      for (int r = 0; r < R; ++r, t += stride) {
        const __m256i tl = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t)));
        const __m256i th = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(t + 16)));
        acc[r] = _mm256_xor_si256(acc[r],
                                  _mm256_xor_si256(_mm256_shuffle_epi8(tl, lo), _mm256_shuffle_epi8(th, hi)));
      }
    }
    for (int r = 0; r < R; ++r) _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[r] + i), acc[r]);
  }
}

using RowsFn = void (*)(std::size_t n, int k, const std::uint8_t* tables, const std::uint8_t* const* in,
                        std::uint8_t* const* out);

// Whole vectors with `rows_fn[R - 1]` kRows rows at a time, then the tail.
void Dot(const RowsFn* rows_fn, std::size_t vec, std::size_t len, int k, int rows, const std::uint8_t* tables,
         const std::uint8_t* const* in, std::uint8_t* const* out) {
  const std::size_t n = len - len % vec;
  const std::size_t row_bytes = 32 * static_cast<std::size_t>(k);
  if (n > 0) {
    for (int r = 0; r < rows; r += kRows) {
      const int count = rows - r < kRows ? rows - r : kRows;
      rows_fn[count - 1](n, k, tables + static_cast<std::size_t>(r) * row_bytes, in, out + r);
    }
  }
  if (n < len) DotNibbleRange(n, len, k, rows, tables, in, out);
}

constexpr RowsFn kSsse3Rows[kRows] = {Ssse3Rows<1>, Ssse3Rows<2>, Ssse3Rows<3>, Ssse3Rows<4>};
constexpr RowsFn kAvx2Rows[kRows] = {Avx2Rows<1>, Avx2Rows<2>, Avx2Rows<3>, Avx2Rows<4>};

}  // namespace

void DotSsse3(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
              std::uint8_t* const* out) {
  Dot(kSsse3Rows, 16, len, k, rows, tables, in, out);
}

void DotAvx2(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
             std::uint8_t* const* out) {
  Dot(kAvx2Rows, 32, len, k, rows, tables, in, out);
}

}  // namespace cairn::fec

#endif
