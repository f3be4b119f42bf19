// The HTTP/1.1 server: cairn's TLS listener underneath, one request at a time
// per connection (pipelined requests wait their turn), keep-alive, bodies
// streamed both ways with backpressure, and every limit from Limits. What it
// accepts and refuses, and how much memory a connection may hold, is in
// docs/http.md. Loop thread only.
//
// The application registers one Handler. For each request it receives an
// Exchange on a later turn, looks at the head, optionally reads the body in
// bounded pieces, and answers once: Respond() with a buffered body, or
// StartResponse() / WriteBody() / EndResponse() for a streamed one. Every
// callback the server makes runs from a fresh turn (Loop::Post), never inside
// the call that caused it, also when the call fails at once.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/limits.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/http/request.h"

namespace cairn::tls {
class Context;
}

namespace cairn::http {

class ServerConnection;

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;             // 0: the kernel picks one (see Server::port())
  std::uint64_t max_connections = 256;  // more are closed as they arrive
  std::uint64_t header_bytes = 16384;   // request line + headers: 414 / 431 beyond
  std::uint64_t max_headers = 64;       // header lines: 431 beyond
  std::uint64_t body_bytes = 1048576;   // body limit unless the handler chooses one: 413 beyond
  std::uint64_t idle_ms = 60000;        // no progress from the peer (or into its socket) this long: closed
  std::uint64_t request_ms = 30000;     // a request head not complete this long after it began: 408
  std::uint64_t handshake_ms = 10000;   // TLS handshake

  // The node's limits: max_connections, http_header_bytes, http_max_headers,
  // http_body_bytes, http_idle_ms, http_request_ms, tls_handshake_ms.
  static ServerOptions FromLimits(const Limits& limits);
};

// What an on_chunk callback wants next.
enum class Flow {
  kMore,   // deliver the next piece when it arrives
  kPause,  // deliver nothing until Exchange::ResumeBody()
};

struct BodyOptions {
  // The largest body this endpoint takes; unset: ServerOptions::body_bytes.
  // A declared Content-Length above it is answered 413 before any body byte
  // is read; a chunked body is answered 413 when it crosses it.
  std::optional<std::uint64_t> max_bytes;
  // Answer 411 if the request declares neither Content-Length nor chunked.
  bool length_required = false;
};

struct Response {
  int status = 200;
  // REQUIRES: valid names and values (no CR, LF or NUL), and none of
  // Content-Length, Transfer-Encoding or Connection: the server writes those.
  std::vector<Field> headers;
  std::string body;  // REQUIRES: empty for 1xx, 204 and 304
};

// One request and its response. Handed to the Handler as a shared_ptr; every
// method may be called after the connection is gone (then it does nothing,
// and callbacks run with Unavailable). If the last reference is dropped
// before a response was started, the server answers 500 and closes; if a
// streamed response was not ended, the connection is aborted.
class Exchange {
 public:
  ~Exchange();
  Exchange(const Exchange&) = delete;
  Exchange& operator=(const Exchange&) = delete;

  const Request& request() const { return request_; }
  // "ip:port" of the client.
  const std::string& peer() const { return peer_; }

  // Reads the body. `on_chunk` runs on later turns with each piece, in order,
  // at most 64 KiB each, one at a time (the next is not delivered before the
  // previous call returned); `on_end` runs once after the last piece: OK, or
  // FrameTooLarge (413 was answered), InvalidArgument (a malformed chunked
  // body or 411: 400 or 411 was answered), Timeout (408 was answered),
  // Cancelled (a response was sent before the body was read), Unavailable
  // (the connection ended). After an error no more pieces come. While the
  // body is paused or a piece is being handled, the connection stops reading
  // its socket once 64 KiB are waiting. A request without a body gets only
  // on_end(OK). REQUIRES: called at most once per exchange.
  void ReadBody(BodyOptions options, Callback<Flow(std::string)> on_chunk, Callback<void(Status)> on_end);
  // Stops or restarts piece delivery; ResumeBody() also undoes a kPause.
  void PauseBody();
  void ResumeBody();
  // Reads a whole small body into memory: `done` runs once with it, or with
  // the error as for ReadBody. `max_bytes` bounds it (413 beyond).
  void ReadWholeBody(std::uint64_t max_bytes, Callback<void(Result<std::string>)> done);

  // Answers with a buffered body (not sent for HEAD requests; Content-Length
  // always). REQUIRES: no response started yet.
  void Respond(Response response);
  // Starts a streamed response: the status line and headers now, the body by
  // WriteBody(). With `content_length` the body must be exactly that long;
  // without it the body is chunked (HTTP/1.1) or ends with the connection
  // (HTTP/1.0). REQUIRES: no response started yet; `status` allows a body.
  void StartResponse(int status, std::vector<Field> headers, std::optional<std::uint64_t> content_length);
  // Queues body bytes. `ready` runs on a later turn once the connection can
  // take more (its write queue under 256 KiB): OK, or Unavailable if the
  // connection ended, Internal if the bytes exceed the declared length.
  // REQUIRES: StartResponse() called; the previous WriteBody's `ready` ran.
  void WriteBody(std::string data, Callback<void(Status)> ready);
  // Ends a streamed response; `done` (optional) runs on a later turn when the
  // last bytes are handed to the kernel, or with why they were not
  // (Internal if fewer bytes than the declared length were written).
  void EndResponse(Callback<void(Status)> done = nullptr);
  // Close the connection after this response instead of keeping it alive.
  void CloseAfterResponse();

 private:
  friend class ServerConnection;
  Exchange(Loop& loop, std::weak_ptr<ServerConnection> conn, std::uint64_t id, Request request, std::string peer);

  Loop* loop_;
  std::weak_ptr<ServerConnection> conn_;
  std::uint64_t id_;
  Request request_;
  std::string peer_;
};

using Handler = Callback<void(std::shared_ptr<Exchange>)>;

class Server {
 public:
  Server(Loop& loop, std::shared_ptr<tls::Context> ctx);
  ~Server();  // REQUIRES: Close() completed, or Start() never called.
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. `handler` runs on later turns, once per request.
  // Synchronous; call Close() after it whether or not it succeeded.
  Status Start(const ServerOptions& options, Handler handler);
  std::uint16_t port() const;
  // Stops accepting and closes every connection (responses in flight are
  // dropped); `done` runs on a later turn once everything is closed.
  void Close(Task done);
  std::size_t open_connections() const;
  // Connections accepted since Start (each one a TLS handshake).
  std::uint64_t accepted_connections() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::http
