// The maintenance schedule (docs/check.md, "Maintenance"): a daemon timer
// that starts a deep-check pass over every alias (control/deep_check.h) as
// a control task ("maintenance", holding the "maintenance" key
// exclusively), with --repair/--add-lease as set and --verify once every
// verify interval. The schedule and the last pass are kept in the control
// store's "maintenance" table, so they survive a restart.
//
// Never two passes at once: the next run is armed only when a pass has
// ended, and the key is exclusive. A pass that is due while any other task
// is queued or running (client work) waits, trying again every second. The
// pass itself is the walker's asynchronous steps: it never holds the loop.
// Loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "cairn/core/callback.h"
#include "cairn/core/json.h"
#include "cairn/core/status.h"
#include "control/check.h"

namespace cairn {
class Timer;
}

namespace cairn::control {

class TaskStore;

struct MaintenanceSchedule {
  std::uint64_t every_s = 0;  // 0: off
  bool repair = false;
  bool add_lease = false;
  std::uint64_t verify_every_s = 0;  // 0: never verify
  std::uint64_t test_hold_ms = 0;    // tests only (CAIRN_TEST_HOOKS): each pass waits this long first
};

// The shortest interval `maintenance set` takes (seconds).
inline constexpr std::uint64_t kMaintenanceMinEverySeconds = 1;

class Maintenance {
 public:
  Maintenance(CheckEnv env);
  ~Maintenance();
  // Reads the schedule and the last pass from `store` (at start-up, after
  // the store is open) and arms the timer if a schedule is set.
  Status Open(TaskStore& store);
  // Stops arming passes (shutdown). A running pass ends with its task.
  void Close();
  // Replaces the schedule; `done` runs on a later turn once it is durable.
  // The next pass is due `every_s` from now (or when the running one ends).
  void Set(MaintenanceSchedule schedule, Callback<void(Status)> done);
  // {"schedule": {...} or null, "running", "running_task", "passes",
  //  "deferred", "next_run_ms", "last": {...} or null} (docs/check.md).
  Json StatusJson() const;

 private:
  struct Last;
  void Arm(std::uint64_t delay_ms);
  void Fire();
  void Submit();
  void Ended(std::uint64_t task, const cJSON* record);
  void Persist(Callback<void(Status)> done);

  CheckEnv env_;
  TaskStore* store_ = nullptr;
  unsigned int dbi_ = 0;
  MaintenanceSchedule schedule_;
  std::unique_ptr<Timer> timer_;
  std::unique_ptr<Timer> hold_;
  std::shared_ptr<bool> alive_;
  bool closed_ = false;
  bool running_ = false;
  std::uint64_t running_task_ = 0;
  std::uint64_t passes_ = 0;
  std::uint64_t deferred_ = 0;
  std::uint64_t next_run_ms_ = 0;     // wall clock; 0 when off
  std::uint64_t last_verify_ms_ = 0;  // wall clock of the last verifying pass's start
  Json last_;                         // the last pass ended (null before the first)
};

// The control methods maintenance.set, maintenance.show, maintenance.off.
void MaintenanceSet(CommandsState& c, Request& req, Reply& reply);
void MaintenanceShow(CommandsState& c, Request& req, Reply& reply);
void MaintenanceOff(CommandsState& c, Request& req, Reply& reply);

}  // namespace cairn::control
