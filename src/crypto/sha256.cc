// SHA-256: the streaming state, the portable compression function, and the
// choice of implementation (see the header). Any thread.
#include "crypto/sha256.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace cairn::crypto {
namespace {

constexpr std::uint32_t kInit[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                    0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};

constexpr std::uint32_t kK[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

inline std::uint32_t Rotr(std::uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

Sha256BlocksFn Choose() {
  const char* forced = std::getenv("CAIRN_SHA256");
  if (forced && std::strcmp(forced, "portable") == 0) return Sha256BlocksPortable;
  Sha256BlocksFn ni = Sha256BlocksShaNi();
  return ni ? ni : Sha256BlocksPortable;
}

// Chosen once, before any thread can race on it (a function-local static is
// initialised thread-safely).
Sha256BlocksFn Blocks() {
  static const Sha256BlocksFn fn = Choose();
  return fn;
}

// The two-message function that goes with Blocks(): SHA-NI's, or two calls.
void BlocksTwoSeparately(std::uint32_t state_a[8], const std::uint8_t* a, std::uint32_t state_b[8],
                         const std::uint8_t* b, std::size_t blocks) {
  Blocks()(state_a, a, blocks);
  Blocks()(state_b, b, blocks);
}

Sha256Blocks2Fn Blocks2() {
  static const Sha256Blocks2Fn fn = [] {
    Sha256Blocks2Fn ni = Sha256Blocks2ShaNi();
    return Blocks() != Sha256BlocksPortable && ni ? ni : BlocksTwoSeparately;
  }();
  return fn;
}

}  // namespace

const std::uint32_t* Sha256RoundConstants() { return kK; }

void Sha256BlocksPortable(std::uint32_t state[8], const std::uint8_t* data, std::size_t blocks) {
  for (; blocks > 0; --blocks, data += 64) {
    std::uint32_t w[64];
    for (int i = 0; i < 16; ++i) {
      w[i] = (std::uint32_t{data[4 * i]} << 24) | (std::uint32_t{data[4 * i + 1]} << 16) |
             (std::uint32_t{data[4 * i + 2]} << 8) | std::uint32_t{data[4 * i + 3]};
    }
    for (int i = 16; i < 64; ++i) {
      std::uint32_t s0 = Rotr(w[i - 15], 7) ^ Rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
      std::uint32_t s1 = Rotr(w[i - 2], 17) ^ Rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
      w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    std::uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
    std::uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
    for (int i = 0; i < 64; ++i) {
      std::uint32_t t1 = h + (Rotr(e, 6) ^ Rotr(e, 11) ^ Rotr(e, 25)) + ((e & f) ^ (~e & g)) + kK[i] + w[i];
      std::uint32_t t2 = (Rotr(a, 2) ^ Rotr(a, 13) ^ Rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      h = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    state[0] += a;
    state[1] += b;
    state[2] += c;
    state[3] += d;
    state[4] += e;
    state[5] += f;
    state[6] += g;
    state[7] += h;
  }
}

const char* Sha256Implementation() { return Blocks() == Sha256BlocksPortable ? "portable" : "sha-ni"; }

Sha256State::Sha256State() { std::memcpy(h_, kInit, sizeof h_); }

void Sha256State::Update(const void* data, std::size_t len) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  total_ += len;
  if (buffered_ > 0) {
    std::size_t take = 64 - buffered_ < len ? 64 - buffered_ : len;
    std::memcpy(buf_ + buffered_, p, take);
    buffered_ += take;
    p += take;
    len -= take;
    if (buffered_ < 64) return;
    Blocks()(h_, buf_, 1);
    buffered_ = 0;
  }
  if (len >= 64) {
    Blocks()(h_, p, len / 64);
    p += len / 64 * 64;
    len %= 64;
  }
  if (len > 0) {
    std::memcpy(buf_, p, len);
    buffered_ = len;
  }
}

void Sha256State::UpdateTwo(Sha256State& a, const void* pa, Sha256State& b, const void* pb, std::size_t len) {
  const auto* da = static_cast<const std::uint8_t*>(pa);
  const auto* db = static_cast<const std::uint8_t*>(pb);
  // Each state first completes its partial block; then both have whole
  // blocks from their own offsets.
  std::size_t head_a = a.buffered_ > 0 ? std::min(64 - a.buffered_, len) : 0;
  std::size_t head_b = b.buffered_ > 0 ? std::min(64 - b.buffered_, len) : 0;
  a.Update(da, head_a);
  b.Update(db, head_b);
  std::size_t blocks = std::min(len - head_a, len - head_b) / 64;
  if (blocks > 0) {
    Blocks2()(a.h_, da + head_a, b.h_, db + head_b, blocks);
    a.total_ += blocks * 64;
    b.total_ += blocks * 64;
  }
  a.Update(da + head_a + blocks * 64, len - head_a - blocks * 64);
  b.Update(db + head_b + blocks * 64, len - head_b - blocks * 64);
}

void Sha256State::Finish(std::uint8_t out[32]) {
  std::uint64_t bits = total_ * 8;
  std::uint8_t pad[72] = {0x80};
  std::size_t pad_len = (buffered_ < 56 ? 56 : 120) - buffered_;
  for (int i = 0; i < 8; ++i) pad[pad_len + i] = static_cast<std::uint8_t>(bits >> (56 - 8 * i));
  Update(pad, pad_len + 8);
  for (int i = 0; i < 8; ++i) {
    out[4 * i] = static_cast<std::uint8_t>(h_[i] >> 24);
    out[4 * i + 1] = static_cast<std::uint8_t>(h_[i] >> 16);
    out[4 * i + 2] = static_cast<std::uint8_t>(h_[i] >> 8);
    out[4 * i + 3] = static_cast<std::uint8_t>(h_[i]);
  }
}

}  // namespace cairn::crypto
