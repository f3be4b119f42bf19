// FaultPlatform: a PlatformWrapper that injects the faults the store must
// survive — ENOSPC on writes, EIO on fsync, slow fsync — and fakes the free
// space and the wall clock. A fault is data: what fails, how many times, with
// which status. Any thread (the store calls it from the thread pool).
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>

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
};

}  // namespace cairn::testing
