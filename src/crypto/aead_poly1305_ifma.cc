// Poly1305 (RFC 8439 §2.5) sixteen blocks at a time with AVX-512 IFMA
// (VPMADD52LUQ/VPMADD52HUQ), for the "avx512" ChaCha20-Poly1305 kernel (see
// aead_kernels.h). Pure function on caller-owned state: any thread.
//
// As in aead_poly1305_avx2.cc, blocks are dealt round-robin to independent
// accumulators, each multiplied by a power of r per step, and at the end
// accumulator j is multiplied by the power that brings it to the scalar
// result (h + m_0) r^n + m_1 r^(n-1) + ... + m_(n-1) r. Here there are
// sixteen accumulators, one per 64-bit lane of two register sets (blocks
// 0-7 and 8-15 of each group of sixteen), each multiplied by r^16 per step.
//
// Numbers are three limbs of 44, 44 and 42 bits (h = h0 + h1 2^44 +
// h2 2^88). IFMA multiplies the low 52 bits of two lanes and adds the low
// or the high 52 bits of the 104-bit product to a third, so a limb product
// is exact as lo + hi 2^52 for limbs below 2^52. Products landing at 2^132
// and above wrap to 2^0 and 2^44 times 20 (2^130 = 5 modulo p = 2^130 - 5,
// and 2^132 = 20): s1 = 20 r1 and s2 = 20 r2 below. The limbs are carried
// once, all at the same time, after every multiplication: each ends a
// little above its width (by less than 2^16), far below IFMA's 52 bits,
// and the value stays congruent modulo p. The powers r^1 .. r^16 are
// computed once per key, on first use, into the state. The loops over the
// three limbs are unrolled: otherwise the compiler kept the registers in
// memory.
#include "crypto/aead_kernels.h"
#include "crypto/aead_poly1305.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics start from an "undefined" register that
// -Wmaybe-uninitialized reports as used uninitialized (a false positive of
// the headers, not of this code); clang does not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace cairn::crypto::aead_internal {
namespace {

#define CAIRN_TARGET_IFMA __attribute__((target("avx,avx2,avx512f,avx512vl,avx512ifma")))
#define CAIRN_INLINE_IFMA __attribute__((target("avx,avx2,avx512f,avx512vl,avx512ifma"), always_inline)) inline

using U128 = unsigned __int128;

constexpr std::uint64_t kMask44 = (std::uint64_t{1} << 44) - 1;
constexpr std::uint64_t kMask42 = (std::uint64_t{1} << 42) - 1;
// Below this many blocks the set-up and the final sum cost more than they
// save: the scalar code does them.
constexpr std::size_t kMinVectorBlocks = 16;

// 64-bit limbs (h0 + h1 2^64 + h2 2^128, h2 small) to 44-bit ones.
void To44(std::uint64_t h0, std::uint64_t h1, std::uint64_t h2, std::uint64_t out[3]) {
  out[0] = h0 & kMask44;
  out[1] = ((h0 >> 44) | (h1 << 20)) & kMask44;
  out[2] = (h1 >> 24) | (h2 << 40);
}

// a * b modulo p, carried so that every limb is within its width except the
// last, which may exceed 42 bits by one.
void Mul44(const std::uint64_t a[3], const std::uint64_t b[3], std::uint64_t out[3]) {
  const std::uint64_t s1 = 20 * b[1], s2 = 20 * b[2];
  U128 d0 = static_cast<U128>(a[0]) * b[0] + static_cast<U128>(a[1]) * s2 + static_cast<U128>(a[2]) * s1;
  U128 d1 = static_cast<U128>(a[0]) * b[1] + static_cast<U128>(a[1]) * b[0] + static_cast<U128>(a[2]) * s2;
  U128 d2 = static_cast<U128>(a[0]) * b[2] + static_cast<U128>(a[1]) * b[1] + static_cast<U128>(a[2]) * b[0];
  d1 += d0 >> 44;
  d0 &= kMask44;
  d2 += d1 >> 44;
  d1 &= kMask44;
  d0 += (d2 >> 42) * 5;
  d2 &= kMask42;
  d1 += d0 >> 44;
  d0 &= kMask44;
  d2 += d1 >> 44;
  d1 &= kMask44;
  out[0] = static_cast<std::uint64_t>(d0);
  out[1] = static_cast<std::uint64_t>(d1);
  out[2] = static_cast<std::uint64_t>(d2);
}

CAIRN_INLINE_IFMA __m512i Lo(__m512i acc, __m512i x, __m512i y) { return _mm512_madd52lo_epu64(acc, x, y); }
CAIRN_INLINE_IFMA __m512i Hi(__m512i acc, __m512i x, __m512i y) { return _mm512_madd52hi_epu64(acc, x, y); }

// h = h * r modulo p per lane, with the one parallel carry. s1 and s2 hold
// 20 r1 and 20 r2.
CAIRN_INLINE_IFMA void MulReduce(__m512i h[3], const __m512i r[3], __m512i s1, __m512i s2) {
  const __m512i z = _mm512_setzero_si512();
  __m512i l0 = Lo(Lo(Lo(z, h[0], r[0]), h[1], s2), h[2], s1);
  __m512i u0 = Hi(Hi(Hi(z, h[0], r[0]), h[1], s2), h[2], s1);
  __m512i l1 = Lo(Lo(Lo(z, h[0], r[1]), h[1], r[0]), h[2], s2);
  __m512i u1 = Hi(Hi(Hi(z, h[0], r[1]), h[1], r[0]), h[2], s2);
  __m512i l2 = Lo(Lo(Lo(z, h[0], r[2]), h[1], r[1]), h[2], r[0]);
  __m512i u2 = Hi(Hi(Hi(z, h[0], r[2]), h[1], r[1]), h[2], r[0]);
  // The high halves sit 52 bits above their limb: 8 bits into the next
  // limb, and for the last at 2^140 = 5 2^10 modulo p.
  __m512i d0 = _mm512_add_epi64(l0, _mm512_add_epi64(_mm512_slli_epi64(u2, 10), _mm512_slli_epi64(u2, 12)));
  __m512i d1 = _mm512_add_epi64(l1, _mm512_slli_epi64(u0, 8));
  __m512i d2 = _mm512_add_epi64(l2, _mm512_slli_epi64(u1, 8));
  const __m512i m44 = _mm512_set1_epi64(static_cast<long long>(kMask44));
  const __m512i m42 = _mm512_set1_epi64(static_cast<long long>(kMask42));
  __m512i c0 = _mm512_srli_epi64(d0, 44), c1 = _mm512_srli_epi64(d1, 44), c2 = _mm512_srli_epi64(d2, 42);
  h[0] = _mm512_add_epi64(_mm512_and_si512(d0, m44), _mm512_add_epi64(c2, _mm512_slli_epi64(c2, 2)));
  h[1] = _mm512_add_epi64(_mm512_and_si512(d1, m44), c0);
  h[2] = _mm512_add_epi64(_mm512_and_si512(d2, m42), c1);
}

// Eight blocks (128 bytes) as three registers of limbs, with the 2^128 bit,
// block j in lane j.
CAIRN_INLINE_IFMA void LoadBlocks(const std::uint8_t* p, __m512i m[3]) {
  __m512i a = _mm512_loadu_si512(p);
  __m512i b = _mm512_loadu_si512(p + 64);
  __m512i lo = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b);
  __m512i hi = _mm512_permutex2var_epi64(a, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b);
  const __m512i m44 = _mm512_set1_epi64(static_cast<long long>(kMask44));
  m[0] = _mm512_and_si512(lo, m44);
  // (lo >> 44 | hi << 20) & mask in one ternary-logic instruction.
  m[1] = _mm512_ternarylogic_epi64(_mm512_srli_epi64(lo, 44), _mm512_slli_epi64(hi, 20), m44, 0xa8);
  m[2] = _mm512_or_si512(_mm512_srli_epi64(hi, 24), _mm512_set1_epi64(std::int64_t{1} << 40));
}

CAIRN_INLINE_IFMA void Add(__m512i h[3], const __m512i m[3]) {
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i) h[i] = _mm512_add_epi64(h[i], m[i]);
}

CAIRN_INLINE_IFMA void Twenty(const __m512i r[3], __m512i& s1, __m512i& s2) {
  s1 = _mm512_add_epi64(_mm512_slli_epi64(r[1], 4), _mm512_slli_epi64(r[1], 2));
  s2 = _mm512_add_epi64(_mm512_slli_epi64(r[2], 4), _mm512_slli_epi64(r[2], 2));
}

// r^1 .. r^4 with the scalar code, then r^8 .. r^5 as r^4 .. r^1 times
// r^4 and r^16 .. r^9 as r^8 .. r^1 times r^8, each in one vector
// multiplication (seven scalar ones were a seventh of a 1 KiB record's
// time).
CAIRN_TARGET_IFMA void ComputePowers(Poly1305State* st) {
  std::uint64_t pw[5][3];  // pw[k] = r^k
  To44(st->r0, st->r1, 0, pw[1]);
  Mul44(pw[1], pw[1], pw[2]);
  Mul44(pw[2], pw[1], pw[3]);
  Mul44(pw[2], pw[2], pw[4]);
  __m512i v[3], r[3], s1, s2;
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i) {
    const auto l = [&](int k) { return static_cast<long long>(pw[k][i]); };
    v[i] = _mm512_setr_epi64(l(4), l(3), l(2), l(1), l(4), l(3), l(2), l(1));
    r[i] = _mm512_set1_epi64(l(4));
  }
  // Lanes 0-3 times r^4; lanes 4-7 stay: r^8 .. r^1.
  __m512i u[3] = {v[0], v[1], v[2]};
  Twenty(r, s1, s2);
  MulReduce(u, r, s1, s2);
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i) {
    u[i] = _mm512_mask_blend_epi64(0xf0, u[i], v[i]);
    _mm512_store_si512(&st->powers44[i][8], u[i]);
    r[i] = _mm512_broadcastq_epi64(_mm512_castsi512_si128(u[i]));  // r^8
  }
  Twenty(r, s1, s2);
  MulReduce(u, r, s1, s2);
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i) _mm512_store_si512(&st->powers44[i][0], u[i]);
  st->powers44_ready = true;
}

}  // namespace

bool Poly1305IfmaAvailable() {
  if (!ChaChaAvx512Available()) return false;  // AVX-512F and VL, and the OS saves the ZMM state
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (b & bit_AVX512IFMA) != 0;
}

CAIRN_TARGET_IFMA void Poly1305BlocksIfma(Poly1305State* st, const std::uint8_t* p, std::size_t blocks) {
  if (blocks < kMinVectorBlocks) return Poly1305Blocks(st, p, blocks);
  if (!st->powers44_ready) ComputePowers(st);
  std::size_t groups = blocks / 16;
  // h joins block 0 in lane 0 of the first set.
  std::uint64_t h44[3];
  To44(st->h0, st->h1, st->h2, h44);
  __m512i a[3], b[3], m[3];
  LoadBlocks(p, a);
  LoadBlocks(p + 128, b);
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i) {
    a[i] = _mm512_add_epi64(a[i], _mm512_maskz_set1_epi64(1, static_cast<long long>(h44[i])));
  }
  p += 256;
  __m512i r16[3], s16_1, s16_2;
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i) r16[i] = _mm512_set1_epi64(static_cast<long long>(st->powers44[i][0]));
  Twenty(r16, s16_1, s16_2);
  for (std::size_t g = 1; g < groups; ++g, p += 256) {
    MulReduce(a, r16, s16_1, s16_2);
    MulReduce(b, r16, s16_1, s16_2);
    LoadBlocks(p, m);
    Add(a, m);
    LoadBlocks(p + 128, m);
    Add(b, m);
  }
  // Lane j of a holds block j of the last group, lane j of b block 8 + j:
  // each is multiplied by r^(16 - block), and all are added.
  __m512i ra[3], rb[3], sa1, sa2, sb1, sb2;
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i) {
    ra[i] = _mm512_load_si512(&st->powers44[i][0]);
    rb[i] = _mm512_load_si512(&st->powers44[i][8]);
  }
  Twenty(ra, sa1, sa2);
  Twenty(rb, sb1, sb2);
  MulReduce(a, ra, sa1, sa2);
  MulReduce(b, rb, sb1, sb2);
  std::uint64_t d[3];
#pragma GCC unroll 3
  for (int i = 0; i < 3; ++i) d[i] = static_cast<std::uint64_t>(_mm512_reduce_add_epi64(_mm512_add_epi64(a[i], b[i])));
  // Each sum is below 2^49: carry fully, then back to two 64-bit limbs and
  // a small third (h below 2^130 + 2^88) for the scalar code.
  d[1] += d[0] >> 44;
  d[0] &= kMask44;
  d[2] += d[1] >> 44;
  d[1] &= kMask44;
  d[0] += (d[2] >> 42) * 5;
  d[2] &= kMask42;
  d[1] += d[0] >> 44;
  d[0] &= kMask44;
  d[2] += d[1] >> 44;
  d[1] &= kMask44;
  U128 acc = d[0] | static_cast<U128>(d[1]) << 44 | static_cast<U128>(d[2]) << 88;
  st->h0 = static_cast<std::uint64_t>(acc);
  st->h1 = static_cast<std::uint64_t>(acc >> 64);
  st->h2 = static_cast<std::uint64_t>(d[2] >> 40);
  Poly1305Blocks(st, p, blocks - 16 * groups);
}

}  // namespace cairn::crypto::aead_internal

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#else

#include <cstdlib>

namespace cairn::crypto::aead_internal {
bool Poly1305IfmaAvailable() { return false; }
void Poly1305BlocksIfma(Poly1305State*, const std::uint8_t*, std::size_t) { std::abort(); }
}  // namespace cairn::crypto::aead_internal

#endif
