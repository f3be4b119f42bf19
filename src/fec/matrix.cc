// zfec's encoding matrix: E = V · T⁻¹, where V is the n×k Vandermonde matrix
// of the points 0, α⁰, α¹, … and T its top k×k square, so that E's top is the
// identity (systematic). The inverse is unique, so plain Gauss-Jordan gives
// zfec's bytes even though zfec uses a Vandermonde-specific inverter. Any thread.
#include "fec/matrix.h"

#include <cstddef>
#include <utility>

#include "cairn/core/status.h"
#include "fec/gf256.h"

namespace cairn::fec {
namespace {

// Row r of V: point 0 for r = 0, else α^(r-1); entry c is point^c.
void VandermondeRow(int r, int k, std::uint8_t* row) {
  for (int c = 0; c < k; ++c) {
    if (r == 0) {
      row[c] = c == 0 ? 1 : 0;
    } else {
      row[c] = gf::Exp(static_cast<unsigned>((r - 1) * c));
    }
  }
}

}  // namespace

std::vector<std::uint8_t> ParityMatrix(int k, int n) {
  const std::size_t kk = static_cast<std::size_t>(k);
  std::vector<std::uint8_t> top(kk * kk);
  for (int r = 0; r < k; ++r) VandermondeRow(r, k, &top[static_cast<std::size_t>(r) * kk]);
  // T has distinct evaluation points, so it is always invertible.
  CAIRN_CHECK(Invert(top.data(), k), "zfec's Vandermonde top square is singular");
  std::vector<std::uint8_t> parity(static_cast<std::size_t>(n - k) * kk);
  std::vector<std::uint8_t> v(kk);
  for (int r = k; r < n; ++r) {
    VandermondeRow(r, k, v.data());
    std::uint8_t* out = &parity[static_cast<std::size_t>(r - k) * kk];
    for (std::size_t c = 0; c < kk; ++c) {
      std::uint8_t sum = 0;
      for (std::size_t j = 0; j < kk; ++j) sum ^= gf::Mul(v[j], top[j * kk + c]);
      out[c] = sum;
    }
  }
  return parity;
}

bool Invert(std::uint8_t* m, int k) {
  const std::size_t kk = static_cast<std::size_t>(k);
  // Gauss-Jordan on [m | I]; `inv` starts as I and ends as m⁻¹.
  std::vector<std::uint8_t> inv(kk * kk, 0);
  for (std::size_t i = 0; i < kk; ++i) inv[i * kk + i] = 1;
  for (std::size_t col = 0; col < kk; ++col) {
    std::size_t pivot = col;
    while (pivot < kk && m[pivot * kk + col] == 0) ++pivot;
    if (pivot == kk) return false;
    if (pivot != col) {
      for (std::size_t j = 0; j < kk; ++j) {
        std::swap(m[pivot * kk + j], m[col * kk + j]);
        std::swap(inv[pivot * kk + j], inv[col * kk + j]);
      }
    }
    const std::uint8_t scale = gf::Inv(m[col * kk + col]);
    for (std::size_t j = 0; j < kk; ++j) {
      m[col * kk + j] = gf::Mul(m[col * kk + j], scale);
      inv[col * kk + j] = gf::Mul(inv[col * kk + j], scale);
    }
    for (std::size_t r = 0; r < kk; ++r) {
      const std::uint8_t f = m[r * kk + col];
      // Skipping zero factors keeps decoding cheap: rows of systematic
      // blocks are mostly zeros.
      if (r == col || f == 0) continue;
      for (std::size_t j = 0; j < kk; ++j) {
        m[r * kk + j] ^= gf::Mul(f, m[col * kk + j]);
        inv[r * kk + j] ^= gf::Mul(f, inv[col * kk + j]);
      }
    }
  }
  for (std::size_t i = 0; i < kk * kk; ++i) m[i] = inv[i];
  return true;
}

}  // namespace cairn::fec
