// libFuzzer target: any bytes through the HTTP request parser, fed in pieces
// whose sizes come from the input's first byte, under small limits so long
// and many headers hit them. Checks that consumption always advances within
// the input, body pieces are views inside it and within their bound, and
// that body bytes never exceed a declared Content-Length.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/parser.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::size_t step = 1 + data[0] % 64;       // bytes handed over per feed
  std::size_t max_piece = 1 + data[0] / 64;  // body piece bound
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  cairn::http::Parser parser({512, 8});
  std::string buffer;
  std::size_t fed = 0;
  std::uint64_t body_total = 0;
  bool have_length = false;
  std::uint64_t length = 0;
  while (fed < in.size()) {
    std::size_t n = in.size() - fed < step ? in.size() - fed : step;
    buffer.append(in.substr(fed, n));
    fed += n;
    for (int guard = 0;; ++guard) {
      if (guard > 100000) __builtin_trap();  // no progress
      std::size_t consumed = 0;
      std::string_view body;
      cairn::http::ParseEvent ev = parser.Parse(buffer, max_piece, &consumed, &body);
      if (consumed > buffer.size()) __builtin_trap();
      if (ev == cairn::http::ParseEvent::kError) {
        int s = parser.error_status();
        if (s != 400 && s != 414 && s != 417 && s != 431 && s != 501 && s != 505) __builtin_trap();
        return 0;
      }
      if (ev == cairn::http::ParseEvent::kHead) {
        have_length = parser.head().content_length.has_value();
        length = have_length ? *parser.head().content_length : 0;
        body_total = 0;
        if (parser.head().chunked && have_length) __builtin_trap();
      }
      if (ev == cairn::http::ParseEvent::kBody) {
        if (body.empty() || body.size() > max_piece) __builtin_trap();
        if (body.data() < buffer.data() || body.data() + body.size() > buffer.data() + buffer.size()) {
          __builtin_trap();
        }
        body_total += body.size();
        if (have_length && body_total > length) __builtin_trap();
      }
      if (ev == cairn::http::ParseEvent::kMessageEnd && have_length && body_total != length) __builtin_trap();
      buffer.erase(0, consumed);
      if (ev == cairn::http::ParseEvent::kNeedMore) {
        if (!buffer.empty()) __builtin_trap();
        break;
      }
    }
  }
  return 0;
}
