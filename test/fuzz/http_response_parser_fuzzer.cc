// libFuzzer target: any bytes through the client's incremental HTTP response
// parser, as a kept-alive connection would deliver them: a run of responses
// fed in pieces whose sizes follow the input's first bytes, each response
// started with Reset (its HEAD flag and body bound also from the input),
// then the end of the connection. Checks that a piece is consumed within its
// bounds and wholly unless a response completes, that a completed response
// has a final status, at most the header and body bounds, and exactly its
// Content-Length (no body for HEAD, 204 and 304), and that an error is
// sticky (for more bytes and for the end) and of the documented kinds. Single-threaded.
#include <charconv>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/response_parser.h"

namespace {

constexpr std::size_t kHeadBytes = 512;
constexpr std::size_t kMaxHeaders = 8;

// The body bounds a response may be read with: small ones are hit often.
constexpr std::uint64_t kBodyBounds[] = {0, 1, 7, 64, 300, 1 << 20};

// The Content-Length the parser must have honoured exactly, if one applies.
bool DeclaredLength(const cairn::http::ClientResponse& r, std::uint64_t* out) {
  if (r.Header("Transfer-Encoding")) return false;
  const std::string* cl = r.Header("Content-Length");
  if (!cl) return false;
  std::string_view s = *cl;
  auto got = std::from_chars(s.data(), s.data() + s.size(), *out);
  return got.ec == std::errc() && got.ptr == s.data() + s.size();
}

// The response just completed obeys its bounds and its framing.
void CheckDone(cairn::http::ResponseParser& parser, bool no_body, std::uint64_t max_body) {
  cairn::http::ClientResponse r = parser.TakeResponse();
  if (r.status < 200 || r.status > 599) __builtin_trap();
  if (r.headers.size() > kMaxHeaders) __builtin_trap();
  if (r.body.size() > max_body) __builtin_trap();
  if ((no_body || r.status == 204 || r.status == 304) && !r.body.empty()) __builtin_trap();
  std::uint64_t length = 0;
  if (!no_body && r.status != 204 && r.status != 304 && DeclaredLength(r, &length) && r.body.size() != length) {
    __builtin_trap();
  }
}

void CheckError(const cairn::http::ResponseParser& parser) {
  cairn::Code code = parser.error().code();
  if (code != cairn::Code::kIntegrity && code != cairn::Code::kFrameTooLarge &&
      code != cairn::Code::kUnavailable) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  // Byte 0: the requests' settings; bytes 1..3: the piece sizes, cycled.
  const std::uint8_t settings = data[0];
  const std::uint8_t steps[3] = {data[1], data[2], data[3]};
  std::string_view in(reinterpret_cast<const char*>(data) + 4, size - 4);

  cairn::http::ResponseParser parser(kHeadBytes, kMaxHeaders);
  int response = 0;
  bool no_body = false;
  std::uint64_t max_body = 0;
  auto reset = [&]() {
    // Response i is to a HEAD request if bit i % 8 is set; the high nibble picks the body bound.
    no_body = (settings >> (response % 8)) & 1;
    max_body = kBodyBounds[(settings >> 4) % (sizeof kBodyBounds / sizeof kBodyBounds[0])];
    parser.Reset(no_body, max_body);
    ++response;
  };
  reset();

  std::size_t fed = 0;
  std::size_t piece_number = 0;
  while (fed < in.size()) {
    const std::size_t step = 1 + steps[piece_number++ % 3] % 97;
    std::string_view piece = in.substr(fed, step);
    std::size_t consumed = 0;
    cairn::http::ResponseParser::Event ev = parser.Feed(piece, &consumed);
    if (consumed > piece.size()) __builtin_trap();
    if (!parser.started()) __builtin_trap();
    fed += consumed;
    if (ev == cairn::http::ResponseParser::Event::kError) {
      CheckError(parser);
      std::size_t again = 0;
      if (fed < in.size() && parser.Feed(in.substr(fed), &again) != cairn::http::ResponseParser::Event::kError) {
        __builtin_trap();
      }
      if (parser.FeedEof() != cairn::http::ResponseParser::Event::kError) __builtin_trap();
      return 0;
    }
    if (ev == cairn::http::ResponseParser::Event::kNeedMore) {
      if (consumed != piece.size()) __builtin_trap();
      continue;
    }
    // kDone: the rest stays for the next response, if the connection allows one.
    if (parser.in_body()) __builtin_trap();
    const bool keep_alive = parser.keep_alive();
    CheckDone(parser, no_body, max_body);
    if (!keep_alive || response > 64) return 0;
    reset();
  }
  cairn::http::ResponseParser::Event end = parser.FeedEof();
  if (end == cairn::http::ResponseParser::Event::kDone) {
    if (parser.keep_alive()) __builtin_trap();
    CheckDone(parser, no_body, max_body);
  } else if (end == cairn::http::ResponseParser::Event::kError) {
    CheckError(parser);
  } else {
    __builtin_trap();
  }
  return 0;
}
