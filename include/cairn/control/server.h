// The control server: DIR/control.sock (mode 0600), newline-delimited JSON
// frames, bounded per client. Loop thread only.
//
// Each well-formed request is handed to the Dispatcher on a later turn than
// the read that completed it, in arrival order per connection. The handler
// answers through its Reply, exactly once, now or after asynchronous work;
// a Reply whose client has gone away drops the answer. Malformed frames get
// an error frame with "id": null and reading continues; a line over
// Limits::control_frame_bytes gets frame_too_large and the connection closes;
// a connection mid-frame longer than control_idle_ms is closed.
//
// Bulk data travels as counted attachments in data frames, never as a path
// the daemon opens (docs/control.md): {"id":7,"data":0,"bytes":N,"eof":false}
// followed by N raw bytes, N <= Limits::control_chunk_bytes. A request reads
// the data frames the client sends under its id through Request::input; it
// sends its own with Reply::Data. Reading from the socket pauses while a
// request has a whole chunk unread (back-pressure).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "cairn/core/callback.h"
#include "cairn/core/json.h"
#include "cairn/core/limits.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"

namespace cairn::control {

class Connection;

struct InputChunk {
  std::string data;
  bool eof = false;  // the last chunk of the request's input
};

// The data frames a client sends under one request's id, in order.
class InputStream {
 public:
  // The next chunk, on a later turn; one Read at a time. After the eof
  // chunk: FailedPrecondition. If the client breaks the sequence or disconnects:
  // InvalidArgument or Unavailable.
  void Read(Callback<void(Result<InputChunk>)> done);

  struct State;
  std::shared_ptr<State> state;
};

// Checks the `received` input bytes of a request against the size it
// announced (params.size), if it did: InvalidArgument if more arrived, or if
// the input ended (`eof`) short of it. For every command that takes a file.
Status CheckAnnouncedSize(std::optional<std::uint64_t> announced, std::uint64_t received, bool eof);

// The final answer to one request. Movable, not copyable. Destroying an
// unanswered Reply answers it with an Internal error (a handler bug).
class Reply {
 public:
  Reply(std::weak_ptr<Connection> conn, Json id, Loop* loop);
  Reply(Reply&&) noexcept = default;
  Reply& operator=(Reply&&) noexcept = default;
  ~Reply();

  void Result(Json result);
  void Error(const Status& status);
  // A non-final frame {"id": ..., "progress": event} (docs/control.md);
  // dropped if the request was answered or the client left.
  void Progress(Json event);
  // A data frame with `bytes` (at most Limits::control_chunk_bytes) as its
  // attachment; `eof` marks the last. Dropped if the client left. Call
  // WhenWritable between chunks so that the output stays bounded.
  void Data(std::string bytes, bool eof);
  // Runs `ready` on a later turn once at most one chunk waits to be written
  // to the client (or the client has gone).
  void WhenWritable(Task ready);
  // True while the client that asked is still connected.
  bool connected() const;

 private:
  void Send(const char* key, Json body);
  std::weak_ptr<Connection> conn_;
  Json id_;
  Loop* loop_ = nullptr;
  std::uint64_t data_seq_ = 0;
  bool done_ = false;
};

struct Request {
  std::string method;
  Json params;  // an object (empty object when the client sent none)
  uid_t peer_uid = 0;
  bool wait = true;  // "wait": false asks a task-running method to answer once queued
  InputStream input;  // the data frames sent under this request's id
};

class Dispatcher {
 public:
  virtual ~Dispatcher() = default;
  // Called on a later turn than the read; must answer `reply` exactly once.
  virtual void Handle(Request request, Reply reply) = 0;
};

struct ServerStats {
  std::uint64_t connections_accepted = 0;
  std::uint64_t connections_open = 0;
  std::uint64_t requests = 0;
  std::uint64_t bad_frames = 0;
};

class Server {
 public:
  Server(Loop& loop, const Limits& limits, Dispatcher& dispatcher);
  ~Server();  // REQUIRES: Close() completed, or Start() was never called.
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds `path` (removing a stale socket file first: the caller must hold
  // the node lock) with mode 0600 and starts accepting. Synchronous. Call
  // Close() afterwards whether or not it succeeded.
  Status Start(const std::string& path);
  // Stops accepting, closes every connection; `done` runs on a later turn
  // once every handle is closed.
  void Close(Task done);

  const ServerStats& stats() const { return stats_; }

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  ServerStats stats_;
};

}  // namespace cairn::control
