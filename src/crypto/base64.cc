// Base64 over mbedTLS's codec (the same calls in 2.28 and 3.6).
#include "cairn/crypto/base64.h"

#include <mbedtls/base64.h>

namespace cairn::crypto {
namespace {

const unsigned char* Bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  std::size_t n = 0;
  mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &n, Bytes(bytes), bytes.size());
  out.resize(n);
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  // mbedTLS tolerates missing padding; the padded form is the only one here.
  if (text.size() % 4 != 0) return Status::InvalidArgument("not valid base64 (length)");
  std::string out(text.size(), '\0');
  std::size_t n = 0;
  if (mbedtls_base64_decode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &n, Bytes(text),
                            text.size()) != 0) {
    return Status::InvalidArgument("not valid base64");
  }
  out.resize(n);
  return out;
}

std::string Base64UrlNoPadEncode(std::string_view bytes) {
  std::string s = Base64Encode(bytes);
  while (!s.empty() && s.back() == '=') s.pop_back();
  for (char& c : s) {
    if (c == '+') c = '-';
    if (c == '/') c = '_';
  }
  return s;
}

Result<std::string> Base64UrlNoPadDecode(std::string_view text) {
  if (text.size() % 4 == 1) return Status::InvalidArgument("not valid URL-safe base64 (length)");
  std::string std_text;
  std_text.reserve(text.size() + 3);
  for (char c : text) {
    if (c == '+' || c == '/' || c == '=') return Status::InvalidArgument("not URL-safe base64");
    std_text.push_back(c == '-' ? '+' : c == '_' ? '/' : c);
  }
  while (std_text.size() % 4 != 0) std_text.push_back('=');
  return Base64Decode(std_text);
}

}  // namespace cairn::crypto
