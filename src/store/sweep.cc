// The expiry sweep's slices. Loop thread only; the deletions run in the
// commit worker like every other write.
#include "store/sweep.h"

#include <lmdb.h>

#include <chrono>
#include <string>
#include <utility>

#include "store/ops.h"

namespace cairn::store {

void Sweeper::Schedule() {
  if (shared_.options.read_only || stopped_) return;
  timer_ = loop_.PostAfter(shared_.options.sweep_interval_ms, [this] { Start(nullptr); });
}

void Sweeper::Start(Task done) {
  if (done) waiters_.push_back(std::move(done));
  if (running_) return;
  if (stopped_ || shared_.options.read_only) return Finished();
  running_ = true;
  Slice();
}

void Sweeper::Stop() {
  stopped_ = true;
  timer_.reset();
}

void Sweeper::Finished() {
  running_ = false;
  for (Task& t : waiters_) loop_.Post(std::move(t));
  waiters_.clear();
  Schedule();
  if (finished_) finished_();
}

// One slice: at most 5 ms and 128 expired entries read on the loop thread;
// their deletions go through the write queue (checked again there on fresh
// state); the next slice starts on a later loop iteration once they commit.
void Sweeper::Slice() {
  if (stopped_) return Finished();
  constexpr std::size_t kMaxEntries = 128;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
  std::uint64_t now = shared_.platform->WallSeconds();
  std::vector<std::pair<bool, std::string>> found;
  const Dbs& dbs = shared_.dbs;
  bool ages = shared_.options.expiry == LeaseExpiry::kAge;
  commit_
      .Read([&](MDB_txn* txn) -> Status {
        Txn t(txn, dbs, nullptr);
        for (bool upload : {true, false}) {
          if (!upload && !ages) continue;
          // A failed scan only delays the sweep to its next run.
          t.Scan(upload ? dbs.upload_expiry : dbs.lease_expiry, "",
                 [&](std::string_view k, std::string_view) {
                   if (schema::TimeOf(k) > now) return false;
                   found.emplace_back(upload, std::string(k));
                   return found.size() < kMaxEntries && std::chrono::steady_clock::now() < deadline;
                 })
              .IgnoreError();
        }
        return Status();
      })
      .IgnoreError();
  if (found.empty()) return Finished();
  auto left = std::make_shared<std::size_t>(found.size());
  for (auto& [upload, key] : found) {
    auto deleted = std::make_shared<bool>(false);
    // Unbounded: the sweep's own deletions are never refused as a full queue.
    commit_.Submit(
        std::make_unique<WriteOp<Status>>(
            loop_, "store sweep", 0,
            [upload = upload, key = key, deleted](Batch& b) { return ApplyExpire(b, upload, key, deleted.get()); },
            [this, left, deleted](Status st) {
              if (st.ok() && *deleted) expired_shares_++;
              if (--*left == 0) {
                if (!st.ok() && st.code() != Code::kNotFound) return Finished();
                loop_.Post([this] { Slice(); });
              }
            }),
        true);
  }
}

}  // namespace cairn::store
