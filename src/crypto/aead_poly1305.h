// Poly1305 (RFC 8439 §2.5) with two 64-bit limbs, a small third one and
// 128-bit products, for CPUs whose compiler has unsigned __int128 (64-bit
// ones); the vector code (aead_poly1305_avx2.cc, aead_poly1305_ifma.cc)
// continues the same state and hands short runs and tails to it. Pure
// functions on caller-owned state: any thread.
//
// h = h0 + h1 2^64 + h2 2^128 is kept below about 2^131 (h2 small). r's
// clamping leaves the low two bits of r1 zero, so h1 r1 2^128 =
// h1 (r1 / 4) 2^130, which is 5 h1 (r1 / 4) modulo p = 2^130 - 5: that is
// s1 = r1 + r1 / 4 below.
#pragma once

#if defined(__SIZEOF_INT128__)

#include <cstddef>
#include <cstdint>

namespace cairn::crypto::aead_internal {

struct Poly1305State {
  std::uint64_t r0, r1, s1, pad0, pad1;
  std::uint64_t h0, h1, h2;
  // r^1 .. r^8 in five 26-bit limbs each, for the vector code
  // (aead_poly1305_avx2.cc), which computes them on its first use.
  std::uint32_t powers[8][5];
  bool powers_ready;
  // r^16 .. r^1 in three limbs of 44, 44 and 42 bits, limb-major
  // (powers44[i][k] is limb i of r^(16 - k)), for the IFMA code
  // (aead_poly1305_ifma.cc), which computes them on its first use.
  alignas(64) std::uint64_t powers44[3][16];
  bool powers44_ready;
};

inline std::uint64_t Poly1305Load64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

// Starts a MAC under the 32-byte one-time key (r, then s).
inline void Poly1305Init(Poly1305State* st, const std::uint8_t key[32]) {
  st->r0 = Poly1305Load64(key) & 0x0ffffffc0fffffffULL;
  st->r1 = Poly1305Load64(key + 8) & 0x0ffffffc0ffffffcULL;
  st->s1 = st->r1 + (st->r1 >> 2);
  st->pad0 = Poly1305Load64(key + 16);
  st->pad1 = Poly1305Load64(key + 24);
  st->h0 = st->h1 = st->h2 = 0;
  st->powers_ready = false;
  st->powers44_ready = false;
}

// Adds one whole 16-byte block (with its 2^128 bit) to h and multiplies by
// r, reducing partly: what is at 2^130 and above comes back times 5.
__attribute__((always_inline)) inline void Poly1305Block(std::uint64_t& h0, std::uint64_t& h1, std::uint64_t& h2,
                                                         std::uint64_t r0, std::uint64_t r1, std::uint64_t s1,
                                                         const std::uint8_t* p) {
  using U128 = unsigned __int128;
  U128 d = static_cast<U128>(h0) + Poly1305Load64(p);
  h0 = static_cast<std::uint64_t>(d);
  d = static_cast<U128>(h1) + Poly1305Load64(p + 8) + static_cast<std::uint64_t>(d >> 64);
  h1 = static_cast<std::uint64_t>(d);
  h2 += static_cast<std::uint64_t>(d >> 64) + 1;
  U128 d0 = static_cast<U128>(h0) * r0 + static_cast<U128>(h1) * s1;
  U128 d1 = static_cast<U128>(h0) * r1 + static_cast<U128>(h1) * r0 + static_cast<U128>(h2) * s1;
  std::uint64_t d2 = h2 * r0;
  d1 += static_cast<std::uint64_t>(d0 >> 64);
  d2 += static_cast<std::uint64_t>(d1 >> 64);
  h0 = static_cast<std::uint64_t>(d0);
  h1 = static_cast<std::uint64_t>(d1);
  h2 = d2 & 3;
  d = static_cast<U128>(h0) + (d2 >> 2) * 5;
  h0 = static_cast<std::uint64_t>(d);
  d = static_cast<U128>(h1) + static_cast<std::uint64_t>(d >> 64);
  h1 = static_cast<std::uint64_t>(d);
  h2 += static_cast<std::uint64_t>(d >> 64);
}

inline void Poly1305Blocks(Poly1305State* st, const std::uint8_t* p, std::size_t blocks) {
  std::uint64_t h0 = st->h0, h1 = st->h1, h2 = st->h2;
  for (; blocks > 0; --blocks, p += 16) Poly1305Block(h0, h1, h2, st->r0, st->r1, st->s1, p);
  st->h0 = h0;
  st->h1 = h1;
  st->h2 = h2;
}

// Writes the tag. h is below 2p: p is subtracted once if h >= p, i.e. if
// h + 5 reaches 2^130, chosen by mask so that the time does not depend on h.
inline void Poly1305Finish(Poly1305State* st, std::uint8_t tag[16]) {
  using U128 = unsigned __int128;
  U128 d = static_cast<U128>(st->h0) + 5;
  std::uint64_t g0 = static_cast<std::uint64_t>(d);
  d = static_cast<U128>(st->h1) + static_cast<std::uint64_t>(d >> 64);
  std::uint64_t g1 = static_cast<std::uint64_t>(d);
  std::uint64_t g2 = st->h2 + static_cast<std::uint64_t>(d >> 64);
  std::uint64_t mask = 0 - (g2 >> 2);
  std::uint64_t h0 = (st->h0 & ~mask) | (g0 & mask);
  std::uint64_t h1 = (st->h1 & ~mask) | (g1 & mask);
  d = static_cast<U128>(h0) + st->pad0;
  h0 = static_cast<std::uint64_t>(d);
  h1 = h1 + st->pad1 + static_cast<std::uint64_t>(d >> 64);
  for (int i = 0; i < 8; ++i) {
    tag[i] = static_cast<std::uint8_t>(h0 >> (8 * i));
    tag[8 + i] = static_cast<std::uint8_t>(h1 >> (8 * i));
  }
}

}  // namespace cairn::crypto::aead_internal

#endif
