// ChaCha20 eight blocks at a time in AVX2 registers (see aead_kernels.h),
// for the "avx2" ChaCha20-Poly1305 kernel. Pure function: any thread.
//
// Register i holds word i of eight consecutive blocks (one block per 32-bit
// lane), so a quarter round is four vector additions, XORs and rotations;
// the 16- and 8-bit rotations are byte shuffles. After the rounds an 8x8
// transpose of 32-bit words turns the lanes back into blocks.
//
// Poly1305 is done separately, also in AVX2 registers
// (aead_poly1305_avx2.cc), over each chunk just encrypted.
#include "crypto/aead_kernels.h"

#if defined(__x86_64__)

#include <immintrin.h>

#include <cstring>

namespace cairn::crypto::aead_internal {
namespace {

#define CAIRN_TARGET_AVX2 __attribute__((target("avx2")))
#define CAIRN_INLINE_AVX2 __attribute__((target("avx2"), always_inline)) inline

constexpr std::size_t kBlocks = 8;

CAIRN_INLINE_AVX2 __m256i Rot16(__m256i x) {
  return _mm256_shuffle_epi8(x, _mm256_setr_epi8(2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6,
                                                 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13));
}
CAIRN_INLINE_AVX2 __m256i Rot8(__m256i x) {
  return _mm256_shuffle_epi8(x, _mm256_setr_epi8(3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14, 3, 0, 1, 2, 7,
                                                 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14));
}
template <int kBits>
CAIRN_INLINE_AVX2 __m256i Rot(__m256i x) {
  return _mm256_or_si256(_mm256_slli_epi32(x, kBits), _mm256_srli_epi32(x, 32 - kBits));
}

CAIRN_INLINE_AVX2 void QuarterRound(__m256i& a, __m256i& b, __m256i& c, __m256i& d) {
  a = _mm256_add_epi32(a, b);
  d = Rot16(_mm256_xor_si256(d, a));
  c = _mm256_add_epi32(c, d);
  b = Rot<12>(_mm256_xor_si256(b, c));
  a = _mm256_add_epi32(a, b);
  d = Rot8(_mm256_xor_si256(d, a));
  c = _mm256_add_epi32(c, d);
  b = Rot<7>(_mm256_xor_si256(b, c));
}

// Transposes eight registers of eight 32-bit words: afterwards v[j] holds
// lane j of the inputs, in input order.
CAIRN_INLINE_AVX2 void Transpose(__m256i v[8]) {
  __m256i t0 = _mm256_unpacklo_epi32(v[0], v[1]), t1 = _mm256_unpackhi_epi32(v[0], v[1]);
  __m256i t2 = _mm256_unpacklo_epi32(v[2], v[3]), t3 = _mm256_unpackhi_epi32(v[2], v[3]);
  __m256i t4 = _mm256_unpacklo_epi32(v[4], v[5]), t5 = _mm256_unpackhi_epi32(v[4], v[5]);
  __m256i t6 = _mm256_unpacklo_epi32(v[6], v[7]), t7 = _mm256_unpackhi_epi32(v[6], v[7]);
  __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  v[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  v[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  v[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  v[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  v[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  v[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  v[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  v[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

// The input block of eight lanes: constants, key, counters counter ..
// counter + 7, nonce.
CAIRN_INLINE_AVX2 void InitState(__m256i state[16], const std::uint32_t key[8], const std::uint32_t nonce[3],
                                 std::uint32_t counter) {
  state[0] = _mm256_set1_epi32(0x61707865);
  state[1] = _mm256_set1_epi32(0x3320646e);
  state[2] = _mm256_set1_epi32(0x79622d32);
  state[3] = _mm256_set1_epi32(0x6b206574);
  for (int i = 0; i < 8; ++i) state[4 + i] = _mm256_set1_epi32(static_cast<int>(key[i]));
  state[12] = _mm256_add_epi32(_mm256_set1_epi32(static_cast<int>(counter)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  for (int i = 0; i < 3; ++i) state[13 + i] = _mm256_set1_epi32(static_cast<int>(nonce[i]));
}

CAIRN_INLINE_AVX2 void DoubleRound(__m256i x[16]) {
  QuarterRound(x[0], x[4], x[8], x[12]);
  QuarterRound(x[1], x[5], x[9], x[13]);
  QuarterRound(x[2], x[6], x[10], x[14]);
  QuarterRound(x[3], x[7], x[11], x[15]);
  QuarterRound(x[0], x[5], x[10], x[15]);
  QuarterRound(x[1], x[6], x[11], x[12]);
  QuarterRound(x[2], x[7], x[8], x[13]);
  QuarterRound(x[3], x[4], x[9], x[14]);
}

// The rounds' output plus the input, as blocks: x[j] words 0-7 of block j,
// x[8 + j] words 8-15.
CAIRN_INLINE_AVX2 void Finalize(__m256i x[16], const __m256i state[16]) {
  for (int i = 0; i < 16; ++i) x[i] = _mm256_add_epi32(x[i], state[i]);
  Transpose(x);
  Transpose(x + 8);
}

CAIRN_INLINE_AVX2 void XorStretch(const __m256i x[16], const std::uint8_t* in, std::uint8_t* out) {
  for (std::size_t j = 0; j < kBlocks; ++j) {
    const auto* src = reinterpret_cast<const __m256i*>(in + 64 * j);
    auto* dst = reinterpret_cast<__m256i*>(out + 64 * j);
    _mm256_storeu_si256(dst, _mm256_xor_si256(_mm256_loadu_si256(src), x[j]));
    _mm256_storeu_si256(dst + 1, _mm256_xor_si256(_mm256_loadu_si256(src + 1), x[8 + j]));
  }
}

}  // namespace

bool ChaChaAvx2Available() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}

CAIRN_TARGET_AVX2 void ChaChaXorAvx2(const std::uint32_t key[8], const std::uint32_t nonce[3], std::uint32_t counter,
                                     const std::uint8_t* in, std::uint8_t* out, std::size_t len) {
  __m256i state[16];
  InitState(state, key, nonce, counter);
  while (len > 0) {
    __m256i x[16];
    for (int i = 0; i < 16; ++i) x[i] = state[i];
    for (int round = 0; round < 10; ++round) DoubleRound(x);
    Finalize(x, state);
    if (len >= 64 * kBlocks) {
      XorStretch(x, in, out);
      in += 64 * kBlocks;
      out += 64 * kBlocks;
      len -= 64 * kBlocks;
    } else {
      alignas(32) std::uint8_t stream[64 * kBlocks];
      for (std::size_t j = 0; j < kBlocks; ++j) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(stream + 64 * j), x[j]);
        _mm256_store_si256(reinterpret_cast<__m256i*>(stream + 64 * j + 32), x[8 + j]);
      }
      for (std::size_t i = 0; i < len; ++i) out[i] = static_cast<std::uint8_t>(in[i] ^ stream[i]);
      volatile std::uint8_t* wipe = stream;
      for (std::size_t i = 0; i < sizeof stream; ++i) wipe[i] = 0;
      len = 0;
    }
    state[12] = _mm256_add_epi32(state[12], _mm256_set1_epi32(kBlocks));
  }
}

}  // namespace cairn::crypto::aead_internal

#else

#include <cstdlib>

namespace cairn::crypto::aead_internal {
bool ChaChaAvx2Available() { return false; }
void ChaChaXorAvx2(const std::uint32_t*, const std::uint32_t*, std::uint32_t, const std::uint8_t*, std::uint8_t*,
                   std::size_t) {
  std::abort();
}
}  // namespace cairn::crypto::aead_internal

#endif
