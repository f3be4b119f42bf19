// Big-endian integers in byte strings: the one place cairn reads and writes
// them (share layouts, offsets tables, checkstrings). Any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace cairn {

// The `bytes`-byte (1..8) big-endian integer at `at` of `in`.
// REQUIRES: at + bytes <= in.size() (callers check the length first).
inline std::uint64_t GetBe(std::string_view in, std::size_t at, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | static_cast<std::uint8_t>(in[at + i]);
  return v;
}

// The same over raw bytes.
inline std::uint64_t GetBe(const std::uint8_t* p, std::size_t bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

// Appends the low `bytes` bytes of `v`, most significant first.
inline void PutBe(std::string& out, std::uint64_t v, std::size_t bytes) {
  for (std::size_t i = bytes; i-- > 0;) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Writes the low `bytes` bytes of `v` at `p`, most significant first.
inline void PutBe(std::uint8_t* p, std::uint64_t v, std::size_t bytes) {
  for (std::size_t i = bytes; i-- > 0; v >>= 8) p[i] = static_cast<std::uint8_t>(v);
}

}  // namespace cairn
