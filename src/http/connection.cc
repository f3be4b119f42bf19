// One HTTP/1.1 server connection: the request state machine, body and
// response flow control, timeouts. Loop thread only.
#include "http/connection.h"

#include <utility>

#include "cairn/core/log.h"
#include "http/response.h"

namespace cairn::http {
namespace {

std::string Hex(std::size_t n) {
  static const char kDigits[] = "0123456789abcdef";
  std::string out;
  do {
    out.insert(out.begin(), kDigits[n & 15]);
    n >>= 4;
  } while (n != 0);
  return out;
}

bool StatusHasBody(int status) { return status >= 200 && status != 204 && status != 304; }

}  // namespace

ServerConnection::ServerConnection(Loop& loop, const ServerOptions& options, Handler* handler,
                                   std::shared_ptr<tls::Connection> tls, Callback<void(ServerConnection*)> on_closed)
    : loop_(loop),
      options_(options),
      handler_(handler),
      tls_(std::move(tls)),
      on_closed_(std::move(on_closed)),
      parser_({static_cast<std::size_t>(options.header_bytes), static_cast<std::size_t>(options.max_headers)}) {}

ServerConnection::~ServerConnection() = default;

void ServerConnection::Start() {
  last_progress_ms_ = loop_.NowMs();
  std::weak_ptr<ServerConnection> weak = weak_from_this();
  tls_->Start(
      [weak](std::string data) {
        if (auto c = weak.lock()) c->OnData(std::move(data));
      },
      [weak](Status why) {
        if (auto c = weak.lock()) c->OnEnd(std::move(why));
      });
  ArmTimer();
}

void ServerConnection::Abort(const Status& why) {
  closing_ = true;
  tls_->Abort(why);
}

void ServerConnection::PostStatus(StatusDone cb, Status st) { cb.Post(loop_, std::move(st)); }

// --- input -----------------------------------------------------------------------

void ServerConnection::OnData(std::string data) {
  if (dead_ || closing_) return;  // a closing connection discards what still arrives
  last_progress_ms_ = loop_.NowMs();
  if (in_pos_ == in_.size()) {
    in_ = std::move(data);
    in_pos_ = 0;
  } else {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
    in_ += data;
  }
  Pump();
}

void ServerConnection::Pump() {
  while (!dead_ && !closing_) {
    if (cur_.active) {
      if (cur_.body == BodyState::kReading && !cur_.message_complete && PumpBody()) continue;
      break;
    }
    // Between requests. A client that pipelines without reading responses
    // waits here until the previous responses have mostly left.
    if (tls_->queued_write_bytes() > kWriteHighWater || in_pos_ == in_.size()) break;
    std::size_t consumed = 0;
    std::string_view body;
    ParseEvent ev = parser_.Parse(std::string_view(in_).substr(in_pos_), kBodyPieceBytes, &consumed, &body);
    in_pos_ += consumed;
    if (consumed > 0 && !head_started_) {
      head_started_ = true;
      head_started_ms_ = loop_.NowMs();
    }
    if (ev == ParseEvent::kError) {
      FailRequest(parser_.error_status(), parser_.error_message(), Status::InvalidArgument(parser_.error_message()));
      break;
    }
    if (ev != ParseEvent::kHead) break;
    BeginRequest();
  }
  if (in_pos_ == in_.size()) {
    std::string().swap(in_);  // an idle connection keeps no input buffer
    in_pos_ = 0;
  }
  UpdateReading();
  ArmTimer();
}

void ServerConnection::BeginRequest() {
  Request req = parser_.TakeHead();
  head_started_ = false;
  cur_ = Current();
  cur_.active = true;
  cur_.id = next_id_++;
  cur_.head_method = req.method == "HEAD";
  cur_.version_minor = req.version_minor;
  cur_.keep_alive = req.keep_alive;
  cur_.expect_continue = req.expect_continue;
  cur_.has_body = req.has_body();
  cur_.length_declared = req.chunked || req.content_length.has_value();
  cur_.content_length = req.content_length;
  if (!cur_.has_body) {
    std::size_t consumed = 0;
    std::string_view body;
    ParseEvent ev = parser_.Parse(std::string_view(), kBodyPieceBytes, &consumed, &body);
    CAIRN_CHECK(ev == ParseEvent::kMessageEnd, "a request without a body must end at its head");
    cur_.message_complete = true;
  }
  auto exchange = std::shared_ptr<Exchange>(new Exchange(loop_, weak_from_this(), cur_.id, std::move(req), tls_->peer()));
  std::weak_ptr<ServerConnection> weak = weak_from_this();
  loop_.Post([weak, exchange = std::move(exchange)]() mutable {
    auto c = weak.lock();
    if (c && !c->dead_) (*c->handler_)(std::move(exchange));
  });
}

bool ServerConnection::PumpBody() {
  if (cur_.body_paused || cur_.piece_outstanding) return false;
  std::size_t consumed = 0;
  std::string_view piece;
  ParseEvent ev = parser_.Parse(std::string_view(in_).substr(in_pos_), kBodyPieceBytes, &consumed, &piece);
  in_pos_ += consumed;
  switch (ev) {
    case ParseEvent::kBody: {
      if (parser_.body_bytes() > cur_.body_limit) {
        FailRequest(413, "request body larger than " + std::to_string(cur_.body_limit) + " bytes",
                    Status::FrameTooLarge("request body over " + std::to_string(cur_.body_limit) + " bytes"));
        return false;
      }
      cur_.piece_outstanding = true;
      // A piece that is all of the input buffer (the usual case in a large
      // body: each buffer is one delivery from the TLS layer) is handed
      // over as it is instead of copied.
      std::string data;
      if (piece.data() == in_.data() && piece.size() == in_.size()) {
        data = std::move(in_);
        in_ = std::string();
        in_pos_ = 0;
      } else {
        data = std::string(piece);
      }
      std::weak_ptr<ServerConnection> weak = weak_from_this();
      loop_.Post([weak, id = cur_.id, data = std::move(data)]() mutable {
        if (auto c = weak.lock()) c->DeliverPiece(id, std::move(data));
      });
      return true;
    }
    case ParseEvent::kMessageEnd:
      cur_.message_complete = true;
      EndBody(Status());
      return true;
    case ParseEvent::kError:
      FailRequest(parser_.error_status(), parser_.error_message(), Status::InvalidArgument(parser_.error_message()));
      return false;
    default:
      return false;
  }
}

void ServerConnection::DeliverPiece(std::uint64_t id, std::string piece) {
  if (Stale(id) || cur_.body != BodyState::kReading) return;
  // Moved out while it runs: the application may end the request inside it.
  auto on_chunk = std::move(cur_.on_chunk);
  Flow flow = on_chunk(std::move(piece));
  if (Stale(id) || cur_.body != BodyState::kReading) return;
  cur_.on_chunk = std::move(on_chunk);
  cur_.piece_outstanding = false;
  if (flow == Flow::kPause) cur_.body_paused = true;
  last_progress_ms_ = loop_.NowMs();  // the wait for the peer starts again now
  Pump();
}

void ServerConnection::EndBody(Status st) {
  if (cur_.body != BodyState::kReading) return;
  cur_.body = BodyState::kDone;
  cur_.on_chunk = nullptr;
  PostStatus(std::move(cur_.on_end), std::move(st));
}

void ServerConnection::UpdateReading() {
  if (dead_) return;
  bool pause = closing_ || in_.size() - in_pos_ >= kInputHighWater;
  if (pause == reading_paused_) return;
  reading_paused_ = pause;
  if (pause) {
    tls_->PauseReading();
  } else {
    tls_->ResumeReading();
  }
}

// --- the application's calls ------------------------------------------------------

void ServerConnection::ReadBody(std::uint64_t id, BodyOptions options, Callback<Flow(std::string)> on_chunk,
                                StatusDone on_end) {
  if (Stale(id)) {
    PostStatus(std::move(on_end), Status::Unavailable("the connection is closed"));
    return;
  }
  CAIRN_CHECK(cur_.body == BodyState::kNone, "Exchange::ReadBody called twice");
  if (cur_.response != ResponseState::kNone) {
    cur_.body = BodyState::kDone;
    PostStatus(std::move(on_end), Status::FailedPrecondition("a response was already started"));
    return;
  }
  cur_.body = BodyState::kReading;
  cur_.on_chunk = std::move(on_chunk);
  cur_.on_end = std::move(on_end);
  cur_.body_limit = options.max_bytes.value_or(options_.body_bytes);
  if (options.length_required && !cur_.length_declared) {
    FailRequest(411, "this request needs a Content-Length", Status::InvalidArgument("no Content-Length"));
    return;
  }
  if (cur_.content_length && *cur_.content_length > cur_.body_limit) {
    // Refused before a byte of the body is read.
    FailRequest(413, "request body larger than " + std::to_string(cur_.body_limit) + " bytes",
                Status::FrameTooLarge("Content-Length over " + std::to_string(cur_.body_limit) + " bytes"));
    return;
  }
  if (cur_.message_complete) {
    EndBody(Status());
    return;
  }
  if (cur_.expect_continue) {
    cur_.expect_continue = false;
    Write("HTTP/1.1 100 Continue\r\n\r\n");
  }
  last_progress_ms_ = loop_.NowMs();
  Pump();
}

void ServerConnection::SetBodyPaused(std::uint64_t id, bool paused) {
  if (Stale(id) || cur_.body_paused == paused) return;
  cur_.body_paused = paused;
  if (!paused) {
    last_progress_ms_ = loop_.NowMs();
    Pump();
  }
}

bool ServerConnection::DecideClose() const {
  // Unread body bytes cannot be told apart from the next request: close.
  return cur_.close_after || !cur_.keep_alive || !cur_.message_complete;
}

void ServerConnection::Respond(std::uint64_t id, Response response) {
  if (Stale(id)) return;
  CAIRN_CHECK(cur_.response == ResponseState::kNone, "Exchange: a response was already started");
  CAIRN_CHECK(response.status >= 200 && response.status <= 599, "Exchange::Respond: status out of range");
  for (const Field& f : response.headers) CAIRN_CHECK(ApplicationMaySend(f), "Exchange::Respond: bad header " + f.name);
  bool has_body = StatusHasBody(response.status);
  CAIRN_CHECK(has_body || response.body.empty(), "Exchange::Respond: a body on a status that has none");
  cur_.close_after = DecideClose();
  std::string framing;
  if (has_body) framing = "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
  if (cur_.close_after) {
    framing += "Connection: close\r\n";
  } else if (cur_.version_minor == 0) {
    framing += "Connection: keep-alive\r\n";
  }
  std::string out = ResponseHead(response.status, response.headers, framing);
  cur_.response = ResponseState::kDone;
  if (has_body && !cur_.head_method && response.body.size() > kBodyPieceBytes) {
    // A large body (a 1 MiB share read) goes as its own write, not copied
    // behind the head: the copy's fresh 1 MiB buffer cost about 0.65 ms of
    // page faults on the loop per answer, and gbs_bench saw eleven such
    // answers in one turn.
    Write(std::move(out));
    Write(std::move(response.body));
  } else {
    if (has_body && !cur_.head_method) out += response.body;
    Write(std::move(out));
  }
  FinishResponse();
}

void ServerConnection::StartResponse(std::uint64_t id, int status, std::vector<Field> headers,
                                     std::optional<std::uint64_t> length) {
  if (Stale(id)) return;
  CAIRN_CHECK(cur_.response == ResponseState::kNone, "Exchange: a response was already started");
  CAIRN_CHECK(status >= 200 && status <= 599 && StatusHasBody(status), "Exchange::StartResponse: status has no body");
  for (const Field& f : headers) CAIRN_CHECK(ApplicationMaySend(f), "Exchange::StartResponse: bad header " + f.name);
  cur_.close_after = DecideClose();
  cur_.body_allowed = !cur_.head_method;
  std::string framing;
  if (length) {
    framing = "Content-Length: " + std::to_string(*length) + "\r\n";
  } else if (cur_.version_minor == 1) {
    framing = "Transfer-Encoding: chunked\r\n";
    cur_.chunked_response = cur_.body_allowed;
  } else {
    cur_.close_after = true;  // HTTP/1.0 without a length: the close ends the body
  }
  if (cur_.close_after) {
    framing += "Connection: close\r\n";
  } else if (cur_.version_minor == 0) {
    framing += "Connection: keep-alive\r\n";
  }
  cur_.response = ResponseState::kStreaming;
  cur_.response_length = length;
  Write(ResponseHead(status, headers, framing));
  if (!cur_.message_complete) EndBody(Status::Cancelled("a response was started before the body was read"));
}

void ServerConnection::WriteBody(std::uint64_t id, std::string data, StatusDone ready) {
  if (Stale(id) || cur_.response != ResponseState::kStreaming) {
    PostStatus(std::move(ready), Status::Unavailable("the connection is closed or the response is not streaming"));
    return;
  }
  CAIRN_CHECK(!cur_.write_ready, "Exchange::WriteBody before the previous one was ready");
  if (cur_.response_length && data.size() > *cur_.response_length - cur_.response_written) {
    PostStatus(std::move(ready), Status::Internal("more body bytes than the declared Content-Length"));
    CAIRN_LOG(Error, "http: %s: response body longer than its Content-Length; aborting", tls_->peer().c_str());
    Abort(Status::Internal("response body longer than its Content-Length"));
    return;
  }
  cur_.response_written += data.size();
  if (cur_.body_allowed && !data.empty()) {
    if (cur_.chunked_response) {
      std::string framed = Hex(data.size()) + "\r\n";
      framed += data;
      framed += "\r\n";
      Write(std::move(framed));
    } else {
      Write(std::move(data));
    }
  }
  if (tls_->queued_write_bytes() < kWriteHighWater) {
    PostStatus(std::move(ready), Status());
  } else {
    cur_.write_ready = std::move(ready);
    ArmTimer();
  }
}

void ServerConnection::EndResponse(std::uint64_t id, StatusDone done) {
  if (Stale(id) || cur_.response != ResponseState::kStreaming) {
    PostStatus(std::move(done), Status::Unavailable("the connection is closed or the response is not streaming"));
    return;
  }
  if (cur_.response_length && cur_.response_written != *cur_.response_length) {
    PostStatus(std::move(done), Status::Internal("fewer body bytes than the declared Content-Length"));
    CAIRN_LOG(Error, "http: %s: response body shorter than its Content-Length; aborting", tls_->peer().c_str());
    Abort(Status::Internal("response body shorter than its Content-Length"));
    return;
  }
  cur_.response = ResponseState::kDone;
  if (cur_.chunked_response) Write("0\r\n\r\n");
  if (done) {
    if (tls_->queued_write_bytes() == 0) {
      PostStatus(std::move(done), Status());
    } else {
      flush_waiters_.push_back(std::move(done));
    }
  }
  FinishResponse();
}

void ServerConnection::CloseAfterResponse(std::uint64_t id) {
  if (!Stale(id)) cur_.close_after = true;
}

void ServerConnection::ExchangeDropped(std::uint64_t id) {
  std::weak_ptr<ServerConnection> weak = weak_from_this();
  // Posted: the last reference may be dropped anywhere, even inside one of
  // this connection's own calls into the application.
  loop_.Post([weak, id] {
    auto c = weak.lock();
    if (!c || c->Stale(id)) return;
    if (c->cur_.response == ResponseState::kNone) {
      CAIRN_LOG(Error, "http: %s: the handler dropped a request without answering", c->tls_->peer().c_str());
      c->FailRequest(500, "the request was not answered", Status::Internal("the handler dropped the request"));
    } else if (c->cur_.response == ResponseState::kStreaming) {
      CAIRN_LOG(Error, "http: %s: the handler dropped a streamed response unfinished", c->tls_->peer().c_str());
      c->Abort(Status::Internal("streamed response abandoned"));
    }
  });
}

// --- ending requests and the connection -------------------------------------------

void ServerConnection::FinishResponse() {
  if (!cur_.message_complete) EndBody(Status::Cancelled("a response was sent before the body was read"));
  if (cur_.close_after) {
    CloseSoon();
    return;
  }
  FinishRequest();
}

void ServerConnection::FinishRequest() {
  cur_ = Current();
  last_progress_ms_ = loop_.NowMs();
  Pump();
}

void ServerConnection::FailRequest(int status, std::string_view message, Status why) {
  EndBody(std::move(why));
  PostStatus(std::move(cur_.write_ready), Status::Unavailable("the request failed"));
  if (cur_.active && cur_.response != ResponseState::kNone) {
    // Part of a response is out already; the client can only see a cut.
    Abort(Status::Unavailable(std::string(message)));
    return;
  }
  CAIRN_LOG(Debug, "http: %s: %d %s", tls_->peer().c_str(), status, std::string(message).c_str());
  std::string body = std::string(message) + "\n";
  std::string framing = "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n";
  Write(ResponseHead(status, {{"Content-Type", "text/plain; charset=utf-8"}}, framing) + body);
  cur_.response = ResponseState::kDone;
  CloseSoon();
}

void ServerConnection::CloseSoon() {
  closing_ = true;
  UpdateReading();
  tls_->Close();  // after the queued writes
}

void ServerConnection::OnEnd(Status why) {
  if (dead_) return;
  dead_ = true;
  auto self = shared_from_this();  // on_closed_ may drop the owner's reference
  EndBody(Status::Unavailable("the connection ended: " + why.ToString()));
  PostStatus(std::move(cur_.write_ready), Status::Unavailable("the connection ended"));
  for (auto& waiter : flush_waiters_) PostStatus(std::move(waiter), Status::Unavailable("the connection ended"));
  flush_waiters_.clear();
  timer_.reset();
  cur_ = Current();
  on_closed_(this);
}

// --- output -----------------------------------------------------------------------

void ServerConnection::Write(std::string bytes) {
  std::weak_ptr<ServerConnection> weak = weak_from_this();
  tls_->Write(std::move(bytes), [weak](Status st) {
    if (auto c = weak.lock()) c->OnWriteDone(st);
  });
}

void ServerConnection::OnWriteDone(const Status& st) {
  if (dead_ || !st.ok()) return;  // the end of the connection follows
  last_progress_ms_ = loop_.NowMs();
  std::size_t queued = tls_->queued_write_bytes();
  if (cur_.write_ready && queued < kWriteHighWater) PostStatus(std::move(cur_.write_ready), Status());
  if (queued == 0) {
    for (auto& waiter : flush_waiters_) PostStatus(std::move(waiter), Status());
    flush_waiters_.clear();
  }
  Pump();
}

// --- timeouts ---------------------------------------------------------------------

std::uint64_t ServerConnection::Deadline(Wait* wait, bool* writes_stuck) const {
  *wait = Wait::kNone;
  *writes_stuck = false;
  std::uint64_t deadline = kNoDeadline;
  if (dead_) return deadline;
  std::uint64_t idle = last_progress_ms_ + options_.idle_ms;
  if (!cur_.active && !closing_) {
    if (!head_started_) {
      *wait = Wait::kIdle;
      deadline = idle;
    } else {
      *wait = Wait::kHead;
      std::uint64_t head = head_started_ms_ + options_.request_ms;
      deadline = head < idle ? head : idle;
    }
  } else if (cur_.active && cur_.body == BodyState::kReading && !cur_.body_paused && !cur_.piece_outstanding &&
             !cur_.message_complete) {
    *wait = Wait::kBody;
    deadline = idle;
  }
  // Bytes the peer does not take: it has gone quiet on the other direction.
  if (tls_->queued_write_bytes() > 0) {
    *writes_stuck = true;
    if (idle < deadline) deadline = idle;
  }
  return deadline;
}

void ServerConnection::ArmTimer() {
  Wait wait;
  bool writes_stuck;
  std::uint64_t deadline = Deadline(&wait, &writes_stuck);
  if (deadline == kNoDeadline || deadline >= timer_at_) return;
  std::uint64_t now = loop_.NowMs();
  std::weak_ptr<ServerConnection> weak = weak_from_this();
  timer_ = loop_.PostAfter(deadline > now ? deadline - now : 0, [weak] {
    if (auto c = weak.lock()) c->OnTimer();
  });
  timer_at_ = deadline;
}

void ServerConnection::OnTimer() {
  timer_at_ = kNoDeadline;
  Wait wait;
  bool writes_stuck;
  std::uint64_t deadline = Deadline(&wait, &writes_stuck);
  if (deadline == kNoDeadline) return;
  if (loop_.NowMs() < deadline) {
    ArmTimer();  // progress since it was armed: wait for the rest
    return;
  }
  if (writes_stuck) {
    Abort(Status::Timeout("the client stopped reading"));
  } else if (wait == Wait::kIdle) {
    CloseSoon();  // an idle keep-alive connection ends quietly
  } else if (wait == Wait::kHead) {
    FailRequest(408, "the request head did not arrive in time", Status::Timeout("request head timeout"));
  } else if (wait == Wait::kBody) {
    FailRequest(408, "the request body stalled", Status::Timeout("request body stalled"));
  }
}

}  // namespace cairn::http
