// TaskStore: the control plane's LMDB (DIR/control/, an environment of its
// own, so a store full of shares never stops the control plane from
// recording what it does). It holds the task records (JSON text keyed by the
// big-endian task id) and other named tables (aliases). Writes go through
// the store layer's group commit (cairn/store/group_commit.h), the same
// machinery as the share store's: one commit in flight at a time, the next
// batch holds every record changed meanwhile (latest wins) and every queued
// transaction, and completions run only once their batch is durable. Loop
// thread only, except the work functions it offloads.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/store/group_commit.h"

namespace cairn::control {

class TaskStore {
 public:
  explicit TaskStore(Loop& loop) : loop_(loop) {}
  // REQUIRES: no commit in flight. Changes still queued are dropped.
  ~TaskStore();
  TaskStore(const TaskStore&) = delete;
  TaskStore& operator=(const TaskStore&) = delete;

  // Opens (creating if needed) the environment at `dir` and reads every
  // record, in id order. Synchronous and bounded: at start-up only.
  Status Open(const std::string& dir, std::vector<std::pair<std::uint64_t, std::string>>* records);
  // Opens (creating) the named table `name` for Transact and Read. At
  // start-up, after Open.
  Result<unsigned int> OpenTable(const char* name);

  // A check-and-change on named tables: `op` runs on a thread-pool thread
  // inside the next group commit, in a nested transaction of its own, and
  // must touch only what it owns (copy parameters in). If `op` fails, its
  // changes are rolled back and the rest of the batch commits. `done` runs on
  // a later loop turn with op's status once the batch is durable (or with
  // the commit's error), also when the store is not open (FailedPrecondition).
  using TxnOp = Callback<Status(MDB_txn* txn)>;
  void Transact(TxnOp op, Callback<void(Status)> done);
  // Runs `fn` in a read-only transaction on the calling (loop) thread: for
  // small, bounded reads only.
  Status Read(Callback<Status(MDB_txn* txn)> fn) const;

  // Queues `json` as record `id`'s new value; `durable` (optional) runs on a
  // later turn once it is committed and synced, or with the commit's error
  // (FailedPrecondition if the store is not open).
  void Put(std::uint64_t id, std::string json, Callback<void(Status)> durable = nullptr);
  // Queues the deletion of record `id` (pruning old history).
  void Delete(std::uint64_t id);
  bool idle() const { return !commit_ || commit_->idle(); }
  // `done` runs on a later turn once every queued change is durable.
  void Flush(Task done);
  std::uint64_t commits() const { return commit_ ? commit_->stats().commits : 0; }

 private:
  class RecordsOp;
  class TransactOp;
  struct Change {
    bool erase = false;
    std::string json;
  };
  // Queues the op that will write the changed records, unless one is
  // queued and has not yet been taken into a batch.
  void QueueRecords();

  Loop& loop_;
  MDB_env* env_ = nullptr;
  unsigned int dbi_ = 0;
  std::unique_ptr<store::GroupCommit> commit_;
  // Changes not yet taken into a batch (latest wins), and who waits for them.
  std::map<std::uint64_t, Change> pending_;
  std::vector<Callback<void(Status)>> pending_done_;
  bool records_queued_ = false;
};

}  // namespace cairn::control
