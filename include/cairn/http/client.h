// An HTTP/1.1 client for one server over pinned TLS (tls::Dialer): a bounded
// pool of keep-alive connections, requests queued (bounded) while every
// connection is busy, request bodies written in bounded pieces as the socket
// takes them, responses parsed with Content-Length, chunked or
// read-until-close bodies under a size bound, and connect / response-head /
// body-silence timeouts. When the server closes a kept-alive connection
// just as a request is sent on it, a GET or HEAD is retried once on a fresh
// connection. Loop thread only.
//
// Every completion runs from a fresh turn (Loop::Post), never inside Send(),
// also when it fails at once; each holds a ReentryGuard armed in the call
// that started it (Send, Close), so debug builds abort if one ever did.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/http/request.h"

namespace cairn::tls {
class Context;
}

namespace cairn::http {

struct ClientOptions {
  std::string host;  // IP address or name
  std::uint16_t port = 0;
  std::string spki_pin;  // the server's SPKI hash (43 characters)
  std::size_t max_connections = 10;  // per server, as Tahoe's client pool
  std::size_t max_idle = 4;          // kept-alive connections kept open
  std::size_t max_queued = 4096;     // requests waiting for a connection: ResourceExhausted beyond
  std::uint64_t connect_ms = 10000;  // TCP and TLS handshake
  std::uint64_t head_ms = 60000;     // request start to the response head (Tahoe: 60 s)
  std::uint64_t body_idle_ms = 60000;  // silence while the response body arrives (Tahoe: 60 s)
  std::uint64_t keep_idle_ms = 30000;  // an unused pooled connection is closed after this
  std::size_t head_bytes = 65536;    // status line and headers
  std::size_t max_headers = 128;
};

struct ClientRequest {
  std::string method;  // "GET", "PATCH", ...
  std::string target;  // origin-form: "/storage/v1/version"
  // Not Host, Content-Length, Transfer-Encoding or Connection: Send() writes those.
  std::vector<Field> headers;
  std::string body;  // sent with Content-Length (also 0 for POST/PUT/PATCH)
  std::uint64_t max_response_bytes = 30ull << 20;  // a longer body: FrameTooLarge
  // Fault injection for tests: abort the connection once the request is
  // written, before any answer (no retry).
  bool TEST_drop_after_send = false;
};

struct ClientResponse {
  int status = 0;
  std::vector<Field> headers;
  std::string body;
  // The first header named `name` (ASCII case-insensitive), or nullptr.
  const std::string* Header(std::string_view name) const;
};

struct ClientStats {
  std::uint64_t connections_made = 0;
  std::uint64_t requests = 0;
  std::uint64_t retries = 0;  // GETs resent after a kept-alive connection closed
  std::size_t max_open = 0;   // the most connections open (or connecting) at once
};

class Client {
 public:
  // `ctx` from tls::Context::NewClient().
  Client(Loop& loop, std::shared_ptr<tls::Context> ctx, ClientOptions options);
  ~Client();  // REQUIRES: Close() completed, or Send() never called.
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // `done` runs once on a later turn with the response (any status), or:
  // Unavailable (connect failed or refused, the connection ended before the
  // whole response), Unauthenticated (the server does not match the pin),
  // Timeout, FrameTooLarge (response head or body over its bound),
  // Integrity (a malformed response), ResourceExhausted (queue full),
  // ShuttingDown (Close() came first).
  void Send(ClientRequest request, Callback<void(Result<ClientResponse>)> done);
  // Fails what is queued or in flight with ShuttingDown and closes every
  // connection; `done` runs once, on a later turn, once all are closed.
  void Close(Task done);

  std::size_t open_connections() const;  // open or connecting
  std::size_t idle_connections() const;
  std::size_t queued() const;
  const ClientStats& stats() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace cairn::http
