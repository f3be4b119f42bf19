// Scheduled backups (docs/dirs.md, "Scheduled backups"): `cairn backup schedule add
// FROM ALIAS:TO --every DURATION` keeps, per target, the parameters of a
// `backup` request and an interval in the control store's
// "backup_schedule" table; a daemon timer per schedule starts that backup
// through the `backup` control method itself (control/backup.h), so a
// scheduled run is the same two tasks ("backup", then "backup.link") as a
// client's, with the same lock key "backup/<TO>".
//
// Never two runs of one target at once: a schedule arms its next run only
// once its run has ended, and a run that becomes due while another backup
// of the target (a client's, or a task holding its key) still runs waits
// queued on the exclusive key "backup/<TO>" until that one ends. Each
// schedule's runs, its last run (tasks, state, counts, error) and its next
// run are kept in the table, so they survive a restart; status and the
// metrics show them. Loop thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "cairn/control/server.h"
#include "cairn/core/callback.h"
#include "cairn/core/json.h"
#include "cairn/core/status.h"
#include "control/handlers.h"

namespace cairn {
class Timer;
}

namespace cairn::control {

class TaskStore;

// The shortest and longest interval `backup.schedule.add` takes (seconds).
inline constexpr std::uint64_t kBackupScheduleMinEverySeconds = 1;
inline constexpr std::uint64_t kBackupScheduleMaxEverySeconds = 10ull * 365 * 86400;

// What the schedules need of the daemon.
struct BackupScheduleEnv {
  Loop* loop = nullptr;
  TaskTable* tasks = nullptr;
  // Handles a `backup` request (BackupRun with the daemon's state); it
  // must submit the request's first task before it returns, or answer
  // `reply` with an error.
  std::function<void(Request& req, Reply& reply)> start_backup;
};

class BackupSchedules {
 public:
  explicit BackupSchedules(BackupScheduleEnv env);
  ~BackupSchedules();
  // Reads every schedule from `store` (at start-up, after the store is
  // open) and arms each: due one interval after its last run ended, at once
  // if that is past, or one interval from now if it never ran.
  Status Open(TaskStore& store);
  // Stops starting runs (shutdown). A running backup ends with its tasks.
  void Close();
  // Adds the schedule of `target` (BackupTargetText of params "to"), or
  // replaces its parameters and interval keeping its history; `params` are
  // the `backup` method's (checked by the caller). `done` runs on a later
  // turn once it is durable; the next run is due `every_s` from then (or
  // one interval after the running one ends).
  void Add(const std::string& target, Json params, std::uint64_t every_s, Callback<void(Status)> done);
  // Removes the schedule of `target` (NotFound if none); a running backup
  // of it ends on its own. `done` runs on a later turn once it is durable.
  void Remove(const std::string& target, Callback<void(Status)> done);
  // {"schedules": [{"target", "from", "to", "every_s", "exclude",
  //  "exclude_vcs", "running", "running_task"?, "runs", "next_run_ms",
  //  "last": {...} or null}, ...]} (docs/dirs.md, "Scheduled backups").
  Json StatusJson() const;

 private:
  struct Entry;
  void Arm(Entry& e, std::uint64_t delay_ms);
  void Fire(const std::string& target, std::uint64_t serial);
  void WaitWalk(const std::string& target, std::uint64_t serial, TaskId walk);
  void FindLink(const std::string& target, std::uint64_t serial, TaskId walk, Json walked, int tries);
  void Ended(const std::string& target, std::uint64_t serial, TaskId walk, TaskId link, const cJSON* walk_record,
             const cJSON* final_record, const std::string& error);
  Entry* Find(const std::string& target, std::uint64_t serial);
  void Persist(const Entry& e, Callback<void(Status)> done);

  BackupScheduleEnv env_;
  TaskStore* store_ = nullptr;
  unsigned int dbi_ = 0;
  std::map<std::string, std::unique_ptr<Entry>> entries_;
  std::uint64_t next_serial_ = 1;
  std::shared_ptr<bool> alive_;
  bool closed_ = false;
};

// The control methods backup.schedule.add, backup.schedule.list and
// backup.schedule.remove (they answer Unavailable when c.backup_schedules
// is null: the table did not open).
void BackupScheduleAdd(CommandsState& c, Request& req, Reply& reply);
void BackupScheduleList(CommandsState& c, Request& req, Reply& reply);
void BackupScheduleRemove(CommandsState& c, Request& req, Reply& reply);

}  // namespace cairn::control
