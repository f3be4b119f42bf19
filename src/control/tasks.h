// TaskTable: every mutating control operation runs as a task (docs/control.md).
//
// Submit copies the parameters in, records the task durably (state queued),
// then queues it in the LockTable on the resources it names. When every
// resource is granted, the task's body runs on a later turn; it must reload
// whatever it checks (never use state read before the grant) and finish with
// exactly one Succeed or Fail. The terminal record is made durable before the
// locks are released and before waiters hear of it. Records survive a restart;
// a task found queued or running at start-up is marked failed ("interrupted").
// Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/core/json.h"
#include "cairn/core/loop.h"
#include "control/locks.h"
#include "control/task_store.h"

namespace cairn::control {

enum class TaskState { kQueued, kRunning, kSucceeded, kFailed, kCancelled };
const char* TaskStateName(TaskState s);
bool TaskStateTerminal(TaskState s);

class TaskTable;

// What a running task's body sees. Owned by the table; valid until the body
// calls Succeed or Fail.
class TaskRun {
 public:
  TaskId id() const { return id_; }
  // The parameters captured at submission (an object).
  const cJSON* params() const;
  // Latest progress, shown by tasks.show and streamed later.
  void Progress(const std::string& phase, std::uint64_t done, std::uint64_t total);
  // True once tasks.cancel asked this task to stop.
  bool cancel_requested() const;
  // Records what the task made before its first side effect (a new write
  // cap before any share is sent): `durable` runs on a later turn once the
  // record holding it is committed, or with the commit's error. Shown as
  // "intent" in the record, and kept after a crash.
  void RecordIntent(Json intent, Callback<void(Status)> durable);
  void Succeed(Json result);
  void Fail(const Status& error);

 private:
  friend class TaskTable;
  TaskRun(TaskTable* table, TaskId id) : table_(table), id_(id) {}
  TaskTable* table_;
  TaskId id_;
};

using TaskBody = Callback<void(TaskRun&)>;

struct TaskSpec {
  std::string kind;            // "alias.add", "debug.hold"
  Json params;                 // an owned copy: never a view into a request
  std::vector<LockKey> keys;   // every resource the task touches
  uid_t requester_uid = 0;
  TaskBody body;
};

struct TaskLimits {
  std::size_t max_active = 64;    // queued + running
  std::size_t max_per_key = 16;
  std::size_t history = 1000;     // terminal records kept
};

class TaskTable {
 public:
  TaskTable(Loop& loop, TaskLimits limits);
  ~TaskTable();

  // Opens the record store in `dir`; earlier non-terminal records become
  // failed/interrupted (written back before Open returns its status).
  Status Open(const std::string& dir);

  // `queued` runs on a later turn with the new task's id once its record is
  // durable, or with Busy (bounds) / the store's error.
  void Submit(TaskSpec spec, Callback<void(Result<TaskId>)> queued);
  // `done` runs on a later turn with the task's record once it is terminal
  // (at once, on the next turn, if it already is); NotFound if unknown.
  void Wait(TaskId id, Callback<void(Result<Json>)> done);
  // `on_progress` runs on later turns with {"phase", "done", "total"} each
  // time the task reports progress (coalesced: at most once a turn), until
  // the task ends. Ignored for unknown or finished tasks.
  void WatchProgress(TaskId id, Callback<void(Json)> on_progress);
  // A queued task is cancelled at once; a running one is asked to stop.
  // Returns the state after the request, NotFound if unknown.
  Result<TaskState> Cancel(TaskId id);
  // The record as the protocol shows it; NotFound if unknown.
  Result<Json> Show(TaskId id) const;
  // Every kept record, newest first.
  Json List() const;
  std::size_t active() const;
  // The control plane's LMDB, for the other tables kept beside the records.
  TaskStore& store() { return store_; }
  // Stops taking and starting tasks; `done` runs on a later turn once every
  // record write is durable. Afterwards nothing more is written: tasks still
  // running are abandoned and marked interrupted at the next start.
  void Close(Task done);

 private:
  friend class TaskRun;
  struct Record {
    TaskId id = 0;
    std::string kind;
    Json params;
    std::vector<LockKey> keys;
    TaskState state = TaskState::kQueued;
    std::uint64_t submitted_ms = 0, started_ms = 0, finished_ms = 0;  // wall clock
    uid_t uid = 0;
    std::string phase;
    std::uint64_t done = 0, total = 0;
    bool cancel_requested = false;
    Json intent;
    Json result;
    Status error;
    TaskBody body;
    std::unique_ptr<TaskRun> run;
    std::vector<Callback<void(Result<Json>)>> waiters;
    std::vector<Callback<void(Json)>> progress_watchers;
    bool progress_posted = false;
  };

  Json ToJson(const Record& r) const;
  void Persist(Record& r, Callback<void(Status)> durable = nullptr);
  void Start(TaskId id);
  void Finish(TaskId id, TaskState state, Json result, Status error);
  void NotifyProgress(TaskId id);
  void Prune();
  void FinishClose();

  Loop& loop_;
  TaskLimits limits_;
  LockTable locks_;
  TaskStore store_;
  std::map<TaskId, std::unique_ptr<Record>> records_;
  TaskId next_id_ = 1;
  bool closing_ = false;
  bool closed_ = false;
  Task close_done_;
};

}  // namespace cairn::control
