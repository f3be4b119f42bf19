// The state of one tls::Connection, shared by the two sides that create
// connections: the Listener (accepted) and the Dialer (connected). Private to
// the tls layer. Loop thread only.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/tls/server.h"
#include "cairn/tls/session.h"

namespace cairn::tls {

// Who created a connection: it hears of the finished handshake and of the
// closed handles (then it drops its reference), and gives the loop.
struct ConnectionOwner {
  virtual ~ConnectionOwner() = default;
  virtual Loop& OwnerLoop() = 0;
  // How long a Close() waits for queued bytes to drain.
  virtual std::uint64_t CloseGraceMs() const = 0;
  // Called from the libuv read callback; the owner posts what it announces.
  virtual void HandshakeDone(std::shared_ptr<Connection> conn) = 0;
  virtual void Remove(Connection* c) = 0;
};

struct Connection::Impl {
  ConnectionOwner* owner = nullptr;
  Connection* self = nullptr;
  uv_tcp_t tcp;
  uv_timer_t handshake_timer;
  int handles_open = 0;
  std::unique_ptr<Session> session;
  std::string peer;
  bool handshake_done = false;
  bool started = false;
  bool paused = false;        // by the application
  bool flow_stopped = false;  // by us: too much plaintext not yet delivered
  std::size_t undelivered = 0;  // plaintext posted (or held early) but not yet taken by on_data
  bool ended = false;
  bool app_closed = false;  // the application called Close() or Abort()
  bool closing = false;
  bool handles_closed = false;
  Status end_status;
  std::string early;  // plaintext that arrived before Start()
  std::size_t queued = 0;
  Callback<void(std::string)> on_data;
  Callback<void(Status)> on_end;

  void OnRead(ssize_t n, const uv_buf_t* buf);
  void StartRead();
  void Deliver(std::string plaintext);
  void Flush(Callback<void(Status)> done);
  void End(Status why);
  void CloseHandles();
  void PostEnd();
};

}  // namespace cairn::tls
