// The control-socket protocol shared by cairnd and cairn (docs/control.md):
// newline-delimited JSON frames over DIR/control.sock.
//
//   request  {"v":1,"id":7,"method":"status","params":{}}
//   result   {"id":7,"result":{...}}
//   error    {"id":7,"error":{"code":"not_found","message":"...","retryable":false}}
//
// Any thread (pure functions).
#pragma once

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

// A request frame (one line, with its newline). `params` may be empty (null).
// `wait` false asks a task-running method to answer with the task id at once.
std::string RequestFrame(long long id, std::string_view method, Json params, bool wait = true);

}  // namespace cairn::control
