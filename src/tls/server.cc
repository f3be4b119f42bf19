// TLS over libuv TCP. Loop thread only. Raw libuv callbacks only move bytes
// through the session and post application events.
#include "cairn/tls/server.h"

#include <uv.h>

#include <algorithm>
#include <set>
#include <vector>

#include "cairn/core/log.h"
#include "tls/connection_impl.h"

namespace cairn::tls {

struct Listener::Impl final : ConnectionOwner {
  Impl(Loop& l, std::shared_ptr<Context> c) : loop(l), ctx(std::move(c)) {}
  Loop& loop;
  std::shared_ptr<Context> ctx;
  ListenerOptions options;
  uv_tcp_t server;
  bool server_open = false;
  bool closing = false;
  std::uint16_t port = 0;
  Callback<void(std::shared_ptr<Connection>)> on_connection;
  std::set<std::shared_ptr<Connection>> conns;
  Task close_done;

  void Accept();
  HandshakeGate gate{loop};
  Loop& OwnerLoop() override { return loop; }
  HandshakeGate& Gate() override { return gate; }
  std::uint64_t CloseGraceMs() const override { return options.handshake_ms; }
  void HandshakeDone(std::shared_ptr<Connection> conn) override {
    loop.Post([this, conn] {
      if (!closing && conn->open() && on_connection) on_connection(conn);
    });
  }
  void Remove(Connection* c) override;
  void MaybeFinishClose();
};


namespace {

struct WriteReq {
  uv_write_t req;
  std::string data;
  std::weak_ptr<Connection> conn;
  Callback<void(Status)> done;
};

char g_read_buf[64 * 1024];  // the loop reads one socket at a time

// libuv reads a readable socket up to 32 times in one iteration, and each
// read posts its plaintext: without a bound, one turn could queue megabytes
// for an application that has not yet run. Reading stops while this much is
// undelivered, so a connection holds at most this plus one read's plaintext.
constexpr std::size_t kMaxUndelivered = 64 * 1024;
// Ciphertext read and not yet decrypted: one full read buffer stops reading
// until the gate has decrypted it.
constexpr std::size_t kMaxUndecrypted = sizeof g_read_buf;

// Writes up to this size are encrypted at once; larger ones a slice per
// gate step (a slice costs about 0.4 ms), and none while this much
// ciphertext waits for the socket. At 256 KiB a single client's 1 MiB reads
// slowed from 56 to 22 MiB/s in gbs_bench (each quarter waited a write
// completion); 1 MiB keeps them at full speed and holds no more ciphertext
// than encrypting a 1 MiB answer at once did.
constexpr std::size_t kEncryptSlice = 64 * 1024;
constexpr std::size_t kCipherHighWater = 1024 * 1024;

}  // namespace

Connection::Connection() : impl_(std::make_unique<Impl>()) { impl_->self = this; }
Connection::~Connection() = default;

void Connection::Impl::OnRead(ssize_t n, const uv_buf_t* buf) {
  if (n == UV_EOF) {
    if (handshake_done && undecrypted > 0) ReadPlain();  // what came before the close is delivered first
    End(handshake_done ? Status() : Status::Unavailable("peer closed during the TLS handshake"));
    return;
  }
  if (n < 0) {
    End(Status::IoError(std::string("read: ") + uv_strerror(static_cast<int>(n))));
    return;
  }
  session->Feed(std::string_view(buf->base, static_cast<std::size_t>(n)));
  if (handshake_done) {
    // Decrypted by the gate, within its budget; one read per connection
    // waits for it (libuv would otherwise read the socket up to 32 times
    // in this poll, and a hundred sockets' worth is tens of milliseconds).
    undecrypted += static_cast<std::size_t>(n);
    if (undecrypted >= kMaxUndecrypted && !cipher_full) {
      cipher_full = true;
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
    }
  }
  QueueGated();
}

void Connection::Impl::QueueGated() {
  if (gated || handles_closed) return;
  gated = true;
  owner->Gate().Add(self->shared_from_this());
}

void Connection::Impl::RunGated() {
  gated = false;
  if (handles_closed) return;
  if (!handshake_done) return StepHandshake();
  if (undecrypted > 0) {
    ReadPlain();
    if (handles_closed) return;
    if (cipher_full) {
      cipher_full = false;
      MaybeStartRead();
    }
  }
  EncryptSome();
}

void Connection::Impl::EncryptSome() {
  if (plain_out.empty() || queued >= kCipherHighWater) return;  // a write completion queues us again
  PlainOut& p = plain_out.front();
  std::size_t n = std::min(kEncryptSlice, p.end - p.pos);
  Status st = session->Write(std::string_view(*p.buf).substr(p.pos, n));
  p.pos += n;
  plain_out_bytes -= n;
  if (!st.ok()) return End(st);  // CloseHandles fails what is still queued
  Callback<void(Status)> done;
  if (p.pos == p.end) {
    done = std::move(p.done);
    plain_out.pop_front();
  }
  Flush(std::move(done));
  if (!plain_out.empty()) {
    if (queued < kCipherHighWater) QueueGated();
  } else if (close_pending) {
    FinishClose();
  }
}

void Connection::Impl::StepHandshake() {
  if (handshake_done || ended || handles_closed) return;
  bool done = false;
  Status st = session->Handshake(&done);
  Flush(nullptr);
  if (!st.ok()) {
    End(st);
    return;
  }
  if (!done) return;
  handshake_done = true;
  uv_timer_stop(&handshake_timer);
  owner->HandshakeDone(self->shared_from_this());
  ReadPlain();  // application data may have come with the last flight
}

void Connection::Impl::ReadPlain() {
  std::string plain;
  plain.reserve(undecrypted);  // plaintext is never longer: no regrowth copies
  undecrypted = 0;
  bool eof = false;
  Status st = session->Read(&plain, &eof);
  Flush(nullptr);  // a read may produce alerts or renegotiation refusals
  if (!plain.empty()) Deliver(std::move(plain));
  if (!st.ok()) {
    End(st);
  } else if (eof) {
    End(Status());
  }
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
    if (conn) conn->impl_->RunGated();
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
  owner->OwnerLoop().Post([weak, data = std::move(plaintext)]() mutable {
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

void Connection::Impl::MaybeStartRead() {
  if (!paused && !flow_stopped && !cipher_full) StartRead();
}

void Connection::Impl::StartRead() {
  if (handles_closed) return;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&tcp),
      [](uv_handle_t*, size_t, uv_buf_t* buf) { *buf = uv_buf_init(g_read_buf, sizeof g_read_buf); },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) { static_cast<Impl*>(s->data)->OnRead(n, buf); });
}

// Encrypts `plaintext` at once and sends it (a write small enough, with
// nothing queued before it and room in the socket's queue).
void Connection::Impl::WriteNow(std::string_view plaintext, Callback<void(Status)> done) {
  Status st = session->Write(plaintext);
  if (!st.ok()) {
    if (done) owner->OwnerLoop().Post([done = std::move(done), st]() mutable { done(st); });
    End(st);
    return;
  }
  Flush(std::move(done));
}

void Connection::Impl::Flush(Callback<void(Status)> done) {
  std::string out = session->TakeOutgoing();
  if (out.empty() || handles_closed) {
    if (done) {
      Status st = handles_closed ? Status::Unavailable("connection closed") : Status();
      owner->OwnerLoop().Post([done = std::move(done), st]() mutable { done(st); });
    }
    return;
  }
  auto* w = new WriteReq{};
  w->data = std::move(out);
  w->conn = self->weak_from_this();
  w->done = std::move(done);
  w->req.data = w;
  queued += w->data.size();
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  auto on_written = [](uv_write_t* req, int status) {
    auto* wr = static_cast<WriteReq*>(req->data);
    Status st = status == 0 ? Status() : Status::IoError(std::string("write: ") + uv_strerror(status));
    if (auto conn = wr->conn.lock()) {
      Impl& im = *conn->impl_;
      im.queued -= wr->data.size();
      if (wr->done) im.owner->OwnerLoop().Post([done = std::move(wr->done), st]() mutable { done(st); });
      if (!st.ok()) {
        im.End(st);
      } else if (!im.plain_out.empty()) {
        if (im.queued < kCipherHighWater) im.QueueGated();
      } else if (im.closing && !im.close_pending && im.queued == 0) {
        im.CloseHandles();
      }
    }
    delete wr;
  };
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp), &b, 1, on_written);
  if (rc != 0) {
    queued -= w->data.size();
    Status st = Status::IoError(std::string("write: ") + uv_strerror(rc));
    if (w->done) owner->OwnerLoop().Post([done = std::move(w->done), st]() mutable { done(st); });
    delete w;
    End(st);
  }
}

void Connection::Impl::PostEnd() {
  std::shared_ptr<Connection> me = self->shared_from_this();
  owner->OwnerLoop().Post([me] {
    Impl& im = *me->impl_;
    if (im.on_end) {
      auto cb = std::move(im.on_end);
      im.on_end = nullptr;
      im.on_data = nullptr;
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

void Connection::Impl::CloseHandles() {
  if (handles_closed) return;
  handles_closed = true;
  ended = true;
  for (PlainOut& p : plain_out) {
    if (p.done) {
      owner->OwnerLoop().Post([done = std::move(p.done)]() mutable { done(Status::Unavailable("connection closed")); });
    }
  }
  plain_out.clear();
  plain_out_bytes = 0;
  auto on_close = [](uv_handle_t* h) {
    auto* im = static_cast<Connection::Impl*>(h->data);
    if (--im->handles_open == 0) im->owner->Remove(im->self);
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&handshake_timer), on_close);
}

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
  if (!im.ended && !im.closing && im.plain_out.empty() && plaintext.size() <= kEncryptSlice &&
      im.queued < kCipherHighWater) {
    im.WriteNow(plaintext, std::move(done));
    return;
  }
  std::size_t len = plaintext.size();
  Write(std::make_shared<const std::string>(std::move(plaintext)), 0, len, std::move(done));
}

void Connection::Write(std::shared_ptr<const std::string> buffer, std::size_t offset, std::size_t len,
                       Callback<void(Status)> done) {
  Impl& im = *impl_;
  CAIRN_CHECK(offset <= buffer->size() && len <= buffer->size() - offset, "TLS Write past the end of its buffer");
  if (im.ended || im.closing) {
    if (done) {
      im.owner->OwnerLoop().Post([done = std::move(done)]() mutable { done(Status::Unavailable("connection closed")); });
    }
    return;
  }
  if (im.plain_out.empty() && len <= kEncryptSlice && im.queued < kCipherHighWater) {
    im.WriteNow(std::string_view(*buffer).substr(offset, len), std::move(done));
    return;
  }
  im.plain_out_bytes += len;
  im.plain_out.push_back({std::move(buffer), offset, offset + len, std::move(done)});
  im.QueueGated();
}

void Connection::Close() {
  Impl& im = *impl_;
  im.app_closed = true;
  if (im.ended || im.closing) return;
  im.closing = true;
  if (!im.ended) {
    im.ended = true;
    im.end_status = Status();
    if (im.started) im.PostEnd();
  }
  // A peer that never reads must not hold the socket (and a connection
  // slot) forever: give the queued bytes as long as a handshake gets.
  uv_timer_start(
      &im.handshake_timer, [](uv_timer_t* t) { static_cast<Connection::Impl*>(t->data)->CloseHandles(); },
      im.owner->CloseGraceMs(), 0);
  if (!im.plain_out.empty()) {
    im.close_pending = true;  // close_notify goes after the last slice
    return;
  }
  im.FinishClose();
}

void Connection::Impl::FinishClose() {
  close_pending = false;
  if (handles_closed) return;
  if (handshake_done) {
    session->Close();
    Flush(nullptr);
  }
  if (queued == 0) CloseHandles();
}

void Connection::Abort(const Status& why) {
  impl_->app_closed = true;
  impl_->End(why);
}

std::size_t Connection::queued_write_bytes() const { return impl_->queued + impl_->plain_out_bytes; }
std::size_t Connection::TEST_undelivered_bytes() const { return impl_->undelivered; }
const std::string& Connection::peer() const { return impl_->peer; }
bool Connection::open() const { return !impl_->ended; }

// --- Listener -------------------------------------------------------------------

Listener::Listener(Loop& loop, std::shared_ptr<Context> ctx) : impl_(std::make_unique<Impl>(loop, std::move(ctx))) {}

Listener::~Listener() {
  CAIRN_CHECK(!impl_->server_open && impl_->conns.empty(), "tls::Listener destroyed before Close() completed");
}

Status Listener::Start(const ListenerOptions& options, Callback<void(std::shared_ptr<Connection>)> on_connection) {
  Impl& im = *impl_;
  im.options = options;
  im.on_connection = std::move(on_connection);
  uv_tcp_init(im.loop.uv(), &im.server);
  im.server.data = &im;
  im.server_open = true;
  sockaddr_storage addr;
  int rc = uv_ip4_addr(options.address.c_str(), options.port, reinterpret_cast<sockaddr_in*>(&addr));
  if (rc != 0) rc = uv_ip6_addr(options.address.c_str(), options.port, reinterpret_cast<sockaddr_in6*>(&addr));
  if (rc != 0) return Status::InvalidArgument("not an IP address: " + options.address);
  rc = uv_tcp_bind(&im.server, reinterpret_cast<sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&im.server), 128, [](uv_stream_t* s, int status) {
      if (status == 0) static_cast<Impl*>(s->data)->Accept();
    });
  }
  if (rc != 0) {
    return Status::Unavailable("listen on " + options.address + ":" + std::to_string(options.port) + ": " +
                               uv_strerror(rc));
  }
  sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(&im.server, reinterpret_cast<sockaddr*>(&bound), &len);
  im.port = ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                              : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return Status();
}

void Listener::Impl::Accept() {
  std::shared_ptr<Connection> conn(new Connection());
  Connection::Impl& c = *conn->impl_;
  c.owner = this;
  uv_tcp_init(loop.uv(), &c.tcp);
  c.tcp.data = &c;
  uv_timer_init(loop.uv(), &c.handshake_timer);
  c.handshake_timer.data = &c;
  c.handles_open = 2;
  conns.insert(conn);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&server), reinterpret_cast<uv_stream_t*>(&c.tcp)) != 0 ||
      closing || conns.size() > options.max_connections) {
    if (conns.size() > options.max_connections) CAIRN_LOG(Warn, "tls: connection limit reached; refusing one");
    c.ended = true;
    c.CloseHandles();
    return;
  }
  sockaddr_storage peer;
  int len = sizeof peer;
  if (uv_tcp_getpeername(&c.tcp, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
    char host[64] = "?";
    if (peer.ss_family == AF_INET) {
      uv_ip4_name(reinterpret_cast<sockaddr_in*>(&peer), host, sizeof host);
      c.peer = std::string(host) + ":" + std::to_string(ntohs(reinterpret_cast<sockaddr_in*>(&peer)->sin_port));
    } else {
      uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&peer), host, sizeof host);
      c.peer = "[" + std::string(host) + "]:" + std::to_string(ntohs(reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port));
    }
  }
  auto session = Session::NewServer(ctx);
  if (!session.ok()) {
    CAIRN_LOG(Error, "tls: %s", session.status().ToString().c_str());
    c.ended = true;
    c.CloseHandles();
    return;
  }
  c.session = std::move(*session);
  uv_timer_start(
      &c.handshake_timer,
      [](uv_timer_t* t) {
        auto* im = static_cast<Connection::Impl*>(t->data);
        im->End(Status::Timeout("TLS handshake did not finish in time"));
      },
      options.handshake_ms, 0);
  c.paused = true;
  conn->ResumeReading();
}

void Listener::Impl::Remove(Connection* c) {
  for (auto it = conns.begin(); it != conns.end(); ++it) {
    if (it->get() == c) {
      conns.erase(it);  // may free the connection
      break;
    }
  }
  MaybeFinishClose();
}

void Listener::Impl::MaybeFinishClose() {
  if (!closing || server_open || !conns.empty() || !close_done) return;
  loop.Post(std::move(close_done));
  close_done = nullptr;
}

std::uint16_t Listener::port() const { return impl_->port; }
std::size_t Listener::open_connections() const { return impl_->conns.size(); }

void Listener::Close(Task done) {
  Impl& im = *impl_;
  im.closing = true;
  im.close_done = std::move(done);
  if (im.server_open) {
    uv_close(reinterpret_cast<uv_handle_t*>(&im.server), [](uv_handle_t* h) {
      auto* l = static_cast<Impl*>(h->data);
      l->server_open = false;
      l->MaybeFinishClose();
    });
  }
  std::vector<std::shared_ptr<Connection>> all(im.conns.begin(), im.conns.end());
  for (auto& c : all) c->Abort(Status::ShuttingDown("the node is stopping"));
  im.MaybeFinishClose();
}

}  // namespace cairn::tls
