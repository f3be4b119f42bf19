// Tahoe-LAFS's base32: RFC 4648's alphabet in lower case
// ("abcdefghijklmnopqrstuvwxyz234567"), no '=' padding. Every field of a
// capability string and every storage index in a GBS URL is written this way.
// Pure functions, any thread.
#pragma once

#include <string>
#include <string_view>

#include "cairn/core/status.h"

namespace cairn {

// 16 bytes -> 26 characters, 32 -> 52.
std::string Base32Encode(std::string_view bytes);

// The inverse of Base32Encode, and strict the way Tahoe is: upper case, '=',
// a length no encoding produces (1, 3 or 6 characters past a multiple of 8),
// and non-zero unused low bits in the last character are all refused, so
// every byte string has exactly one accepted spelling.
Result<std::string> Base32Decode(std::string_view text);

// Length of the encoding of `n` bytes.
constexpr std::size_t Base32Length(std::size_t n) { return (n * 8 + 4) / 5; }

}  // namespace cairn
