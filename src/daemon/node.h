// Node: the daemon's composition root. Owns every long-lived part, and the
// start and shutdown order in one place. Loop thread only.
#pragma once

#include <memory>
#include <string>

#include "cairn/control/commands.h"
#include "cairn/control/server.h"
#include "cairn/core/config.h"
#include "cairn/core/loop.h"
#include "cairn/core/node_dir.h"

struct uv_signal_s;
struct MDB_env;

namespace cairn::daemon {

class Node final : public control::NodeView {
 public:
  Node(Loop& loop, NodePaths paths, Config config, std::string node_id);
  ~Node() override;

  // Starts the control socket and the signal watchers. On failure the node
  // must still be stopped with Stop().
  Status Start();
  // Orderly shutdown: stop accepting, finish or abort in-flight work, close
  // every handle; `done` runs on a later turn when nothing is left open.
  // Idempotent: a second call only logs.
  void Stop(Task done);

  // True once a SIGTERM/SIGINT (or Stop) began the shutdown.
  bool stopping() const { return stopping_; }

  Json StatusJson() override;
  std::string MetricsText() override;

 private:
  void OnSignal(int signum);
  // The last step of Stop(): everything that writes is closed.
  void Finish();

  Loop& loop_;
  NodePaths paths_;
  Config config_;
  std::string node_id_;
  std::uint64_t started_ms_;
  control::Commands commands_;
  control::Server control_;
  MDB_env* env_ = nullptr;  // the store's environment (the share store opens it in full)
  uv_signal_s* sigterm_ = nullptr;
  uv_signal_s* sigint_ = nullptr;
  bool stopping_ = false;
  bool started_ = false;
  Task stopped_;
  std::unique_ptr<Timer> stop_deadline_;
};

}  // namespace cairn::daemon
