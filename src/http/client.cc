// The HTTP/1.1 client: a pool of pinned TLS connections to one server.
// Loop thread only. Connections and requests are plain state here; every
// callback from below checks, through weak pointers, that what it refers to
// still exists.
#include "cairn/http/client.h"

#include <deque>
#include <list>

#include "cairn/tls/client.h"
#include "http/response_parser.h"

namespace cairn::http {
namespace {

constexpr std::size_t kBodyPiece = 64 * 1024;
// Request body bytes handed to TLS and not yet to the kernel, per connection.
constexpr std::size_t kMaxBodyInFlight = 256 * 1024;

bool Idempotent(const std::string& method) { return method == "GET" || method == "HEAD"; }

}  // namespace

// One request from Send() until its completion runs.
struct Pending {
  explicit Pending(const Scheduler& scheduler) : guard(scheduler, "http::Client::Send") {}
  // The #877 tripwire, armed in Send(): the completion never runs in the
  // turn Send() was called in, also when the request fails at once.
  ReentryGuard guard;
  ClientRequest request;  // its body moved to `body` when queued
  // Shared with the TLS connection, which encrypts it piece by piece without
  // copying; kept for a retry on another connection.
  std::shared_ptr<const std::string> body;
  Callback<void(Result<ClientResponse>)> done;
  bool retried = false;
};

struct Conn {
  std::shared_ptr<tls::Connection> tls;  // null while connecting
  bool connecting = true;
  bool busy = false;
  bool reused = false;  // it already carried a whole exchange
  std::unique_ptr<Pending> current;
  ResponseParser parser;
  std::size_t body_off = 0;       // next request body byte to hand to TLS
  std::size_t body_in_flight = 0;
  bool no_retry = false;
  std::uint64_t deadline_ms = 0;  // head or body-silence deadline of the current exchange
  std::unique_ptr<Timer> timer;   // the deadline, or the idle timeout
  Conn(std::size_t head_bytes, std::size_t max_headers) : parser(head_bytes, max_headers) {}
};

struct Client::Impl {
  Impl(Loop& l, std::shared_ptr<tls::Context> ctx, ClientOptions o)
      : loop(l), dialer(l, std::move(ctx)), options(std::move(o)) {}
  Loop& loop;
  tls::Dialer dialer;
  ClientOptions options;
  ClientStats stats;
  bool closing = false;
  std::list<std::shared_ptr<Conn>> conns;
  std::deque<std::unique_ptr<Pending>> queue;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);

  void Complete(std::unique_ptr<Pending> p, Result<ClientResponse> r) {
    loop.Post([p = std::move(p), r = std::move(r)]() mutable {
      p->guard.Deliver();
      p->done(std::move(r));
    });
  }
  void Pump();
  void Dial();
  // The dial for `conn` finished: it carries requests, or its first waiting
  // request fails with why it did not connect.
  void Dialed(const std::shared_ptr<Conn>& conn, Result<std::shared_ptr<tls::Connection>> r);
  void StartExchange(const std::shared_ptr<Conn>& c, std::unique_ptr<Pending> p);
  void WriteBody(const std::shared_ptr<Conn>& c);
  void OnData(const std::shared_ptr<Conn>& c, std::string data);
  void OnEnd(const std::shared_ptr<Conn>& c, Status why);
  void Finish(const std::shared_ptr<Conn>& c);
  void Drop(const std::shared_ptr<Conn>& c, const Status& why);
  void ArmDeadline(const std::shared_ptr<Conn>& c, std::uint64_t delay_ms);
  void ArmIdle(const std::shared_ptr<Conn>& c);
};

Client::Client(Loop& loop, std::shared_ptr<tls::Context> ctx, ClientOptions options)
    : impl_(std::make_unique<Impl>(loop, std::move(ctx), std::move(options))) {}

Client::~Client() { *impl_->alive = false; }

std::size_t Client::open_connections() const { return impl_->conns.size(); }
std::size_t Client::queued() const { return impl_->queue.size(); }
const ClientStats& Client::stats() const { return impl_->stats; }
std::size_t Client::idle_connections() const {
  std::size_t n = 0;
  for (auto& c : impl_->conns) n += !c->connecting && !c->busy;
  return n;
}

void Client::Send(ClientRequest request, Callback<void(Result<ClientResponse>)> done) {
  Impl& im = *impl_;
  auto p = std::make_unique<Pending>(im.loop);
  p->request = std::move(request);
  p->body = std::make_shared<const std::string>(std::move(p->request.body));
  p->request.body.clear();
  p->done = std::move(done);
  if (im.closing) return im.Complete(std::move(p), Status::ShuttingDown("the HTTP client is closing"));
  if (im.queue.size() >= im.options.max_queued) {
    return im.Complete(std::move(p), Status::ResourceExhausted("too many requests waiting for a connection to " +
                                                               im.options.host));
  }
  ++im.stats.requests;
  im.queue.push_back(std::move(p));
  im.Pump();
}

void Client::Impl::Pump() {
  while (!queue.empty() && !closing) {
    std::shared_ptr<Conn> idle;
    std::size_t connecting = 0;
    for (auto& c : conns) {
      if (c->connecting) ++connecting;
      else if (!c->busy && c->tls->open() && !idle) idle = c;
    }
    if (idle) {
      auto p = std::move(queue.front());
      queue.pop_front();
      StartExchange(idle, std::move(p));
      continue;
    }
    // Dial only as many connections as there are requests without one.
    if (connecting < queue.size() && conns.size() < options.max_connections) {
      Dial();
      continue;
    }
    return;
  }
}

void Client::Impl::Dial() {
  auto c = std::make_shared<Conn>(options.head_bytes, options.max_headers);
  conns.push_back(c);
  ++stats.connections_made;
  if (conns.size() > stats.max_open) stats.max_open = conns.size();
  tls::DialOptions d;
  d.host = options.host;
  d.port = options.port;
  d.spki_pin = options.spki_pin;
  d.connect_ms = options.connect_ms;
  std::weak_ptr<Conn> weak = c;
  std::weak_ptr<bool> token = alive;
  dialer.Connect(d, [this, weak, token](Result<std::shared_ptr<tls::Connection>> r) {
    if (token.expired()) {
      if (r.ok()) (*r)->Abort(Status::Cancelled("client gone"));
      return;
    }
    auto conn = weak.lock();
    if (!conn) {
      if (r.ok()) (*r)->Abort(Status::Cancelled("connection dropped"));
      return;
    }
    Dialed(conn, std::move(r));
  });
}

void Client::Impl::Dialed(const std::shared_ptr<Conn>& conn, Result<std::shared_ptr<tls::Connection>> r) {
  if (!r.ok()) {
    conns.remove(conn);
    // Each dial was made for one waiting request: that one fails with
    // the reason (refused, pin mismatch, timeout); redialing for it
    // would loop as long as the server is down.
    if (!queue.empty()) {
      Complete(std::move(queue.front()), r.status());
      queue.pop_front();
    }
    Pump();
    return;
  }
  conn->connecting = false;
  conn->tls = *r;
  std::weak_ptr<Conn> weak = conn;
  std::weak_ptr<bool> token = alive;
  conn->tls->Start(
      [this, weak](std::string data) {
        if (auto cc = weak.lock()) OnData(cc, std::move(data));
      },
      [this, weak, token](Status why) {
        if (token.expired()) return;
        if (auto cc = weak.lock()) OnEnd(cc, std::move(why));
      });
  if (queue.empty()) {
    ArmIdle(conn);
  } else {
    Pump();
  }
}

void Client::Impl::StartExchange(const std::shared_ptr<Conn>& c, std::unique_ptr<Pending> p) {
  c->busy = true;
  c->no_retry = p->request.TEST_drop_after_send;
  const ClientRequest& rq = p->request;
  const std::string& body = *p->body;
  std::string head;
  head.reserve(256);
  head += rq.method + " " + rq.target + " HTTP/1.1\r\nHost: ";
  head += options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host;
  head += ":" + std::to_string(options.port) + "\r\n";
  for (const Field& f : rq.headers) head += f.name + ": " + f.value + "\r\n";
  if (!body.empty() || rq.method == "POST" || rq.method == "PUT" || rq.method == "PATCH") {
    head += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  head += "\r\n";
  c->parser.Reset(rq.method == "HEAD", rq.max_response_bytes);
  c->body_off = 0;
  c->body_in_flight = 0;
  // A small body goes with the head in one record; a large one in pieces.
  if (body.size() <= kBodyPiece) {
    head += body;
    c->body_off = body.size();
  }
  c->current = std::move(p);
  ArmDeadline(c, options.head_ms);
  std::weak_ptr<Conn> weak = c;
  bool whole = c->body_off == c->current->body->size();
  c->tls->Write(std::move(head), [weak, whole](Status st) {
    auto cc = weak.lock();
    if (!cc || !st.ok() || !whole || !cc->current) return;
    if (cc->no_retry) cc->tls->Abort(Status::Unavailable("test: connection dropped after the request"));
  });
  if (!whole) WriteBody(c);
}

void Client::Impl::WriteBody(const std::shared_ptr<Conn>& c) {
  if (!c->current) return;
  const std::shared_ptr<const std::string>& body = c->current->body;
  std::weak_ptr<Conn> weak = c;
  while (c->body_off < body->size() && c->body_in_flight < kMaxBodyInFlight && c->tls->open()) {
    std::size_t n = std::min(kBodyPiece, body->size() - c->body_off);
    c->body_in_flight += n;
    c->body_off += n;
    bool last = c->body_off == body->size();
    c->tls->Write(body, c->body_off - n, n, [this, weak, n, last](Status st) {
      auto cc = weak.lock();
      if (!cc) return;
      cc->body_in_flight -= n;
      if (!st.ok() || !cc->current) return;  // OnEnd reports the failure
      if (last && cc->no_retry) cc->tls->Abort(Status::Unavailable("test: connection dropped after the request"));
      WriteBody(cc);
    });
  }
}

void Client::Impl::OnData(const std::shared_ptr<Conn>& c, std::string data) {
  if (!c->current) {
    Drop(c, Status::Integrity("the server sent bytes nobody asked for"));
    return;
  }
  std::string_view in = data;
  std::size_t consumed = 0;
  ResponseParser::Event ev = c->parser.Feed(in, &consumed);
  if (ev == ResponseParser::Event::kError) {
    Drop(c, c->parser.error());
    return;
  }
  if (c->parser.in_body()) c->deadline_ms = loop.NowMs() + options.body_idle_ms;
  if (ev == ResponseParser::Event::kNeedMore) return;
  if (consumed != in.size()) {
    // Bytes after the response: the connection cannot be trusted again.
    auto p = std::move(c->current);
    Complete(std::move(p), c->parser.TakeResponse());
    Drop(c, Status::Integrity("extra bytes after a response"));
    return;
  }
  Finish(c);
}

void Client::Impl::Finish(const std::shared_ptr<Conn>& c) {
  auto p = std::move(c->current);
  c->timer.reset();
  c->busy = false;
  c->reused = true;
  Complete(std::move(p), c->parser.TakeResponse());
  std::size_t idle = 0;
  for (auto& o : conns) idle += !o->connecting && !o->busy;
  if (!c->parser.keep_alive() || closing || (queue.empty() && idle > options.max_idle)) {
    Drop(c, Status());
  } else if (queue.empty()) {
    ArmIdle(c);
  }
  Pump();
}

void Client::Impl::OnEnd(const std::shared_ptr<Conn>& c, Status why) {
  conns.remove(c);
  c->timer.reset();
  if (c->current) {
    auto p = std::move(c->current);
    if (c->parser.FeedEof() == ResponseParser::Event::kDone) {
      Complete(std::move(p), c->parser.TakeResponse());
    } else if (c->reused && !c->parser.started() && !c->no_retry && !p->retried &&
               Idempotent(p->request.method) && !closing) {
      // The server closed a kept-alive connection as we used it.
      p->retried = true;
      ++stats.retries;
      queue.push_front(std::move(p));
    } else {
      Status st = !why.ok() && why.code() != Code::kIoError ? why : c->parser.error();
      if (st.ok()) st = Status::Unavailable("the connection ended before the response");
      Complete(std::move(p), st);
    }
  }
  Pump();
}

void Client::Impl::Drop(const std::shared_ptr<Conn>& c, const Status& why) {
  // Abort() posts on_end, which removes the connection and fails its request.
  if (c->tls && c->tls->open()) {
    if (why.ok()) {
      c->tls->Close();
    } else {
      c->tls->Abort(why);
    }
  }
}

void Client::Impl::ArmDeadline(const std::shared_ptr<Conn>& c, std::uint64_t delay_ms) {
  c->deadline_ms = loop.NowMs() + delay_ms;
  std::weak_ptr<Conn> weak = c;
  c->timer = loop.PostAfter(delay_ms, [this, weak] {
    auto cc = weak.lock();
    if (!cc || !cc->current) return;
    std::uint64_t now = loop.NowMs();
    if (now < cc->deadline_ms) return ArmDeadline(cc, cc->deadline_ms - now);  // progress moved it
    Drop(cc, Status::Timeout(cc->parser.in_body() ? "the response body stalled" : "no response head in time"));
  });
}

void Client::Impl::ArmIdle(const std::shared_ptr<Conn>& c) {
  std::weak_ptr<Conn> weak = c;
  c->timer = loop.PostAfter(options.keep_idle_ms, [this, weak] {
    auto cc = weak.lock();
    if (cc && !cc->busy) Drop(cc, Status());
  });
}

void Client::Close(Task done) {
  Impl& im = *impl_;
  im.closing = true;
  while (!im.queue.empty()) {
    im.Complete(std::move(im.queue.front()), Status::ShuttingDown("the HTTP client is closing"));
    im.queue.pop_front();
  }
  for (auto& c : im.conns) {
    if (c->current) im.Complete(std::move(c->current), Status::ShuttingDown("the HTTP client is closing"));
  }
  im.conns.clear();
  im.dialer.Close([guard = ReentryGuard(im.loop, "http::Client::Close"), done = std::move(done)]() mutable {
    guard.Deliver();
    if (done) done();
  });
}

}  // namespace cairn::http
