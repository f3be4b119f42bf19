// GF(2^8) log/exp tables, computed by the compiler. Any thread.
#include "fec/gf256.h"

#include <array>

namespace cairn::fec::gf {
namespace {

struct Tables {
  // exp has 510 entries so that exp[log a + log b] needs no reduction mod 255.
  std::array<std::uint8_t, 510> exp{};
  std::array<std::uint8_t, 256> log{};  // log[0] is unused
};

constexpr Tables MakeTables() {
  Tables t;
  unsigned x = 1;
  for (unsigned i = 0; i < 255; ++i) {
    t.exp[i] = static_cast<std::uint8_t>(x);
    t.exp[i + 255] = static_cast<std::uint8_t>(x);
    t.log[x] = static_cast<std::uint8_t>(i);
    x <<= 1;
    if (x & 0x100) x ^= 0x11D;
  }
  return t;
}

constexpr Tables kTables = MakeTables();
static_assert(kTables.exp[8] == 0x1D, "x^8 reduces to x^4+x^3+x^2+1");

}  // namespace

std::uint8_t Mul(std::uint8_t a, std::uint8_t b) {
  if (a == 0 || b == 0) return 0;
  return kTables.exp[kTables.log[a] + kTables.log[b]];
}

std::uint8_t Inv(std::uint8_t a) { return kTables.exp[255 - kTables.log[a]]; }

std::uint8_t Exp(unsigned e) { return kTables.exp[e % 255]; }

void NibbleTable(std::uint8_t c, std::uint8_t out[32]) {
  for (unsigned i = 0; i < 16; ++i) {
    out[i] = Mul(c, static_cast<std::uint8_t>(i));
    out[16 + i] = Mul(c, static_cast<std::uint8_t>(i << 4));
  }
}

}  // namespace cairn::fec::gf
