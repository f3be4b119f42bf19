// ChaCha20 sixteen blocks at a time in AVX-512 registers (see
// aead_kernels.h), for the "avx512" ChaCha20-Poly1305 kernel. Pure
// function: any thread.
//
// Register i holds word i of sixteen consecutive blocks (one block per
// 32-bit lane), so a quarter round is four vector additions, XORs and
// rotations (VPROLD rotates each lane in one instruction). After the rounds
// a 16x16 transpose of 32-bit words turns the lanes back into blocks: a 4x4
// transpose of words within each 128-bit lane of four registers at a time,
// then a 4x4 transpose of 128-bit lanes. A message that ends inside a step
// is finished with byte-masked loads and stores (AVX-512BW), which neither
// read nor write past its end; a step that has at most 512 bytes left
// (eight blocks) goes to the AVX2 code, which makes half the key stream.
// ChaChaStartAvx512 begins a message: blocks 1-16 in the vector registers
// and block 0 (the Poly1305 key) in general-purpose ones, round by round
// beside them.
//
// Poly1305 is done separately, with IFMA (aead_poly1305_ifma.cc), over each
// chunk just encrypted.
#include "crypto/aead_kernels.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics start from an "undefined" register that
// -Wmaybe-uninitialized and -Wuninitialized report as used uninitialized
// (a false positive of the headers, not of this code); clang does not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace cairn::crypto::aead_internal {
namespace {

#define CAIRN_TARGET_AVX512 __attribute__((target("avx,avx2,avx512f,avx512vl,avx512bw")))
#define CAIRN_INLINE_AVX512 __attribute__((target("avx,avx2,avx512f,avx512vl,avx512bw"), always_inline)) inline

constexpr std::size_t kBlocks = 16;
constexpr std::size_t kStepBytes = 64 * kBlocks;
static_assert(kStepBytes == kChaChaStartBytes, "ChaChaStartAvx512 does one whole step");
// A last step with at most this many bytes is done by the eight-block AVX2
// code.
constexpr std::size_t kAvx2Tail = 512;

CAIRN_INLINE_AVX512 void QuarterRound(__m512i& a, __m512i& b, __m512i& c, __m512i& d) {
  a = _mm512_add_epi32(a, b);
  d = _mm512_rol_epi32(_mm512_xor_si512(d, a), 16);
  c = _mm512_add_epi32(c, d);
  b = _mm512_rol_epi32(_mm512_xor_si512(b, c), 12);
  a = _mm512_add_epi32(a, b);
  d = _mm512_rol_epi32(_mm512_xor_si512(d, a), 8);
  c = _mm512_add_epi32(c, d);
  b = _mm512_rol_epi32(_mm512_xor_si512(b, c), 7);
}

CAIRN_INLINE_AVX512 void DoubleRound(__m512i x[16]) {
  QuarterRound(x[0], x[4], x[8], x[12]);
  QuarterRound(x[1], x[5], x[9], x[13]);
  QuarterRound(x[2], x[6], x[10], x[14]);
  QuarterRound(x[3], x[7], x[11], x[15]);
  QuarterRound(x[0], x[5], x[10], x[15]);
  QuarterRound(x[1], x[6], x[11], x[12]);
  QuarterRound(x[2], x[7], x[8], x[13]);
  QuarterRound(x[3], x[4], x[9], x[14]);
}

// Transposes four registers within each 128-bit lane: afterwards v[k]'s
// lane L holds element k of lane L of v[0..3], in that order.
CAIRN_INLINE_AVX512 void Transpose4(__m512i& a, __m512i& b, __m512i& c, __m512i& d) {
  __m512i t0 = _mm512_unpacklo_epi32(a, b), t1 = _mm512_unpackhi_epi32(a, b);
  __m512i t2 = _mm512_unpacklo_epi32(c, d), t3 = _mm512_unpackhi_epi32(c, d);
  a = _mm512_unpacklo_epi64(t0, t2);
  b = _mm512_unpackhi_epi64(t0, t2);
  c = _mm512_unpacklo_epi64(t1, t3);
  d = _mm512_unpackhi_epi64(t1, t3);
}

// The input block of sixteen lanes: constants, key, counters counter ..
// counter + 15, nonce.
CAIRN_INLINE_AVX512 void InitState(__m512i state[16], const std::uint32_t key[8], const std::uint32_t nonce[3],
                                   std::uint32_t counter) {
  state[0] = _mm512_set1_epi32(0x61707865);
  state[1] = _mm512_set1_epi32(0x3320646e);
  state[2] = _mm512_set1_epi32(0x79622d32);
  state[3] = _mm512_set1_epi32(0x6b206574);
  for (int i = 0; i < 8; ++i) state[4 + i] = _mm512_set1_epi32(static_cast<int>(key[i]));
  state[12] = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(counter)),
                               _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
  for (int i = 0; i < 3; ++i) state[13 + i] = _mm512_set1_epi32(static_cast<int>(nonce[i]));
}

// The key stream of sixteen blocks starting at state's counters, with
// words 4g .. 4g + 3 of block 4L + k in lane L of x[4g + k]. Every loop is
// unrolled so that x stays in registers (a loop over the array kept it in
// memory, and a loop back edge made the compiler copy all sixteen
// registers once per double round).
CAIRN_INLINE_AVX512 void KeyStream(const __m512i state[16], __m512i x[16]) {
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) x[i] = state[i];
#pragma GCC unroll 10
  for (int round = 0; round < 10; ++round) DoubleRound(x);
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) x[i] = _mm512_add_epi32(x[i], state[i]);
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) Transpose4(x[4 * g], x[4 * g + 1], x[4 * g + 2], x[4 * g + 3]);
}

// Blocks k, 4 + k, 8 + k and 12 + k of KeyStream's output, whole: a 4x4
// transpose of 128-bit lanes.
CAIRN_INLINE_AVX512 void Blocks(const __m512i x[16], int k, __m512i b[4]) {
  __m512i t0 = _mm512_shuffle_i32x4(x[k], x[4 + k], 0x44);       // x[k].L0 L1, x[4+k].L0 L1
  __m512i t1 = _mm512_shuffle_i32x4(x[k], x[4 + k], 0xee);       // x[k].L2 L3, x[4+k].L2 L3
  __m512i t2 = _mm512_shuffle_i32x4(x[8 + k], x[12 + k], 0x44);  // the same for words 8-15
  __m512i t3 = _mm512_shuffle_i32x4(x[8 + k], x[12 + k], 0xee);
  b[0] = _mm512_shuffle_i32x4(t0, t2, 0x88);  // lane 0 of each: block k
  b[1] = _mm512_shuffle_i32x4(t0, t2, 0xdd);  // lane 1: block 4 + k
  b[2] = _mm512_shuffle_i32x4(t1, t3, 0x88);  // lane 2: block 8 + k
  b[3] = _mm512_shuffle_i32x4(t1, t3, 0xdd);  // lane 3: block 12 + k
}

// The same on one block in general-purpose registers, for block 0 (the
// Poly1305 key), computed beside the vector rounds of the first step: the
// scalar ALUs are otherwise idle there, so block 0 costs almost nothing
// (alone it cost two thirds of a 16-block vector step).
CAIRN_INLINE_AVX512 std::uint32_t Rotl(std::uint32_t v, int c) { return (v << c) | (v >> (32 - c)); }

CAIRN_INLINE_AVX512 void ScalarQuarterRound(std::uint32_t& a, std::uint32_t& b, std::uint32_t& c, std::uint32_t& d) {
  a += b;
  d = Rotl(d ^ a, 16);
  c += d;
  b = Rotl(b ^ c, 12);
  a += b;
  d = Rotl(d ^ a, 8);
  c += d;
  b = Rotl(b ^ c, 7);
}

// The key stream of KeyStream and, in `block0`, the key stream block of
// counter 0.
CAIRN_INLINE_AVX512 void KeyStreamAndBlock0(const __m512i state[16], __m512i x[16], const std::uint32_t key[8],
                                            const std::uint32_t nonce[3], std::uint8_t block0[64]) {
  const std::uint32_t in[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574, key[0],   key[1],
                                key[2],     key[3],     key[4],     key[5],     key[6],   key[7],
                                0,          nonce[0],   nonce[1],   nonce[2]};
  std::uint32_t s0 = in[0], s1 = in[1], s2 = in[2], s3 = in[3], s4 = in[4], s5 = in[5], s6 = in[6], s7 = in[7],
                s8 = in[8], s9 = in[9], s10 = in[10], s11 = in[11], s12 = in[12], s13 = in[13], s14 = in[14],
                s15 = in[15];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) x[i] = state[i];
#pragma GCC unroll 10
  for (int round = 0; round < 10; ++round) {
    DoubleRound(x);
    ScalarQuarterRound(s0, s4, s8, s12);
    ScalarQuarterRound(s1, s5, s9, s13);
    ScalarQuarterRound(s2, s6, s10, s14);
    ScalarQuarterRound(s3, s7, s11, s15);
    ScalarQuarterRound(s0, s5, s10, s15);
    ScalarQuarterRound(s1, s6, s11, s12);
    ScalarQuarterRound(s2, s7, s8, s13);
    ScalarQuarterRound(s3, s4, s9, s14);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) x[i] = _mm512_add_epi32(x[i], state[i]);
#pragma GCC unroll 4
  for (int g = 0; g < 4; ++g) Transpose4(x[4 * g], x[4 * g + 1], x[4 * g + 2], x[4 * g + 3]);
  const std::uint32_t words[16] = {s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15};
  for (int i = 0; i < 16; ++i) {
    const std::uint32_t v = words[i] + in[i];
    for (int b = 0; b < 4; ++b) block0[4 * i + b] = static_cast<std::uint8_t>(v >> (8 * b));
  }
}

// XORs a whole step's key stream (KeyStream's x) into 1,024 bytes.
CAIRN_INLINE_AVX512 void XorStep(const __m512i x[16], const std::uint8_t* in, std::uint8_t* out) {
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    __m512i b[4];
    Blocks(x, k, b);
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) {
      const std::size_t at = 64 * (4 * q + k);
      _mm512_storeu_si512(out + at, _mm512_xor_si512(_mm512_loadu_si512(in + at), b[q]));
    }
  }
}

// XORs the first `len` (below 1,024) bytes of a step's key stream into
// `in`, writing `out`, with byte-masked loads and stores that touch nothing
// past the end.
CAIRN_INLINE_AVX512 void XorPartialStep(const __m512i x[16], const std::uint8_t* in, std::uint8_t* out,
                                        std::size_t len) {
  __m512i y[16];
#pragma GCC unroll 4
  for (int k = 0; k < 4; ++k) {
    __m512i b[4];
    Blocks(x, k, b);
    for (int q = 0; q < 4; ++q) y[4 * q + k] = b[q];
  }
  for (std::size_t j = 0; j < kBlocks && len > 0; ++j) {
    std::size_t n = len < 64 ? len : 64;
    __mmask64 mask = n == 64 ? ~__mmask64{0} : (__mmask64{1} << n) - 1;
    __m512i m = _mm512_maskz_loadu_epi8(mask, in);
    _mm512_mask_storeu_epi8(out, mask, _mm512_xor_si512(m, y[j]));
    in += n;
    out += n;
    len -= n;
  }
  // The key stream left on the stack is not worth keeping.
  volatile __m512i* wipe = y;
  for (int j = 0; j < 16; ++j) wipe[j] = _mm512_setzero_si512();
}

}  // namespace

bool ChaChaAvx512Available() {
  if (!ChaChaAvx2Available()) return false;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || (c & bit_OSXSAVE) == 0) return false;
  // XCR0: the OS saves the SSE, AVX, opmask and both halves of the ZMM state.
  unsigned xcr0_lo, xcr0_hi;
  __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
  if ((xcr0_lo & 0xe6) != 0xe6) return false;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (b & bit_AVX512F) != 0 && (b & bit_AVX512VL) != 0 && (b & bit_AVX512BW) != 0;
}

CAIRN_TARGET_AVX512 void ChaChaXorAvx512(const std::uint32_t key[8], const std::uint32_t nonce[3],
                                         std::uint32_t counter, const std::uint8_t* in, std::uint8_t* out,
                                         std::size_t len) {
  __m512i state[16];
  InitState(state, key, nonce, counter);
  const __m512i step = _mm512_set1_epi32(kBlocks);
  while (len >= kStepBytes) {
    __m512i x[16];
    KeyStream(state, x);
    XorStep(x, in, out);
    state[12] = _mm512_add_epi32(state[12], step);
    in += kStepBytes;
    out += kStepBytes;
    len -= kStepBytes;
    counter += kBlocks;
  }
  if (len == 0) return;
  if (len <= kAvx2Tail) {
    ChaChaXorAvx2(key, nonce, counter, in, out, len);
    return;
  }
  __m512i x[16];
  KeyStream(state, x);
  XorPartialStep(x, in, out, len);
}

CAIRN_TARGET_AVX512 void ChaChaStartAvx512(const std::uint32_t key[8], const std::uint32_t nonce[3],
                                           std::uint8_t block0[64], const std::uint8_t* in, std::uint8_t* out,
                                           std::size_t len) {
  __m512i state[16], x[16];
  InitState(state, key, nonce, 1);
  KeyStreamAndBlock0(state, x, key, nonce, block0);
  if (len == kStepBytes) {
    XorStep(x, in, out);
  } else if (len > 0) {
    XorPartialStep(x, in, out, len);
  }
}

}  // namespace cairn::crypto::aead_internal

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#else

#include <cstdlib>

namespace cairn::crypto::aead_internal {
bool ChaChaAvx512Available() { return false; }
void ChaChaXorAvx512(const std::uint32_t*, const std::uint32_t*, std::uint32_t, const std::uint8_t*, std::uint8_t*,
                     std::size_t) {
  std::abort();
}
void ChaChaStartAvx512(const std::uint32_t*, const std::uint32_t*, std::uint8_t*, const std::uint8_t*, std::uint8_t*,
                       std::size_t) {
  std::abort();
}
}  // namespace cairn::crypto::aead_internal

#endif
