// The portable kernel: plain C++ for every target, 32-bit ARM included.
//
// A product c·x is one lookup in a 256-byte table of c, built on the stack
// from the 32-byte nibble table (no 64 KiB multiplication table to keep in
// cache). The data is cut into strips that stay in L1 while every output row
// is made from them; a row is summed over groups of up to four inputs, eight
// bytes at a time. Any thread.
#include <cstring>

#include "fec/gf256.h"
#include "fec/kernel.h"

namespace cairn::fec {
namespace {

constexpr std::size_t kStrip = 4096;  // bytes of each input per strip
constexpr int kGroup = 4;             // inputs summed per pass

using FullTable = std::uint8_t[256];

void Expand(const std::uint8_t* nibble, std::uint8_t* full) {
  for (int h = 0; h < 16; ++h) {
    for (int l = 0; l < 16; ++l) full[h * 16 + l] = nibble[16 + h] ^ nibble[l];
  }
}

inline std::uint64_t Load8(const std::uint8_t* p) {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Byte s of the word (in the machine's order: what Load8 put there) of the
// sum over the group. Same shifts for reading and writing, so endianness
// does not matter.
template <int G>
inline std::uint64_t SumWord(const FullTable* t, const std::uint64_t* w) {
  std::uint64_t out = 0;
  for (int s = 0; s < 64; s += 8) {
    unsigned v = t[0][(w[0] >> s) & 0xFF];
    if constexpr (G > 1) v ^= t[1][(w[1] >> s) & 0xFF];
    if constexpr (G > 2) v ^= t[2][(w[2] >> s) & 0xFF];
    if constexpr (G > 3) v ^= t[3][(w[3] >> s) & 0xFF];
    out |= static_cast<std::uint64_t>(v) << s;
  }
  return out;
}

// out[begin, end) = (or ^=, unless kFirst) Σ over the group of t[g]·in[g].
template <int G, bool kFirst>
void SumGroup(const FullTable* t, const std::uint8_t* const* in, std::size_t begin, std::size_t end,
              std::uint8_t* out) {
  std::size_t i = begin;
  for (; i + 8 <= end; i += 8) {
    std::uint64_t w[G];
    for (int g = 0; g < G; ++g) w[g] = Load8(in[g] + i);
    std::uint64_t v = SumWord<G>(t, w);
    if constexpr (!kFirst) v ^= Load8(out + i);
    std::memcpy(out + i, &v, 8);
  }
  for (; i < end; ++i) {
    unsigned v = t[0][in[0][i]];
    if constexpr (G > 1) v ^= t[1][in[1][i]];
    if constexpr (G > 2) v ^= t[2][in[2][i]];
    if constexpr (G > 3) v ^= t[3][in[3][i]];
    out[i] = static_cast<std::uint8_t>(kFirst ? v : out[i] ^ v);
  }
}

template <bool kFirst>
void SumGroupOf(int g, const FullTable* t, const std::uint8_t* const* in, std::size_t begin, std::size_t end,
                std::uint8_t* out) {
  switch (g) {
    case 1: SumGroup<1, kFirst>(t, in, begin, end, out); break;
    case 2: SumGroup<2, kFirst>(t, in, begin, end, out); break;
    case 3: SumGroup<3, kFirst>(t, in, begin, end, out); break;
    default: SumGroup<4, kFirst>(t, in, begin, end, out); break;
  }
}

}  // namespace

void InitTablesNibble(int k, int rows, const std::uint8_t* coefs, std::uint8_t* tables) {
  const std::size_t count = static_cast<std::size_t>(k) * static_cast<std::size_t>(rows);
  for (std::size_t i = 0; i < count; ++i) gf::NibbleTable(coefs[i], tables + 32 * i);
}

void DotNibbleRange(std::size_t begin, std::size_t end, int k, int rows, const std::uint8_t* tables,
                    const std::uint8_t* const* in, std::uint8_t* const* out) {
  for (int r = 0; r < rows; ++r) {
    const std::uint8_t* row = tables + 32 * static_cast<std::size_t>(r) * static_cast<std::size_t>(k);
    for (std::size_t i = begin; i < end; ++i) {
      unsigned v = 0;
      for (int c = 0; c < k; ++c) {
        const std::uint8_t x = in[c][i];
        v ^= row[32 * c + (x & 15)] ^ row[32 * c + 16 + (x >> 4)];
      }
      out[r][i] = static_cast<std::uint8_t>(v);
    }
  }
}

void DotPortable(std::size_t len, int k, int rows, const std::uint8_t* tables, const std::uint8_t* const* in,
                 std::uint8_t* const* out) {
  FullTable full[kGroup];
  for (std::size_t begin = 0; begin < len; begin += kStrip) {
    const std::size_t end = len - begin < kStrip ? len : begin + kStrip;
    for (int r = 0; r < rows; ++r) {
      const std::uint8_t* row = tables + 32 * static_cast<std::size_t>(r) * static_cast<std::size_t>(k);
      for (int c = 0; c < k; c += kGroup) {
        const int g = k - c < kGroup ? k - c : kGroup;
        for (int j = 0; j < g; ++j) Expand(row + 32 * (c + j), full[j]);
        if (c == 0) {
          SumGroupOf<true>(g, full, in + c, begin, end, out[r]);
        } else {
          SumGroupOf<false>(g, full, in + c, begin, end, out[r]);
        }
      }
    }
  }
}

}  // namespace cairn::fec
