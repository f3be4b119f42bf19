// The portable kernel: plain C++ for every target, 32-bit ARM included.
//
// A product c·x is one lookup in a 256-byte table of c, built on the stack
// from the 32-byte nibble table (no 64 KiB multiplication table to keep in
// cache). The data is cut into strips that stay in L1 while every output row
// is made from them; two rows at a time are summed over groups of up to four
// inputs, eight bytes at a time, so each input word is split into bytes once
// for both rows (more rows at once spill registers and run slower on x86-64).
// Any thread.
#include <cstring>

#include "fec/gf256.h"
#include "fec/kernel.h"

namespace cairn::fec {
namespace {

constexpr std::size_t kStrip = 4096;  // bytes of each input per strip
constexpr int kGroup = 4;             // inputs summed per pass
constexpr int kRowsAtOnce = 2;        // output rows made per pass

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

// Sums over a group of G inputs into R output rows at once, so each input
// word is loaded and split into bytes once for all R rows. t[r * G + g] is
// the table of input g for row r. Byte s of a word is the byte at shift s
// for reading and writing alike, so endianness does not matter.
template <int G, int R, bool kFirst>
void SumGroup(const FullTable* t, const std::uint8_t* const* in, std::size_t begin, std::size_t end,
              std::uint8_t* const* out) {
  std::size_t i = begin;
  for (; i + 8 <= end; i += 8) {
    std::uint64_t w[G];
    for (int g = 0; g < G; ++g) w[g] = Load8(in[g] + i);
    std::uint64_t v[R] = {};
    for (int s = 0; s < 64; s += 8) {
      unsigned b[G];
      for (int g = 0; g < G; ++g) b[g] = static_cast<unsigned>(w[g] >> s) & 0xFF;
      for (int r = 0; r < R; ++r) {
        unsigned x = 0;
        for (int g = 0; g < G; ++g) x ^= t[r * G + g][b[g]];
        v[r] |= static_cast<std::uint64_t>(x) << s;
      }
    }
    for (int r = 0; r < R; ++r) {
      if constexpr (!kFirst) v[r] ^= Load8(out[r] + i);
      std::memcpy(out[r] + i, &v[r], 8);
    }
  }
  for (; i < end; ++i) {
    for (int r = 0; r < R; ++r) {
      unsigned x = 0;
      for (int g = 0; g < G; ++g) x ^= t[r * G + g][in[g][i]];
      out[r][i] = static_cast<std::uint8_t>(kFirst ? x : out[r][i] ^ x);
    }
  }
}

template <int R, bool kFirst>
void SumGroupOf(int g, const FullTable* t, const std::uint8_t* const* in, std::size_t begin, std::size_t end,
                std::uint8_t* const* out) {
  switch (g) {
    case 1: SumGroup<1, R, kFirst>(t, in, begin, end, out); break;
    case 2: SumGroup<2, R, kFirst>(t, in, begin, end, out); break;
    case 3: SumGroup<3, R, kFirst>(t, in, begin, end, out); break;
    default: SumGroup<4, R, kFirst>(t, in, begin, end, out); break;
  }
}

template <int R>
void SumRows(int k, const std::uint8_t* const* row_tables, const std::uint8_t* const* in, std::size_t begin,
             std::size_t end, std::uint8_t* const* out) {
  FullTable full[kRowsAtOnce * kGroup];
  for (int c = 0; c < k; c += kGroup) {
    const int g = k - c < kGroup ? k - c : kGroup;
    for (int r = 0; r < R; ++r) {
      for (int j = 0; j < g; ++j) Expand(row_tables[r] + 32 * (c + j), full[r * g + j]);
    }
    if (c == 0) {
      SumGroupOf<R, true>(g, full, in + c, begin, end, out);
    } else {
      SumGroupOf<R, false>(g, full, in + c, begin, end, out);
    }
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
  const std::size_t row_bytes = 32 * static_cast<std::size_t>(k);
  for (std::size_t begin = 0; begin < len; begin += kStrip) {
    const std::size_t end = len - begin < kStrip ? len : begin + kStrip;
    for (int r = 0; r < rows; r += kRowsAtOnce) {
      const int count = rows - r < kRowsAtOnce ? rows - r : kRowsAtOnce;
      const std::uint8_t* row_tables[kRowsAtOnce] = {};
      for (int j = 0; j < count; ++j) row_tables[j] = tables + static_cast<std::size_t>(r + j) * row_bytes;
      if (count == 2) {
        SumRows<2>(k, row_tables, in, begin, end, out + r);
      } else {
        SumRows<1>(k, row_tables, in, begin, end, out + r);
      }
    }
  }
}

}  // namespace cairn::fec
