// AES-128 CTR key stream with AES-NI (see aes_ni.h). Any thread.
//
// Key expansion: each round key is the previous one with every word XORed
// into the words after it (three shifted XORs), then XORed with the
// broadcast last word of AESKEYGENASSIST (SubWord(RotWord(w3)) ^ rcon).
#include "crypto/aes_ni.h"

#if defined(__x86_64__) || defined(__i386__)

#include <cpuid.h>
#include <immintrin.h>

#define CAIRN_TARGET_AES __attribute__((target("aes,sse2,ssse3")))

namespace cairn::crypto {
namespace {

template <int kRcon>
CAIRN_TARGET_AES inline __m128i NextRoundKey(__m128i key) {
  __m128i assist = _mm_shuffle_epi32(_mm_aeskeygenassist_si128(key, kRcon), 0xff);
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  return _mm_xor_si128(key, assist);
}

CAIRN_TARGET_AES inline __m128i CounterBlock(std::uint64_t block) {
  // Bytes 0-7 zero, bytes 8-15 the block number big-endian.
  return _mm_set_epi64x(static_cast<long long>(__builtin_bswap64(block)), 0);
}

}  // namespace

bool AesNiAvailable() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_AES) != 0 && (c & bit_SSSE3) != 0 && (d & bit_SSE2) != 0;
}

CAIRN_TARGET_AES void AesNiExpandKey128(const std::uint8_t key[16], std::uint8_t round_keys[176]) {
  __m128i k[11];
  k[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(key));
  k[1] = NextRoundKey<0x01>(k[0]);
  k[2] = NextRoundKey<0x02>(k[1]);
  k[3] = NextRoundKey<0x04>(k[2]);
  k[4] = NextRoundKey<0x08>(k[3]);
  k[5] = NextRoundKey<0x10>(k[4]);
  k[6] = NextRoundKey<0x20>(k[5]);
  k[7] = NextRoundKey<0x40>(k[6]);
  k[8] = NextRoundKey<0x80>(k[7]);
  k[9] = NextRoundKey<0x1b>(k[8]);
  k[10] = NextRoundKey<0x36>(k[9]);
  for (int i = 0; i < 11; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(round_keys + 16 * i), k[i]);
}

CAIRN_TARGET_AES void AesNiCtrXor(const std::uint8_t round_keys[176], std::uint64_t first_block, std::uint8_t* data,
                                  std::size_t blocks) {
  __m128i k[11];
  for (int i = 0; i < 11; ++i) k[i] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(round_keys + 16 * i));
  constexpr int kLanes = 8;
  for (; blocks >= kLanes; blocks -= kLanes, first_block += kLanes, data += 16 * kLanes) {
    __m128i s[kLanes];
    for (int i = 0; i < kLanes; ++i) s[i] = _mm_xor_si128(CounterBlock(first_block + i), k[0]);
    for (int r = 1; r < 10; ++r) {
      for (int i = 0; i < kLanes; ++i) s[i] = _mm_aesenc_si128(s[i], k[r]);
    }
    for (int i = 0; i < kLanes; ++i) {
      auto* p = reinterpret_cast<__m128i*>(data + 16 * i);
      _mm_storeu_si128(p, _mm_xor_si128(_mm_loadu_si128(p), _mm_aesenclast_si128(s[i], k[10])));
    }
  }
  for (; blocks > 0; --blocks, ++first_block, data += 16) {
    __m128i s = _mm_xor_si128(CounterBlock(first_block), k[0]);
    for (int r = 1; r < 10; ++r) s = _mm_aesenc_si128(s, k[r]);
    auto* p = reinterpret_cast<__m128i*>(data);
    _mm_storeu_si128(p, _mm_xor_si128(_mm_loadu_si128(p), _mm_aesenclast_si128(s, k[10])));
  }
}

}  // namespace cairn::crypto

#else

#include <cstdlib>

namespace cairn::crypto {
bool AesNiAvailable() { return false; }
void AesNiExpandKey128(const std::uint8_t*, std::uint8_t*) { std::abort(); }
void AesNiCtrXor(const std::uint8_t*, std::uint64_t, std::uint8_t*, std::size_t) { std::abort(); }
}  // namespace cairn::crypto

#endif
