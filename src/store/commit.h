// The share store's side of a group commit (cairn/store/group_commit.h):
// Batch, what one write transaction means for shares (totals, free space,
// open body files, and what each op stages for after the commit), the state
// the commit worker carries from one batch to the next, and WriteOp, one
// store write as a queued op. Batch and the staging: the commit's worker
// thread only. WriteOp: built on the loop thread, applied on the worker,
// delivered on the loop.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cairn/platform/platform.h"
#include "cairn/store/group_commit.h"
#include "cairn/store/store.h"
#include "store/body_files.h"
#include "store/schema.h"
#include "store/txn.h"

namespace cairn::store {

// Ranges of uploads in progress written to their bodies (in the page cache)
// but not yet recorded in LMDB, by share key: the "complete" sync policy
// records an upload's ranges in LMDB only with the write that completes it.
// Each also lives in the upload's ranges file, so it survives a process
// crash; Open() trusts those files only if the machine has not rebooted.
using PendingRanges = std::map<std::string, std::vector<Range>>;

struct DoomedFile {
  std::uint64_t file_id;
  StorageIndex si;
  ShareNum shnum;
};

// What the store's commit worker shares with the loop: fixed after Open,
// except `pending` and `unlinked`, which Open() fills and then only the
// commit worker touches (one batch at a time).
struct Shared {
  MDB_env* env = nullptr;
  Dbs dbs;
  StoreOptions options;
  BodyPaths paths;
  platform::Platform* platform = nullptr;
  PendingRanges pending;
  // Doomed files unlinked after the last commit: their entries go in the
  // next one, which first syncs the directories they left.
  std::vector<DoomedFile> unlinked;
};

// Unlinks a deleted share's body (wherever it is) and its ranges file;
// missing files are fine. Any thread.
void UnlinkBody(const Shared& s, const DoomedFile& f);

class Batch final : public CommitBatch {
 public:
  Batch(Shared& s, std::uint64_t now_s)
      : platform(s.platform), options(s.options), paths(s.paths), now(now_s), shared_(s) {}
  ~Batch() override;  // closes the body files it opened

  platform::Platform* platform;
  const StoreOptions& options;
  const BodyPaths& paths;
  std::uint64_t now;  // wall-clock seconds, one value for the whole batch
  schema::Totals totals;
  // The op's (or, between ops, the batch's) transaction.
  std::optional<Txn> txn;

  // Free space for new data: statvfs (once per batch) less the reservation
  // and the allocations of uploads in progress; 0 if negative.
  Result<std::uint64_t> Available();
  // A file, opened once per batch. Synced before the commit only if
  // MarkSync()ed: a body whose ranges this commit records.
  Result<int> Body(const std::string& path, bool create);
  void MarkSync(const std::string& path) { sync_[path] = true; }
  // `dir` gained an entry (kGained) or lost one (kLost, the old name of a
  // rename): it is fsynced before the commit. Directories that only gained
  // entries are synced first, then those that lost one, so a renamed body
  // has a durable name at every moment: its new one is durable before its
  // old one is gone (each directory's entries are durable only with its own
  // fsync; syncing incoming/ first lost the body at the power-cut test's
  // cut 104).
  enum class DirChange { kGained, kLost };
  void MarkDirDirty(const std::string& dir, DirChange change) {
    bool& lost = dirty_dirs_[dir];
    lost = lost || change == DirChange::kLost;
  }

  // Staging for after the commit, kept per op: an op rolled back drops its
  // own. The pending ranges of `share_key` as this batch sees them (nullptr
  // if none); PutPending stages a change (nullopt: drop them).
  const std::vector<Range>* Pending(const std::string& share_key) const;
  void PutPending(const std::string& share_key, std::optional<std::vector<Range>> ranges) {
    op_.pending[share_key] = std::move(ranges);
  }
  // Unlinks a body file after the commit (recorded in `doomed` in this txn).
  Status Doom(const DoomedFile& f);
  // Unlinks `path` (a completed upload's ranges file) after the commit.
  void UnlinkAfter(std::string path) { op_.unlink_after.push_back(std::move(path)); }

  // CommitBatch: load the totals and drop the doomed entries of the files
  // unlinked last time; stage per op; write the totals; sync the files the
  // commit records; after it, unlink and publish the pending ranges.
  Status Begin() override;
  void OpBegin() override;
  void OpEnd(bool kept) override;
  Status End() override;
  bool Changed() const override { return txn->changed(); }
  Status BeforeCommit() override;
  void Durable() override;

 private:
  struct Staged {
    std::vector<DoomedFile> doomed;
    std::map<std::string, std::optional<std::vector<Range>>> pending;
    std::vector<std::string> unlink_after;
  };
  Shared& shared_;
  Staged op_;    // the op being applied
  Staged kept_;  // the ops that committed into the batch
  schema::Totals op_start_totals_;
  std::optional<platform::FsSpace> space_;
  std::map<std::string, int> fds_;
  std::map<std::string, bool> sync_;
  std::map<std::string, bool> dirty_dirs_;  // true: it lost an entry
};

// One store write: `apply` runs in the op's nested transaction on the commit
// worker; `done` runs on the loop with its result once the batch is durable,
// or with the batch's error. R is Status or Result<T>.
template <typename R>
class WriteOp final : public CommitOp {
 public:
  WriteOp(const Scheduler& scheduler, const char* name, std::size_t bytes, Callback<R(Batch&)> apply,
          Callback<void(R)> done)
      : CommitOp(scheduler, name, bytes), apply_(std::move(apply)), done_(std::move(done)) {}

  Status Apply(CommitBatch& b) override {
    // GroupCommit hands every op the batch its factory made: a store Batch.
    out_.emplace(apply_(static_cast<Batch&>(b)));
    if constexpr (std::is_same_v<R, Status>) {
      return *out_;
    } else {
      return out_->status();
    }
  }
  void Done(Status batch) override {
    if (!batch.ok()) return done_(std::move(batch));
    if (!out_) return done_(Status::Internal("store: operation never applied"));
    done_(std::move(*out_));
  }

 private:
  Callback<R(Batch&)> apply_;
  Callback<void(R)> done_;
  std::optional<R> out_;
};

}  // namespace cairn::store
