#include "support/vectors.h"

#include <gtest/gtest.h>
#include <cjson/cJSON.h>
#include <mbedtls/base64.h>

#include <fstream>
#include <sstream>
#include <vector>

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
  std::vector<unsigned char> out(text.size());
  std::size_t n = 0;
  if (mbedtls_base64_decode(out.data(), out.size(), &n, reinterpret_cast<const unsigned char*>(text.data()),
                            text.size()) != 0) {
    ADD_FAILURE() << "bad base64: " << text;
    return "";
  }
  return std::string(reinterpret_cast<const char*>(out.data()), n);
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
