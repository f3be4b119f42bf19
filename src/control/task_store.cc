// Task records in LMDB, group-committed off the loop. Loop thread only,
// except the commit work item, which touches only what it was handed.
#include "control/task_store.h"

#include <lmdb.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace cairn::control {
namespace {

void EncodeKey(std::uint64_t id, unsigned char out[8]) {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(id & 0xff);
    id >>= 8;
  }
}

std::uint64_t DecodeKey(const MDB_val& v) {
  std::uint64_t id = 0;
  const auto* p = static_cast<const unsigned char*>(v.mv_data);
  for (std::size_t i = 0; i < v.mv_size && i < 8; ++i) id = (id << 8) | p[i];
  return id;
}

Status LmdbError(const char* what, int rc) {
  std::string msg = std::string("task records: ") + what + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL || rc == ENOSPC) return Status::NoSpace(msg);
  return Status::IoError(msg);
}

}  // namespace

TaskStore::~TaskStore() {
  CAIRN_CHECK(!in_flight_, "TaskStore destroyed with a commit in flight");
  if (env_) mdb_env_close(env_);
}

Status TaskStore::Open(const std::string& dir, std::vector<std::pair<std::uint64_t, std::string>>* records) {
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IoError(dir + ": " + std::strerror(errno));
  }
  int rc = mdb_env_create(&env_);
  if (rc == 0) rc = mdb_env_set_mapsize(env_, 64u << 20);  // bounded history: a few MiB at most
  if (rc == 0) rc = mdb_env_set_maxdbs(env_, 4);
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
      records->emplace_back(DecodeKey(k), std::string(static_cast<const char*>(v.mv_data), v.mv_size));
    }
    mdb_cursor_close(cur);
  }
  if (rc == 0) {
    rc = mdb_txn_commit(txn);  // commits the sub-database's creation
  } else if (txn) {
    mdb_txn_abort(txn);
  }
  if (rc != 0) return LmdbError("read", rc);
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
  ops_.push_back(Op{std::move(op), std::move(done)});
  MaybeCommit();
}

Status TaskStore::Read(Callback<Status(MDB_txn* txn)> fn) const {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return LmdbError("read", rc);
  Status st = fn(txn);
  mdb_txn_abort(txn);
  return st;
}

void TaskStore::Put(std::uint64_t id, std::string json, Callback<void(Status)> durable) {
  pending_[id] = Change{false, std::move(json)};
  if (durable) pending_done_.push_back(std::move(durable));
  MaybeCommit();
}

void TaskStore::Delete(std::uint64_t id) {
  pending_[id] = Change{true, {}};
  MaybeCommit();
}

void TaskStore::Flush(Task done) {
  if (idle()) {
    loop_.Post(std::move(done));
  } else {
    flush_waiters_.push_back(std::move(done));
  }
}

void TaskStore::MaybeCommit() {
  if (idle()) {
    for (Task& t : flush_waiters_) loop_.Post(std::move(t));
    flush_waiters_.clear();
  }
  if (in_flight_ || (pending_.empty() && ops_.empty())) return;
  in_flight_ = true;
  auto batch = std::make_shared<std::map<std::uint64_t, Change>>();
  batch->swap(pending_);
  auto done = std::make_shared<std::vector<Callback<void(Status)>>>();
  done->swap(pending_done_);
  auto ops = std::make_shared<std::vector<Op>>();
  ops->swap(ops_);
  auto op_results = std::make_shared<std::vector<Status>>(ops->size());
  MDB_env* env = env_;
  MDB_dbi dbi = dbi_;
  // One write transaction per batch, begun and committed inside one work
  // item; mdb_txn_commit syncs before it returns.
  loop_.Offload(
      [env, dbi, batch, ops, op_results]() -> Status {
        MDB_txn* txn = nullptr;
        int rc = mdb_txn_begin(env, nullptr, 0, &txn);
        if (rc != 0) return LmdbError("begin", rc);
        // Each operation in a nested transaction: a refused check (conflict,
        // not found) rolls back only its own changes.
        for (std::size_t i = 0; i < ops->size(); ++i) {
          MDB_txn* child = nullptr;
          rc = mdb_txn_begin(env, txn, 0, &child);
          if (rc != 0) {
            mdb_txn_abort(txn);
            return LmdbError("begin nested", rc);
          }
          (*op_results)[i] = (*ops)[i].op(child);
          rc = (*op_results)[i].ok() ? mdb_txn_commit(child) : (mdb_txn_abort(child), 0);
          if (rc != 0) {
            mdb_txn_abort(txn);
            return LmdbError("commit nested", rc);
          }
        }
        for (auto& [id, change] : *batch) {
          unsigned char key[8];
          EncodeKey(id, key);
          MDB_val k{sizeof key, key};
          if (change.erase) {
            rc = mdb_del(txn, dbi, &k, nullptr);
            if (rc == MDB_NOTFOUND) rc = 0;
          } else {
            MDB_val v{change.json.size(), change.json.data()};
            rc = mdb_put(txn, dbi, &k, &v, 0);
          }
          if (rc != 0) {
            mdb_txn_abort(txn);
            return LmdbError("write", rc);
          }
        }
        rc = mdb_txn_commit(txn);
        return rc == 0 ? Status() : LmdbError("commit", rc);
      },
      [this, done, ops, op_results](Status st) {
        in_flight_ = false;
        ++commits_;
        for (auto& cb : *done) cb(st);
        for (std::size_t i = 0; i < ops->size(); ++i) {
          if ((*ops)[i].done) (*ops)[i].done(st.ok() ? (*op_results)[i] : st);
        }
        MaybeCommit();
      });
}

}  // namespace cairn::control
