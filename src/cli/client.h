// A blocking client of the control socket, for the short-lived cairn
// command (the daemon never blocks; this process may). Single-threaded.
#pragma once

#include <functional>
#include <string>

#include "cairn/core/json.h"
#include "cairn/core/status.h"

namespace cairn::cli {

class ControlClient {
 public:
  ~ControlClient();
  // Unavailable (exit 69) if no cairnd answers on DIR/control.sock.
  Status Connect(const std::string& node_dir, int timeout_ms);
  // Sends one request and waits for its final frame. Returns the "result"
  // object, or the error the daemon answered with. `wait` false: a task's
  // id instead of its result (--async).
  // `on_progress` (optional) gets each progress event of the request.
  Result<Json> Call(const std::string& method, Json params, bool wait = true,
                    const std::function<void(const cJSON* event)>& on_progress = nullptr);

 private:
  Result<std::string> ReadLine();
  int fd_ = -1;
  int timeout_ms_ = 30000;
  long long next_id_ = 1;
  std::string socket_path_;
  std::string buffer_;
};

}  // namespace cairn::cli
