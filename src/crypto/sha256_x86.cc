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

CAIRN_TARGET_SHA void BlocksShaNi(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks) {
  const std::uint32_t* k = Sha256RoundConstants();
  // Big-endian words from little-endian loads.
  const __m128i swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state));
  __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4));
  __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  __m128i abef = _mm_alignr_epi8(cdab, efgh, 8);
  __m128i cdgh = _mm_blend_epi16(efgh, cdab, 0xF0);
  for (; blocks > 0; --blocks, data += 64) {
    const __m128i abef_saved = abef;
    const __m128i cdgh_saved = cdgh;
    __m128i w[4];
    for (int g = 0; g < 16; ++g) {
      __m128i msg;
      if (g < 4) {
        msg = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * g)), swap);
      } else {
        // w[g % 4] holds group g-4; the others g-3, g-2, g-1.
        __m128i t = _mm_sha256msg1_epu32(w[g % 4], w[(g + 1) % 4]);
        t = _mm_add_epi32(t, _mm_alignr_epi8(w[(g + 3) % 4], w[(g + 2) % 4], 4));
        msg = _mm_sha256msg2_epu32(t, w[(g + 3) % 4]);
      }
      w[g % 4] = msg;
      __m128i wk = _mm_add_epi32(msg, _mm_loadu_si128(reinterpret_cast<const __m128i*>(k + 4 * g)));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));
    }
    abef = _mm_add_epi32(abef, abef_saved);
    cdgh = _mm_add_epi32(cdgh, cdgh_saved);
  }
  __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  dcba = _mm_blend_epi16(feba, dchg, 0xF0);
  hgfe = _mm_alignr_epi8(dchg, feba, 8);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), dcba);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), hgfe);
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

}  // namespace cairn::crypto

#else

namespace cairn::crypto {
Sha256BlocksFn Sha256BlocksShaNi() { return nullptr; }
}  // namespace cairn::crypto

#endif
