// SHA-256 compression with the x86 SHA extensions (SHA-NI), compiled through
// target attributes so the rest of the build stays baseline; chosen only on
// CPUs whose CPUID reports SHA, SSSE3 and SSE4.1. Elsewhere (other
// architectures) Sha256BlocksShaNi returns nullptr. Any thread.
//
// The eight state words live in two registers as SHA256RNDS2 wants them:
// ABEF and CDGH. Each SHA256RNDS2 does two rounds with the message words
// plus constants in the low half of its third operand; four rounds take two.
// The message schedule of the next four words is SHA256MSG1 over the
// previous two groups, plus words t-7..t-4 (an ALIGNR of the last two
// groups), then SHA256MSG2 with the last group.
#include "crypto/sha256.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <immintrin.h>

#define CAIRN_TARGET_SHA __attribute__((target("sha,sse4.1,ssse3")))

namespace cairn::crypto {
namespace {

// One message's state between blocks, in SHA256RNDS2's register layout.
struct Lane {
  __m128i abef, cdgh;
  __m128i w[4];  // the last four message groups
};

CAIRN_TARGET_SHA inline Lane Load(const std::uint32_t state[8]) {
  __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
  __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
  __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  Lane l;
  l.abef = _mm_alignr_epi8(cdab, efgh, 8);
  l.cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
  return l;
}

CAIRN_TARGET_SHA inline void Store(const Lane& l, std::uint32_t state[8]) {
  __m128i feba = _mm_shuffle_epi32(l.abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(l.cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));
}

// Rounds 4g .. 4g+3 of the block at `data`.
CAIRN_TARGET_SHA inline void Rounds(Lane& l, const std::uint8_t* data, int g, const std::uint32_t* k) {
  // Big-endian words from little-endian loads.
  const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i msg;
  if (g < 4) {
    msg = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * g)), swap);
  } else {
    // w[g % 4] holds group g-4; the others g-3, g-2, g-1.
    __m128i t = _mm_sha256msg1_epu32(l.w[g % 4], l.w[(g + 1) % 4]);
    t = _mm_add_epi32(t, _mm_alignr_epi8(l.w[(g + 3) % 4], l.w[(g + 2) % 4], 4));
    msg = _mm_sha256msg2_epu32(t, l.w[(g + 3) % 4]);
  }
  l.w[g % 4] = msg;
  __m128i wk = _mm_add_epi32(msg, _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 4 * g)));
  l.cdgh = _mm_sha256rnds2_epu32(l.cdgh, l.abef, wk);
  l.abef = _mm_sha256rnds2_epu32(l.abef, l.cdgh, _mm_shuffle_epi32(wk, 0x0E));
}

CAIRN_TARGET_SHA void BlocksShaNi(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks) {
  const std::uint32_t* k = Sha256RoundConstants();
  Lane l = Load(state);
  for (; blocks > 0; --blocks, data += 64) {
    const __m128i abef = l.abef, cdgh = l.cdgh;
    for (int g = 0; g < 16; ++g) Rounds(l, data, g, k);
    l.abef = _mm_add_epi32(l.abef, abef);
    l.cdgh = _mm_add_epi32(l.cdgh, cdgh);
  }
  Store(l, state);
}

// Two messages' blocks at once. One message's rounds form a single chain,
// each SHA256RNDS2 waiting for the one before; the other's fill the gaps.
CAIRN_TARGET_SHA void Blocks2ShaNi(std::uint32_t state_a[8], const std::uint8_t* a, std::uint32_t state_b[8],
                                   const std::uint8_t* b, std::size_t blocks) {
  const std::uint32_t* k = Sha256RoundConstants();
  Lane la = Load(state_a), lb = Load(state_b);
  for (; blocks > 0; --blocks, a += 64, b += 64) {
    const __m128i abef_a = la.abef, cdgh_a = la.cdgh, abef_b = lb.abef, cdgh_b = lb.cdgh;
    for (int g = 0; g < 16; ++g) {
      Rounds(la, a, g, k);
      Rounds(lb, b, g, k);
    }
    la.abef = _mm_add_epi32(la.abef, abef_a);
    la.cdgh = _mm_add_epi32(la.cdgh, cdgh_a);
    lb.abef = _mm_add_epi32(lb.abef, abef_b);
    lb.cdgh = _mm_add_epi32(lb.cdgh, cdgh_b);
  }
  Store(la, state_a);
  Store(lb, state_b);
}

bool CpuHasShaNi() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  bool ssse3 = (c & bit_SSSE3) != 0, sse41 = (c & bit_SSE4_1) != 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return ssse3 && sse41 && (b & bit_SHA) != 0;
}

}  // namespace

Sha256BlocksFn Sha256BlocksShaNi() { return CpuHasShaNi() ? BlocksShaNi : nullptr; }
Sha256Blocks2Fn Sha256Blocks2ShaNi() { return CpuHasShaNi() ? Blocks2ShaNi : nullptr; }

}  // namespace cairn::crypto

#else

namespace cairn::crypto {
Sha256BlocksFn Sha256BlocksShaNi() { return nullptr; }
Sha256Blocks2Fn Sha256Blocks2ShaNi() { return nullptr; }
}  // namespace cairn::crypto

#endif
