// tls::Listener: accepts TCP connections (at most max_connections), runs the
// server side of a tls::Session over each, and hands the application each
// connection whose handshake finished (connection.h). Loop thread only.
//
// Every event reaches the application through Post(), never inside the call
// that caused it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/tls/connection.h"
#include "cairn/tls/session.h"

namespace cairn::tls {

struct ListenerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;       // 0: the kernel picks one (see Listener::port())
  std::uint64_t handshake_ms = 10000;
  std::uint64_t max_connections = 256;
};

class Listener {
 public:
  Listener(Loop& loop, std::shared_ptr<Context> ctx);
  ~Listener();  // REQUIRES: Close() completed, or Start() never called.

  // Binds and listens. `on_connection` runs on a later turn for each
  // connection whose handshake finished. Synchronous; call Close() after
  // it whether or not it succeeded.
  Status Start(const ListenerOptions& options, Callback<void(std::shared_ptr<Connection>)> on_connection);
  // The bound port.
  std::uint16_t port() const;
  // Stops accepting and aborts every connection (ShuttingDown); `done` runs
  // once, on a later turn, when every handle is closed.
  void Close(Task done);
  std::size_t open_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::tls
