// The control-socket protocol shared by cairnd and cairn (docs/control.md):
// newline-delimited JSON frames over DIR/control.sock.
//
//   request  {"v":1,"id":7,"method":"status","params":{}}
//   result   {"id":7,"result":{...}}
//   error    {"id":7,"error":{"code":"not_found","message":"...","retryable":false}}
//
// Any thread (pure functions).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/core/json.h"
#include "cairn/core/status.h"

namespace cairn::control {

inline constexpr int kProtocolVersion = 1;
inline constexpr char kSocketName[] = "control.sock";

// True for codes a client may retry unchanged (busy, unavailable, timeout...).
bool Retryable(Code code);

// {"code":..., "message":..., "retryable":...} for a non-OK status.
Json ErrorToJson(const Status& status);
// The Status an error object describes; an unknown code becomes Internal
// with the original code in the message.
Status ErrorFromJson(const cJSON* error);

// One request frame, parsed and checked against the envelope rules.
struct ParsedRequest {
  Status error;         // non-OK: answer with it (and the id, if one was read)
  bool bad_frame = false;  // the line was not a JSON object at all
  Json id;              // the request's id when it could be read, else empty
  std::string method;
  Json params;          // an object (empty when the client sent none)
  bool wait = true;
};
// Parses one line (without its newline). Never fails hard: every problem is
// reported in `error`.
ParsedRequest ParseRequest(std::string_view line);

// The head of a frame that carries an attachment: a top-level "bytes".
struct AttachmentHead {
  bool present = false;  // the line has a top-level "bytes"
  Status error;          // set when present but malformed (the line's raw bytes still follow)
  Json id;
  bool data = false;     // a data frame: {"id", "data": seq, "bytes", "eof"?}
  std::uint64_t seq = 0;
  std::uint64_t bytes = 0;
  bool eof = false;
};
// Reads the attachment head of a line, if it has one. A line that is not a
// JSON object has none (it is answered as a bad request frame).
AttachmentHead ParseAttachmentHead(std::string_view line, std::uint64_t max_bytes);

// A data frame's line (with its newline); the attachment follows it.
std::string DataFrameLine(const cJSON* id, std::uint64_t seq, std::size_t bytes, bool eof);

// A request frame (one line, with its newline). `params` may be empty (null).
// `wait` false asks a task-running method to answer with the task id at once.
std::string RequestFrame(long long id, std::string_view method, Json params, bool wait = true);

}  // namespace cairn::control
