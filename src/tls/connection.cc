// tls::Connection: the socket, the handshake gate, the record layer and the
// buffers between them (include/cairn/tls/connection.h describes the parts),
// and the HandshakeGate that paces their expensive steps. Loop thread only.
// Raw libuv callbacks only move bytes through the session and post
// application events.
#include "tls/connection_impl.h"

#include <uv.h>

#include <algorithm>
#include <functional>

#include "cairn/core/status.h"
#include "tls/own_records.h"

namespace cairn::tls {
namespace {

char g_read_buf[64 * 1024];  // the loop reads one socket at a time

// libuv reads a readable socket up to 32 times in one iteration, and each
// read posts its plaintext: without a bound, one turn could queue megabytes
// for an application that has not yet run. Reading stops while this much is
// undelivered, so a connection holds at most this plus one read's plaintext.
constexpr std::size_t kMaxUndelivered = 64 * 1024;
// Ciphertext read and not yet decrypted: one full read buffer stops reading
// until the gate has decrypted it.
constexpr std::size_t kMaxUndecrypted = sizeof g_read_buf;

// Writes up to this size are sealed at once; larger ones a slice per gate
// step (a slice costs about 0.4 ms), and none while this much ciphertext
// waits for the socket. At 256 KiB a single client's 1 MiB reads slowed from
// 56 to 22 MiB/s in gbs_bench (each quarter waited a write completion);
// 1 MiB keeps them at full speed and holds no more ciphertext than
// encrypting a 1 MiB answer at once did.
constexpr std::size_t kEncryptSlice = 64 * 1024;
constexpr std::size_t kCipherHighWater = 1024 * 1024;

// A write of at least this much is sealed on the thread pool, this much a
// job, when the record layer can (cairn's own records; mbedTLS's cannot):
// the loop then only moves buffers. Up to kCipherHighWater is out at once.
constexpr std::size_t kOffloadSlice = 256 * 1024;

// An incoming record whose ciphertext is at least this long (a bulk
// sender's 16 KiB records) is opened on the thread pool with the whole
// records right after it, when the record layer can: the loop then only
// moves buffers. Smaller ones (requests, alerts) are opened on the loop.
constexpr std::size_t kOffloadOpenRecord = 8 * 1024;

// One uv_write of ciphertext; it owns its bytes until libuv is done.
struct WriteReq {
  uv_write_t req;
  std::string data;
  Loop* loop;
  std::weak_ptr<Connection> conn;
  WriteDone done;
};

}  // namespace

Connection::Connection() : impl_(std::make_unique<Impl>()) { impl_->self = this; }
Connection::~Connection() = default;

// --- Creation and the handshake ----------------------------------------------------

std::shared_ptr<Connection> Connection::Impl::New(ConnectionOwner* owner, Loop& loop) {
  std::shared_ptr<Connection> conn(new Connection());
  Impl& c = *conn->impl_;
  c.loop = &loop;
  c.owner = owner;
  uv_tcp_init(loop.uv(), &c.tcp);
  c.tcp.data = &c;
  uv_timer_init(loop.uv(), &c.timer);
  c.timer.data = &c;
  c.handles_open = 2;
  // Reading starts with BeginHandshake; events before the application's
  // Start() are held (early, and on_end is posted by Start).
  c.paused = true;
  return conn;
}

void Connection::Impl::ArmHandshakeTimer(std::uint64_t ms, const char* timeout) {
  handshake_timeout = timeout;
  handshake_guard.emplace(*loop, "tls handshake");
  uv_timer_start(
      &timer,
      [](uv_timer_t* t) {
        auto* im = static_cast<Impl*>(t->data);
        im->End(Status::Timeout(im->handshake_timeout));
      },
      ms, 0);
}

void Connection::Impl::BeginHandshake(bool speak_first) {
  if (speak_first) {
    bool done = false;
    Status st = session->Handshake(&done);  // the ClientHello
    Flush(WriteDone());
    if (!st.ok()) {
      End(st);
      return;
    }
  }
  self->ResumeReading();
}

void Connection::Impl::Discard() {
  ended = true;
  CloseHandles();
}

void Connection::Impl::StepHandshake() {
  if (records || ended || handles_closed) return;
  bool done = false;
  Status st = session->Handshake(&done);
  Flush(WriteDone());
  if (!st.ok()) {
    End(st);
    return;
  }
  if (done) OpenGate();
}

// The point the application's data may pass: the handshake finished, and a
// client's session finishes it only if the server's SPKI hash matched the pin.
void Connection::Impl::OpenGate() {
  records = NewRecordLayer(*session);
  // cairn's records hold their keys and the handshake's leftover bytes:
  // mbedTLS's context (two 16 KiB record buffers, the transform, the
  // handshake's input buffer) is not needed again.
  if (!records->uses_session()) session.reset();
  records->OpenLargeRecordsElsewhere(kOffloadOpenRecord);
  uv_timer_stop(&timer);
  owner->HandshakeDone(self->shared_from_this());
  ReadPlain();  // application data may have come with the last flight
}

// --- The gate's steps --------------------------------------------------------------

void Connection::Impl::QueueGated() {
  if (gated || handles_closed) return;
  gated = true;
  owner->Gate().Add(self->shared_from_this());
}

void Connection::Impl::RunGated() {
  gated = false;
  if (handles_closed) return;
  if (!records) return StepHandshake();
  // While an open job is out, its completion goes on (in order).
  if (!opening && !read_eof && (undecrypted > 0 || open_more)) {
    ReadPlain();
    if (handles_closed) return;
    if (cipher_full) {
      cipher_full = false;
      MaybeStartRead();
    }
  }
  SealSome();
}

void HandshakeGate::Add(const std::shared_ptr<Connection>& conn) {
  ready_.push_back(conn);
  if (posted_) return;  // queued, or running: the running turn sees it
  posted_ = true;
  loop_.Post([this, alive = alive_] {
    if (*alive) RunTurn();
  });
}

// posted_ stays true while the turn runs, so connections queued by its steps
// join this turn's list instead of posting a second task. (Clearing it first
// let every turn post two tasks, each with a full budget: gbs_bench saw 33
// gate tasks, 49 ms, in one drain.)
// A step is started only if the longest one of this turn still fits in the
// budget, so a turn ends near its budget rather than a whole handshake step
// (2-3 ms) past it.
void HandshakeGate::RunTurn() {
  std::uint64_t start = uv_hrtime();
  std::uint64_t longest = 0;
  while (!ready_.empty()) {
    std::shared_ptr<Connection> conn = ready_.front().lock();
    ready_.pop_front();
    std::uint64_t t0 = uv_hrtime();
    if (conn) Connection::Impl::Of(*conn).RunGated();
    std::uint64_t now = uv_hrtime();
    longest = std::max(longest, now - t0);
    if ((now - start + longest) / 1000 >= kBudgetUs) break;
  }
  if (ready_.empty()) {
    posted_ = false;
    return;
  }
  loop_.Post([this, alive = alive_] {
    if (*alive) RunTurn();
  });
}

// --- In: socket, records, application ---------------------------------------------

void Connection::Impl::StartRead() {
  if (handles_closed) return;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp),
      [](uv_handle_t*, size_t, uv_buf_t* buf) { *buf = uv_buf_init(g_read_buf, sizeof g_read_buf); },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) { static_cast<Impl*>(s->data)->OnRead(n, buf); });
}

void Connection::Impl::MaybeStartRead() {
  if (!paused && !flow_stopped && !cipher_full) StartRead();
}

void Connection::Impl::OnRead(ssize_t n, const uv_buf_t* buf) {
  if (n == UV_EOF) {
    if (records) {
      read_eof = true;
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
      return ReadToEof();  // what came before the close is delivered first
    }
    End(Status::Unavailable("peer closed during the TLS handshake"));
    return;
  }
  if (n < 0) {
    End(Status::IoError(std::string("read: ") + uv_strerror(static_cast<int>(n))));
    return;
  }
  std::string_view in(buf->base, static_cast<std::size_t>(n));
  if (!records) {
    session->Feed(in);
  } else {
    records->Feed(in);
    // Decrypted by the gate, within its budget; one read per connection
    // waits for it (libuv would otherwise read the socket up to 32 times
    // in this poll, and a hundred sockets' worth is tens of milliseconds).
    undecrypted += in.size();
    if (undecrypted >= kMaxUndecrypted && !cipher_full) {
      cipher_full = true;
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
    }
  }
  QueueGated();
}

void Connection::Impl::ReadPlain() {
  if (opening) return;  // OnOpened comes back here
  std::string plain;
  plain.reserve(undecrypted);  // plaintext is never longer: no regrowth copies
  undecrypted = 0;
  open_more = false;
  bool eof = false;
  // Opens the records before the first large one; that one and the whole
  // records after it go to the thread pool.
  Status st = records->Open(&plain, &eof);
  Flush(WriteDone());  // a read may produce alerts or renegotiation refusals
  if (!plain.empty()) Deliver(std::move(plain));
  if (!st.ok()) {
    End(st);
  } else if (eof) {
    // RFC 5246 7.2.1: a close_notify is answered with one, and the
    // connection ends at once (what was still queued to send is dropped).
    if (!closing && !handles_closed) {
      records->SealClose();
      Flush(WriteDone());
    }
    End(Status());
  } else if (!handles_closed) {
    OpenOffLoop();
  }
}

bool Connection::Impl::OpenOffLoop() {
  std::function<RecordLayer::Opened()> open = records->ReserveOpen();
  if (!open) return false;
  // The records' sequence numbers are fixed now; nothing more is opened
  // until this job's plaintext is delivered.
  opening = true;
  auto opened = std::make_shared<RecordLayer::Opened>();
  std::weak_ptr<Connection> weak = self->weak_from_this();
  loop->Offload(
      [opened, open = std::move(open)]() mutable {
        *opened = open();
        return Status();
      },
      [weak, opened](Status) {
        if (auto conn = weak.lock()) Of(*conn).OnOpened(std::move(*opened));
      });
  return true;
}

void Connection::Impl::OnOpened(RecordLayer::Opened opened) {
  opening = false;
  if (handles_closed) return;
  if (!opened.plaintext.empty()) Deliver(std::move(opened.plaintext));
  if (!opened.status.ok()) {
    // A bad tag: the layer sends its alert, and nothing of that record or
    // after it is delivered.
    Status st = records->OpenFailed(std::move(opened.status));
    Flush(WriteDone());
    return End(st);
  }
  if (read_eof) return ReadToEof();
  open_more = true;  // the records after the job's, in the gate's budget
  QueueGated();
}

void Connection::Impl::ReadToEof() {
  if (handles_closed) return;
  if (!opening) ReadPlain();
  // ReadPlain may have handed out another job: OnOpened comes back here.
  if (opening || handles_closed) return;
  End(Status());
}

void Connection::Impl::Deliver(std::string plaintext) {
  undelivered += plaintext.size();
  if (undelivered >= kMaxUndelivered && !flow_stopped && !handles_closed) {
    flow_stopped = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
  }
  if (!started) {
    early += plaintext;
    return;
  }
  std::weak_ptr<Connection> weak = self->weak_from_this();
  loop->Post([weak, data = std::move(plaintext)]() mutable {
    auto conn = weak.lock();
    if (!conn) return;
    Impl& im = *conn->impl_;
    im.undelivered -= data.size();
    // Plaintext read before the peer's close or an error is still delivered
    // (before on_end, which was posted after it); after the application's
    // own Close() or Abort() it is not.
    if (!im.app_closed && im.on_data) im.on_data(std::move(data));
    if (im.flow_stopped && im.undelivered < kMaxUndelivered) {
      im.flow_stopped = false;
      im.MaybeStartRead();
    }
  });
}

// --- Out: application, records, socket --------------------------------------------

bool Connection::Impl::CanWriteNow(std::size_t len) const {
  return plain_out.empty() && sealing.empty() && len <= kEncryptSlice && OutBytes() < kCipherHighWater;
}

void Connection::Impl::WriteShared(std::shared_ptr<const std::string> buffer, std::size_t offset, std::size_t len,
                                   WriteDone done) {
  if (ended || closing) {
    done.Post(*loop, Status::Unavailable("connection closed"));
    return;
  }
  if (CanWriteNow(len)) {
    WriteNow(std::string_view(*buffer).substr(offset, len), std::move(done));
    return;
  }
  plain_out_bytes += len;
  plain_out.push_back({std::move(buffer), offset, offset + len, std::move(done), len >= kOffloadSlice});
  QueueGated();
}

// Seals `plaintext` at once and sends it (a write small enough, with
// nothing queued before it and room in the socket's queue).
void Connection::Impl::WriteNow(std::string_view plaintext, WriteDone done) {
  CAIRN_CHECK(records != nullptr, "tls::Connection::Write before the handshake finished");
  Status st = records->Seal(plaintext);
  if (!st.ok()) {
    done.Post(*loop, st);
    End(st);
    return;
  }
  Flush(std::move(done));
}

void Connection::Impl::SealSome() {
  if (plain_out.empty() || OutBytes() >= kCipherHighWater) return;  // a write completion queues us again
  CAIRN_CHECK(records != nullptr, "tls::Connection::Write before the handshake finished");
  if (plain_out.front().large && SealOffLoop()) return;
  // Records sealed here would overtake the slices still being sealed.
  if (!sealing.empty()) return;  // SendSealed queues us again
  PlainOut& p = plain_out.front();
  std::size_t n = std::min(kEncryptSlice, p.end - p.pos);
  Status st = records->Seal(std::string_view(*p.buf).substr(p.pos, n));
  p.pos += n;
  plain_out_bytes -= n;
  if (!st.ok()) return End(st);  // CloseHandles fails what is still queued
  WriteDone done;
  if (p.pos == p.end) {
    done = std::move(p.done);
    plain_out.pop_front();
  }
  Flush(std::move(done));
  if (!plain_out.empty()) {
    if (OutBytes() < kCipherHighWater) QueueGated();
  } else if (close_pending) {
    FinishClose();
  }
}

bool Connection::Impl::SealOffLoop() {
  bool handed = false;
  while (!plain_out.empty() && plain_out.front().large && OutBytes() < kCipherHighWater) {
    PlainOut& p = plain_out.front();
    std::size_t n = std::min(kOffloadSlice, p.end - p.pos);
    std::function<std::string(std::string_view)> seal = records->ReserveSeal(n);
    if (!seal) break;
    // The slice's sequence numbers are fixed now: the job may finish
    // before or after the others, and is sent in this order.
    auto job = std::make_shared<Sealing>();
    job->plain_len = n;
    std::shared_ptr<const std::string> buf = p.buf;
    std::size_t off = p.pos;
    p.pos += n;
    plain_out_bytes -= n;
    sealing_bytes += n;
    if (p.pos == p.end) {
      job->done = std::move(p.done);
      plain_out.pop_front();
    }
    sealing.push_back(job);
    std::weak_ptr<Connection> weak = self->weak_from_this();
    loop->Offload(
        [job, buf, off, n, seal = std::move(seal)]() mutable {
          job->out = seal(std::string_view(*buf).substr(off, n));
          return Status();
        },
        [weak, job](Status st) {
          job->ready = true;
          job->status = std::move(st);
          if (auto conn = weak.lock()) Of(*conn).SendSealed();
        });
    handed = true;
  }
  return handed;
}

void Connection::Impl::SendSealed() {
  while (!handles_closed && !sealing.empty() && sealing.front()->ready) {
    std::shared_ptr<Sealing> job = sealing.front();
    sealing.pop_front();
    sealing_bytes -= job->plain_len;
    if (!job->status.ok()) {
      job->done.Post(*loop, job->status);
      return End(job->status);
    }
    Send(std::move(job->out), std::move(job->done));
  }
  if (handles_closed) return;
  if (!plain_out.empty()) {
    if (OutBytes() < kCipherHighWater) QueueGated();
  } else if (sealing.empty() && close_pending) {
    FinishClose();
  }
}

void Connection::Impl::Flush(WriteDone done) {
  // Before the gate opens only the handshake produces bytes.
  Send(records ? records->TakeOutgoing() : session->TakeOutgoing(), std::move(done));
}

void Connection::Impl::Send(std::string out, WriteDone done) {
  if (out.empty() || handles_closed) {
    done.Post(*loop, handles_closed ? Status::Unavailable("connection closed") : Status());
    return;
  }
  auto* w = new WriteReq{};
  w->data = std::move(out);
  w->loop = loop;
  w->conn = self->weak_from_this();
  w->done = std::move(done);
  w->req.data = w;
  queued += w->data.size();
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp), &b, 1, OnWritten);
  if (rc != 0) {
    queued -= w->data.size();
    Status st = Status::IoError(std::string("write: ") + uv_strerror(rc));
    w->done.Post(*loop, st);
    delete w;
    End(st);
  }
}

// The kernel took a write's bytes (or the write failed): its completion is
// posted, and the connection goes on with what waited for room.
void Connection::Impl::OnWritten(uv_write_t* req, int status) {
  auto* wr = static_cast<WriteReq*>(req->data);
  Status st = status == 0 ? Status() : Status::IoError(std::string("write: ") + uv_strerror(status));
  wr->done.Post(*wr->loop, st);
  if (auto conn = wr->conn.lock()) {
    Impl& im = *conn->impl_;
    im.queued -= wr->data.size();
    if (!st.ok()) {
      im.End(st);
    } else if (!im.plain_out.empty()) {
      if (im.OutBytes() < kCipherHighWater) im.QueueGated();
    } else if (im.closing && !im.close_pending && im.queued == 0) {
      im.CloseHandles();
    }
  }
  delete wr;
}

// --- The end -----------------------------------------------------------------------

void Connection::Impl::PostEnd() {
  std::shared_ptr<Connection> me = self->shared_from_this();
  loop->Post([me] {
    Impl& im = *me->impl_;
    if (im.on_end) {
      auto cb = std::move(im.on_end);
      im.on_end = nullptr;
      im.on_data = nullptr;
      if (im.end_guard) im.end_guard->Deliver();  // Tahoe-LAFS #877: never inside Close() or Abort()
      cb(im.end_status);
    }
  });
}

void Connection::Impl::End(Status why) {
  if (ended) return;
  ended = true;
  end_status = std::move(why);
  if (started) PostEnd();
  CloseHandles();
}

void Connection::Impl::FinishClose() {
  close_pending = false;
  if (handles_closed) return;
  if (records) {
    records->SealClose();
    Flush(WriteDone());
  }
  if (queued == 0) CloseHandles();
}

void Connection::Impl::CloseHandles() {
  if (handles_closed) return;
  handles_closed = true;
  ended = true;
  for (PlainOut& p : plain_out) p.done.Post(*loop, Status::Unavailable("connection closed"));
  plain_out.clear();
  plain_out_bytes = 0;
  // Slices still being sealed are dropped when their jobs return.
  for (auto& job : sealing) job->done.Post(*loop, Status::Unavailable("connection closed"));
  sealing.clear();
  sealing_bytes = 0;
  auto on_close = [](uv_handle_t* h) {
    auto* im = static_cast<Impl*>(h->data);
    if (--im->handles_open == 0) im->owner->Remove(im->self);
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer), on_close);
}

// --- The application's calls -------------------------------------------------------

void Connection::Start(Callback<void(std::string)> on_data, Callback<void(Status)> on_end) {
  Impl& im = *impl_;
  CAIRN_CHECK(!im.started, "tls::Connection::Start called twice");
  im.started = true;
  im.on_data = std::move(on_data);
  im.on_end = std::move(on_end);
  if (!im.early.empty()) {
    std::string e;
    e.swap(im.early);
    im.undelivered -= e.size();  // counted again by Deliver
    im.Deliver(std::move(e));
  }
  if (im.ended) im.PostEnd();
}

void Connection::PauseReading() {
  Impl& im = *impl_;
  if (im.paused || im.handles_closed) return;
  im.paused = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&im.tcp));
}

void Connection::ResumeReading() {
  Impl& im = *impl_;
  if (!im.paused || im.handles_closed) return;
  im.paused = false;
  im.MaybeStartRead();
}

void Connection::Write(std::string plaintext, Callback<void(Status)> done) {
  Impl& im = *impl_;
  WriteDone d(*im.loop, "tls::Connection::Write", std::move(done));
  if (!im.ended && !im.closing && im.CanWriteNow(plaintext.size())) {
    im.WriteNow(plaintext, std::move(d));
    return;
  }
  std::size_t len = plaintext.size();
  im.WriteShared(std::make_shared<const std::string>(std::move(plaintext)), 0, len, std::move(d));
}

void Connection::Write(std::shared_ptr<const std::string> buffer, std::size_t offset, std::size_t len,
                       Callback<void(Status)> done) {
  Impl& im = *impl_;
  CAIRN_CHECK(offset <= buffer->size() && len <= buffer->size() - offset, "TLS Write past the end of its buffer");
  im.WriteShared(std::move(buffer), offset, len, WriteDone(*im.loop, "tls::Connection::Write", std::move(done)));
}

void Connection::Close() {
  Impl& im = *impl_;
  im.app_closed = true;
  if (im.ended || im.closing) return;
  im.closing = true;
  im.ended = true;
  im.end_status = Status();
  im.end_guard.emplace(*im.loop, "tls::Connection::Close");
  if (im.started) im.PostEnd();
  // A peer that never reads must not hold the socket (and a connection
  // slot) forever: give the queued bytes as long as a handshake gets.
  uv_timer_start(
      &im.timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->CloseHandles(); }, im.owner->CloseGraceMs(), 0);
  if (!im.plain_out.empty() || !im.sealing.empty()) {
    im.close_pending = true;  // close_notify goes after the last slice
    return;
  }
  im.FinishClose();
}

void Connection::Abort(const Status& why) {
  Impl& im = *impl_;
  im.app_closed = true;
  if (!im.ended) im.end_guard.emplace(*im.loop, "tls::Connection::Abort");
  im.End(why);
}

std::size_t Connection::queued_write_bytes() const {
  return impl_->queued + impl_->sealing_bytes + impl_->plain_out_bytes;
}
std::size_t Connection::TEST_undelivered_bytes() const { return impl_->undelivered; }
const char* Connection::TEST_record_layer() const { return impl_->records ? impl_->records->name() : ""; }
const std::string& Connection::peer() const { return impl_->peer; }
bool Connection::open() const { return !impl_->ended; }

}  // namespace cairn::tls
