// An incremental HTTP/1.1 request parser: feed it the bytes of a connection
// in pieces of any size; it yields the head, the body in pieces, and the end
// of each request, one event a call. It allocates only the head (bounded by
// Limits::http_header_bytes) and never buffers the body: body pieces are
// views into the caller's input. Bytes after one request's end are left
// unconsumed for the next, so pipelined requests parse one after another.
//
// What it refuses, and with which status, is listed in docs/http.md.
// Loop thread only (no shared state; one parser per connection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/http/request.h"

namespace cairn::http {

struct ParserLimits {
  std::size_t header_bytes = 16384;  // request line + header lines (also bounds trailers)
  std::size_t max_headers = 64;      // header lines (also bounds trailer lines)
};

enum class ParseEvent {
  kNeedMore,    // everything given was consumed; feed more bytes
  kHead,        // a request head is complete: see head() / TakeHead()
  kBody,        // *body holds the next piece of the body (a view into `in`)
  kMessageEnd,  // the request (body and trailers) is complete; the next begins
  kError,       // malformed or over a limit: see error_status(); stays so
};

class Parser {
 public:
  explicit Parser(ParserLimits limits);

  // Consumes a prefix of `in` (*consumed bytes, possibly 0) and reports one
  // event. For kBody, *body is a view into `in` of at most `max_piece` bytes
  // (REQUIRES: max_piece > 0). After kHead, the next call reports the body
  // or kMessageEnd (at once, consuming nothing, for a request without body).
  ParseEvent Parse(std::string_view in, std::size_t max_piece, std::size_t* consumed, std::string_view* body);

  // The head of the current request, valid from kHead until it is taken or
  // the next request's head begins.
  const Request& head() const { return head_; }
  Request TakeHead() { return std::move(head_); }

  // After kError: the HTTP status to answer (400, 414, 431, 501, 505) and
  // why, for the response body and the log.
  int error_status() const { return error_status_; }
  const std::string& error_message() const { return error_message_; }

  // Body bytes of the current request reported so far.
  std::uint64_t body_bytes() const { return body_bytes_; }
  // True between requests: no byte of a next request consumed yet.
  bool idle() const { return state_ == State::kHead && head_buf_.empty(); }

 private:
  enum class State {
    kHead,          // accumulating the request line and headers
    kHeadDone,      // kHead reported; deciding what the body is
    kFixedBody,     // Content-Length bytes remain
    kBodyEnd,       // the fixed body is complete; kMessageEnd comes next
    kChunkSize,     // reading a chunk-size line (with extensions)
    kChunkData,     // inside a chunk's data
    kChunkDataEnd,  // the CRLF after a chunk's data
    kTrailers,      // trailer lines after the last chunk
    kError,
  };

  ParseEvent Fail(int status, std::string message);
  ParseEvent ParseHeadBytes(std::string_view in, std::size_t* consumed);
  bool ParseHead();  // from head_buf_ into head_; false after Fail()
  bool ParseRequestLine(std::string_view line);
  bool ParseFieldLine(std::string_view line, Field* out);
  bool DeriveFraming();
  ParseEvent ParseLine(std::string_view in, std::size_t limit, std::size_t* consumed, bool* complete);
  ParseEvent OnChunkSizeLine();
  ParseEvent OnTrailerLine();

  ParserLimits limits_;
  State state_ = State::kHead;
  std::string head_buf_;   // head bytes so far (bounded by limits_.header_bytes)
  std::string line_buf_;   // a chunk-size or trailer line so far (bounded)
  Request head_;
  std::uint64_t remaining_ = 0;    // of the fixed body or the current chunk
  std::uint64_t body_bytes_ = 0;
  std::size_t head_bytes_ = 0;     // head bytes so far, skipped empty lines included
  std::size_t trailer_bytes_ = 0;
  std::size_t trailer_lines_ = 0;
  int error_status_ = 0;
  std::string error_message_;
};

}  // namespace cairn::http
