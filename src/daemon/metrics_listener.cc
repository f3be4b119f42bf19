// The /metrics listener (see the header). Loop thread only.
#include "daemon/metrics_listener.h"

#include <uv.h>

#include <cstring>

namespace cairn::daemon {
namespace {

constexpr std::size_t kMaxHead = 4096;
constexpr int kMaxConnections = 8;
constexpr std::uint64_t kDeadlineMs = 5000;

}  // namespace

// One client: a TCP handle and its deadline timer, freed when both closed.
struct MetricsListener::Conn {
  MetricsListener* owner = nullptr;
  uv_tcp_t tcp;
  uv_timer_t timer;
  std::string head;
  std::string out;
  uv_write_t write_req;
  bool closing = false;
  int handles = 2;
  Conn* next = nullptr;
  Conn* prev = nullptr;

  static void Close(Conn* c) {
    if (c->closing) return;
    c->closing = true;
    auto on_close = [](uv_handle_t* h) {
      auto* cc = static_cast<Conn*>(h->data);
      if (--cc->handles > 0) return;
      MetricsListener* listener = cc->owner;
      listener->Forget(cc);
      delete cc;
      listener->open_ -= 2;
      listener->MaybeClosed();
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), on_close);
    uv_close(reinterpret_cast<uv_handle_t*>(&c->timer), on_close);
  }

  // Answers once the head is complete, then closes.
  void Answer() {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
    bool metrics = head.rfind("GET /metrics ", 0) == 0 || head.rfind("GET /metrics?", 0) == 0;
    std::string body = metrics ? owner->metrics_() : "not found: try GET /metrics\n";
    out = std::string(metrics ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n") +
          (metrics ? "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\n"
                   : "Content-Type: text/plain; charset=utf-8\r\n") +
          "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    uv_buf_t buf = uv_buf_init(out.data(), static_cast<unsigned>(out.size()));
    write_req.data = this;
    if (uv_write(&write_req, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1,
                 [](uv_write_t* w, int) { Close(static_cast<Conn*>(w->data)); }) != 0) {
      Close(this);
    }
  }
};

MetricsListener::~MetricsListener() { delete server_; }

Status MetricsListener::Start(std::uint16_t port) {
  server_ = new uv_tcp_t;
  uv_tcp_init(loop_.uv(), server_);
  server_->data = this;
  ++open_;
  sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", port, &addr);
  int rc = uv_tcp_bind(server_, reinterpret_cast<const sockaddr*>(&addr), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(server_), 16, [](uv_stream_t* s, int status) {
      if (status == 0) static_cast<MetricsListener*>(s->data)->OnConnection();
    });
  }
  if (rc != 0) {
    return Status::IoError("metrics listener on 127.0.0.1:" + std::to_string(port) + ": " + uv_strerror(rc));
  }
  sockaddr_storage bound;
  int len = sizeof bound;
  uv_tcp_getsockname(server_, reinterpret_cast<sockaddr*>(&bound), &len);
  port_ = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return Status::Ok();
}

void MetricsListener::OnConnection() {
  auto* c = new Conn;
  c->owner = this;
  uv_tcp_init(loop_.uv(), &c->tcp);
  uv_timer_init(loop_.uv(), &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  open_ += 2;
  int count = 0;
  for (Conn* x = conns_; x; x = x->next) ++count;
  c->next = conns_;
  if (conns_) conns_->prev = c;
  conns_ = c;
  if (uv_accept(reinterpret_cast<uv_stream_t*>(server_), reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0 ||
      count >= kMaxConnections || closing_) {
    return Conn::Close(c);
  }
  uv_timer_start(&c->timer, [](uv_timer_t* t) { Conn::Close(static_cast<Conn*>(t->data)); }, kDeadlineMs, 0);
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char scratch[1024];  // loop thread only; consumed before the next read
        *buf = uv_buf_init(scratch, sizeof scratch);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
        auto* conn = static_cast<Conn*>(s->data);
        if (n < 0) return Conn::Close(conn);
        conn->head.append(buf->base, static_cast<std::size_t>(n));
        if (conn->head.find("\r\n\r\n") != std::string::npos) return conn->Answer();
        if (conn->head.size() > kMaxHead) Conn::Close(conn);
      });
}

void MetricsListener::Forget(Conn* c) {
  if (c->prev) c->prev->next = c->next;
  if (c->next) c->next->prev = c->prev;
  if (conns_ == c) conns_ = c->next;
  c->next = c->prev = nullptr;
}

void MetricsListener::MaybeClosed() {
  if (closing_ && open_ == 0 && closed_) loop_.Post(std::move(closed_));
}

void MetricsListener::Close(Task done) {
  closing_ = true;
  closed_ = std::move(done);
  for (Conn* c = conns_; c; c = c->next) Conn::Close(c);
  if (!server_) return MaybeClosed();
  uv_close(reinterpret_cast<uv_handle_t*>(server_), [](uv_handle_t* h) {
    auto* self = static_cast<MetricsListener*>(h->data);
    --self->open_;
    self->MaybeClosed();
  });
}

}  // namespace cairn::daemon
