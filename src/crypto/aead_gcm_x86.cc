// AES-GCM with AES-NI and PCLMULQDQ, the "aesni-pclmul" kernel, and with
// VAES and VPCLMULQDQ on 256-bit registers, "vaes-avx2", and on 512-bit
// ones, "vaes-avx512" (see aead_kernels.h). Any thread: the object holds only the expanded key and
// the powers of H, which calls read.
//
// CTR: eight counter blocks go through the AES rounds together, so the
// AESENC latency of one block hides behind the other seven. GHASH works in
// the byte-reversed domain of Intel's carry-less multiplication white paper
// (Gueron and Kounavis): blocks are byte-reversed with PSHUFB, a product of
// two 128-bit values is three PCLMULQDQs (Karatsuba), and the 256-bit result
// is shifted left one bit and reduced modulo x^128 + x^7 + x^2 + x + 1. Eight
// blocks are hashed at once as X1*H^8 + X2*H^7 + ... + X8*H with H^1..H^8
// computed at key set-up: the eight products are added unreduced and reduced
// once (aggregated reduction), which leaves one reduction per 128 bytes.
#include "crypto/aead_kernels.h"

#if defined(__x86_64__)

#include <cpuid.h>
#include <immintrin.h>

#include <cstring>

namespace cairn::crypto::aead_internal {
namespace {

#define CAIRN_TARGET_GCM __attribute__((target("aes,pclmul,sse2,ssse3,sse4.1")))
// Helpers are forced inline, so that inside the VAES functions they are
// compiled for that wider target (no mixing of SSE and AVX encodings).
#define CAIRN_INLINE_GCM __attribute__((target("aes,pclmul,sse2,ssse3,sse4.1"), always_inline)) inline

constexpr int kLanes = 8;    // blocks in flight in 128-bit registers
constexpr int kPowers = 16;  // powers of H kept: the 256-bit loop's sixteen blocks

struct alignas(32) GcmKey {
  __m128i rk[15];           // AES round keys (11 or 15 used)
  __m128i h[kPowers];       // H^1 .. H^16, byte-reversed domain
  __m128i h_fold[kPowers];  // for each power: low half ^ high half (Karatsuba's middle factor)
  // For the 256-bit loop's register i (blocks 2i and 2i+1): H^(16-2i) in the
  // low half and H^(15-2i) in the high half, and the same of h_fold.
  std::uint8_t h_pairs[kPowers / 2][32];
  std::uint8_t h_fold_pairs[kPowers / 2][32];
};

CAIRN_INLINE_GCM __m128i Load(const std::uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
CAIRN_INLINE_GCM void Store(std::uint8_t* p, __m128i v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), v);
}
CAIRN_INLINE_GCM __m128i ByteReverse(__m128i v) {
  return _mm_shuffle_epi8(v, _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
}
// The low half of the result is the XOR of v's two halves.
CAIRN_INLINE_GCM __m128i Fold(__m128i v) { return _mm_xor_si128(v, _mm_shuffle_epi32(v, 0x4e)); }

// AES-128 key schedule step: the previous round key with each word XORed
// into the words after it, then XORed with the broadcast assist word.
CAIRN_INLINE_GCM __m128i SpreadXor(__m128i key, __m128i assist) {
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  key = _mm_xor_si128(key, _mm_slli_si128(key, 4));
  return _mm_xor_si128(key, assist);
}

template <int kRcon>
CAIRN_INLINE_GCM __m128i Next128(__m128i key) {
  return SpreadXor(key, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(key, kRcon), 0xff));
}
// AES-256: even round keys take RotWord+SubWord+rcon of the previous odd
// key's last word; odd ones take SubWord only of the previous even key's.
template <int kRcon>
CAIRN_INLINE_GCM __m128i Next256Even(__m128i two_back, __m128i prev) {
  return SpreadXor(two_back, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev, kRcon), 0xff));
}
CAIRN_INLINE_GCM __m128i Next256Odd(__m128i two_back, __m128i prev) {
  return SpreadXor(two_back, _mm_shuffle_epi32(_mm_aeskeygenassist_si128(prev, 0), 0xaa));
}

CAIRN_TARGET_GCM void ExpandKey128(const std::uint8_t* key, __m128i* rk) {
  rk[0] = Load(key);
  rk[1] = Next128<0x01>(rk[0]);
  rk[2] = Next128<0x02>(rk[1]);
  rk[3] = Next128<0x04>(rk[2]);
  rk[4] = Next128<0x08>(rk[3]);
  rk[5] = Next128<0x10>(rk[4]);
  rk[6] = Next128<0x20>(rk[5]);
  rk[7] = Next128<0x40>(rk[6]);
  rk[8] = Next128<0x80>(rk[7]);
  rk[9] = Next128<0x1b>(rk[8]);
  rk[10] = Next128<0x36>(rk[9]);
}

CAIRN_TARGET_GCM void ExpandKey256(const std::uint8_t* key, __m128i* rk) {
  rk[0] = Load(key);
  rk[1] = Load(key + 16);
  rk[2] = Next256Even<0x01>(rk[0], rk[1]);
  rk[3] = Next256Odd(rk[1], rk[2]);
  rk[4] = Next256Even<0x02>(rk[2], rk[3]);
  rk[5] = Next256Odd(rk[3], rk[4]);
  rk[6] = Next256Even<0x04>(rk[4], rk[5]);
  rk[7] = Next256Odd(rk[5], rk[6]);
  rk[8] = Next256Even<0x08>(rk[6], rk[7]);
  rk[9] = Next256Odd(rk[7], rk[8]);
  rk[10] = Next256Even<0x10>(rk[8], rk[9]);
  rk[11] = Next256Odd(rk[9], rk[10]);
  rk[12] = Next256Even<0x20>(rk[10], rk[11]);
  rk[13] = Next256Odd(rk[11], rk[12]);
  rk[14] = Next256Even<0x40>(rk[12], rk[13]);
}

template <int kRounds>
CAIRN_INLINE_GCM __m128i EncryptBlock(const __m128i* rk, __m128i block) {
  block = _mm_xor_si128(block, rk[0]);
  for (int r = 1; r < kRounds; ++r) block = _mm_aesenc_si128(block, rk[r]);
  return _mm_aesenclast_si128(block, rk[kRounds]);
}

// An unreduced product, kept as Karatsuba's three parts.
struct Wide {
  __m128i lo, mid, hi;
};

CAIRN_INLINE_GCM void MulAdd(Wide& acc, __m128i x, __m128i h, __m128i h_fold) {
  acc.lo = _mm_xor_si128(acc.lo, _mm_clmulepi64_si128(x, h, 0x00));
  acc.hi = _mm_xor_si128(acc.hi, _mm_clmulepi64_si128(x, h, 0x11));
  acc.mid = _mm_xor_si128(acc.mid, _mm_clmulepi64_si128(Fold(x), h_fold, 0x00));
}

// Reduces a sum of products to one field element: Karatsuba's middle term
// into place, the 256-bit value shifted left one bit (the byte-reversed
// domain's product comes out one bit short), then the two-phase reduction.
CAIRN_INLINE_GCM __m128i Reduce(const Wide& w) {
  __m128i mid = _mm_xor_si128(w.mid, _mm_xor_si128(w.lo, w.hi));
  __m128i lo = _mm_xor_si128(w.lo, _mm_slli_si128(mid, 8));
  __m128i hi = _mm_xor_si128(w.hi, _mm_srli_si128(mid, 8));

  __m128i carry_lo = _mm_srli_epi32(lo, 31);
  __m128i carry_hi = _mm_srli_epi32(hi, 31);
  lo = _mm_slli_epi32(lo, 1);
  hi = _mm_slli_epi32(hi, 1);
  __m128i cross = _mm_srli_si128(carry_lo, 12);
  lo = _mm_or_si128(lo, _mm_slli_si128(carry_lo, 4));
  hi = _mm_or_si128(hi, _mm_slli_si128(carry_hi, 4));
  hi = _mm_or_si128(hi, cross);

  __m128i a = _mm_xor_si128(_mm_xor_si128(_mm_slli_epi32(lo, 31), _mm_slli_epi32(lo, 30)), _mm_slli_epi32(lo, 25));
  __m128i spill = _mm_srli_si128(a, 4);
  lo = _mm_xor_si128(lo, _mm_slli_si128(a, 12));
  __m128i b = _mm_xor_si128(_mm_xor_si128(_mm_srli_epi32(lo, 1), _mm_srli_epi32(lo, 2)), _mm_srli_epi32(lo, 7));
  b = _mm_xor_si128(b, spill);
  lo = _mm_xor_si128(lo, b);
  return _mm_xor_si128(hi, lo);
}

CAIRN_INLINE_GCM __m128i GfMul(__m128i a, __m128i h, __m128i h_fold) {
  Wide w{_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
  MulAdd(w, a, h, h_fold);
  return Reduce(w);
}

CAIRN_TARGET_GCM void SetUp(const std::uint8_t* key, int rounds, GcmKey* k) {
  if (rounds == 10) {
    ExpandKey128(key, k->rk);
  } else {
    ExpandKey256(key, k->rk);
  }
  __m128i zero = _mm_setzero_si128();
  __m128i h = rounds == 10 ? EncryptBlock<10>(k->rk, zero) : EncryptBlock<14>(k->rk, zero);
  k->h[0] = ByteReverse(h);
  k->h_fold[0] = Fold(k->h[0]);
  for (int i = 1; i < kPowers; ++i) {
    k->h[i] = GfMul(k->h[i - 1], k->h[0], k->h_fold[0]);
    k->h_fold[i] = Fold(k->h[i]);
  }
  for (int i = 0; i < kPowers / 2; ++i) {
    Store(k->h_pairs[i], k->h[kPowers - 1 - 2 * i]);
    Store(k->h_pairs[i] + 16, k->h[kPowers - 2 - 2 * i]);
    Store(k->h_fold_pairs[i], k->h_fold[kPowers - 1 - 2 * i]);
    Store(k->h_fold_pairs[i] + 16, k->h_fold[kPowers - 2 - 2 * i]);
  }
}

// GHASH state `y` over `n` whole blocks at `p` (n a multiple of nothing).
CAIRN_INLINE_GCM __m128i HashBlocks(const GcmKey& k, __m128i y, const std::uint8_t* p, std::size_t n) {
  for (; n >= kLanes; n -= kLanes, p += 16 * kLanes) {
    Wide w{_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    MulAdd(w, _mm_xor_si128(y, ByteReverse(Load(p))), k.h[kLanes - 1], k.h_fold[kLanes - 1]);
    for (int i = 1; i < kLanes; ++i) MulAdd(w, ByteReverse(Load(p + 16 * i)), k.h[kLanes - 1 - i], k.h_fold[kLanes - 1 - i]);
    y = Reduce(w);
  }
  for (; n > 0; --n, p += 16) y = GfMul(_mm_xor_si128(y, ByteReverse(Load(p))), k.h[0], k.h_fold[0]);
  return y;
}

// GHASH state `y` over `len` bytes, the last block zero-padded.
CAIRN_INLINE_GCM __m128i HashPadded(const GcmKey& k, __m128i y, const std::uint8_t* p, std::size_t len) {
  y = HashBlocks(k, y, p, len / 16);
  if (len % 16 != 0) {
    std::uint8_t last[16] = {};
    std::memcpy(last, p + (len & ~std::size_t{15}), len % 16);
    y = HashBlocks(k, y, last, 1);
  }
  return y;
}

// The counter block for 32-bit counter value `ctr` after the 12-byte nonce.
CAIRN_INLINE_GCM __m128i CounterBlock(__m128i nonce_block, std::uint32_t ctr) {
  return _mm_insert_epi32(nonce_block, static_cast<int>(__builtin_bswap32(ctr)), 3);
}

// Where a message stands: the next counter value, the GHASH state, and the
// bytes not yet done.
struct Progress {
  __m128i nonce_block;
  std::uint32_t ctr;
  __m128i y;
  const std::uint8_t* in;
  std::uint8_t* out;
  std::size_t left;
};

// Encrypts (or decrypts) what is left with 128-bit registers, eight blocks
// at a time, then block by block, and hashes the ciphertext: the ciphertext
// is `out` when sealing and `in` when opening, read into registers before
// `out` is written, so in == out works.
template <int kRounds, bool kSeal>
CAIRN_INLINE_GCM void CryptXmm(const GcmKey& k, Progress& p) {
  for (; p.left >= 16 * kLanes; p.left -= 16 * kLanes, p.in += 16 * kLanes, p.out += 16 * kLanes, p.ctr += kLanes) {
    __m128i s[kLanes];
    for (int i = 0; i < kLanes; ++i) s[i] = _mm_xor_si128(CounterBlock(p.nonce_block, p.ctr + i), k.rk[0]);
    for (int r = 1; r < kRounds; ++r) {
      for (int i = 0; i < kLanes; ++i) s[i] = _mm_aesenc_si128(s[i], k.rk[r]);
    }
    Wide w{_mm_setzero_si128(), _mm_setzero_si128(), _mm_setzero_si128()};
    for (int i = 0; i < kLanes; ++i) {
      __m128i x = Load(p.in + 16 * i);
      __m128i c = _mm_xor_si128(x, _mm_aesenclast_si128(s[i], k.rk[kRounds]));
      Store(p.out + 16 * i, c);
      __m128i hashed = ByteReverse(kSeal ? c : x);
      if (i == 0) hashed = _mm_xor_si128(hashed, p.y);
      MulAdd(w, hashed, k.h[kLanes - 1 - i], k.h_fold[kLanes - 1 - i]);
    }
    p.y = Reduce(w);
  }
  while (p.left > 0) {
    std::size_t n = p.left < 16 ? p.left : 16;
    std::uint8_t block[16] = {};
    std::memcpy(block, p.in, n);
    __m128i x = Load(block);
    __m128i c = _mm_xor_si128(x, EncryptBlock<kRounds>(k.rk, CounterBlock(p.nonce_block, p.ctr)));
    Store(block, c);
    std::memcpy(p.out, block, n);
    if (kSeal) {
      std::memset(block + n, 0, 16 - n);
      c = Load(block);
    }
    p.y = GfMul(_mm_xor_si128(p.y, ByteReverse(kSeal ? c : x)), k.h[0], k.h_fold[0]);
    p.ctr += 1;
    p.in += n;
    p.out += n;
    p.left -= n;
  }
}

CAIRN_INLINE_GCM Progress Start(const GcmKey& k, const std::uint8_t* nonce, const std::uint8_t* aad,
                                std::size_t aad_len, const std::uint8_t* in, std::size_t len, std::uint8_t* out) {
  std::uint8_t nonce_bytes[16] = {};
  std::memcpy(nonce_bytes, nonce, 12);
  // Counter 1 is J0, which encrypts the tag; the message starts at 2.
  return Progress{Load(nonce_bytes), 2, HashPadded(k, _mm_setzero_si128(), aad, aad_len), in, out, len};
}

// Hashes the lengths block and writes the tag.
template <int kRounds>
CAIRN_INLINE_GCM void Finish(const GcmKey& k, const Progress& p, std::size_t aad_len, std::size_t len,
                             std::uint8_t* tag) {
  __m128i lengths = _mm_set_epi64x(static_cast<long long>(8 * static_cast<std::uint64_t>(aad_len)),
                                   static_cast<long long>(8 * static_cast<std::uint64_t>(len)));
  __m128i y = GfMul(_mm_xor_si128(p.y, lengths), k.h[0], k.h_fold[0]);
  Store(tag, _mm_xor_si128(ByteReverse(y), EncryptBlock<kRounds>(k.rk, CounterBlock(p.nonce_block, 1))));
}

// The whole of a Seal (kSeal) or of an Open before its tag check.
template <int kRounds, bool kSeal>
CAIRN_TARGET_GCM void CryptAesNi(const GcmKey& k, const std::uint8_t* nonce, const std::uint8_t* aad,
                                 std::size_t aad_len, const std::uint8_t* in, std::size_t len, std::uint8_t* out,
                                 std::uint8_t* tag) {
  Progress p = Start(k, nonce, aad, aad_len, in, len, out);
  CryptXmm<kRounds, kSeal>(k, p);
  Finish<kRounds>(k, p, aad_len, len, tag);
}

// The "vaes-avx2" kernel: VAES and VPCLMULQDQ on 256-bit registers, two
// blocks per instruction, sixteen blocks in flight and hashed per reduction
// with H^16 .. H^1; the xmm code above does the last 255 bytes or fewer.
#define CAIRN_TARGET_VAES __attribute__((target("aes,pclmul,sse2,ssse3,sse4.1,avx,avx2,vaes,vpclmulqdq")))

constexpr int kWideLanes = 8;  // ymm registers of two blocks each

struct Wide256 {
  __m256i lo, mid, hi;
};

template <int kRounds, bool kSeal>
CAIRN_TARGET_VAES void CryptVaes(const GcmKey& k, const std::uint8_t* nonce, const std::uint8_t* aad,
                                 std::size_t aad_len, const std::uint8_t* in, std::size_t len, std::uint8_t* out,
                                 std::uint8_t* tag) {
  Progress p = Start(k, nonce, aad, aad_len, in, len, out);
  if (p.left >= 32 * kWideLanes) {
    __m256i rk[kRounds + 1];
    for (int r = 0; r <= kRounds; ++r) rk[r] = _mm256_broadcastsi128_si256(k.rk[r]);
    // Counter blocks are kept with the counter word little-endian, so one
    // 32-bit add steps them (modulo 2^32, as GCM's inc32 does); a byte
    // shuffle per use turns it big-endian.
    const __m256i ctr_to_be =
        _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 14, 13, 12, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11,
                         15, 14, 13, 12);
    const __m256i reverse = _mm256_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11,
                                             10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    const __m256i step = _mm256_setr_epi32(0, 0, 0, 2, 0, 0, 0, 2);
    __m256i ctr = _mm256_set_m128i(_mm_insert_epi32(p.nonce_block, static_cast<int>(p.ctr + 1), 3),
                                   _mm_insert_epi32(p.nonce_block, static_cast<int>(p.ctr), 3));
    for (; p.left >= 32 * kWideLanes; p.left -= 32 * kWideLanes, p.in += 32 * kWideLanes, p.out += 32 * kWideLanes) {
      __m256i s[kWideLanes];
      for (int i = 0; i < kWideLanes; ++i) {
        s[i] = _mm256_xor_si256(_mm256_shuffle_epi8(ctr, ctr_to_be), rk[0]);
        ctr = _mm256_add_epi32(ctr, step);
      }
      for (int r = 1; r < kRounds; ++r) {
        for (int i = 0; i < kWideLanes; ++i) s[i] = _mm256_aesenc_epi128(s[i], rk[r]);
      }
      Wide256 w{_mm256_setzero_si256(), _mm256_setzero_si256(), _mm256_setzero_si256()};
      for (int i = 0; i < kWideLanes; ++i) {
        __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p.in + 32 * i));
        __m256i c = _mm256_xor_si256(x, _mm256_aesenclast_epi128(s[i], rk[kRounds]));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(p.out + 32 * i), c);
        __m256i hashed = _mm256_shuffle_epi8(kSeal ? c : x, reverse);
        if (i == 0) hashed = _mm256_xor_si256(hashed, _mm256_zextsi128_si256(p.y));
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.h_pairs[i]));
        const __m256i h_fold = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.h_fold_pairs[i]));
        w.lo = _mm256_xor_si256(w.lo, _mm256_clmulepi64_epi128(hashed, h, 0x00));
        w.hi = _mm256_xor_si256(w.hi, _mm256_clmulepi64_epi128(hashed, h, 0x11));
        __m256i folded = _mm256_xor_si256(hashed, _mm256_shuffle_epi32(hashed, 0x4e));
        w.mid = _mm256_xor_si256(w.mid, _mm256_clmulepi64_epi128(folded, h_fold, 0x00));
      }
      Wide sum{_mm_xor_si128(_mm256_castsi256_si128(w.lo), _mm256_extracti128_si256(w.lo, 1)),
               _mm_xor_si128(_mm256_castsi256_si128(w.mid), _mm256_extracti128_si256(w.mid, 1)),
               _mm_xor_si128(_mm256_castsi256_si128(w.hi), _mm256_extracti128_si256(w.hi, 1))};
      p.y = Reduce(sum);
      p.ctr += 2 * kWideLanes;
    }
  }
  CryptXmm<kRounds, kSeal>(k, p);
  Finish<kRounds>(k, p, aad_len, len, tag);
}

// GCC 12's AVX-512 intrinsics start from an "undefined" register that
// -Wmaybe-uninitialized reports as used uninitialized (a false positive of
// the headers, not of this code); clang does not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

// The "vaes-avx512" kernel: the same on 512-bit registers, four blocks per
// instruction, sixteen blocks per reduction in four registers.
#define CAIRN_TARGET_VAES512 \
  __attribute__((target("aes,pclmul,sse2,ssse3,sse4.1,avx,avx2,avx512f,avx512bw,vaes,vpclmulqdq")))

constexpr int kZmmLanes = 4;  // zmm registers of four blocks each

// The XOR of a zmm register's four 128-bit lanes.
__attribute__((target("avx,avx2,avx512f"), always_inline)) inline __m128i Sum4(__m512i v) {
  __m256i half = _mm256_xor_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
  return _mm_xor_si128(_mm256_castsi256_si128(half), _mm256_extracti128_si256(half, 1));
}

// GHASH state `y` over sixteen blocks, four per register, in message order.
__attribute__((target("aes,pclmul,sse2,ssse3,sse4.1,avx,avx2,avx512f,avx512bw,vaes,vpclmulqdq"),
               always_inline)) inline __m128i
Hash16(const __m512i blocks[kZmmLanes], __m128i y, const __m512i h[kZmmLanes], const __m512i h_fold[kZmmLanes],
       __m512i reverse) {
  __m512i lo = _mm512_setzero_si512(), mid = _mm512_setzero_si512(), hi = _mm512_setzero_si512();
  for (int i = 0; i < kZmmLanes; ++i) {
    __m512i hashed = _mm512_shuffle_epi8(blocks[i], reverse);
    if (i == 0) hashed = _mm512_xor_si512(hashed, _mm512_zextsi128_si512(y));
    lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128(hashed, h[i], 0x00));
    hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128(hashed, h[i], 0x11));
    __m512i folded = _mm512_xor_si512(hashed, _mm512_shuffle_epi32(hashed, _MM_PERM_BADC));
    mid = _mm512_xor_si512(mid, _mm512_clmulepi64_epi128(folded, h_fold[i], 0x00));
  }
  return Reduce(Wide{Sum4(lo), Sum4(mid), Sum4(hi)});
}

template <int kRounds, bool kSeal>
CAIRN_TARGET_VAES512 void CryptVaes512(const GcmKey& k, const std::uint8_t* nonce, const std::uint8_t* aad,
                                       std::size_t aad_len, const std::uint8_t* in, std::size_t len,
                                       std::uint8_t* out, std::uint8_t* tag) {
  Progress p = Start(k, nonce, aad, aad_len, in, len, out);
  if (p.left >= 64 * kZmmLanes) {
    __m512i rk[kRounds + 1];
    for (int r = 0; r <= kRounds; ++r) rk[r] = _mm512_broadcast_i32x4(k.rk[r]);
    const __m512i ctr_to_be = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 14, 13, 12));
    const __m512i reverse = _mm512_broadcast_i32x4(_mm_setr_epi8(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0));
    const __m512i step = _mm512_broadcast_i32x4(_mm_setr_epi32(0, 0, 0, 4));
    __m512i ctr = _mm512_broadcast_i32x4(p.nonce_block);
    for (int i = 0; i < 4; ++i) {
      // Lane i counts from p.ctr + i; the counter word stays little-endian.
      __m512i lane = _mm512_broadcast_i32x4(_mm_insert_epi32(p.nonce_block, static_cast<int>(p.ctr + i), 3));
      ctr = _mm512_mask_blend_epi64(static_cast<__mmask8>(3u << (2 * i)), ctr, lane);
    }
    __m512i h[kZmmLanes], h_fold[kZmmLanes];
    for (int i = 0; i < kZmmLanes; ++i) {
      // Register i hashes blocks 4i .. 4i+3 with H^(16-4i) .. H^(13-4i).
      h[i] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(
                                    reinterpret_cast<const __m256i*>(k.h_pairs[2 * i]))),
                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.h_pairs[2 * i + 1])), 1);
      h_fold[i] = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(
                                         reinterpret_cast<const __m256i*>(k.h_fold_pairs[2 * i]))),
                                     _mm256_loadu_si256(reinterpret_cast<const __m256i*>(k.h_fold_pairs[2 * i + 1])), 1);
    }
    // Sealing hashes each stretch's ciphertext while the next stretch goes
    // through the AES rounds (the two are independent, so they overlap);
    // opening hashes the ciphertext it has just read.
    __m512i pending[kZmmLanes];
    bool have_pending = false;
    for (; p.left >= 64 * kZmmLanes; p.left -= 64 * kZmmLanes, p.in += 64 * kZmmLanes, p.out += 64 * kZmmLanes) {
      __m512i s[kZmmLanes];
      for (int i = 0; i < kZmmLanes; ++i) {
        s[i] = _mm512_xor_si512(_mm512_shuffle_epi8(ctr, ctr_to_be), rk[0]);
        ctr = _mm512_add_epi32(ctr, step);
      }
      if (kSeal && have_pending) p.y = Hash16(pending, p.y, h, h_fold, reverse);
      for (int r = 1; r < kRounds; ++r) {
        for (int i = 0; i < kZmmLanes; ++i) s[i] = _mm512_aesenc_epi128(s[i], rk[r]);
      }
      __m512i x[kZmmLanes];
      for (int i = 0; i < kZmmLanes; ++i) {
        x[i] = _mm512_loadu_si512(p.in + 64 * i);
        pending[i] = _mm512_xor_si512(x[i], _mm512_aesenclast_epi128(s[i], rk[kRounds]));
        _mm512_storeu_si512(p.out + 64 * i, pending[i]);
      }
      if (!kSeal) p.y = Hash16(x, p.y, h, h_fold, reverse);
      have_pending = kSeal;
      p.ctr += 4 * kZmmLanes;
    }
    if (have_pending) p.y = Hash16(pending, p.y, h, h_fold, reverse);
  }
  CryptXmm<kRounds, kSeal>(k, p);
  Finish<kRounds>(k, p, aad_len, len, tag);
}

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

using CryptFn = void (*)(const GcmKey&, const std::uint8_t*, const std::uint8_t*, std::size_t, const std::uint8_t*,
                         std::size_t, std::uint8_t*, std::uint8_t*);

class AesGcm final : public Aead {
 public:
  // `width`: 128 (AES-NI), 256 (VAES on ymm) or 512 (VAES on zmm).
  AesGcm(AeadAlgorithm algorithm, const std::uint8_t* key, int width) : algorithm_(algorithm), width_(width) {
    bool aes128 = algorithm == AeadAlgorithm::kAes128Gcm;
    SetUp(key, aes128 ? 10 : 14, &key_);
    if (width == 512) {
      seal_ = aes128 ? CryptVaes512<10, true> : CryptVaes512<14, true>;
      open_ = aes128 ? CryptVaes512<10, false> : CryptVaes512<14, false>;
    } else if (width == 256) {
      seal_ = aes128 ? CryptVaes<10, true> : CryptVaes<14, true>;
      open_ = aes128 ? CryptVaes<10, false> : CryptVaes<14, false>;
    } else {
      seal_ = aes128 ? CryptAesNi<10, true> : CryptAesNi<14, true>;
      open_ = aes128 ? CryptAesNi<10, false> : CryptAesNi<14, false>;
    }
  }
  ~AesGcm() override {
    volatile std::uint8_t* p = reinterpret_cast<volatile std::uint8_t*>(&key_);
    for (std::size_t i = 0; i < sizeof key_; ++i) p[i] = 0;
  }

  AeadAlgorithm algorithm() const override { return algorithm_; }
  const char* kernel() const override {
    return width_ == 512 ? "vaes-avx512" : width_ == 256 ? "vaes-avx2" : "aesni-pclmul";
  }

  void Seal(const std::uint8_t* nonce, std::string_view aad, const std::uint8_t* in, std::size_t len,
            std::uint8_t* out, std::uint8_t* tag) const override {
    seal_(key_, nonce, reinterpret_cast<const std::uint8_t*>(aad.data()), aad.size(), in, len, out, tag);
  }

  Status Open(const std::uint8_t* nonce, std::string_view aad, const std::uint8_t* in, std::size_t len,
              const std::uint8_t* tag, std::uint8_t* out) const override {
    std::uint8_t computed[kAeadTagSize];
    open_(key_, nonce, reinterpret_cast<const std::uint8_t*>(aad.data()), aad.size(), in, len, out, computed);
    if (!TagsEqual(computed, tag)) {
      volatile std::uint8_t* p = out;
      for (std::size_t i = 0; i < len; ++i) p[i] = 0;
      return Status::Integrity("AEAD tag mismatch");
    }
    return Status::Ok();
  }

 private:
  AeadAlgorithm algorithm_;
  int width_;
  CryptFn seal_;
  CryptFn open_;
  GcmKey key_;
};

}  // namespace

bool AesGcmX86Available() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  return (c & bit_AES) != 0 && (c & bit_PCLMUL) != 0 && (c & bit_SSSE3) != 0 && (c & bit_SSE4_1) != 0 &&
         (d & bit_SSE2) != 0;
}

std::unique_ptr<Aead> NewAesGcmX86(AeadAlgorithm algorithm, const std::uint8_t* key) {
  return std::make_unique<AesGcm>(algorithm, key, 128);
}

bool AesGcmVaesAvailable() {
  if (!AesGcmX86Available()) return false;
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2")) return false;  // also checks that the OS saves the ymm registers
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  return (c & bit_VAES) != 0 && (c & bit_VPCLMULQDQ) != 0;
}

std::unique_ptr<Aead> NewAesGcmVaes(AeadAlgorithm algorithm, const std::uint8_t* key) {
  return std::make_unique<AesGcm>(algorithm, key, 256);
}

bool AesGcmVaes512Available() {
  if (!AesGcmVaesAvailable()) return false;
  // These also check that the OS saves the zmm registers.
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}

std::unique_ptr<Aead> NewAesGcmVaes512(AeadAlgorithm algorithm, const std::uint8_t* key) {
  return std::make_unique<AesGcm>(algorithm, key, 512);
}

}  // namespace cairn::crypto::aead_internal

#else

#include <cstdlib>

namespace cairn::crypto::aead_internal {
bool AesGcmX86Available() { return false; }
std::unique_ptr<Aead> NewAesGcmX86(AeadAlgorithm, const std::uint8_t*) { std::abort(); }
bool AesGcmVaesAvailable() { return false; }
std::unique_ptr<Aead> NewAesGcmVaes(AeadAlgorithm, const std::uint8_t*) { std::abort(); }
bool AesGcmVaes512Available() { return false; }
std::unique_ptr<Aead> NewAesGcmVaes512(AeadAlgorithm, const std::uint8_t*) { std::abort(); }
}  // namespace cairn::crypto::aead_internal

#endif
