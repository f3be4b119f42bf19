// Task records and named tables in LMDB, written through the store layer's
// group commit. Loop thread only, except the ops' Apply, which runs in the
// commit's work item and touches only what the op holds.
#include "control/task_store.h"

#include <lmdb.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "cairn/core/endian.h"
#include "cairn/core/file.h"

namespace cairn::control {
namespace {

constexpr const char* kWho = "task records";

Status LmdbError(const char* what, int rc) { return store::LmdbError(kWho, what, rc); }

Status NotOpen() { return Status::FailedPrecondition("task records: not open"); }

}  // namespace

// The record changes gathered since the last batch left, written in one
// nested transaction; their `durable` callbacks run with its outcome.
class TaskStore::RecordsOp final : public store::CommitOp {
 public:
  explicit RecordsOp(TaskStore& owner) : CommitOp(owner.loop_, "TaskStore::Put", 0), owner_(&owner), dbi_(owner.dbi_) {}

  // Loop thread, when taken into a batch: later changes go to the next one.
  void Prepare() override {
    if (!owner_) return;
    changes_.swap(owner_->pending_);
    done_.swap(owner_->pending_done_);
    owner_->records_queued_ = false;
    owner_ = nullptr;  // the work item must not touch the TaskStore
  }
  Status Apply(store::CommitBatch& b) override {
    result_ = Write(b.txn());
    return result_;
  }
  void Done(Status batch) override {
    Prepare();  // a refused op never joined a batch
    for (auto& cb : done_) cb(batch.ok() ? result_ : batch);
  }

 private:
  Status Write(MDB_txn* txn) {
    for (auto& [id, change] : changes_) {
      unsigned char key[8];
      PutBe(key, id, sizeof key);
      MDB_val k{sizeof key, key};
      int rc;
      if (change.erase) {
        rc = mdb_del(txn, dbi_, &k, nullptr);
        if (rc == MDB_NOTFOUND) rc = 0;
      } else {
        MDB_val v{change.json.size(), change.json.data()};
        rc = mdb_put(txn, dbi_, &k, &v, 0);
      }
      if (rc != 0) return LmdbError("write", rc);
    }
    return Status();
  }

  TaskStore* owner_;
  MDB_dbi dbi_;
  std::map<std::uint64_t, Change> changes_;
  std::vector<Callback<void(Status)>> done_;
  Status result_ = Status::Internal("task records: never written");
};

// One Transact: the caller's check-and-change in its own nested transaction.
class TaskStore::TransactOp final : public store::CommitOp {
 public:
  TransactOp(Loop& loop, TxnOp op, Callback<void(Status)> done)
      : CommitOp(loop, "TaskStore::Transact", 0), op_(std::move(op)), done_(std::move(done)) {}
  Status Apply(store::CommitBatch& b) override {
    result_ = op_(b.txn());
    return result_;
  }
  void Done(Status batch) override {
    if (done_) done_(batch.ok() ? result_ : batch);
  }

 private:
  TxnOp op_;
  Callback<void(Status)> done_;
  Status result_ = Status::Internal("task records: operation never applied");
};

TaskStore::~TaskStore() {
  commit_.reset();  // REQUIRES no commit in flight (checked)
  if (env_) mdb_env_close(env_);
}

Status TaskStore::Open(const std::string& dir, std::vector<std::pair<std::uint64_t, std::string>>* records) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IoError(dir + ": " + std::strerror(errno));
  }
  int rc = mdb_env_create(&env_);
  if (rc == 0) rc = mdb_env_set_mapsize(env_, 64u << 20);  // bounded history: a few MiB at most
  if (rc == 0) rc = mdb_env_set_maxdbs(env_, 16);  // tasks, aliases, servers, maintenance; room to grow
  // MDB_NOTLS: read transactions are not tied to the thread that opened them.
  if (rc == 0) rc = mdb_env_open(env_, dir.c_str(), MDB_NOTLS, 0600);
  if (rc != 0) return LmdbError("open", rc);
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc == 0) rc = mdb_dbi_open(txn, "tasks", MDB_CREATE, &dbi_);
  MDB_cursor* cur = nullptr;
  if (rc == 0) rc = mdb_cursor_open(txn, dbi_, &cur);
  if (rc == 0) {
    MDB_val k, v;
    for (int r = mdb_cursor_get(cur, &k, &v, MDB_FIRST); r == 0; r = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      std::uint64_t id = GetBe(static_cast<const std::uint8_t*>(k.mv_data), k.mv_size < 8 ? k.mv_size : 8);
      records->emplace_back(id, std::string(static_cast<const char*>(v.mv_data), v.mv_size));
    }
    mdb_cursor_close(cur);
  }
  if (rc == 0) {
    rc = mdb_txn_commit(txn);  // commits the sub-database's creation
  } else if (txn) {
    mdb_txn_abort(txn);
  }
  if (rc != 0) return LmdbError("read", rc);
  // The directory (made at a node's first start) and LMDB's files in it are
  // durable only once their directories are synced; a task record written
  // later must not vanish with them at a power cut (issue 24).
  CAIRN_TRY(SyncDir(dir));
  CAIRN_TRY(SyncDir(ParentDir(dir)));
  store::GroupCommitOptions o;
  o.name = kWho;
  o.env = env_;
  // Every change queued while a commit runs goes into the next one.
  o.batch_ops = ~0ull;
  o.batch_bytes = ~0ull;
  // A failed commit fails its batch only; the next batch tries again.
  o.sticky_errors = false;
  o.new_batch = [] { return std::make_unique<store::CommitBatch>(); };
  commit_ = std::make_unique<store::GroupCommit>(loop_, std::move(o));
  return Status();
}

Result<unsigned int> TaskStore::OpenTable(const char* name) {
  MDB_txn* txn = nullptr;
  MDB_dbi dbi = 0;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc == 0) rc = mdb_dbi_open(txn, name, MDB_CREATE, &dbi);
  if (rc == 0) {
    rc = mdb_txn_commit(txn);
  } else if (txn) {
    mdb_txn_abort(txn);
  }
  if (rc != 0) return LmdbError(name, rc);
  return dbi;
}

void TaskStore::Transact(TxnOp op, Callback<void(Status)> done) {
  auto item = std::make_unique<TransactOp>(loop_, std::move(op), std::move(done));
  if (!commit_) {
    loop_.Post([item = std::move(item)]() mutable { item->Done(NotOpen()); });
    return;
  }
  commit_->Submit(std::move(item));
}

Status TaskStore::Read(Callback<Status(MDB_txn* txn)> fn) const {
  if (!commit_) return NotOpen();
  return commit_->Read(std::move(fn));
}

void TaskStore::Put(std::uint64_t id, std::string json, Callback<void(Status)> durable) {
  if (!commit_) {
    if (durable) loop_.Post([durable = std::move(durable)]() mutable { durable(NotOpen()); });
    return;
  }
  pending_[id] = Change{false, std::move(json)};
  if (durable) pending_done_.push_back(std::move(durable));
  QueueRecords();
}

void TaskStore::Delete(std::uint64_t id) {
  if (!commit_) return;
  pending_[id] = Change{true, {}};
  QueueRecords();
}

void TaskStore::QueueRecords() {
  if (records_queued_) return;
  records_queued_ = true;
  commit_->Submit(std::make_unique<RecordsOp>(*this));
}

void TaskStore::Flush(Task done) {
  if (!commit_) return loop_.Post(std::move(done));
  commit_->WhenIdle(std::move(done));
}

}  // namespace cairn::control
