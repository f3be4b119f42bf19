// Node: the daemon's composition root. Owns every long-lived part, and the
// start and shutdown order in one place. Loop thread only.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "cairn/control/commands.h"
#include "cairn/control/server.h"
#include "cairn/core/config.h"
#include "cairn/core/loop.h"
#include "cairn/core/node_dir.h"
#include "cairn/gbs/server.h"
#include "cairn/http/server.h"
#include "cairn/platform/board_io.h"
#include "cairn/store/store.h"
#include "daemon/metrics_listener.h"

struct uv_signal_s;

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
  // The storage listener: TLS with the node's identity, GBS on top.
  Status StartStorage();
  // Refreshes space_ from the store now and every 10 s (statvfs runs off
  // the loop), for status and metrics.
  void RefreshSpace();
  void ScheduleMemoryTrim();
  // The board's watchdog and status LED, if it has them (board, then
  // cairn.json "hardware"); petted while the loop turns and the store commits.
  // A device that cannot be opened is logged as an error, not fatal.
  void StartBoardWatch();
  // The last steps of Stop(): the store closes after everything that writes
  // to it, then the signal watchers.
  void CloseStore();
  void Finish();

  Loop& loop_;
  NodePaths paths_;
  Config config_;
  std::string node_id_;
  std::uint64_t started_ms_;
  control::Commands commands_;
  control::Server control_;
  std::unique_ptr<store::ShareStore> store_;  // opened first, closed last
  std::unique_ptr<gbs::StorageServer> gbs_;
  std::unique_ptr<http::Server> http_;
  std::unique_ptr<MetricsListener> metrics_;  // only with "metrics.port"
  std::optional<store::SpaceInfo> space_;  // the last refresh
  std::uint64_t space_wall_ms_ = 0;
  // The TLS suite the storage listener offers first, and why (docs/crypto.md,
  // "Which suite the host prefers"): "limit", or "measured" with the costs.
  std::string tls_first_suite_;
  std::string tls_first_suite_by_;
  double tls_aes_ns_per_byte_ = 0, tls_chacha_ns_per_byte_ = 0;
  std::unique_ptr<Timer> space_timer_;
  std::unique_ptr<Timer> trim_timer_;
  std::uint64_t heap_free_seen_ = 0;  // the heap's free bytes at the last trim
  std::unique_ptr<platform::BoardWatch> board_watch_;  // stopped (magic close) only by Finish()
  uv_signal_s* sigterm_ = nullptr;
  uv_signal_s* sigint_ = nullptr;
  bool stopping_ = false;
  bool started_ = false;
  Task stopped_;
  std::unique_ptr<Timer> stop_deadline_;
};

}  // namespace cairn::daemon
