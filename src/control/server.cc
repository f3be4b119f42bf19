// Control socket: accept, frame, bound, dispatch. Loop thread only.
//
// Lifetime: the Server's map owns each Connection (shared_ptr); a Reply holds
// only a weak_ptr, so an answer to a client that has gone is dropped, never
// written to freed memory. A Connection is erased from the map only after
// both of its libuv handles have closed.
#include "cairn/control/server.h"

#include <cjson/cJSON.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <cstring>
#include <map>

#include "cairn/control/protocol.h"
#include "cairn/core/log.h"

namespace cairn::control {

struct Server::Impl {
  Impl(Loop& l, const Limits& lim, Dispatcher& d, ServerStats& s) : loop(l), limits(lim), dispatcher(d), stats(s) {}
  Loop& loop;
  Limits limits;
  Dispatcher& dispatcher;
  ServerStats& stats;
  uv_pipe_t listener;
  bool listener_open = false;
  bool closing = false;
  Task close_done;
  std::map<std::uint64_t, std::shared_ptr<Connection>> conns;
  std::uint64_t next_id = 1;
  char read_buf[64 * 1024];

  void MaybeFinishClose();
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(Server::Impl* server, std::uint64_t id) : server_(server), id_(id) {}

  Status Accept();
  void StartReading();
  // Queues one whole frame (ending in '\n') for writing.
  void SendLine(std::string line);
  void SendError(const cJSON* id, const Status& status);
  // Called once per final frame written for a request of this connection.
  void RequestAnswered();
  // Closes after the queued writes have gone out.
  void CloseAfterWrites();
  void Close();

  uid_t peer_uid() const { return peer_uid_; }

 private:
  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  void ProcessPending();
  void HandleFrame(const std::string& line);
  void UpdateIdleTimer();
  void HandleClosed();

  Server::Impl* server_;
  std::uint64_t id_;
  uv_pipe_t pipe_;
  uv_timer_t idle_;
  int handles_open_ = 0;
  bool closing_ = false;
  bool reading_ = false;
  bool close_after_writes_ = false;
  bool process_posted_ = false;
  std::string pending_;
  std::size_t inflight_ = 0;
  std::size_t write_bytes_ = 0;
  uid_t peer_uid_ = 0;
};

namespace {

struct WriteReq {
  uv_write_t req;
  std::string data;
  std::weak_ptr<Connection> conn;
};

Status StatusFromUv(const char* what, int rc) {
  return Status::IoError(std::string(what) + ": " + uv_strerror(rc));
}

}  // namespace

// --- Connection ---------------------------------------------------------------

Status Connection::Accept() {
  uv_pipe_init(server_->loop.uv(), &pipe_, 0);
  pipe_.data = this;
  uv_timer_init(server_->loop.uv(), &idle_);
  idle_.data = this;
  handles_open_ = 2;
  int rc = uv_accept(reinterpret_cast<uv_stream_t*>(&server_->listener), reinterpret_cast<uv_stream_t*>(&pipe_));
  if (rc != 0) return StatusFromUv("accept", rc);
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&pipe_), &fd) == 0) {
    ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      return Status::PermissionDenied(std::string("cannot read peer credentials: ") + std::strerror(errno));
    }
    peer_uid_ = cred.uid;
    if (cred.uid != 0 && cred.uid != geteuid()) {
      return Status::PermissionDenied("uid " + std::to_string(cred.uid) + " may not use this node's control socket");
    }
  }
  return Status();
}

void Connection::StartReading() {
  if (reading_ || closing_) return;
  reading_ = true;
  uv_read_start(reinterpret_cast<uv_stream_t*>(&pipe_), OnAlloc, OnRead);
}

void Connection::OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(h->data);
  *buf = uv_buf_init(self->server_->read_buf, sizeof self->server_->read_buf);
}

void Connection::OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(s->data);
  if (n < 0) {
    // EOF or error: the client is gone. Answers still in flight are dropped.
    self->Close();
    return;
  }
  if (n == 0) return;
  self->pending_.append(buf->base, static_cast<size_t>(n));
  self->ProcessPending();
}

// Cuts complete lines out of pending_ and posts each as a frame, up to the
// in-flight bound; reading pauses while the bound is reached.
void Connection::ProcessPending() {
  if (closing_ || close_after_writes_) return;
  const std::size_t frame_limit = server_->limits.control_frame_bytes;
  const std::size_t inflight_limit = server_->limits.control_inflight;
  std::size_t start = 0;
  while (inflight_ < inflight_limit) {
    std::size_t nl = pending_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string line = pending_.substr(start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > frame_limit) break;  // handled below, after erasing what was consumed
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    ++inflight_;
    server_->loop.Post([weak = weak_from_this(), line = std::move(line)] {
      if (auto self = weak.lock()) self->HandleFrame(line);
    });
  }
  pending_.erase(0, start);
  std::size_t nl = pending_.find('\n');
  std::size_t head = nl == std::string::npos ? pending_.size() : nl;
  if (head > frame_limit) {
    server_->stats.bad_frames++;
    SendError(nullptr, Status::FrameTooLarge("frame longer than " + std::to_string(frame_limit) +
                                             " bytes; closing the connection"));
    CloseAfterWrites();
    return;
  }
  bool full = inflight_ >= inflight_limit;
  if (full && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&pipe_));
    reading_ = false;
  } else if (!full && !reading_) {
    StartReading();
  }
  UpdateIdleTimer();
}

void Connection::UpdateIdleTimer() {
  if (closing_) return;
  if (pending_.empty()) {
    uv_timer_stop(&idle_);
  } else if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&idle_))) {
    uv_timer_start(
        &idle_,
        [](uv_timer_t* t) {
          auto* self = static_cast<Connection*>(t->data);
          self->server_->loop.Post([weak = self->weak_from_this()] {
            if (auto conn = weak.lock()) {
              CAIRN_LOG(Warn, "control: closing a connection idle mid-frame");
              conn->Close();
            }
          });
        },
        server_->limits.control_idle_ms, 0);
  }
}

void Connection::HandleFrame(const std::string& line) {
  Server::Impl& srv = *server_;
  srv.stats.requests++;
  ParsedRequest p = ParseRequest(line);
  if (!p.error.ok()) {
    if (p.bad_frame) srv.stats.bad_frames++;
    SendError(p.id.get(), p.error);
    RequestAnswered();
    return;
  }
  Request req;
  req.method = std::move(p.method);
  req.params = std::move(p.params);
  req.peer_uid = peer_uid_;
  req.wait = p.wait;
  srv.dispatcher.Handle(std::move(req), Reply(weak_from_this(), std::move(p.id)));
}

void Connection::SendError(const cJSON* id, const Status& status) {
  Json frame = Json::NewObject();
  cJSON_AddItemToObject(frame.get(), "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
  cJSON_AddItemToObject(frame.get(), "error", ErrorToJson(status).release());
  SendLine(frame.Print() + "\n");
}

void Connection::RequestAnswered() {
  if (inflight_ > 0) --inflight_;
  // Frames held back by the in-flight bound are processed on a later turn.
  if (!process_posted_ && !closing_) {
    process_posted_ = true;
    server_->loop.Post([weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        self->process_posted_ = false;
        self->ProcessPending();
      }
    });
  }
}

void Connection::SendLine(std::string line) {
  if (closing_) return;
  // A client that does not read its answers is dropped rather than buffered without bound.
  const std::size_t max_buffered = 4 * server_->limits.control_frame_bytes + (1u << 20);
  if (write_bytes_ + line.size() > max_buffered) {
    CAIRN_LOG(Warn, "control: client is not reading its answers; closing");
    Close();
    return;
  }
  auto* w = new WriteReq{};
  w->data = std::move(line);
  w->conn = weak_from_this();
  w->req.data = w;
  write_bytes_ += w->data.size();
  uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&pipe_), &b, 1, [](uv_write_t* req, int status) {
    auto* wr = static_cast<WriteReq*>(req->data);
    if (auto self = wr->conn.lock()) {
      self->write_bytes_ -= wr->data.size();
      if (status < 0) {
        self->Close();
      } else if (self->close_after_writes_ && self->write_bytes_ == 0) {
        self->Close();
      }
    }
    delete wr;
  });
  if (rc != 0) {
    write_bytes_ -= w->data.size();
    delete w;
    Close();
  }
}

void Connection::CloseAfterWrites() {
  close_after_writes_ = true;
  if (reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&pipe_));
    reading_ = false;
  }
  if (write_bytes_ == 0) Close();
}

void Connection::Close() {
  if (closing_) return;
  closing_ = true;
  auto on_close = [](uv_handle_t* h) {
    auto* self = static_cast<Connection*>(h->data);
    if (--self->handles_open_ == 0) self->HandleClosed();
  };
  uv_close(reinterpret_cast<uv_handle_t*>(&pipe_), on_close);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), on_close);
}

void Connection::HandleClosed() {
  Server::Impl* srv = server_;
  srv->stats.connections_open--;
  srv->conns.erase(id_);  // may free this
  srv->MaybeFinishClose();
}

// --- Reply ----------------------------------------------------------------------

Reply::Reply(std::weak_ptr<Connection> conn, Json id) : conn_(std::move(conn)), id_(std::move(id)) {}

Reply::~Reply() {
  if (!done_ && id_.get()) Error(Status::Internal("the handler returned without answering"));
}

bool Reply::connected() const { return !conn_.expired(); }

void Reply::Result(Json result) { Send("result", std::move(result)); }

void Reply::Error(const Status& status) { Send("error", ErrorToJson(status)); }

void Reply::Progress(Json event) {
  auto conn = conn_.lock();
  if (done_ || !conn) return;
  Json frame = Json::NewObject();
  cJSON_AddItemToObject(frame.get(), "id", cJSON_Duplicate(id_.get(), true));
  cJSON_AddItemToObject(frame.get(), "progress", event.release());
  conn->SendLine(frame.Print() + "\n");
}

void Reply::Send(const char* key, Json body) {
  CAIRN_CHECK(!done_, "a control request was answered twice");
  done_ = true;
  auto conn = conn_.lock();
  if (!conn) return;
  Json frame = Json::NewObject();
  cJSON_AddItemToObject(frame.get(), "id", id_.release());
  cJSON_AddItemToObject(frame.get(), key, body.get() ? body.release() : cJSON_CreateNull());
  conn->SendLine(frame.Print() + "\n");
  conn->RequestAnswered();
}

// --- Server ---------------------------------------------------------------------

Server::Server(Loop& loop, const Limits& limits, Dispatcher& dispatcher)
    : impl_(std::make_unique<Impl>(loop, limits, dispatcher, stats_)) {}

Server::~Server() {
  CAIRN_CHECK(!impl_->listener_open && impl_->conns.empty(), "control::Server destroyed before Close() completed");
}

Status Server::Start(const std::string& path) {
  sockaddr_un probe;
  if (path.size() >= sizeof probe.sun_path) {
    return Status::InvalidArgument("control socket path is " + std::to_string(path.size()) +
                                   " bytes; UNIX sockets allow at most " + std::to_string(sizeof probe.sun_path - 1) +
                                   ": use a shorter node directory path");
  }
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Status::Conflict(path + " exists and is not a socket");
    unlink(path.c_str());  // stale: the caller holds the node lock
  }
  uv_pipe_init(impl_->loop.uv(), &impl_->listener, 0);
  impl_->listener.data = impl_.get();
  impl_->listener_open = true;
  mode_t old = umask(0177);
  int rc = uv_pipe_bind(&impl_->listener, path.c_str());
  umask(old);
  if (rc == 0 && chmod(path.c_str(), 0600) != 0) rc = -errno;
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(&impl_->listener), 128, [](uv_stream_t* s, int status) {
      auto* srv = static_cast<Server::Impl*>(s->data);
      if (status < 0 || srv->closing) return;
      std::uint64_t id = srv->next_id++;
      auto conn = std::make_shared<Connection>(srv, id);
      srv->conns[id] = conn;
      srv->stats.connections_accepted++;
      srv->stats.connections_open++;
      Status accepted = conn->Accept();
      if (!accepted.ok()) {
        CAIRN_LOG(Warn, "control: refused a connection: %s", accepted.ToString().c_str());
        conn->SendError(nullptr, accepted);
        conn->CloseAfterWrites();
        return;
      }
      if (srv->stats.connections_open > srv->limits.control_max_clients) {
        conn->SendError(nullptr, Status::Busy("too many control connections (limit " +
                                              std::to_string(srv->limits.control_max_clients) + ")"));
        conn->CloseAfterWrites();
        return;
      }
      conn->StartReading();
    });
  }
  if (rc != 0) {
    // The listener handle stays open until Close(), which the caller must call.
    return StatusFromUv(("control socket " + path).c_str(), rc);
  }
  return Status();
}

void Server::Close(Task done) {
  Impl& im = *impl_;
  im.closing = true;
  im.close_done = std::move(done);
  if (im.listener_open) {
    uv_close(reinterpret_cast<uv_handle_t*>(&im.listener), [](uv_handle_t* h) {
      auto* srv = static_cast<Server::Impl*>(h->data);
      srv->listener_open = false;
      srv->MaybeFinishClose();
    });
  }
  // Copy: Close() of a connection erases it from the map later, not now.
  std::vector<std::shared_ptr<Connection>> conns;
  for (auto& [id, c] : im.conns) conns.push_back(c);
  for (auto& c : conns) c->Close();
  im.MaybeFinishClose();
}

void Server::Impl::MaybeFinishClose() {
  if (!closing || listener_open || !conns.empty() || !close_done) return;
  loop.Post(std::move(close_done));
  close_done = nullptr;
}

}  // namespace cairn::control
