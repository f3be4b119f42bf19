// tls::Dialer: resolves and connects over TCP, starts the client side of a
// handshake whose session accepts only the pinned SPKI hash, and hands the
// caller the connection once that handshake finished. The connection itself
// is src/tls/connection.cc. Loop thread only.
#include "cairn/tls/client.h"

#include <uv.h>

#include <map>
#include <set>
#include <vector>

#include "tls/connection_impl.h"

namespace cairn::tls {

using DialDone = Completion<Result<std::shared_ptr<Connection>>>;

struct Dialer::Impl final : ConnectionOwner {
  Impl(Loop& l, std::shared_ptr<Context> c) : loop(l), ctx(std::move(c)) {}
  Loop& loop;
  std::shared_ptr<Context> ctx;
  bool closing = false;
  std::set<std::shared_ptr<Connection>> conns;
  // Connections whose handshake has not finished, with whom to tell.
  std::map<Connection*, DialDone> pending;
  Completion<> close_done;
  HandshakeGate gate{loop};

  void Resolve(const std::shared_ptr<Connection>& conn, const std::string& host, std::uint16_t port);
  void StartTcp(Connection::Impl& c, const sockaddr* addr);

  HandshakeGate& Gate() override { return gate; }
  std::uint64_t CloseGraceMs() const override { return 5000; }
  void HandshakeDone(std::shared_ptr<Connection> conn) override {
    auto it = pending.find(conn.get());
    if (it == pending.end()) return;
    DialDone done = std::move(it->second);
    pending.erase(it);
    done.Post(loop, std::move(conn));
  }
  void Remove(Connection* c) override;
};

namespace {

struct ResolveReq {
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
  DialDone dial_done(im.loop, "tls::Dialer::Connect", std::move(done));
  if (im.closing) {
    dial_done.Post(im.loop, Status::ShuttingDown("the dialer is closing"));
    return;
  }
  auto session = Session::NewClient(im.ctx, options.spki_pin);
  if (!session.ok()) {
    dial_done.Post(im.loop, session.status());
    return;
  }
  std::shared_ptr<Connection> conn = Connection::Impl::New(&im, im.loop);
  Connection::Impl& c = Connection::Impl::Of(*conn);
  c.session = std::move(*session);
  c.peer = (options.host.find(':') != std::string::npos ? "[" + options.host + "]" : options.host) + ":" +
           std::to_string(options.port);
  im.conns.insert(conn);
  im.pending.emplace(conn.get(), std::move(dial_done));
  // The dial phase: the connection is not started, so a failure posts no
  // on_end; Remove() reports it to the caller instead.
  c.ArmHandshakeTimer(options.connect_ms, "connecting and the TLS handshake took too long");

  sockaddr_storage addr{};
  if (uv_ip4_addr(options.host.c_str(), options.port, reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
      uv_ip6_addr(options.host.c_str(), options.port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
    im.StartTcp(c, reinterpret_cast<sockaddr*>(&addr));
    return;
  }
  im.Resolve(conn, options.host, options.port);
}

// Resolves `host` on libuv's thread pool, then connects to its first address.
void Dialer::Impl::Resolve(const std::shared_ptr<Connection>& conn, const std::string& host, std::uint16_t port) {
  auto* r = new ResolveReq{};
  r->req.data = r;
  r->conn = conn;
  r->dialer = this;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  std::string port_text = std::to_string(port);
  int rc = uv_getaddrinfo(
      loop.uv(), &r->req,
      [](uv_getaddrinfo_t* req, int status, addrinfo* res) {
        auto* rr = static_cast<ResolveReq*>(req->data);
        auto conn2 = rr->conn.lock();
        if (conn2 && conn2->open()) {
          Connection::Impl& ci = Connection::Impl::Of(*conn2);
          if (status != 0 || !res) {
            ci.End(Status::Unavailable("resolving " + ci.peer + ": " + uv_strerror(status)));
          } else {
            rr->dialer->StartTcp(ci, res->ai_addr);
          }
        }
        uv_freeaddrinfo(res);
        delete rr;
      },
      host.c_str(), port_text.c_str(), &hints);
  if (rc != 0) {
    delete r;
    Connection::Impl& c = Connection::Impl::Of(*conn);
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
    Connection::Impl& ci = Connection::Impl::Of(*conn);
    if (status != 0) {
      ci.End(Status::Unavailable("connect to " + ci.peer + ": " + uv_strerror(status)));
      return;
    }
    uv_tcp_nodelay(&ci.tcp, 1);
    ci.BeginHandshake(/*speak_first=*/true);
  });
  if (rc != 0) {
    delete static_cast<std::weak_ptr<Connection>*>(req->data);
    delete req;
    c.End(Status::Unavailable("connect to " + c.peer + ": " + uv_strerror(rc)));
  }
}

void Dialer::Impl::Remove(Connection* c) {
  auto it = pending.find(c);
  if (it != pending.end()) {
    const Status& end = Connection::Impl::Of(*c).end_status;
    Status why = end.ok() ? Status::Unavailable("connection closed during the TLS handshake") : end;
    it->second.Post(loop, why);
    pending.erase(it);
  }
  for (auto ci = conns.begin(); ci != conns.end(); ++ci) {
    if (ci->get() == c) {
      conns.erase(ci);  // may free the connection
      break;
    }
  }
  if (closing && conns.empty() && close_done) close_done.Post(loop);
}

void Dialer::Close(Task done) {
  Impl& im = *impl_;
  im.closing = true;
  im.close_done = Completion<>(im.loop, "tls::Dialer::Close", std::move(done));
  std::vector<std::shared_ptr<Connection>> all(im.conns.begin(), im.conns.end());
  for (auto& c : all) c->Abort(Status::ShuttingDown("the client is closing"));
  if (im.conns.empty() && im.close_done) im.close_done.Post(im.loop);
}

}  // namespace cairn::tls
