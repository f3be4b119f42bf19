// tls::Listener: accepts TCP connections within the connection limit, starts
// the server side of a handshake on each, and hands the application those
// whose handshake finished. The connection itself is src/tls/connection.cc.
// Loop thread only.
#include "cairn/tls/server.h"

#include <uv.h>

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
  Completion<> close_done;
  HandshakeGate gate{loop};

  void Accept();
  void MaybeFinishClose();

  HandshakeGate& Gate() override { return gate; }
  std::uint64_t CloseGraceMs() const override { return options.handshake_ms; }
  void HandshakeDone(std::shared_ptr<Connection> conn) override {
    loop.Post([this, conn] {
      Connection::Impl::Of(*conn).handshake_guard->Deliver();
      if (!closing && conn->open() && on_connection) on_connection(conn);
    });
  }
  void Remove(Connection* c) override;
};

namespace {

// "ip:port", or "[ip6]:port", of the connected peer.
std::string PeerName(uv_tcp_t* tcp) {
  sockaddr_storage peer;
  int len = sizeof peer;
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return "";
  char host[64] = "?";
  if (peer.ss_family == AF_INET) {
    uv_ip4_name(reinterpret_cast<sockaddr_in*>(&peer), host, sizeof host);
    return std::string(host) + ":" + std::to_string(ntohs(reinterpret_cast<sockaddr_in*>(&peer)->sin_port));
  }
  uv_ip6_name(reinterpret_cast<sockaddr_in6*>(&peer), host, sizeof host);
  return "[" + std::string(host) + "]:" + std::to_string(ntohs(reinterpret_cast<sockaddr_in6*>(&peer)->sin6_port));
}

}  // namespace

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
  std::shared_ptr<Connection> conn = Connection::Impl::New(this, loop);
  Connection::Impl& c = Connection::Impl::Of(*conn);
  conns.insert(conn);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(&server), reinterpret_cast<uv_stream_t*>(&c.tcp)) != 0 ||
      closing || conns.size() > options.max_connections) {
    if (conns.size() > options.max_connections) CAIRN_LOG(Warn, "tls: connection limit reached; refusing one");
    c.Discard();
    return;
  }
  c.peer = PeerName(&c.tcp);
  auto session = Session::NewServer(ctx);
  if (!session.ok()) {
    CAIRN_LOG(Error, "tls: %s", session.status().ToString().c_str());
    c.Discard();
    return;
  }
  c.session = std::move(*session);
  c.ArmHandshakeTimer(options.handshake_ms, "TLS handshake did not finish in time");
  c.BeginHandshake(/*speak_first=*/false);
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
  close_done.Post(loop);
}

std::uint16_t Listener::port() const { return impl_->port; }
std::size_t Listener::open_connections() const { return impl_->conns.size(); }

void Listener::Close(Task done) {
  Impl& im = *impl_;
  im.closing = true;
  im.close_done = Completion<>(im.loop, "tls::Listener::Close", std::move(done));
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
