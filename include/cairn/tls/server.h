// TLS over TCP on the loop: a listener that accepts connections, runs the
// server side of a tls::Session over each, and hands the application
// plaintext. Loop thread only.
//
// Every event reaches the application through Post(): data, the end of a
// connection, write completions. A connection reports its end exactly once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/tls/session.h"

namespace cairn::tls {

class Listener;
class Dialer;
class HandshakeGate;

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  ~Connection();

  // Starts delivering plaintext. `on_data` runs on later turns with each
  // chunk the peer sent; `on_end` runs once when the connection is over
  // (OK after a clean close by either side, else why it failed), after
  // every chunk read before the end. Neither runs after on_end, and on_data
  // does not run after this side's Close() or Abort().
  void Start(Callback<void(std::string)> on_data, Callback<void(Status)> on_end);
  // Backpressure: no on_data while paused (chunks already decrypted may
  // still arrive: at most 64 KiB plus one socket read's plaintext, which is
  // also all a connection ever holds undelivered while not paused).
  void PauseReading();
  void ResumeReading();
  // Encrypts and sends. `done` (optional) runs on a later turn once the
  // bytes are handed to the kernel, or with the error that ended the
  // connection.
  void Write(std::string plaintext, Callback<void(Status)> done = nullptr);
  // The same for bytes [offset, offset + len) of `buffer`, which is kept (not
  // copied) until they are encrypted: a large body is sent piece by piece
  // without a copy of each piece.
  void Write(std::shared_ptr<const std::string> buffer, std::size_t offset, std::size_t len,
             Callback<void(Status)> done = nullptr);
  // Sends close_notify after the queued writes, then closes the socket (at
  // the latest handshake_ms later, if the peer does not take the bytes).
  void Close();
  // Closes at once (no close_notify), e.g. on a protocol violation.
  void Abort(const Status& why);

  std::size_t queued_write_bytes() const;
  // Plaintext read and posted but not yet passed to on_data; for tests.
  std::size_t TEST_undelivered_bytes() const;
  const std::string& peer() const;
  bool open() const;

  struct Impl;

 private:
  friend class Listener;
  friend class Dialer;
  friend class HandshakeGate;
  Connection();
  std::unique_ptr<Impl> impl_;
};

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
  // Stops accepting and closes every connection; `done` runs on a later
  // turn when every handle is closed.
  void Close(Task done);
  std::size_t open_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::tls
