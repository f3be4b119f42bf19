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

  // Bulk data of one request, as counted attachments (docs/control.md).
  struct Streams {
    // The request's input: each call gives the next chunk (at most
    // `max_chunk` bytes) and sets *eof on the last. Empty: no input.
    std::function<Result<std::string>(std::size_t max_chunk, bool* eof)> next_input;
    // The answer's data frames, in order.
    std::function<Status(std::string_view data, bool eof)> on_data;
    std::size_t max_chunk = 1 << 20;
  };
  // Call, with the request's input sent as data frames after it (all of
  // it, before the answer is read: the daemon pauses reading while a chunk
  // is unread, which blocks this process, not the daemon) and the answer's
  // data frames handed to `streams.on_data`.
  Result<Json> CallWithData(const std::string& method, Json params, const Streams& streams, bool wait = true,
                            const std::function<void(const cJSON* event)>& on_progress = nullptr);

 private:
  Status SendAll(std::string_view bytes);
  // Waits for and appends the next bytes from the socket to buffer_.
  Status Fill();
  Result<std::string> ReadBytes(std::size_t n);
  Result<Json> ReadAnswer(long long id, const Streams* streams,
                          const std::function<void(const cJSON* event)>& on_progress);
  Result<std::string> ReadLine();
  int fd_ = -1;
  int timeout_ms_ = 30000;
  long long next_id_ = 1;
  std::string socket_path_;
  std::string buffer_;
};

}  // namespace cairn::cli
