// Tahoe-LAFS base32 (see the header for the rules).
#include "cairn/core/base32.h"

#include <cstdint>

namespace cairn {
namespace {

constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

int DigitValue(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

}  // namespace

std::string Base32Encode(std::string_view bytes) {
  std::string out;
  out.reserve(Base32Length(bytes.size()));
  std::uint32_t acc = 0;  // at most 12 pending bits
  int bits = 0;
  for (unsigned char b : bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kAlphabet[(acc >> bits) & 31]);
    }
    acc &= (1u << bits) - 1;
  }
  if (bits > 0) out.push_back(kAlphabet[(acc << (5 - bits)) & 31]);
  return out;
}

Result<std::string> Base32Decode(std::string_view text) {
  switch (text.size() % 8) {
    case 1:
    case 3:
    case 6:
      return Status::InvalidArgument("base32 text of " + std::to_string(text.size()) +
                                     " characters is not the encoding of any byte string");
    default:
      break;
  }
  std::string out;
  out.reserve(text.size() * 5 / 8);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    int v = DigitValue(text[i]);
    if (v < 0) {
      return Status::InvalidArgument("base32 text has a character outside [a-z2-7] at position " +
                                     std::to_string(i));
    }
    acc = (acc << 5) | static_cast<std::uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return Status::InvalidArgument("base32 text has non-zero padding bits in its last character");
  return out;
}

}  // namespace cairn
