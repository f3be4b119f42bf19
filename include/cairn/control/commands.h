// The control command table: method name → handler. Each handler copies what
// it needs out of the request before any asynchronous step (aptly #1573: a
// recycled request context) and answers its Reply exactly once. Loop thread
// only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/control/server.h"
#include "cairn/core/json.h"
#include "cairn/core/limits.h"
#include "cairn/core/loop.h"

namespace cairn::control {

// What the control plane may ask of the running node; implemented by the
// daemon's composition root.
class NodeView {
 public:
  virtual ~NodeView() = default;
  // The "status" result object (docs/control.md).
  virtual Json StatusJson() = 0;
  // The node's metrics as OpenMetrics text (docs/operations.md).
  virtual std::string MetricsText() = 0;
};

class TaskTable;
class NameTable;
class Maintenance;
class BackupSchedules;
}  // namespace cairn::control

namespace cairn::grid {
class Grid;
}

namespace cairn::control {

struct CommandsOptions {
  // Enables test-only methods (debug.hold); set by cairnd from the
  // CAIRN_TEST_HOOKS environment variable, never by configuration.
  bool test_hooks = false;
  // put and get: where the node's secrets live (DIR/private) and the
  // immutable encoding from the configuration ("client." keys).
  std::string private_dir;
  // Daemon-owned temporary files of put and get (DIR/tmp): a put's input
  // as it arrives in data frames, a get's output before it is sent back.
  // Emptied at start-up.
  std::string spool_dir;
  std::uint32_t shares_needed = 3;
  std::uint32_t shares_total = 10;
  std::uint32_t shares_happy = 7;
  std::uint64_t max_segment_size = 1 << 20;
  // mutable.*: the largest SDMF file (held in memory), limits.sdmf_max_bytes.
  std::uint64_t sdmf_max_bytes = 16 << 20;
};

class Commands final : public Dispatcher {
 public:
  Commands(Loop& loop, const Limits& limits, NodeView& node, CommandsOptions options);
  ~Commands() override;
  // Opens the task records in `dir` (DIR/control). Synchronous, at start-up.
  Status Open(const std::string& dir);
  // Stops taking tasks; grid tasks (put, get, mutable.*) are asked to stop
  // and waited for, then the grid's clients close; `done` runs once every
  // record is durable.
  void Close(Task done);
  void Handle(Request request, Reply reply) override;
  // The node's grid (connections, secrets), for the daemon's own jobs
  // (control/jobs.h) besides the control tasks'. Valid until Close's `done`.
  grid::Grid& grid() { return *grid_; }
  // Every method name, for "hello" and `cairn --help`.
  static std::vector<std::string> Methods();
  // "tasks" summary for status: {"active": N, "kept": N, "by_state": {...}}.
  Json TaskSummary() const;
  // "maintenance" for status and the metrics: the schedule, the running
  // pass, the last one's totals, the next run (docs/check.md).
  Json MaintenanceStatus() const;
  // "backup_schedules" for status and the metrics: every scheduled backup,
  // its running task, its last run and its next (docs/dirs.md, "Scheduled backups").
  Json BackupScheduleStatus() const;

 private:
  Loop& loop_;
  NodeView& node_;
  CommandsOptions options_;
  std::unique_ptr<TaskTable> tasks_;
  std::unique_ptr<NameTable> aliases_;
  std::unique_ptr<NameTable> servers_;
  std::map<std::uint64_t, std::unique_ptr<Timer>> holds_;  // debug.hold timers by task
  std::unique_ptr<grid::Grid> grid_;  // the client side: GBS connections, secrets
  std::unique_ptr<Maintenance> maintenance_;  // the maintenance schedule's timer and passes
  std::unique_ptr<BackupSchedules> backup_schedules_;  // scheduled backups' timers and runs
};

}  // namespace cairn::control
