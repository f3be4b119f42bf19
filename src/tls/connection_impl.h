// The state of one tls::Connection, shared by the two sides that create
// connections: the Listener (accepted) and the Dialer (connected). Private to
// the tls layer. Loop thread only.
#pragma once

#include <uv.h>

#include <deque>
#include <memory>
#include <string>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/tls/server.h"
#include "cairn/tls/session.h"

namespace cairn::tls {

// Spreads the TLS layer's expensive work over loop turns: handshake steps
// (an ECDHE key and a signature, a few milliseconds each here), the
// encryption of large writes (a 1 MiB answer costs about 6 ms with
// mbedTLS 2.28's AES-GCM) and the decryption of what the sockets delivered
// (up to 64 KiB per connection per read). Without it, a burst of new
// connections, sixteen 1 MiB reads completing in one turn, or a hundred
// uploads' records arriving in one poll ran in one loop iteration and
// stalled every other connection (gbs_bench measured 250 ms and 95 ms). The
// gate runs queued steps from one posted task until it has spent its
// budget, at least one step a turn, and leaves the rest for the next turn,
// after the loop has polled again; a connection with more to do goes to the
// back. At most one gate task is queued at a time: a connection that queues
// itself while the gate runs joins the running turn's list.
class HandshakeGate {
 public:
  explicit HandshakeGate(Loop& loop) : loop_(loop) {}
  // Queues a connection with gated work; it is queued once until it runs.
  void Add(const std::shared_ptr<Connection>& conn);

  static constexpr std::uint64_t kBudgetUs = 2000;

 private:
  void RunTurn();
  Loop& loop_;
  std::deque<std::weak_ptr<Connection>> ready_;
  bool posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

 public:
  ~HandshakeGate() { *alive_ = false; }
};

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
  virtual HandshakeGate& Gate() = 0;
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
  bool gated = false;  // queued in the owner's HandshakeGate
  // Ciphertext fed to the session and not yet decrypted: decrypted by the
  // gate; the socket is not read while this much waits.
  std::size_t undecrypted = 0;
  bool cipher_full = false;
  // Plaintext written and not yet encrypted: a large write is encrypted a
  // slice per gate step, and only while the socket's queue is short.
  // Bytes [pos, end) of `buf` wait to be encrypted. Shared, so a caller
  // sending part of a larger buffer it keeps need not copy it.
  struct PlainOut {
    std::shared_ptr<const std::string> buf;
    std::size_t pos = 0;
    std::size_t end = 0;
    Callback<void(Status)> done;
  };
  std::deque<PlainOut> plain_out;
  void WriteNow(std::string_view plaintext, Callback<void(Status)> done);
  std::size_t plain_out_bytes = 0;
  bool close_pending = false;  // Close() waits for plain_out to be encrypted
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
  // From the HandshakeGate: the next step of the handshake or of the
  // encryption of queued plaintext.
  void RunGated();
  void QueueGated();
  void StepHandshake();
  void EncryptSome();
  void FinishClose();
  // Decrypts and delivers what the session holds.
  void ReadPlain();
  void StartRead();
  // Reads the socket unless the application, the undelivered plaintext or
  // the undecrypted ciphertext holds it.
  void MaybeStartRead();
  void Deliver(std::string plaintext);
  void Flush(Callback<void(Status)> done);
  void End(Status why);
  void CloseHandles();
  void PostEnd();
};

}  // namespace cairn::tls
