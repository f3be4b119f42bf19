// Test tool: seals and opens with the AEAD kernels (cairn/crypto/aead.h),
// so test/interop/test_aead.py can check every kernel against OpenSSL
// (Debian's python3-cryptography), which we did not write.
//
//   aead_tool kernels   prints {"aes-128-gcm": [kernels...], ...}
//   aead_tool           reads one JSON request per line on stdin, answers
//                       one JSON line per request on stdout:
//     {"op": "seal", "algorithm": "aes-128-gcm", "kernel": "vaes-avx2",
//      "key": HEX, "nonce": HEX, "aad": HEX, "data": HEX}
//       -> {"ok": true, "ciphertext": HEX, "tag": HEX}
//     {"op": "open", ..., "data": HEX (ciphertext), "tag": HEX}
//       -> {"ok": true, "plaintext": HEX}
//       or {"ok": false, "error": "integrity", "plaintext": HEX}, the
//          output buffer as Open left it (it must be all zeros)
//     {"op": "poly1305", "impl": "avx2", "key": HEX (32 bytes),
//      "data": HEX (whole 16-byte blocks), "parts": [blocks, ...]}
//       -> {"ok": true, "tag": HEX}: the Poly1305 tag with the named
//          implementation ("scalar", or "avx2" where the CPU has it), the
//          blocks handed to it in calls of parts[i] blocks each
//   A malformed request gets {"ok": false, "error": "bad_request: ..."}.
// Exit status 0 unless stdin or stdout fails. Single-threaded.
#include <cjson/cJSON.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "cairn/crypto/aead.h"
#include "crypto/aead_kernels.h"

namespace {

using cairn::crypto::AeadAlgorithm;

std::string ToHex(const std::uint8_t* p, std::size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * n);
  for (std::size_t i = 0; i < n; ++i) {
    out += kDigits[p[i] >> 4];
    out += kDigits[p[i] & 15];
  }
  return out;
}

int Nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool FromHex(const std::string& hex, std::vector<std::uint8_t>* out) {
  if (hex.size() % 2 != 0) return false;
  out->clear();
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    int hi = Nibble(hex[i]), lo = Nibble(hex[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return true;
}

bool ParseAlgorithm(const std::string& name, AeadAlgorithm* out) {
  for (AeadAlgorithm a : {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kChaCha20Poly1305}) {
    if (name == cairn::crypto::AeadAlgorithmName(a)) {
      *out = a;
      return true;
    }
  }
  return false;
}

std::string Field(const cJSON* obj, const char* name) {
  const cJSON* item = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsString(item) ? std::string(item->valuestring) : std::string();
}

std::string Print(cJSON* obj) {
  char* text = cJSON_PrintUnformatted(obj);
  std::string out = text != nullptr ? text : "{}";
  cJSON_free(text);
  cJSON_Delete(obj);
  return out;
}

std::string Error(const std::string& message) {
  cJSON* reply = cJSON_CreateObject();
  cJSON_AddBoolToObject(reply, "ok", false);
  cJSON_AddStringToObject(reply, "error", message.c_str());
  return Print(reply);
}

// The "poly1305" request (see the top of the file).
std::string HandlePoly1305(const cJSON* req) {
  std::vector<std::uint8_t> key, data;
  if (!FromHex(Field(req, "key"), &key) || !FromHex(Field(req, "data"), &data)) return Error("bad_request: bad hex");
  if (key.size() != 32) return Error("bad_request: the key is 32 bytes");
  if (data.size() % 16 != 0) return Error("bad_request: data is whole 16-byte blocks");
  std::vector<std::size_t> parts;
  std::size_t total = 0;
  const cJSON* item = nullptr;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(req, "parts")) {
    if (!cJSON_IsNumber(item) || item->valuedouble < 0) return Error("bad_request: parts are block counts");
    parts.push_back(static_cast<std::size_t>(item->valuedouble));
    total += parts.back();
  }
  if (total != data.size() / 16) return Error("bad_request: parts do not add up to the blocks");
  data.resize(data.size() + 1);  // never empty, so data() is a real pointer
  std::uint8_t tag[16];
  std::string impl = Field(req, "impl");
  if (!cairn::crypto::aead_internal::TEST_Poly1305Split(impl.c_str(), key.data(), data.data(), parts.data(),
                                                        parts.size(), tag)) {
    return Error("bad_request: no Poly1305 \"" + impl + "\" here");
  }
  cJSON* reply = cJSON_CreateObject();
  cJSON_AddBoolToObject(reply, "ok", true);
  cJSON_AddStringToObject(reply, "tag", ToHex(tag, sizeof tag).c_str());
  return Print(reply);
}

std::string Handle(const std::string& line) {
  cJSON* req = cJSON_Parse(line.c_str());
  if (req == nullptr) return Error("bad_request: not JSON");
  if (Field(req, "op") == "poly1305") {
    std::string answer = HandlePoly1305(req);
    cJSON_Delete(req);
    return answer;
  }
  std::string op = Field(req, "op"), algorithm_name = Field(req, "algorithm"), kernel = Field(req, "kernel");
  std::vector<std::uint8_t> key, nonce, aad, data, tag;
  bool hex_ok = FromHex(Field(req, "key"), &key) && FromHex(Field(req, "nonce"), &nonce) &&
                FromHex(Field(req, "aad"), &aad) && FromHex(Field(req, "data"), &data) &&
                FromHex(Field(req, "tag"), &tag);
  cJSON_Delete(req);
  AeadAlgorithm algorithm;
  if (!ParseAlgorithm(algorithm_name, &algorithm)) return Error("bad_request: unknown algorithm");
  if (!hex_ok) return Error("bad_request: bad hex");
  if (nonce.size() != cairn::crypto::kAeadNonceSize) return Error("bad_request: the nonce is 12 bytes");
  auto aead = cairn::crypto::NewAead(algorithm, std::string(key.begin(), key.end()), kernel);
  if (!aead.ok()) return Error("bad_request: " + aead.status().ToString());
  std::string_view aad_view(reinterpret_cast<const char*>(aad.data()), aad.size());
  std::vector<std::uint8_t> out(data.size() + 1);  // never empty, so data() is a real pointer
  cJSON* reply = cJSON_CreateObject();
  if (op == "seal") {
    std::uint8_t t[cairn::crypto::kAeadTagSize];
    (*aead)->Seal(nonce.data(), aad_view, data.data(), data.size(), out.data(), t);
    cJSON_AddBoolToObject(reply, "ok", true);
    cJSON_AddStringToObject(reply, "ciphertext", ToHex(out.data(), data.size()).c_str());
    cJSON_AddStringToObject(reply, "tag", ToHex(t, sizeof t).c_str());
  } else if (op == "open") {
    if (tag.size() != cairn::crypto::kAeadTagSize) {
      cJSON_Delete(reply);
      return Error("bad_request: the tag is 16 bytes");
    }
    for (auto& b : out) b = 0xa5;  // Open must overwrite all of it, with zeros on failure
    cairn::Status st = (*aead)->Open(nonce.data(), aad_view, data.data(), data.size(), tag.data(), out.data());
    cJSON_AddBoolToObject(reply, "ok", st.ok());
    if (!st.ok()) cJSON_AddStringToObject(reply, "error", std::string(cairn::CodeName(st.code())).c_str());
    cJSON_AddStringToObject(reply, "plaintext", ToHex(out.data(), data.size()).c_str());
  } else {
    cJSON_Delete(reply);
    return Error("bad_request: op is seal or open");
  }
  return Print(reply);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "kernels") {
    cJSON* reply = cJSON_CreateObject();
    for (AeadAlgorithm a : {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kChaCha20Poly1305}) {
      cJSON* list = cJSON_AddArrayToObject(reply, cairn::crypto::AeadAlgorithmName(a));
      for (const char* k : cairn::crypto::AeadKernels(a)) cJSON_AddItemToArray(list, cJSON_CreateString(k));
    }
    std::printf("%s\n", Print(reply).c_str());
    return std::fflush(stdout) == 0 ? 0 : 1;
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: aead_tool [kernels] (requests as JSON lines on stdin)\n");
    return 2;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    std::printf("%s\n", Handle(line).c_str());
  }
  return std::fflush(stdout) == 0 && !std::ferror(stdout) ? 0 : 1;
}
