// One HTTP/1.1 connection over a tls::Connection: parses requests one after
// another, hands each to the handler as an Exchange, moves body pieces and
// response bytes with backpressure both ways, and enforces the timeouts.
// Private to src/http; Exchange's methods forward here. Loop thread only.
//
// Everything that reaches the application is posted; nothing here calls an
// application callback inside the application's own call.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/http/server.h"
#include "cairn/core/completion.h"
#include "cairn/tls/connection.h"
#include "http/parser.h"

namespace cairn::http {

// Bounds on what one connection holds (docs/http.md sums them up).
inline constexpr std::size_t kBodyPieceBytes = 64 * 1024;   // one on_chunk piece
inline constexpr std::size_t kInputHighWater = 64 * 1024;   // unparsed input before reading stops
inline constexpr std::size_t kWriteHighWater = 256 * 1024;  // queued response bytes before WriteBody waits

// The completion of an Exchange call (ReadBody's on_end, WriteBody's ready,
// EndResponse's done), armed with the #877 tripwire where the call was made.
using StatusDone = Completion<Status>;

class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  ServerConnection(Loop& loop, const ServerOptions& options, Handler* handler, std::shared_ptr<tls::Connection> tls,
                   Callback<void(ServerConnection*)> on_closed);
  ~ServerConnection();

  // Starts reading requests. REQUIRES: owned by a shared_ptr.
  void Start();
  // Ends the connection at once (server shutdown).
  void Abort(const Status& why);

  // Exchange's methods, for the exchange numbered `id`; a stale id (an
  // exchange whose request is over) is answered as a closed connection.
  void ReadBody(std::uint64_t id, BodyOptions options, Callback<Flow(std::string)> on_chunk, StatusDone on_end);
  void SetBodyPaused(std::uint64_t id, bool paused);
  void Respond(std::uint64_t id, Response response);
  void StartResponse(std::uint64_t id, int status, std::vector<Field> headers, std::optional<std::uint64_t> length);
  void WriteBody(std::uint64_t id, std::string data, StatusDone ready);
  void EndResponse(std::uint64_t id, StatusDone done);
  void CloseAfterResponse(std::uint64_t id);
  // The exchange's last reference is gone.
  void ExchangeDropped(std::uint64_t id);

 private:
  enum class BodyState { kNone, kReading, kDone };
  enum class ResponseState { kNone, kStreaming, kDone };

  // The request being handled (one at a time).
  struct Current {
    bool active = false;
    std::uint64_t id = 0;
    bool head_method = false;
    int version_minor = 1;
    bool keep_alive = true;
    bool expect_continue = false;
    bool has_body = false;
    bool length_declared = false;
    std::optional<std::uint64_t> content_length;
    bool message_complete = false;  // the parser reached the request's end

    BodyState body = BodyState::kNone;
    bool body_paused = false;      // by the application
    bool piece_outstanding = false;  // posted, on_chunk not yet returned
    std::uint64_t body_limit = 0;
    Callback<Flow(std::string)> on_chunk;
    StatusDone on_end;

    ResponseState response = ResponseState::kNone;
    bool close_after = false;
    bool chunked_response = false;
    bool body_allowed = true;  // false for HEAD, 1xx, 204, 304
    std::optional<std::uint64_t> response_length;
    std::uint64_t response_written = 0;
    StatusDone write_ready;  // waiting for the write queue to drain
  };

  bool Stale(std::uint64_t id) const { return dead_ || closing_ || !cur_.active || cur_.id != id; }
  void OnData(std::string data);
  void OnEnd(Status why);
  void OnWriteDone(const Status& st);
  // Parses and dispatches as far as the state allows.
  void Pump();
  void BeginRequest();
  bool PumpBody();
  void DeliverPiece(std::uint64_t id, std::string piece);
  void EndBody(Status st);
  void FinishResponse();
  void FinishRequest();
  // Answers `status` with a short text body and closes (or aborts if a
  // response is already under way); the body reader gets `why`.
  void FailRequest(int status, std::string_view message, Status why);
  void Write(std::string bytes);
  void CloseSoon();
  void UpdateReading();
  void ArmTimer();
  void OnTimer();
  bool DecideClose() const;
  void PostStatus(StatusDone cb, Status st);
  enum class Wait { kNone, kIdle, kHead, kBody };
  std::uint64_t Deadline(Wait* wait, bool* writes_stuck) const;

  Loop& loop_;
  const ServerOptions& options_;
  Handler* handler_;
  std::shared_ptr<tls::Connection> tls_;
  Callback<void(ServerConnection*)> on_closed_;
  Parser parser_;
  std::string in_;           // input not yet parsed is in_[in_pos_..]
  std::size_t in_pos_ = 0;
  bool reading_paused_ = false;
  bool closing_ = false;  // answered the last response; closing after the writes
  bool dead_ = false;     // the TLS connection ended
  std::uint64_t next_id_ = 1;
  Current cur_;
  std::uint64_t last_progress_ms_ = 0;
  std::uint64_t head_started_ms_ = 0;
  bool head_started_ = false;
  std::vector<StatusDone> flush_waiters_;  // EndResponse()s waiting for the queue to empty
  std::unique_ptr<Timer> timer_;
  std::uint64_t timer_at_ = kNoDeadline;
  static constexpr std::uint64_t kNoDeadline = ~std::uint64_t{0};
};

}  // namespace cairn::http
