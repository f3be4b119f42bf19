#include "support/vectors.h"

#include <gtest/gtest.h>
#include <cjson/cJSON.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "cairn/crypto/base64.h"

namespace cairn::testing {

std::string ReadFileOrFail(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    ADD_FAILURE() << "cannot read " << path << " (tests run from the repository root)";
    return "";
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

Json LoadVectors(const std::string& name) {
  auto json = Json::Parse(ReadFileOrFail("test/vectors/" + name));
  if (!json.ok()) {
    ADD_FAILURE() << name << ": " << json.status().ToString();
    return Json::NewObject();
  }
  return std::move(json).value();
}

std::string Base64Decode(std::string_view text) {
  auto decoded = crypto::Base64Decode(text);
  if (!decoded.ok()) {
    ADD_FAILURE() << "bad base64: " << text;
    return "";
  }
  return std::move(decoded).value();
}

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string Unhex(std::string_view hex) {
  auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
  };
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    int hi = digit(hex[i]), lo = digit(hex[i + 1]);
    if (hi < 0 || lo < 0 || hex.size() % 2 != 0) {
      ADD_FAILURE() << "bad hex: " << hex;
      return "";
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string Str(const cJSON* obj, const char* key) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsString(item)) {
    ADD_FAILURE() << "vector lacks string \"" << key << "\"";
    return "";
  }
  return item->valuestring;
}

std::uint64_t Num(const cJSON* obj, const char* key) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(item) || item->valuedouble < 0) {
    ADD_FAILURE() << "vector lacks number \"" << key << "\"";
    return 0;
  }
  return static_cast<std::uint64_t>(item->valuedouble);
}

}  // namespace cairn::testing
