// http::Server (a tls::Listener whose connections become ServerConnections)
// and Exchange, whose methods forward to the connection if it still exists.
// Loop thread only.
#include "cairn/http/server.h"

#include <set>
#include <utility>

#include "cairn/tls/server.h"
#include "http/connection.h"

namespace cairn::http {

ServerOptions ServerOptions::FromLimits(const Limits& limits) {
  ServerOptions o;
  o.max_connections = limits.max_connections;
  o.header_bytes = limits.http_header_bytes;
  o.max_headers = limits.http_max_headers;
  o.body_bytes = limits.http_body_bytes;
  o.idle_ms = limits.http_idle_ms;
  o.request_ms = limits.http_request_ms;
  o.handshake_ms = limits.tls_handshake_ms;
  return o;
}

// --- Exchange -----------------------------------------------------------------------

Exchange::Exchange(Loop& loop, std::weak_ptr<ServerConnection> conn, std::uint64_t id, Request request,
                   std::string peer)
    : loop_(&loop), conn_(std::move(conn)), id_(id), request_(std::move(request)), peer_(std::move(peer)) {}

Exchange::~Exchange() {
  if (auto c = conn_.lock()) c->ExchangeDropped(id_);
}

void Exchange::ReadBody(BodyOptions options, Callback<Flow(std::string)> on_chunk, Callback<void(Status)> on_end) {
  StatusDone done(*loop_, "http::Exchange::ReadBody", std::move(on_end));
  if (auto c = conn_.lock()) {
    c->ReadBody(id_, options, std::move(on_chunk), std::move(done));
  } else {
    done.Post(*loop_, Status::Unavailable("the connection is closed"));
  }
}

void Exchange::PauseBody() {
  if (auto c = conn_.lock()) c->SetBodyPaused(id_, true);
}

void Exchange::ResumeBody() {
  if (auto c = conn_.lock()) c->SetBodyPaused(id_, false);
}

void Exchange::ReadWholeBody(std::uint64_t max_bytes, Callback<void(Result<std::string>)> done) {
  auto body = std::make_shared<std::string>();
  BodyOptions options;
  options.max_bytes = max_bytes;
  ReadBody(
      options,
      [body](std::string piece) {
        body->append(piece);
        return Flow::kMore;
      },
      [body, done = std::move(done)](Status st) mutable {
        if (st.ok()) {
          done(std::move(*body));
        } else {
          done(std::move(st));
        }
      });
}

void Exchange::Respond(Response response) {
  if (auto c = conn_.lock()) c->Respond(id_, std::move(response));
}

void Exchange::StartResponse(int status, std::vector<Field> headers, std::optional<std::uint64_t> content_length) {
  if (auto c = conn_.lock()) c->StartResponse(id_, status, std::move(headers), content_length);
}

void Exchange::WriteBody(std::string data, Callback<void(Status)> ready) {
  StatusDone done(*loop_, "http::Exchange::WriteBody", std::move(ready));
  if (auto c = conn_.lock()) {
    c->WriteBody(id_, std::move(data), std::move(done));
  } else {
    done.Post(*loop_, Status::Unavailable("the connection is closed"));
  }
}

void Exchange::EndResponse(Callback<void(Status)> done) {
  StatusDone guarded(*loop_, "http::Exchange::EndResponse", std::move(done));
  if (auto c = conn_.lock()) {
    c->EndResponse(id_, std::move(guarded));
  } else {
    guarded.Post(*loop_, Status::Unavailable("the connection is closed"));
  }
}

void Exchange::CloseAfterResponse() {
  if (auto c = conn_.lock()) c->CloseAfterResponse(id_);
}

// --- Server -------------------------------------------------------------------------

struct Server::Impl {
  Impl(Loop& l, std::shared_ptr<tls::Context> ctx) : loop(l), listener(l, std::move(ctx)) {}
  Loop& loop;
  tls::Listener listener;
  ServerOptions options;
  Handler handler;
  std::set<std::shared_ptr<ServerConnection>> conns;
  std::uint64_t accepted = 0;
  bool started = false;
};

Server::Server(Loop& loop, std::shared_ptr<tls::Context> ctx) : impl_(std::make_unique<Impl>(loop, std::move(ctx))) {}

Server::~Server() { CAIRN_CHECK(impl_->conns.empty(), "http::Server destroyed before Close() completed"); }

Status Server::Start(const ServerOptions& options, Handler handler) {
  Impl& im = *impl_;
  CAIRN_CHECK(!im.started, "http::Server::Start called twice");
  im.started = true;
  im.options = options;
  im.handler = std::move(handler);
  tls::ListenerOptions lo;
  lo.address = options.address;
  lo.port = options.port;
  lo.handshake_ms = options.handshake_ms;
  lo.max_connections = options.max_connections;
  Impl* p = &im;
  return im.listener.Start(lo, [p](std::shared_ptr<tls::Connection> tls) {
    auto conn = std::make_shared<ServerConnection>(p->loop, p->options, &p->handler, std::move(tls),
                                                   [p](ServerConnection* c) {
                                                     for (auto it = p->conns.begin(); it != p->conns.end(); ++it) {
                                                       if (it->get() == c) {
                                                         p->conns.erase(it);
                                                         break;
                                                       }
                                                     }
                                                   });
    p->conns.insert(conn);
    ++p->accepted;
    conn->Start();
  });
}

std::uint16_t Server::port() const { return impl_->listener.port(); }

std::size_t Server::open_connections() const { return impl_->conns.size(); }
std::uint64_t Server::accepted_connections() const { return impl_->accepted; }

void Server::Close(Task done) {
  Impl* p = impl_.get();
  for (const auto& c : std::set<std::shared_ptr<ServerConnection>>(p->conns)) {
    c->Abort(Status::ShuttingDown("the server is stopping"));
  }
  p->listener.Close([p, guard = ReentryGuard(p->loop, "http::Server::Close"), done = std::move(done)]() mutable {
    p->conns.clear();  // every connection's end was delivered before the listener's
    p->loop.Post([guard, done = std::move(done)]() mutable {
      guard.Deliver();
      if (done) done();
    });
  });
}

}  // namespace cairn::http
