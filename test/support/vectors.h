// Helpers for tests that read the recorded vectors in test/vectors/ (tests
// run from the repository root).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/core/json.h"

namespace cairn::testing {

// The whole file, or a gtest failure and "".
std::string ReadFileOrFail(const std::string& path);
// test/vectors/<name> parsed; its "vectors" array is vectors().
Json LoadVectors(const std::string& name);
// Standard base64 (with padding) to bytes; "" and a gtest failure if invalid.
std::string Base64Decode(std::string_view text);
std::string Hex(std::string_view bytes);
// Hex digits to bytes (the inverse of Hex; a gtest failure on bad input).
std::string Unhex(std::string_view hex);
// A string member of a cJSON object ("" and a gtest failure if absent).
std::string Str(const cJSON* obj, const char* key);
// A non-negative integer member (0 and a gtest failure if absent).
std::uint64_t Num(const cJSON* obj, const char* key);

}  // namespace cairn::testing
