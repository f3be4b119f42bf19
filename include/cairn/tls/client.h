// TLS client connections on the loop: a Dialer connects over TCP, runs the
// client side of a tls::Session and accepts the server only if it presents
// exactly one certificate whose SPKI hash equals the pin (tahoe-protocol.md
// 1.1: no CA, no host name, dates ignored). The result is the same
// tls::Connection (connection.h) the Listener hands out. Loop thread only.
//
// Every result reaches the caller through Post(), also an immediate failure
// (a bad address, a refused connection).
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

struct DialOptions {
  std::string host;  // an IP address or a name (resolved on libuv's thread pool)
  std::uint16_t port = 0;
  std::string spki_pin;  // 43 characters: the NURL's SPKI hash
  std::uint64_t connect_ms = 10000;  // TCP connect and TLS handshake together
};

class Dialer {
 public:
  // `ctx` from Context::NewClient().
  Dialer(Loop& loop, std::shared_ptr<Context> ctx);
  ~Dialer();  // REQUIRES: Close() completed, or Connect() never called.
  Dialer(const Dialer&) = delete;
  Dialer& operator=(const Dialer&) = delete;

  // `done` runs once on a later turn: a connection whose handshake finished
  // and whose server matched the pin, or Unauthenticated (pin mismatch),
  // Unavailable (refused, unreachable, handshake failed), Timeout,
  // InvalidArgument (a bad host), ShuttingDown (Close() came first). The
  // connection must be Close()d or Abort()ed by its user.
  void Connect(const DialOptions& options, Callback<void(Result<std::shared_ptr<Connection>>)> done);
  // Aborts every connection (connecting or open); `done` runs once, on a
  // later turn, once every handle is closed.
  void Close(Task done);
  std::size_t open_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::tls
