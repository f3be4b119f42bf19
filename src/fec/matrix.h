// zfec's systematic encoding matrix and GF(2^8) matrix inversion
// (docs/formats/fec.md). Matrices are row-major byte arrays. Any thread.
#pragma once

#include <cstdint>
#include <vector>

namespace cairn::fec {

// Rows k..n-1 of zfec's n×k encoding matrix E, (n-k)·k bytes: the
// coefficients of the parity blocks k..n-1 (rows 0..k-1 are the identity).
// REQUIRES: 1 <= k <= n <= 256.
std::vector<std::uint8_t> ParityMatrix(int k, int n);

// Inverts the k×k matrix `m` in place. False (and `m` unspecified) when it
// is singular.
bool Invert(std::uint8_t* m, int k);

}  // namespace cairn::fec
