// Poly1305 (RFC 8439 §2.5) eight blocks at a time in AVX2 registers, for the
// "avx2" ChaCha20-Poly1305 kernel (see aead_kernels.h). Pure function on
// caller-owned state: any thread.
//
// The scalar code (aead_poly1305.h) computes h = (h + m) r block after
// block, and each multiplication waits for the one before it. Here the
// blocks are dealt round-robin to eight accumulators, each multiplied by r^8
// per step, so that eight independent products are in flight; at the end
// accumulator j (holding blocks j, j + 8, ...) is multiplied by r^(8 - j)
// and the eight are added, which gives exactly the scalar result:
// (h + m_0) r^n + m_1 r^(n-1) + ... + m_(n-1) r.
//
// Numbers are five 26-bit limbs, one accumulator per 64-bit lane (two
// registers of four lanes: blocks 0-3 and 4-7 of each group of eight), so a
// 26 x 26-bit product (VPMULUDQ) and the sum of five of them fit a lane. The
// limbs are carried after every multiplication, only partly: each ends
// below 2^26 plus a little, and the value stays congruent modulo p =
// 2^130 - 5 (2^130 wraps to 5). The powers r^1 .. r^8 are computed once per
// key, on first use, into the state.
#include "crypto/aead_kernels.h"
#include "crypto/aead_poly1305.h"

#if defined(__x86_64__)

#include <immintrin.h>

namespace cairn::crypto::aead_internal {
namespace {

#define CAIRN_TARGET_AVX2 __attribute__((target("avx2")))
#define CAIRN_INLINE_AVX2 __attribute__((target("avx2"), always_inline)) inline

constexpr std::uint64_t kMask26 = (1u << 26) - 1;
// Below this many blocks the set-up and the final sum cost more than they
// save: the scalar code does them.
constexpr std::size_t kMinVectorBlocks = 16;

// a * b modulo p in 26-bit limbs, carried so that every limb is below 2^26
// except the second, which may exceed it by a little.
void Mul26(const std::uint32_t a[5], const std::uint32_t b[5], std::uint32_t out[5]) {
  const std::uint64_t s1 = 5ull * b[1], s2 = 5ull * b[2], s3 = 5ull * b[3], s4 = 5ull * b[4];
  std::uint64_t d0 = std::uint64_t{a[0]} * b[0] + a[1] * s4 + a[2] * s3 + a[3] * s2 + a[4] * s1;
  std::uint64_t d1 = std::uint64_t{a[0]} * b[1] + std::uint64_t{a[1]} * b[0] + a[2] * s4 + a[3] * s3 + a[4] * s2;
  std::uint64_t d2 = std::uint64_t{a[0]} * b[2] + std::uint64_t{a[1]} * b[1] + std::uint64_t{a[2]} * b[0] +
                     a[3] * s4 + a[4] * s3;
  std::uint64_t d3 = std::uint64_t{a[0]} * b[3] + std::uint64_t{a[1]} * b[2] + std::uint64_t{a[2]} * b[1] +
                     std::uint64_t{a[3]} * b[0] + a[4] * s4;
  std::uint64_t d4 = std::uint64_t{a[0]} * b[4] + std::uint64_t{a[1]} * b[3] + std::uint64_t{a[2]} * b[2] +
                     std::uint64_t{a[3]} * b[1] + std::uint64_t{a[4]} * b[0];
  d1 += d0 >> 26;
  d2 += d1 >> 26;
  d3 += d2 >> 26;
  d4 += d3 >> 26;
  d0 = (d0 & kMask26) + (d4 >> 26) * 5;
  d1 = (d1 & kMask26) + (d0 >> 26);
  out[0] = static_cast<std::uint32_t>(d0 & kMask26);
  out[1] = static_cast<std::uint32_t>(d1);
  out[2] = static_cast<std::uint32_t>(d2 & kMask26);
  out[3] = static_cast<std::uint32_t>(d3 & kMask26);
  out[4] = static_cast<std::uint32_t>(d4 & kMask26);
}

void ComputePowers(Poly1305State* st) {
  std::uint32_t* r = st->powers[0];
  r[0] = static_cast<std::uint32_t>(st->r0 & kMask26);
  r[1] = static_cast<std::uint32_t>((st->r0 >> 26) & kMask26);
  r[2] = static_cast<std::uint32_t>(((st->r0 >> 52) | (st->r1 << 12)) & kMask26);
  r[3] = static_cast<std::uint32_t>((st->r1 >> 14) & kMask26);
  r[4] = static_cast<std::uint32_t>(st->r1 >> 40);
  for (int k = 1; k < 8; ++k) Mul26(st->powers[k - 1], r, st->powers[k]);
  st->powers_ready = true;
}

// Four blocks (64 bytes) as five registers of limbs, with the 2^128 bit.
// The lanes hold blocks 0, 2, 1, 3 (the order of VPUNPCKLQDQ within 128-bit
// halves); the caller's powers follow the same order.
CAIRN_INLINE_AVX2 void LoadBlocks(const std::uint8_t* p, __m256i m[5]) {
  __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
  __m256i lo = _mm256_unpacklo_epi64(a, b);
  __m256i hi = _mm256_unpackhi_epi64(a, b);
  const __m256i mask = _mm256_set1_epi64x(static_cast<long long>(kMask26));
  m[0] = _mm256_and_si256(lo, mask);
  m[1] = _mm256_and_si256(_mm256_srli_epi64(lo, 26), mask);
  m[2] = _mm256_and_si256(_mm256_or_si256(_mm256_srli_epi64(lo, 52), _mm256_slli_epi64(hi, 12)), mask);
  m[3] = _mm256_and_si256(_mm256_srli_epi64(hi, 14), mask);
  m[4] = _mm256_or_si256(_mm256_srli_epi64(hi, 40), _mm256_set1_epi64x(1 << 24));
}

CAIRN_INLINE_AVX2 __m256i Mul(__m256i x, __m256i y) { return _mm256_mul_epu32(x, y); }
CAIRN_INLINE_AVX2 __m256i Add(__m256i x, __m256i y) { return _mm256_add_epi64(x, y); }

// d = a * r per lane, unreduced: limbs of up to 2^58. s holds 5 r; d may
// not be a.
CAIRN_INLINE_AVX2 void MulWide(const __m256i a[5], const __m256i r[5], const __m256i s[5], __m256i d[5]) {
  d[0] = Add(Add(Add(Mul(a[0], r[0]), Mul(a[1], s[4])), Add(Mul(a[2], s[3]), Mul(a[3], s[2]))), Mul(a[4], s[1]));
  d[1] = Add(Add(Add(Mul(a[0], r[1]), Mul(a[1], r[0])), Add(Mul(a[2], s[4]), Mul(a[3], s[3]))), Mul(a[4], s[2]));
  d[2] = Add(Add(Add(Mul(a[0], r[2]), Mul(a[1], r[1])), Add(Mul(a[2], r[0]), Mul(a[3], s[4]))), Mul(a[4], s[3]));
  d[3] = Add(Add(Add(Mul(a[0], r[3]), Mul(a[1], r[2])), Add(Mul(a[2], r[1]), Mul(a[3], r[0]))), Mul(a[4], s[4]));
  d[4] = Add(Add(Add(Mul(a[0], r[4]), Mul(a[1], r[3])), Add(Mul(a[2], r[2]), Mul(a[3], r[1]))), Mul(a[4], r[0]));
}

// Carries limbs of up to about 2^62 back to 26 bits (the second and the
// fifth may stay a little above), in two interleaved chains.
CAIRN_INLINE_AVX2 void Carry(__m256i d[5]) {
  const __m256i mask = _mm256_set1_epi64x(static_cast<long long>(kMask26));
  __m256i c;
  c = _mm256_srli_epi64(d[0], 26);
  d[0] = _mm256_and_si256(d[0], mask);
  d[1] = _mm256_add_epi64(d[1], c);
  c = _mm256_srli_epi64(d[3], 26);
  d[3] = _mm256_and_si256(d[3], mask);
  d[4] = _mm256_add_epi64(d[4], c);
  c = _mm256_srli_epi64(d[1], 26);
  d[1] = _mm256_and_si256(d[1], mask);
  d[2] = _mm256_add_epi64(d[2], c);
  c = _mm256_srli_epi64(d[4], 26);
  d[4] = _mm256_and_si256(d[4], mask);
  d[0] = _mm256_add_epi64(d[0], _mm256_add_epi64(c, _mm256_slli_epi64(c, 2)));  // + 5c
  c = _mm256_srli_epi64(d[2], 26);
  d[2] = _mm256_and_si256(d[2], mask);
  d[3] = _mm256_add_epi64(d[3], c);
  c = _mm256_srli_epi64(d[0], 26);
  d[0] = _mm256_and_si256(d[0], mask);
  d[1] = _mm256_add_epi64(d[1], c);
  c = _mm256_srli_epi64(d[3], 26);
  d[3] = _mm256_and_si256(d[3], mask);
  d[4] = _mm256_add_epi64(d[4], c);
}

// The registers of one power per lane, in the lanes' block order, and 5x.
CAIRN_INLINE_AVX2 void LanePowers(const Poly1305State* st, int p0, int p1, int p2, int p3, __m256i r[5],
                                  __m256i s[5]) {
  for (int i = 0; i < 5; ++i) {
    r[i] = _mm256_setr_epi64x(st->powers[p0 - 1][i], st->powers[p1 - 1][i], st->powers[p2 - 1][i],
                              st->powers[p3 - 1][i]);
    s[i] = _mm256_add_epi64(r[i], _mm256_slli_epi64(r[i], 2));
  }
}

CAIRN_INLINE_AVX2 std::uint64_t SumLanes(__m256i v) {
  __m128i x = _mm_add_epi64(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  return static_cast<std::uint64_t>(_mm_cvtsi128_si64(x)) + static_cast<std::uint64_t>(_mm_extract_epi64(x, 1));
}

}  // namespace

bool Poly1305Avx2Available() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}

CAIRN_TARGET_AVX2 void Poly1305BlocksAvx2(Poly1305State* st, const std::uint8_t* p, std::size_t blocks) {
  if (blocks < kMinVectorBlocks) return Poly1305Blocks(st, p, blocks);
  if (!st->powers_ready) ComputePowers(st);
  std::size_t groups = blocks / 8;
  // h, in 26-bit limbs, joins block 0 in lane 0 of the first register.
  const std::uint32_t h26[5] = {
      static_cast<std::uint32_t>(st->h0 & kMask26),
      static_cast<std::uint32_t>((st->h0 >> 26) & kMask26),
      static_cast<std::uint32_t>(((st->h0 >> 52) | (st->h1 << 12)) & kMask26),
      static_cast<std::uint32_t>((st->h1 >> 14) & kMask26),
      static_cast<std::uint32_t>((st->h1 >> 40) | (st->h2 << 24)),
  };
  __m256i a[5], b[5], m[5];
  LoadBlocks(p, a);
  LoadBlocks(p + 64, b);
  for (int i = 0; i < 5; ++i) a[i] = _mm256_add_epi64(a[i], _mm256_setr_epi64x(h26[i], 0, 0, 0));
  p += 128;
  __m256i r8[5], s8[5];
  LanePowers(st, 8, 8, 8, 8, r8, s8);
  for (std::size_t g = 1; g < groups; ++g, p += 128) {
    __m256i ta[5], tb[5];
    MulWide(a, r8, s8, ta);
    MulWide(b, r8, s8, tb);
    Carry(ta);
    Carry(tb);
    LoadBlocks(p, m);
    for (int i = 0; i < 5; ++i) a[i] = _mm256_add_epi64(ta[i], m[i]);
    LoadBlocks(p + 64, m);
    for (int i = 0; i < 5; ++i) b[i] = _mm256_add_epi64(tb[i], m[i]);
  }
  // Lanes of a hold blocks 0, 2, 1, 3 of the last group, b blocks 4, 6, 5,
  // 7: each is multiplied by r^(8 - block), and all are added.
  __m256i ra[5], sa[5], rb[5], sb[5], da[5], db[5];
  LanePowers(st, 8, 6, 7, 5, ra, sa);
  LanePowers(st, 4, 2, 3, 1, rb, sb);
  MulWide(a, ra, sa, da);
  MulWide(b, rb, sb, db);
  std::uint64_t d[5];
  for (int i = 0; i < 5; ++i) d[i] = SumLanes(_mm256_add_epi64(da[i], db[i]));
  d[1] += d[0] >> 26;
  d[2] += d[1] >> 26;
  d[3] += d[2] >> 26;
  d[4] += d[3] >> 26;
  d[0] = (d[0] & kMask26) + (d[4] >> 26) * 5;
  d[1] = (d[1] & kMask26) + (d[0] >> 26);
  d[0] &= kMask26;
  d[2] &= kMask26;
  d[3] &= kMask26;
  d[4] &= kMask26;
  // Back to two 64-bit limbs and a small third for the scalar code.
  using U128 = unsigned __int128;
  U128 acc = d[0] + (static_cast<U128>(d[1]) << 26) + (static_cast<U128>(d[2]) << 52);
  st->h0 = static_cast<std::uint64_t>(acc);
  acc = (acc >> 64) + (static_cast<U128>(d[3]) << 14) + (static_cast<U128>(d[4]) << 40);
  st->h1 = static_cast<std::uint64_t>(acc);
  st->h2 = static_cast<std::uint64_t>(acc >> 64);
  Poly1305Blocks(st, p, blocks - 8 * groups);
}

}  // namespace cairn::crypto::aead_internal

#else

#include <cstdlib>

namespace cairn::crypto::aead_internal {
bool Poly1305Avx2Available() { return false; }
void Poly1305BlocksAvx2(Poly1305State*, const std::uint8_t*, std::size_t) { std::abort(); }
}  // namespace cairn::crypto::aead_internal

#endif
