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
#include <deque>
#include <map>
#include <vector>

#include "cairn/control/protocol.h"
#include "cairn/core/completion.h"
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
  // Called once per final frame written for a request of this connection;
  // `key` is its printed id (its input stream, if any, is dropped).
  void RequestAnswered(const std::string& key = "");
  // Runs `ready` on a later turn once at most one chunk waits to be written.
  void WhenWritable(Task ready);
  // A request's input went below one chunk: frames held back may go on.
  void InputDrained();
  // Closes after the queued writes have gone out.
  void CloseAfterWrites();
  void Close();

  uid_t peer_uid() const { return peer_uid_; }

 private:
  static void OnAlloc(uv_handle_t* h, size_t, uv_buf_t* buf);
  static void OnRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  void ProcessPending();
  // One data frame's attachment for the stream of `key`.
  void RouteData(const AttachmentHead& head, std::string bytes);
  void HandleFrame(ParsedRequest p, std::shared_ptr<InputStream::State> input);
  void WakeWritable();
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
  // Input streams of this connection's unanswered requests, by printed id.
  std::map<std::string, std::shared_ptr<InputStream::State>> inputs_;
  std::vector<Task> writable_waiters_;
};

struct InputStream::State {
  Loop* loop = nullptr;
  std::weak_ptr<Connection> conn;
  std::size_t chunk_limit = 0;
  std::deque<InputChunk> chunks;
  std::size_t buffered = 0;
  std::uint64_t next_seq = 0;
  bool eof_received = false;
  bool eof_delivered = false;
  Status failed;
  Callback<void(Result<InputChunk>)> reader;

  bool full() const { return buffered >= chunk_limit || chunks.size() >= 4; }
  void Fail(Status st) {
    if (failed.ok() && !eof_received) failed = std::move(st);
    Pump();
  }
  // Hands the next chunk (or the stream's end or failure) to a waiting
  // reader, on a later turn.
  void Pump() {
    if (!reader) return;
    if (!chunks.empty()) {
      InputChunk next = std::move(chunks.front());
      chunks.pop_front();
      bool was_full = full();
      buffered -= next.data.size();
      if (next.eof) eof_delivered = true;
      if (was_full && !full()) {
        if (auto c = conn.lock()) c->InputDrained();
      }
      Deliver(std::move(next));
    } else if (!failed.ok()) {
      Deliver(failed);
    } else if (eof_delivered) {
      Deliver(Status::FailedPrecondition("the request's input has ended"));
    }  // else: wait for the client
  }
  void Deliver(Result<InputChunk> next) {
    loop->Post([done = std::move(reader), next = std::move(next)]() mutable { done(std::move(next)); });
    reader = nullptr;
  }
};

Status CheckAnnouncedSize(std::optional<std::uint64_t> announced, std::uint64_t received, bool eof) {
  if (!announced) return Status();
  if (received > *announced) {
    return Status::InvalidArgument("more data than params.size (" + std::to_string(*announced) + " bytes)");
  }
  if (eof && received != *announced) {
    return Status::InvalidArgument("the input ended after " + std::to_string(received) + " of params.size " +
                                   std::to_string(*announced) + " bytes");
  }
  return Status();
}

void InputStream::Read(Callback<void(Result<InputChunk>)> done) {
  CAIRN_CHECK(state != nullptr, "InputStream::Read on a request without an input stream");
  done = Guarded(*state->loop, "InputStream::Read", std::move(done));
  if (state->reader) {
    state->loop->Post([done = std::move(done)]() mutable {
      done(Status::FailedPrecondition("InputStream::Read while another read is pending"));
    });
    return;
  }
  state->reader = std::move(done);
  state->Pump();
}

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

// Cuts complete frames out of pending_: a request is parsed and posted for
// dispatch, up to the in-flight bound; a data frame's attachment goes to its
// request's input stream, unless that stream already holds a chunk unread.
// Reading pauses while either bound is reached.
void Connection::ProcessPending() {
  if (closing_ || close_after_writes_) return;
  const std::size_t frame_limit = server_->limits.control_frame_bytes;
  const std::size_t inflight_limit = server_->limits.control_inflight;
  const std::size_t chunk_limit = server_->limits.control_chunk_bytes;
  std::size_t start = 0;
  bool blocked = false;  // by a full input stream or the in-flight bound
  while (true) {
    std::size_t nl = pending_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line = std::string_view(pending_).substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > frame_limit) break;  // handled below, after erasing what was consumed
    if (line.find_first_not_of(" \t") == std::string_view::npos) {
      start = nl + 1;
      continue;
    }
    AttachmentHead head;
    if (line.find("\"bytes\"") != std::string_view::npos) head = ParseAttachmentHead(line, chunk_limit);
    if (head.present) {
      if (head.error.code() == Code::kBadFrame || head.error.code() == Code::kFrameTooLarge) {
        // The frame's extent is unknown or too large: the stream cannot be followed.
        server_->stats.bad_frames++;
        pending_.erase(0, start);
        SendError(head.id.get(), head.error);
        CloseAfterWrites();
        return;
      }
      if (pending_.size() - (nl + 1) < head.bytes) break;  // the attachment is still arriving
      if (head.data && head.error.ok()) {
        auto it = inputs_.find(head.id.Print());
        if (it != inputs_.end() && it->second->full()) {
          blocked = true;
          break;
        }
      }
      std::string bytes = pending_.substr(nl + 1, head.bytes);
      start = nl + 1 + head.bytes;
      if (!head.error.ok()) {
        server_->stats.bad_frames++;
        SendError(head.id.get(), head.error);
        continue;
      }
      RouteData(head, std::move(bytes));
      continue;
    }
    if (inflight_ >= inflight_limit) {
      blocked = true;
      break;
    }
    start = nl + 1;
    ParsedRequest p = ParseRequest(line);
    std::shared_ptr<InputStream::State> input;
    if (p.error.ok()) {
      // Registered now, in frame order, so the data frames that follow find it.
      input = std::make_shared<InputStream::State>();
      input->loop = &server_->loop;
      input->conn = weak_from_this();
      input->chunk_limit = chunk_limit;
      inputs_[p.id.Print()] = input;
    }
    ++inflight_;
    server_->loop.Post([weak = weak_from_this(), p = std::move(p), input = std::move(input)]() mutable {
      if (auto self = weak.lock()) self->HandleFrame(std::move(p), std::move(input));
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
  if (blocked && reading_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&pipe_));
    reading_ = false;
  } else if (!blocked && !reading_) {
    StartReading();
  }
  UpdateIdleTimer();
}

void Connection::RouteData(const AttachmentHead& head, std::string bytes) {
  auto it = inputs_.find(head.id.Print());
  // Data for a request already answered (it may have failed before reading
  // its input) or never sent is dropped: the final frame tells the client.
  if (it == inputs_.end()) return;
  InputStream::State& in = *it->second;
  if (!in.failed.ok()) return;
  if (in.eof_received) return in.Fail(Status::InvalidArgument("a data frame after the one marked eof"));
  if (head.seq != in.next_seq) {
    return in.Fail(Status::InvalidArgument("data frame " + std::to_string(head.seq) + " out of order; expected " +
                                           std::to_string(in.next_seq)));
  }
  in.next_seq++;
  in.eof_received = head.eof;
  in.buffered += bytes.size();
  in.chunks.push_back(InputChunk{std::move(bytes), head.eof});
  in.Pump();
}

void Connection::InputDrained() {
  if (process_posted_ || closing_) return;
  process_posted_ = true;
  server_->loop.Post([weak = weak_from_this()] {
    if (auto self = weak.lock()) {
      self->process_posted_ = false;
      self->ProcessPending();
    }
  });
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

void Connection::HandleFrame(ParsedRequest p, std::shared_ptr<InputStream::State> input) {
  Server::Impl& srv = *server_;
  srv.stats.requests++;
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
  req.input.state = std::move(input);
  srv.dispatcher.Handle(std::move(req), Reply(weak_from_this(), std::move(p.id), &srv.loop));
}

void Connection::SendError(const cJSON* id, const Status& status) {
  Json frame = Json::NewObject();
  cJSON_AddItemToObject(frame.get(), "id", id ? cJSON_Duplicate(id, true) : cJSON_CreateNull());
  cJSON_AddItemToObject(frame.get(), "error", ErrorToJson(status).release());
  SendLine(frame.Print() + "\n");
}

void Connection::RequestAnswered(const std::string& key) {
  if (!key.empty()) {
    auto it = inputs_.find(key);
    if (it != inputs_.end()) {
      it->second->Fail(Status::Cancelled("the request was answered"));
      bool was_full = it->second->full();
      inputs_.erase(it);
      if (was_full) InputDrained();
    }
  }
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
  // A client that does not read its answers is dropped rather than buffered
  // without bound. One answer larger than the bound (a directory of 10,000
  // children lists as a few MB; a body is at most limits.sdmf_max_bytes) is
  // sent when nothing else waits: the bound is on what piles up unread.
  const std::size_t max_buffered =
      4 * server_->limits.control_frame_bytes + 2 * server_->limits.control_chunk_bytes + (1u << 20);
  if (write_bytes_ > 0 && write_bytes_ + line.size() > max_buffered) {
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
      self->WakeWritable();
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

void Connection::WhenWritable(Task ready) {
  writable_waiters_.push_back(std::move(ready));
  WakeWritable();
}

void Connection::WakeWritable() {
  if (writable_waiters_.empty()) return;
  if (!closing_ && write_bytes_ > server_->limits.control_chunk_bytes) return;
  std::vector<Task> ready;
  ready.swap(writable_waiters_);
  for (Task& t : ready) server_->loop.Post(std::move(t));
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
  for (auto& [key, in] : inputs_) in->Fail(Status::Unavailable("the control connection closed"));
  inputs_.clear();
  WakeWritable();
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

Reply::Reply(std::weak_ptr<Connection> conn, Json id, Loop* loop)
    : conn_(std::move(conn)), id_(std::move(id)), loop_(loop) {}

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

void Reply::Data(std::string bytes, bool eof) {
  auto conn = conn_.lock();
  if (done_ || !conn) return;
  std::string out = DataFrameLine(id_.get(), data_seq_++, bytes.size(), eof);
  out += bytes;
  conn->SendLine(std::move(out));
}

void Reply::WhenWritable(Task ready) {
  auto conn = conn_.lock();
  if (!conn) {
    // The client is gone: nothing to wait for; the caller sees !connected().
    loop_->Post(std::move(ready));
    return;
  }
  conn->WhenWritable(std::move(ready));
}

void Reply::Send(const char* key, Json body) {
  CAIRN_CHECK(!done_, "a control request was answered twice");
  done_ = true;
  auto conn = conn_.lock();
  if (!conn) return;
  std::string id_key = id_.Print();
  Json frame = Json::NewObject();
  cJSON_AddItemToObject(frame.get(), "id", id_.release());
  cJSON_AddItemToObject(frame.get(), key, body.get() ? body.release() : cJSON_CreateNull());
  conn->SendLine(frame.Print() + "\n");
  conn->RequestAnswered(id_key);
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
