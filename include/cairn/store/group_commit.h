// GroupCommit: the one LMDB write path of cairn, shared by the share store
// and the control plane's task store. Writes are queued as CommitOps in
// arrival order; every op queued during one turn of the loop goes into one
// write transaction (up to the batch bounds), which begins, applies each op
// in a nested transaction of its own, syncs and commits inside one thread-pool
// work item; the ops' completions are delivered on the loop only after that
// commit returned, so nothing is acknowledged before it is durable (Redis's
// AE_BARRIER and beforeSleep; LevelDB's writers_ and BuildBatchGroup). One
// batch is in flight at a time; what arrives meanwhile forms the next one.
//
// An op that fails is rolled back alone (its nested transaction is aborted);
// the rest of its batch commits. A failure of the batch itself (begin,
// the owner's hooks, the sync of files, the commit) is delivered to every op
// of the batch. MDB_MAP_FULL grows the map by half (up to a limit) and redoes
// the batch; at the limit the ops that do not fit fail alone. Optionally,
// failures that leave state unknown (a failed fsync, a failed commit other
// than MDB_MAP_FULL) are sticky: every later write is refused until the
// owner reopens.
//
// The owner says what a batch means by subclassing CommitBatch (state staged
// per op and per batch, files synced before the commit, work after it).
//
// Loop thread only, except what runs in the work item: CommitBatch's hooks,
// CommitOp::Apply, the batch factory, and Read (any thread).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/scheduler.h"
#include "cairn/core/status.h"

struct MDB_env;
struct MDB_txn;

namespace cairn::store {

// Translates an LMDB return code for `who` ("store", "task records"):
// MDB_NOTFOUND is NotFound; MDB_MAP_FULL is NoSpace and sets `*map_full`
// (if given); ENOSPC is NoSpace; MDB_TXN_FULL is ResourceExhausted; anything
// else is IoError. OK for 0. Any thread.
Status LmdbError(std::string_view who, const char* what, int rc, bool* map_full = nullptr);

// LMDB's map size is a size_t: a 32-bit board maps at most ~2 GiB. Any thread.
std::size_t ClampMapBytes(std::uint64_t bytes);

// The owner's context of one attempt at a commit, made fresh by the
// factory for each attempt (a batch redone after the map grew starts over).
// Its hooks run on the work item's thread, in this order: Begin; for each op
// OpBegin, the op's Apply, OpEnd; End; then, if Changed(), BeforeCommit and
// the commit; then Durable (also when there was nothing to commit). Staging
// that an op leaves for after the commit belongs here: OpEnd keeps it or
// throws it away with the op's nested transaction.
class CommitBatch {
 public:
  virtual ~CommitBatch() = default;

  // The transaction to write in: an op's own nested transaction while it
  // applies, the batch's otherwise. Valid until the hook or Apply returns.
  MDB_txn* txn() const { return txn_; }
  // Writes that fail with MDB_MAP_FULL set this flag (LmdbError's
  // `map_full`); GroupCommit then grows the map and redoes the batch.
  bool* map_full_flag() { return &map_full_; }

  // The batch's write transaction has begun (txn() is it). An error fails
  // the whole batch.
  virtual Status Begin() { return Status(); }
  // An op is about to apply in its nested transaction (txn() is it).
  virtual void OpBegin() {}
  // The op ended: `kept` if its nested transaction committed into the
  // batch's, false if it was rolled back (restore what it staged).
  virtual void OpEnd(bool kept) { (void)kept; }
  // After the last op, in the batch's transaction: last writes (totals).
  // An error fails the whole batch.
  virtual Status End() { return Status(); }
  // False if no op changed anything: the transaction is aborted, nothing is
  // synced, and the ops are delivered as if committed.
  virtual bool Changed() const { return true; }
  // Makes durable what the commit will record (body files, directories). An
  // error fails the whole batch (sticky if IoError).
  virtual Status BeforeCommit() { return Status(); }
  // The commit is durable (or there was nothing to commit): work that had
  // to wait for it (unlinking files of deleted shares).
  virtual void Durable() {}

 private:
  friend class GroupCommit;
  MDB_txn* txn_ = nullptr;
  bool map_full_ = false;
};

// One queued write. Construct it at the call that starts it: it holds the
// call's ReentryGuard, and its completion runs exactly once, on a later
// turn, on the loop thread (Tahoe-LAFS #877).
class CommitOp {
 public:
  // `name` (a string literal) names the call for the tripwire; `bytes` is
  // its payload, counted against the queue and batch bounds.
  CommitOp(const Scheduler& scheduler, const char* name, std::size_t bytes)
      : guard_(scheduler, name), bytes_(bytes) {}
  virtual ~CommitOp() = default;
  CommitOp(const CommitOp&) = delete;
  CommitOp& operator=(const CommitOp&) = delete;

  // Work-item thread, inside the op's nested transaction (batch.txn()). The
  // op keeps its own result; a non-OK status rolls its changes back. May run
  // more than once (a batch redone after the map grew): start from scratch.
  virtual Status Apply(CommitBatch& batch) = 0;
  // Loop thread, once, after the batch: `batch` is OK if it committed (the
  // op then reports its own result), else the batch's error, or the reason
  // it was refused before it was queued.
  virtual void Done(Status batch) = 0;
  // Loop thread, when the op is taken into a batch: a last look at loop-side
  // state (the task store gathers its coalesced record changes here).
  virtual void Prepare() {}

  std::size_t bytes() const { return bytes_; }

 private:
  friend class GroupCommit;
  void Deliver(Status batch) {
    guard_.Deliver();  // Tahoe-LAFS #877: never in the turn that queued it.
    Done(std::move(batch));
  }
  ReentryGuard guard_;
  std::size_t bytes_;
};

struct GroupCommitOptions {
  std::string name = "store";       // in messages and logs
  MDB_env* env = nullptr;           // opened by the owner; outlives the GroupCommit
  std::uint64_t map_max_bytes = 0;  // MDB_MAP_FULL grows the map up to this; 0: never
  std::uint64_t batch_ops = 256;    // ops in one transaction (at least 1)
  std::uint64_t batch_bytes = 16ull << 20;
  std::uint64_t queue_ops = 0;      // queued + in flight; beyond, refused (0: unbounded)
  std::uint64_t queue_bytes = 0;    // likewise for payload bytes (0: unbounded)
  bool sticky_errors = true;        // refuse writes after a failure that leaves state unknown
  // Work-item thread: a fresh CommitBatch for each attempt. Touches only
  // what it captured.
  Callback<std::unique_ptr<CommitBatch>()> new_batch;
  // Loop thread: after a batch committed, before its ops' completions (the
  // owner reads what the batch computed, e.g. totals). Optional.
  Callback<void(CommitBatch&)> committed;
};

struct GroupCommitStats {
  std::uint64_t commits = 0;  // batches that succeeded
  std::uint64_t failed_batches = 0;
  std::uint64_t ops_committed = 0;
  std::uint64_t largest_batch = 0;
  std::uint64_t map_grows = 0;
};

class GroupCommit {
 public:
  // REQUIRES: options.env open, options.new_batch set.
  GroupCommit(Loop& loop, GroupCommitOptions options);
  // REQUIRES: no batch in flight. Ops still queued are dropped unanswered.
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Queues `op` behind everything queued before it. Refused on a later turn
  // (op->Done with the error) if writes stopped after a sticky failure
  // (IoError) or, unless `unbounded`, if the queue is full
  // (ResourceExhausted).
  void Submit(std::unique_ptr<CommitOp> op, bool unbounded = false);
  // Delivers `why` to `op` on a later turn without queuing it (an owner's
  // own refusals: closing, read-only).
  void Refuse(std::unique_ptr<CommitOp> op, Status why);

  // True if a write of `extra_bytes` would be refused as ResourceExhausted.
  bool Full(std::size_t extra_bytes) const;
  // `ready` runs on a later turn once the queue is below half its bounds
  // (at once, on a later turn, if it is not full now).
  void WhenRoom(Task ready);
  // Nothing queued, posted or in flight.
  bool idle() const { return !in_flight_ && !start_posted_ && queue_.empty(); }
  // `done` runs on a later turn once idle() (again) holds.
  void WhenIdle(Task done);

  // Any thread. Runs `fn` in a read-only transaction, safe against the map
  // growing meanwhile; for small, bounded reads. Returns fn's status or
  // the error beginning the transaction.
  Status Read(Callback<Status(MDB_txn* txn)> fn) const;

  // Non-empty once writes are refused after a sticky failure.
  const std::string& sticky_error() const { return sticky_error_; }
  std::uint64_t queued_ops() const { return queued_ops_; }
  std::uint64_t queued_bytes() const { return queued_bytes_; }
  // The map's current size.
  std::uint64_t map_bytes() const;
  const GroupCommitStats& stats() const { return stats_; }

  struct Worker;

 private:
  struct Outcome;
  using Ops = std::vector<std::unique_ptr<CommitOp>>;
  // The work item: attempts until one commits or fails for good.
  static void RunBatch(Worker& w, Ops& ops, Outcome& out);
  // One attempt; true if the map was full and `may_grow` (nothing committed).
  static bool Attempt(Worker& w, Ops& ops, bool may_grow, Outcome& out);
  static Status ApplyOps(Worker& w, Ops& ops, CommitBatch& b, MDB_txn* parent, bool* map_full);
  void MaybeStart();
  void Start();
  void BatchDone(Ops ops, Outcome& outcome);

  Loop& loop_;
  std::shared_ptr<Worker> worker_;
  Callback<void(CommitBatch&)> committed_;
  std::uint64_t batch_ops_, batch_bytes_, queue_ops_, queue_bytes_;
  bool sticky_errors_;
  std::deque<std::unique_ptr<CommitOp>> queue_;
  std::uint64_t queued_ops_ = 0;    // queued + in flight
  std::uint64_t queued_bytes_ = 0;  // queued + in flight
  bool in_flight_ = false;
  bool start_posted_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  std::string sticky_error_;
  std::vector<Task> room_waiters_;
  std::vector<Task> idle_waiters_;
  GroupCommitStats stats_;
};

}  // namespace cairn::store
