// FaultPlatform: a PlatformWrapper that injects the faults the store must
// survive — ENOSPC on writes, EIO on fsync, slow fsync, a power cut that
// loses what was written and not yet fsynced — and fakes the free space and
// the wall clock. A fault is data: what fails, how many times, with
// which status. Any thread (the store calls it from the thread pool).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "cairn/platform/platform.h"

namespace cairn::testing {

class FaultPlatform : public platform::PlatformWrapper {
 public:
  FaultPlatform() : PlatformWrapper(platform::HostPlatform()) {}

  // The next `times` PWrite calls fail with NoSpace (as ENOSPC would).
  void FailWrites(int times) { write_failures_ = times; }
  // The next `times` SyncData calls fail with IoError (as EIO would).
  void FailSyncs(int times) { sync_failures_ = times; }
  // Every SyncData sleeps this long first (a slow SD card).
  void SetSyncDelayMs(int ms) { sync_delay_ms_ = ms; }
  // Reports this much free space instead of the real figure.
  void SetAvailBytes(std::optional<std::uint64_t> bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    avail_ = bytes;
  }
  // Fixes the wall clock (seconds since the epoch); 0 = the real clock.
  void SetWallSeconds(std::uint64_t s) { wall_ = s; }
  void AdvanceWallSeconds(std::uint64_t s) { wall_ += s; }
  int syncs() const { return syncs_; }
  // A power cut, as far as body files go: every byte range written through
  // this platform and not yet fdatasynced, in the files under `dir`, is
  // zeroed (its pages never reached the disk), and BootId() changes (the
  // machine rebooted). LMDB is not simulated: the store syncs every commit.
  // Directory entries are not simulated either: the whole of it (LMDB's
  // writes, creates, renames, unlinks) is, by test/tools/powercut_fs and
  // test/integration/test_power_cut.py.
  void LoseUnsyncedWrites(const std::string& dir);
  std::string BootId() override;

  Result<platform::FsSpace> Space(const std::string& path) override;
  std::uint64_t WallSeconds() override;
  Status PWrite(int fd, const void* data, std::size_t len, std::uint64_t offset) override;
  Status SyncData(int fd) override;

 private:
  std::mutex mu_;
  std::optional<std::uint64_t> avail_;
  std::atomic<int> write_failures_{0};
  std::atomic<int> sync_failures_{0};
  std::atomic<int> sync_delay_ms_{0};
  std::atomic<int> syncs_{0};
  std::atomic<std::uint64_t> wall_{0};
  // Guarded by mu_: unsynced [offset, offset+len) ranges per inode.
  std::map<unsigned long long, std::vector<std::pair<std::uint64_t, std::uint64_t>>> unsynced_;
  int boots_ = 0;
};

}  // namespace cairn::testing
