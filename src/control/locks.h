// LockTable: named resource locks for control tasks (docs/control.md, "Locks").
//
// A task declares every key it needs when it is submitted; submission appends
// it to the FIFO queue of each key in one step, which gives every task one
// global ticket. A task is granted when, on each of its keys, it is at the
// head or in a leading run of shared holders. Because the ticket order is the
// same on every key, no wait cycle can form (no deadlock) and no later task
// overtakes an earlier one (no starvation).
//
// Grants are delivered with Post(), never inside Submit() or Release() (the
// Tahoe-LAFS #877 rule applied to locks). Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "cairn/core/scheduler.h"
#include "cairn/core/status.h"

namespace cairn::control {

using TaskId = std::uint64_t;

enum class LockMode { kShared, kExclusive };

struct LockKey {
  std::string name;  // "alias/photos", "slot/<si>", "servers", "node"
  LockMode mode = LockMode::kExclusive;
  // Refuse (InUse) rather than wait if another task holds or waits on this
  // key when the task is queued: `alias remove` must not delete a name a
  // running task uses. Checked and queued in one step.
  bool refuse_if_busy = false;
};

// The lock keys of the control plane, built in one place:
//   "servers"       the servers table (shared: a task that uses the grid;
//                   exclusive: one that changes the table);
//   "alias/<name>"  one alias;
//   "slot/<SI>"     one mutable file (SI in base32): two aliases or a raw
//                   cap may name the same slot;
//   "backup/<TO>"   one backup target (its ALIAS:path text, exclusive): two
//                   backups into one target run one after the other;
//   "deep-check"    held shared by every check walk (no task takes it
//                   exclusive today: it names the walks in `tasks show`);
//   "maintenance"   the maintenance pass (exclusive: one at a time).
struct LockKeys {
  static LockKey Servers(LockMode mode);
  static LockKey Alias(const std::string& name, LockMode mode);
  // `storage_index` raw (16 bytes).
  static LockKey Slot(const std::string& storage_index, LockMode mode);
  static LockKey Backup(const std::string& target);
  static LockKey DeepCheck();
  static LockKey Maintenance();
};

struct LockWait {
  std::string key;
  TaskId held_by;  // the task at the head of that key's queue
};

class LockTable {
 public:
  LockTable(Scheduler& scheduler, std::size_t max_tasks, std::size_t max_per_key)
      : scheduler_(scheduler), max_tasks_(max_tasks), max_per_key_(max_per_key) {}

  // Queues `task` on every key (a key named twice is taken once, exclusive if
  // either asks for it). `granted` runs on a later turn, once, when the task
  // holds every key; then the task must Release() exactly once. Busy (nothing
  // queued) if a bound is full; InUse (nothing queued) if a refuse_if_busy
  // key is held or awaited; InvalidArgument if `task` is already known or
  // `keys` is empty.
  Status Submit(TaskId task, std::vector<LockKey> keys, Task granted);
  // Removes a task that is still waiting; its `granted` never runs. False if
  // the task is not waiting (unknown or already granted).
  bool Withdraw(TaskId task);
  // Releases every key of a granted task. Grants that become possible run on
  // later turns. REQUIRES: the task was granted and not yet released.
  void Release(TaskId task);

  bool IsGranted(TaskId task) const;
  bool IsWaiting(TaskId task) const;
  // The keys a waiting task is blocked on and who holds each.
  std::vector<LockWait> WaitingOn(TaskId task) const;
  std::size_t size() const { return tasks_.size(); }

 private:
  struct Entry {
    std::vector<LockKey> keys;
    Task granted;
    std::uint64_t ticket = 0;
    bool is_granted = false;
  };
  struct Waiter {
    TaskId task;
    LockMode mode;
    std::uint64_t ticket;
  };

  // True if `task` may hold `key` in `mode` given the queue ahead of it.
  bool GrantableOn(const std::string& key, TaskId task) const;
  void ScheduleEvaluate();
  void Evaluate();
  void RemoveFromQueues(TaskId task, const std::vector<LockKey>& keys);

  Scheduler& scheduler_;
  std::size_t max_tasks_;
  std::size_t max_per_key_;
  std::uint64_t next_ticket_ = 1;
  bool evaluate_posted_ = false;
  std::map<TaskId, Entry> tasks_;
  std::map<std::string, std::vector<Waiter>> queues_;  // per key, in ticket order
};

}  // namespace cairn::control
