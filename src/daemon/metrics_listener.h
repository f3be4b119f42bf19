// MetricsListener: `GET /metrics` over plain HTTP on 127.0.0.1 for
// Prometheus (config "metrics.port"; off by default). Loopback only, one
// short request per connection, bounded: a request head of at most 4 KiB
// within 5 s, at most 8 connections at once; anything else is closed. The
// text comes from a callback (the node's MetricsText). Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "cairn/core/loop.h"
#include "cairn/core/status.h"

struct uv_tcp_s;

namespace cairn::daemon {

class MetricsListener {
 public:
  MetricsListener(Loop& loop, std::function<std::string()> metrics) : loop_(loop), metrics_(std::move(metrics)) {}
  ~MetricsListener();  // REQUIRES: Close() completed, or Start() never called.
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;

  Status Start(std::uint16_t port);
  std::uint16_t port() const { return port_; }
  // Stops listening and closes open connections; `done` runs on a later turn.
  void Close(Task done);

  struct Conn;

 private:
  void OnConnection();
  void Forget(Conn* c);
  void MaybeClosed();

  Loop& loop_;
  std::function<std::string()> metrics_;
  uv_tcp_s* server_ = nullptr;
  std::uint16_t port_ = 0;
  int open_ = 0;  // handles not yet closed, the listener included
  bool closing_ = false;
  Task closed_;
  Conn* conns_ = nullptr;  // intrusive list of open connections
};

}  // namespace cairn::daemon
