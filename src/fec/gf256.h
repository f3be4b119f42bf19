// Arithmetic in GF(2^8) as zfec does it: polynomial x^8+x^4+x^3+x^2+1 (0x11D),
// generator 2. The tables are built at compile time. Any thread.
#pragma once

#include <cstdint>

namespace cairn::fec::gf {

// a·b.
std::uint8_t Mul(std::uint8_t a, std::uint8_t b);
// a⁻¹. REQUIRES: a != 0.
std::uint8_t Inv(std::uint8_t a);
// α^e, α = 2 (e taken mod 255).
std::uint8_t Exp(unsigned e);

// The 32-byte multiply table of `c` that every kernel uses (ISA-L's layout,
// what its gf_vect_mul_init writes): out[i] = c·i and out[16 + i] = c·(i << 4)
// for i < 16, so c·x = out[x & 15] ^ out[16 + (x >> 4)].
void NibbleTable(std::uint8_t c, std::uint8_t out[32]);

}  // namespace cairn::fec::gf
