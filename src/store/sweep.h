// The expiry sweep: every sweep_interval_ms, slices that read at most 128
// expired entries (or 5 ms worth) on the loop thread and queue their
// deletions as ordinary writes, each of which checks again on fresh state
// that its share is still expired. Abandoned uploads always; shares whose
// leases all expired only with LeaseExpiry::kAge. Loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "cairn/core/loop.h"
#include "cairn/store/group_commit.h"
#include "store/commit.h"

namespace cairn::store {

class Sweeper {
 public:
  // `finished` runs on the loop each time a sweep ends. `shared` and
  // `commit` must outlive the Sweeper.
  Sweeper(Loop& loop, const Shared& shared, GroupCommit& commit, Callback<void()> finished)
      : loop_(loop), shared_(shared), commit_(commit), finished_(std::move(finished)) {}

  // Arms the timer for the next sweep (not on a read-only store, nor once
  // stopped).
  void Schedule();
  // Starts a sweep now unless one is running; `done` (optional) runs on a
  // later turn once it has finished (at once, on a later turn, if the
  // sweeper is stopped or the store read-only).
  void Start(Task done);
  // No more timers or slices; a slice whose deletions are queued ends once
  // they are committed.
  void Stop();
  bool running() const { return running_; }
  std::uint64_t expired_shares() const { return expired_shares_; }

 private:
  void Slice();
  void Finished();

  Loop& loop_;
  const Shared& shared_;
  GroupCommit& commit_;
  Callback<void()> finished_;
  bool running_ = false;
  bool stopped_ = false;
  std::uint64_t expired_shares_ = 0;
  std::vector<Task> waiters_;
  std::unique_ptr<Timer> timer_;
};

}  // namespace cairn::store
