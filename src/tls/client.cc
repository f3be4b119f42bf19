// TLS client connections over libuv TCP. Loop thread only.
#include "cairn/tls/client.h"

#include <uv.h>

#include <map>
#include <set>
#include <vector>

#include "tls/connection_impl.h"

namespace cairn::tls {

struct Dialer::Impl final : ConnectionOwner {
  Impl(Loop& l, std::shared_ptr<Context> c) : loop(l), ctx(std::move(c)) {}
  Loop& loop;
  std::shared_ptr<Context> ctx;
  bool closing = false;
  std::set<std::shared_ptr<Connection>> conns;
  // Connections whose handshake has not finished, with whom to tell.
  std::map<Connection*, Callback<void(Result<std::shared_ptr<Connection>>)>> pending;
  Task close_done;

  HandshakeGate gate{loop};
  Loop& OwnerLoop() override { return loop; }
  HandshakeGate& Gate() override { return gate; }
  std::uint64_t CloseGraceMs() const override { return 5000; }
  void HandshakeDone(std::shared_ptr<Connection> conn) override {
    auto it = pending.find(conn.get());
    if (it == pending.end()) return;
    auto done = std::move(it->second);
    pending.erase(it);
    loop.Post([done = std::move(done), conn]() mutable { done(conn); });
  }
  void Remove(Connection* c) override {
    auto it = pending.find(c);
    if (it != pending.end()) {
      Status why = c->impl_->end_status.ok() ? Status::Unavailable("connection closed during the TLS handshake")
                                             : c->impl_->end_status;
      loop.Post([done = std::move(it->second), why]() mutable { done(why); });
      pending.erase(it);
    }
    for (auto ci = conns.begin(); ci != conns.end(); ++ci) {
      if (ci->get() == c) {
        conns.erase(ci);  // may free the connection
        break;
      }
    }
    if (closing && conns.empty() && close_done) {
      loop.Post(std::move(close_done));
      close_done = nullptr;
    }
  }
  void StartTcp(Connection::Impl& c, const sockaddr* addr);
};

namespace {

struct Resolve {
  uv_getaddrinfo_t req;
  std::weak_ptr<Connection> conn;
  Dialer::Impl* dialer;
};

}  // namespace

Dialer::Dialer(Loop& loop, std::shared_ptr<Context> ctx) : impl_(std::make_unique<Impl>(loop, std::move(ctx))) {}

Dialer::~Dialer() { CAIRN_CHECK(impl_->conns.empty(), "tls::Dialer destroyed before Close() completed"); }

std::size_t Dialer::open_connections() const { return impl_->conns.size(); }

void Dialer::Connect(const DialOptions& options, Callback<void(Result<std::shared_ptr<Connection>>)> done) {
  Impl& im = *impl_;
  if (im.closing) {
    im.loop.Post([done = std::move(done)]() mutable { done(Status::ShuttingDown("the dialer is closing")); });
    return;
  }
  auto session = Session::NewClient(im.ctx, options.spki_pin);
  if (!session.ok()) {
    im.loop.Post([done = std::move(done), st = session.status()]() mutable { done(st); });
    return;
  }
  std::shared_ptr<Connection> conn(new Connection());
  Connection::Impl& c = *conn->impl_;
  c.owner = &im;
  c.session = std::move(*session);
  c.peer = (options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host) + ":" +
           std::to_string(options.port);
  uv_tcp_init(im.loop.uv(), &c.tcp);
  c.tcp.data = &c;
  uv_timer_init(im.loop.uv(), &c.handshake_timer);
  c.handshake_timer.data = &c;
  c.handles_open = 2;
  // Events before the user's Start() are held (Connection::Impl::early);
  // `started` marks the dial phase, so a failure here posts no on_end.
  c.paused = true;
  im.conns.insert(conn);
  im.pending.emplace(conn.get(), std::move(done));
  uv_timer_start(
      &c.handshake_timer,
      [](uv_timer_t* t) {
        static_cast<Connection::Impl*>(t->data)->End(Status::Timeout("connecting and the TLS handshake took too long"));
      },
      options.connect_ms, 0);

  sockaddr_storage addr{};
  if (uv_ip4_addr(options.host.c_str(), options.port, reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
      uv_ip6_addr(options.host.c_str(), options.port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
    im.StartTcp(c, reinterpret_cast<sockaddr*>(&addr));
    return;
  }
  auto* r = new Resolve{};
  r->req.data = r;
  r->conn = conn;
  r->dialer = &im;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(options.port);
  int rc = uv_getaddrinfo(
      im.loop.uv(), &r->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* rr = static_cast<Resolve*>(req->data);
        auto conn2 = rr->conn.lock();
        if (conn2 && conn2->open()) {
          Connection::Impl& ci = *conn2->impl_;
          if (status != 0 || !res) {
            ci.End(Status::Unavailable("resolving " + ci.peer + ": " + uv_strerror(status)));
          } else {
            rr->dialer->StartTcp(ci, res->ai_addr);
          }
        }
        uv_freeaddrinfo(res);
        delete rr;
      },
      options.host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete r;
    c.End(Status::InvalidArgument("resolving " + c.peer + ": " + uv_strerror(rc)));
  }
}

void Dialer::Impl::StartTcp(Connection::Impl& c, const sockaddr* addr) {
  auto* req = new uv_connect_t{};
  req->data = new std::weak_ptr<Connection>(c.self->weak_from_this());
  int rc = uv_tcp_connect(req, &c.tcp, addr, [](uv_connect_t* rq, int status) {
    auto* weak = static_cast<std::weak_ptr<Connection>*>(rq->data);
    auto conn = weak->lock();
    delete weak;
    delete rq;
    if (!conn || !conn->open()) return;
    Connection::Impl& ci = *conn->impl_;
    if (status != 0) {
      ci.End(Status::Unavailable("connect to " + ci.peer + ": " + uv_strerror(status)));
      return;
    }
    uv_tcp_nodelay(&ci.tcp, 1);
    bool done = false;
    Status st = ci.session->Handshake(&done);  // the ClientHello
    ci.Flush(nullptr);
    if (!st.ok()) {
      ci.End(st);
      return;
    }
    conn->ResumeReading();
  });
  if (rc != 0) {
    delete static_cast<std::weak_ptr<Connection>*>(req->data);
    delete req;
    c.End(Status::Unavailable("connect to " + c.peer + ": " + uv_strerror(rc)));
  }
}

void Dialer::Close(Task done) {
  Impl& im = *impl_;
  im.closing = true;
  im.close_done = std::move(done);
  std::vector<std::shared_ptr<Connection>> all(im.conns.begin(), im.conns.end());
  for (auto& c : all) c->Abort(Status::ShuttingDown("the client is closing"));
  if (im.conns.empty() && im.close_done) {
    im.loop.Post(std::move(im.close_done));
    im.close_done = nullptr;
  }
}

}  // namespace cairn::tls
