// An incremental HTTP/1.1 response parser for the client: feed the bytes of
// a connection in pieces of any size; it collects one response (head and a
// body bounded by the request's limit), then reports kDone and leaves any
// further bytes unconsumed. Interim 1xx responses are skipped. Loop thread
// only (one parser per connection).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/core/status.h"
#include "cairn/http/client.h"

namespace cairn::http {

class ResponseParser {
 public:
  enum class Event { kNeedMore, kDone, kError };

  ResponseParser(std::size_t head_bytes, std::size_t max_headers);

  // Starts a new response; `no_body`: the request was HEAD.
  void Reset(bool no_body, std::uint64_t max_body);
  // Consumes a prefix of `in` (*consumed bytes).
  Event Feed(std::string_view in, std::size_t* consumed);
  // The connection ended: completes a body delimited by the close.
  Event FeedEof();

  ClientResponse TakeResponse() { return std::move(response_); }
  // After kDone: whether the connection may carry another request.
  bool keep_alive() const { return keep_alive_; }
  // True once a byte of this response (or an interim one) arrived.
  bool started() const { return started_; }
  // True while the body is being read.
  bool in_body() const { return state_ != State::kHead && state_ != State::kDone && state_ != State::kError; }
  // After kError: Integrity (malformed) or FrameTooLarge (over a bound).
  const Status& error() const { return error_; }

 private:
  enum class State { kHead, kFixed, kUntilClose, kChunkSize, kChunkData, kChunkCrlf, kTrailers, kDone, kError };

  Event Fail(Status why);
  Event OnHead();  // parses head_ into response_; chooses the body framing
  Event AppendBody(std::string_view data);
  // Takes one CRLF-terminated line from `in` into line_ (bounded); true when complete.
  bool TakeLine(std::string_view in, std::size_t* used, bool* too_long);

  std::size_t head_limit_;
  std::size_t max_headers_;
  State state_ = State::kHead;
  bool no_body_ = false;
  bool keep_alive_ = true;
  bool started_ = false;
  std::uint64_t max_body_ = 0;
  std::uint64_t remaining_ = 0;  // of the fixed body or the current chunk
  std::string head_;
  std::string line_;
  ClientResponse response_;
  Status error_;
};

}  // namespace cairn::http
