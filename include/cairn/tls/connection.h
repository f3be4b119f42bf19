// tls::Connection: one TLS connection over a TCP socket on the loop, as the
// Listener (server.h: accepted) and the Dialer (client.h: connected, pinned)
// hand it out. Loop thread only.
//
// Every event reaches the application through Post(): data, the end of the
// connection, write completions. A connection reports its end exactly once.
//
// Inside (src/tls/connection.cc) a connection has four parts, and the
// listener and the dialer only create it and hear of its handshake:
// - The socket: ciphertext in from libuv reads, out through uv_write.
// - The handshake gate: until the handshake has finished (on the client side
//   that includes the SPKI pin check, which the session makes part of the
//   handshake), nothing application-level flows: the connection has no
//   record layer yet, so no plaintext can be opened or sealed, and it is not
//   handed to the application.
// - The record layer (src/tls/record_layer.h), the seam for the record
//   protection: after the handshake every byte goes through five calls:
//   Feed ciphertext in, Open records into plaintext, Seal plaintext into
//   records, SealClose for close_notify, TakeOutgoing for the socket.
//   cairn's own records (src/tls/own_records.cc) or mbedTLS's session are
//   behind them, chosen in one place (Connection::Impl::OpenGate); with
//   cairn's, the mbedTLS session is freed there.
// - The buffers and their bounds: plaintext decrypted and not yet delivered
//   (64 KiB, then reading stops), ciphertext read and not yet decrypted (one
//   read), plaintext written and not yet sealed (kept by reference, sealed a
//   64 KiB slice per turn), ciphertext not yet taken by the kernel (1 MiB,
//   then sealing waits). Expensive steps (handshake messages, decrypting,
//   sealing large writes) are paced over loop turns by the owner's gate.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "cairn/core/callback.h"
#include "cairn/core/status.h"

namespace cairn::tls {

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
  // Encrypts and sends. `done` (optional) runs exactly once, on a later
  // turn, once the bytes are handed to the kernel, or with the error that
  // ended the connection (Unavailable if it was already closed: also then
  // on a later turn, never inside this call).
  void Write(std::string plaintext, Callback<void(Status)> done = nullptr);
  // The same for bytes [offset, offset + len) of `buffer`, which is kept (not
  // copied) until they are encrypted: a large body is sent piece by piece
  // without a copy of each piece.
  void Write(std::shared_ptr<const std::string> buffer, std::size_t offset, std::size_t len,
             Callback<void(Status)> done = nullptr);
  // Sends close_notify after the queued writes, then closes the socket (at
  // the latest handshake_ms later, if the peer does not take the bytes).
  // on_end (if started and not yet ended) runs on a later turn with OK.
  void Close();
  // Closes at once (no close_notify), e.g. on a protocol violation. on_end
  // (if started and not yet ended) runs on a later turn with `why`.
  void Abort(const Status& why);

  std::size_t queued_write_bytes() const;
  // Plaintext read and posted but not yet passed to on_data; for tests.
  std::size_t TEST_undelivered_bytes() const;
  // Whose records protect the application data once the handshake has
  // finished: "cairn" (src/tls/own_records.cc) or "mbedtls"; "" before.
  const char* TEST_record_layer() const;
  const std::string& peer() const;
  bool open() const;

  // The state (src/tls/connection_impl.h); it creates connections.
  struct Impl;

 private:
  Connection();
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::tls
