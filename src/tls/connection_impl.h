// The state of one tls::Connection and the two things around it: the owner
// that created it (the Listener or the Dialer: ConnectionOwner) and the
// owner's HandshakeGate, which paces every connection's expensive steps over
// loop turns. The connection's code is src/tls/connection.cc; the owners use
// only the calls under "For the owner". Private to src/tls. Loop thread only.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/tls/connection.h"
#include "cairn/tls/session.h"
#include "cairn/core/completion.h"
#include "tls/record_layer.h"

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
  ~HandshakeGate() { *alive_ = false; }
  // Queues a connection with gated work; it is queued once until it runs.
  void Add(const std::shared_ptr<Connection>& conn);

  static constexpr std::uint64_t kBudgetUs = 2000;

 private:
  void RunTurn();
  Loop& loop_;
  std::deque<std::weak_ptr<Connection>> ready_;
  bool posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Who created a connection: it hears of the finished handshake and of the
// closed handles (then it drops its reference), and gives the gate.
struct ConnectionOwner {
  virtual ~ConnectionOwner() = default;
  // How long a Close() waits for queued bytes to drain.
  virtual std::uint64_t CloseGraceMs() const = 0;
  // The handshake (and pin check) finished; called from a gate step. The
  // owner posts what it announces.
  virtual void HandshakeDone(std::shared_ptr<Connection> conn) = 0;
  // Both handles are closed; the owner drops its reference (which may free
  // the connection).
  virtual void Remove(Connection* c) = 0;
  virtual HandshakeGate& Gate() = 0;
};

using WriteDone = Completion<Status>;

struct Connection::Impl {
  // --- For the owner ---------------------------------------------------------------

  // A new connection with its TCP handle and timer initialized (reading is
  // paused until BeginHandshake). The owner keeps the reference until
  // Remove().
  static std::shared_ptr<Connection> New(ConnectionOwner* owner, Loop& loop);
  static Impl& Of(Connection& c) { return *c.impl_; }
  // Ends the connection with `timeout` unless the handshake finishes within
  // `ms` (for the dialer: the TCP connect too). Arms handshake_guard.
  void ArmHandshakeTimer(std::uint64_t ms, const char* timeout);
  // The handshake's tripwire: the Listener calls Deliver() where it hands
  // out the connection (the Dialer's Connect completion carries its own).
  std::optional<ReentryGuard> handshake_guard;
  // Starts the handshake on a connected socket: sends the first flight if
  // this side speaks first (the client), then reads.
  void BeginHandshake(bool speak_first);
  // Closes a connection that never began (refused at accept).
  void Discard();
  // Ends the connection: posts on_end (if started) and closes the handles.
  void End(Status why);

  Loop* loop = nullptr;
  ConnectionOwner* owner = nullptr;
  Connection* self = nullptr;
  uv_tcp_t tcp;
  std::string peer;
  // Runs the handshake, and is the record layer's engine afterwards when
  // the records are mbedTLS's; freed when the gate opens with cairn's.
  std::unique_ptr<Session> session;
  // Why the connection ended (OK: a clean close).
  Status end_status;

  // --- The connection's own ------------------------------------------------------

  // The handshake gate: null until the handshake (and pin check) finished.
  // Plaintext can be opened and sealed only through it.
  std::unique_ptr<RecordLayer> records;
  void OpenGate();

  // The timer that bounds the handshake, then a Close()'s grace.
  uv_timer_t timer;
  const char* handshake_timeout = "";
  int handles_open = 0;
  bool gated = false;  // queued in the owner's HandshakeGate

  // In: ciphertext fed and not yet decrypted (decrypted by the gate; the
  // socket is not read while a full read buffer waits), and plaintext
  // posted (or held before Start) but not yet taken by on_data.
  std::size_t undecrypted = 0;
  bool cipher_full = false;
  // Large incoming records being opened on the thread pool (one job at a
  // time, so their plaintext is delivered in order); open_more: records
  // may wait after them; read_eof: the peer closed TCP while a job was out
  // (the connection ends once what came before is delivered).
  bool opening = false;
  bool open_more = false;
  bool read_eof = false;
  std::size_t undelivered = 0;
  bool flow_stopped = false;  // by us: too much plaintext not yet delivered
  bool paused = false;        // by the application
  std::string early;          // plaintext that arrived before Start()

  // Out: plaintext written and not yet sealed (a large write is sealed a
  // slice per gate step, and only while the socket's queue is short), and
  // ciphertext handed to libuv and not yet to the kernel. Bytes [pos, end)
  // of `buf` wait to be sealed; shared, so a caller sending part of a
  // larger buffer it keeps need not copy it.
  struct PlainOut {
    std::shared_ptr<const std::string> buf;
    std::size_t pos = 0;
    std::size_t end = 0;
    WriteDone done;
    bool large = false;  // sealed on the thread pool where the record layer can
  };
  std::deque<PlainOut> plain_out;
  std::size_t plain_out_bytes = 0;
  std::size_t queued = 0;

  // Slices of large writes being sealed on the thread pool, in the order of
  // their records' sequence numbers (fixed when each was handed out). A
  // slice is sent when it and every slice before it are sealed; nothing is
  // sealed on the loop while any is out.
  struct Sealing {
    std::string out;
    std::size_t plain_len = 0;
    bool ready = false;
    Status status;
    WriteDone done;
  };
  std::deque<std::shared_ptr<Sealing>> sealing;
  std::size_t sealing_bytes = 0;
  // Ciphertext queued for the socket or being sealed.
  std::size_t OutBytes() const { return queued + sealing_bytes; }

  // The end.
  bool started = false;
  bool ended = false;
  bool app_closed = false;     // the application called Close() or Abort()
  bool closing = false;        // Close(): close_notify after the queued writes
  bool close_pending = false;  // Close() waits for plain_out to be sealed
  bool handles_closed = false;
  Callback<void(std::string)> on_data;
  Callback<void(Status)> on_end;
  // Armed by the Close() or Abort() that ended the connection; on_end
  // then completes that call.
  std::optional<ReentryGuard> end_guard;

  // From the HandshakeGate: the next step of the handshake, or the
  // decryption of what was read and the sealing of queued plaintext.
  void RunGated();
  void QueueGated();
  void StepHandshake();
  void OnRead(ssize_t n, const uv_buf_t* buf);
  // Opens what the record layer holds and delivers it.
  void ReadPlain();
  // Hands the large records at the head of the record layer's input to the
  // thread pool; false if there are none (or the layer opens only here).
  bool OpenOffLoop();
  // A job of OpenOffLoop finished: delivers its plaintext, or ends the
  // connection if a record failed.
  void OnOpened(RecordLayer::Opened opened);
  // The peer closed TCP: what came before is opened and delivered, then
  // the connection ends.
  void ReadToEof();
  void Deliver(std::string plaintext);
  void StartRead();
  // Reads the socket unless the application, the undelivered plaintext or
  // the undecrypted ciphertext holds it.
  void MaybeStartRead();
  // Queues bytes [offset, offset + len) of `buffer` to be sealed, or seals
  // them at once if they are few and nothing waits before them.
  void WriteShared(std::shared_ptr<const std::string> buffer, std::size_t offset, std::size_t len, WriteDone done);
  bool CanWriteNow(std::size_t len) const;
  void WriteNow(std::string_view plaintext, WriteDone done);
  void SealSome();
  // Hands slices of the first queued write to the thread pool; false if
  // the record layer seals only on the loop.
  bool SealOffLoop();
  // Sends the sealed slices at the head of `sealing`.
  void SendSealed();
  void Send(std::string out, WriteDone done);
  // Sends what the session or record layer produced; `done` runs when the
  // kernel has it.
  void Flush(WriteDone done);
  static void OnWritten(uv_write_t* req, int status);
  void FinishClose();
  void CloseHandles();
  void PostEnd();
};

}  // namespace cairn::tls
