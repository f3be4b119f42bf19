// GroupCommit: the queue, the batches and their delivery (loop thread), and
// one batch's attempts at a commit (the thread-pool work item, which touches
// only the Worker and the ops it was handed).
#include "cairn/store/group_commit.h"

#include <lmdb.h>

#include <cerrno>
#include <mutex>
#include <shared_mutex>

#include "cairn/core/log.h"

namespace cairn::store {

Status LmdbError(std::string_view who, const char* what, int rc, bool* map_full) {
  if (rc == 0) return Status();
  std::string msg = std::string(who) + ": " + what + ": " + mdb_strerror(rc);
  if (rc == MDB_NOTFOUND) return Status::NotFound(msg);
  if (rc == MDB_MAP_FULL) {
    if (map_full) *map_full = true;
    return Status::NoSpace(msg);
  }
  if (rc == ENOSPC) return Status::NoSpace(msg);
  if (rc == MDB_TXN_FULL) return Status::ResourceExhausted(msg);
  return Status::IoError(msg);
}

std::size_t ClampMapBytes(std::uint64_t bytes) {
  constexpr std::uint64_t kMax = sizeof(std::size_t) == 4 ? 0x7ff00000ull : (1ull << 46);
  return static_cast<std::size_t>(bytes < kMax ? bytes : kMax);
}

// What the work item shares with the loop: fixed at construction, except the
// map size (guarded by resize_mu).
struct GroupCommit::Worker {
  std::string name;
  MDB_env* env = nullptr;
  std::uint64_t map_max_bytes = 0;
  Callback<std::unique_ptr<CommitBatch>()> new_batch;  // the work item's only
  std::shared_mutex resize_mu;  // shared: any transaction; exclusive: mdb_env_set_mapsize
  std::uint64_t map_bytes = 0;  // guarded by resize_mu
};

// What one batch's work item reports to the loop.
struct GroupCommit::Outcome {
  Status status;
  bool sticky = false;
  std::uint64_t grows = 0;
  std::unique_ptr<CommitBatch> batch;  // the attempt that committed
};

namespace {

// Grows the map by half (at least to fit), up to the limit. False at the limit.
bool GrowMap(GroupCommit::Worker& w) {
  std::unique_lock<std::shared_mutex> lock(w.resize_mu);
  std::uint64_t max = ClampMapBytes(w.map_max_bytes);
  if (w.map_bytes >= max) return false;
  std::uint64_t next = w.map_bytes + w.map_bytes / 2;
  if (next > max) next = max;
  if (mdb_env_set_mapsize(w.env, ClampMapBytes(next)) != 0) return false;
  MDB_envinfo info;
  mdb_env_info(w.env, &info);
  w.map_bytes = info.me_mapsize;
  CAIRN_LOG(Info, "%s: LMDB map grown to %llu bytes", w.name.c_str(), static_cast<unsigned long long>(w.map_bytes));
  return true;
}

}  // namespace

// --- the work item ---------------------------------------------------------

Status GroupCommit::ApplyOps(Worker& w, Ops& ops, CommitBatch& b, MDB_txn* parent, bool* map_full) {
  for (auto& op : ops) {
    MDB_txn* child = nullptr;
    int rc = mdb_txn_begin(w.env, parent, 0, &child);
    if (rc != 0) return LmdbError(w.name, "begin nested", rc);
    b.txn_ = child;
    b.map_full_ = false;
    b.OpBegin();
    Status r = op->Apply(b);
    if (r.ok()) {
      rc = mdb_txn_commit(child);
      if (rc != 0) r = LmdbError(w.name, "commit nested", rc, &b.map_full_);
    } else {
      mdb_txn_abort(child);
    }
    b.txn_ = parent;
    b.OpEnd(r.ok());
    *map_full = *map_full || (!r.ok() && b.map_full_);
  }
  return Status();
}

bool GroupCommit::Attempt(Worker& w, Ops& ops, bool may_grow, Outcome& out) {
  std::shared_lock<std::shared_mutex> lock(w.resize_mu);
  std::unique_ptr<CommitBatch> b = w.new_batch();
  MDB_txn* parent = nullptr;
  int rc = mdb_txn_begin(w.env, nullptr, 0, &parent);
  if (rc != 0) {
    out.status = LmdbError(w.name, "begin", rc);
    return false;
  }
  b->txn_ = parent;
  bool map_full = false;
  Status st = b->Begin();
  // Each op in its own nested transaction: one that fails (a conflict, a
  // wrong secret, a full map) is rolled back alone and the others commit.
  if (st.ok()) st = ApplyOps(w, ops, *b, parent, &map_full);
  b->map_full_ = false;
  if (st.ok()) st = b->End();
  if ((map_full || b->map_full_) && may_grow) {
    mdb_txn_abort(parent);
    return true;
  }
  if (st.ok() && !b->Changed()) {
    // Nothing to commit or sync (the share store's intermediate upload
    // writes under its "complete" policy).
    mdb_txn_abort(parent);
    b->Durable();
    out.batch = std::move(b);
    return false;
  }
  // The owner's files first: a commit must never record what is not durable.
  if (st.ok()) st = b->BeforeCommit();
  if (!st.ok()) {
    mdb_txn_abort(parent);
    out.status = st;
    // A failed fsync leaves the files' state unknown: stop writing.
    out.sticky = st.code() == Code::kIoError;
    return false;
  }
  rc = mdb_txn_commit(parent);
  if (rc == MDB_MAP_FULL && may_grow) return true;
  if (rc != 0) {
    out.status = LmdbError(w.name, "commit", rc);
    // A full map or a full disk (ENOSPC from writing the transaction's new
    // pages, which LMDB never writes over the committed ones) leaves the
    // committed state as it was: not sticky, so writes that fit go on once
    // space is freed. Anything else leaves it unknown.
    out.sticky = rc != MDB_MAP_FULL && rc != ENOSPC;
    return false;
  }
  // Durable: now what had to wait for the commit may run.
  b->Durable();
  out.batch = std::move(b);
  return false;
}

void GroupCommit::RunBatch(Worker& w, Ops& ops, Outcome& out) {
  // A full map is grown and the batch redone; at the map's limit the ops
  // that do not fit fail alone with NoSpace.
  bool may_grow = w.map_max_bytes > 0;
  while (Attempt(w, ops, may_grow, out)) {
    if (GrowMap(w)) {
      out.grows++;
    } else {
      may_grow = false;
    }
  }
}

// --- the loop side ---------------------------------------------------------

GroupCommit::GroupCommit(Loop& loop, GroupCommitOptions o)
    : loop_(loop),
      worker_(std::make_shared<Worker>()),
      committed_(std::move(o.committed)),
      batch_ops_(o.batch_ops ? o.batch_ops : 1),
      batch_bytes_(o.batch_bytes),
      queue_ops_(o.queue_ops),
      queue_bytes_(o.queue_bytes),
      sticky_errors_(o.sticky_errors) {
  CAIRN_CHECK(o.env && o.new_batch, "GroupCommit needs an environment and a batch factory");
  Worker& w = *worker_;
  w.name = std::move(o.name);
  w.env = o.env;
  w.map_max_bytes = o.map_max_bytes;
  w.new_batch = std::move(o.new_batch);
  MDB_envinfo info;
  mdb_env_info(w.env, &info);  // a map grown by an earlier run keeps its size
  w.map_bytes = info.me_mapsize;
}

GroupCommit::~GroupCommit() {
  CAIRN_CHECK(!in_flight_, worker_->name + ": destroyed with a commit in flight");
  *alive_ = false;
}

void GroupCommit::Refuse(std::unique_ptr<CommitOp> op, Status why) {
  // Even an immediate refusal completes on a later turn (Tahoe-LAFS #877).
  loop_.Post([op = std::move(op), why = std::move(why)]() mutable { op->Deliver(std::move(why)); });
}

bool GroupCommit::Full(std::size_t extra_bytes) const {
  if (queue_ops_ && queued_ops_ >= queue_ops_) return true;
  return queue_bytes_ && queued_ops_ > 0 && queued_bytes_ + extra_bytes > queue_bytes_;
}

void GroupCommit::Submit(std::unique_ptr<CommitOp> op, bool unbounded) {
  if (!sticky_error_.empty()) {
    return Refuse(std::move(op),
                  Status::IoError(worker_->name + ": writes stopped after an earlier failure: " + sticky_error_));
  }
  if (!unbounded && Full(op->bytes())) {
    return Refuse(std::move(op), Status::ResourceExhausted(worker_->name + ": write queue full"));
  }
  queued_ops_++;
  queued_bytes_ += op->bytes();
  queue_.push_back(std::move(op));
  MaybeStart();
}

void GroupCommit::MaybeStart() {
  if (in_flight_ || start_posted_ || queue_.empty()) return;
  // The batch starts on the next turn, so every write of this turn joins it.
  start_posted_ = true;
  loop_.Post([this, alive = alive_] {
    if (!*alive) return;
    start_posted_ = false;
    Start();
  });
}

void GroupCommit::Start() {
  auto ops = std::make_shared<Ops>();
  std::uint64_t bytes = 0;
  // Everything queued since the last batch left, in arrival order, up to the
  // batch bounds.
  while (!queue_.empty() && ops->size() < batch_ops_ &&
         (ops->empty() || bytes + queue_.front()->bytes() <= batch_bytes_)) {
    bytes += queue_.front()->bytes();
    ops->push_back(std::move(queue_.front()));
    queue_.pop_front();
    ops->back()->Prepare();
  }
  in_flight_ = true;
  auto outcome = std::make_shared<Outcome>();
  std::shared_ptr<Worker> w = worker_;
  // One write transaction, begun and committed inside this one work item.
  loop_.Offload(
      [w, ops, outcome]() -> Status {
        RunBatch(*w, *ops, *outcome);
        return Status();
      },
      [this, ops, outcome](Status st) {
        if (!st.ok()) outcome->status = st;  // the work never ran
        BatchDone(std::move(*ops), *outcome);
      });
}

void GroupCommit::BatchDone(Ops ops, Outcome& outcome) {
  in_flight_ = false;
  stats_.map_grows += outcome.grows;
  if (outcome.status.ok()) {
    stats_.commits++;
    stats_.ops_committed += ops.size();
    if (ops.size() > stats_.largest_batch) stats_.largest_batch = ops.size();
    if (committed_ && outcome.batch) committed_(*outcome.batch);
  } else {
    stats_.failed_batches++;
    CAIRN_LOG(Error, "%s: commit failed: %s", worker_->name.c_str(), outcome.status.ToString().c_str());
    if (outcome.sticky && sticky_errors_ && sticky_error_.empty()) sticky_error_ = outcome.status.ToString();
  }
  // Reply only from the commit's completion: durable before acknowledged.
  for (auto& op : ops) {
    queued_ops_--;
    queued_bytes_ -= op->bytes();
    op->Deliver(outcome.status);
  }
  if (!room_waiters_.empty() && !Full(0) && (queue_ops_ == 0 || queued_ops_ <= queue_ops_ / 2)) {
    for (Task& t : room_waiters_) loop_.Post(std::move(t));
    room_waiters_.clear();
  }
  MaybeStart();
  if (idle()) {
    for (Task& t : idle_waiters_) loop_.Post(std::move(t));
    idle_waiters_.clear();
  }
}

void GroupCommit::WhenRoom(Task ready) {
  if (!Full(0)) return loop_.Post(std::move(ready));
  room_waiters_.push_back(std::move(ready));
}

void GroupCommit::WhenIdle(Task done) {
  if (idle()) return loop_.Post(std::move(done));
  idle_waiters_.push_back(std::move(done));
}

Status GroupCommit::Read(Callback<Status(MDB_txn* txn)> fn) const {
  Worker& w = *worker_;
  std::shared_lock<std::shared_mutex> lock(w.resize_mu);
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(w.env, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return LmdbError(w.name, "begin read", rc);
  Status st = fn(txn);
  mdb_txn_abort(txn);
  return st;
}

std::uint64_t GroupCommit::map_bytes() const {
  std::shared_lock<std::shared_mutex> lock(worker_->resize_mu);
  return worker_->map_bytes;
}

}  // namespace cairn::store
