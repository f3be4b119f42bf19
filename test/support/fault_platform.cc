// FaultPlatform. Any thread.
#include "support/fault_platform.h"

#include <chrono>
#include <thread>

namespace cairn::testing {
namespace {

// Consumes one planned failure, if any are left.
bool TakeOne(std::atomic<int>& left) {
  int v = left.load();
  while (v > 0) {
    if (left.compare_exchange_weak(v, v - 1)) return true;
  }
  return false;
}

}  // namespace

Result<platform::FsSpace> FaultPlatform::Space(const std::string& path) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (avail_) return platform::FsSpace{*avail_, *avail_ * 2};
  }
  return PlatformWrapper::Space(path);
}

std::uint64_t FaultPlatform::WallSeconds() {
  std::uint64_t w = wall_;
  return w != 0 ? w : PlatformWrapper::WallSeconds();
}

Status FaultPlatform::PWrite(int fd, const void* data, std::size_t len, std::uint64_t offset) {
  if (TakeOne(write_failures_)) return Status::NoSpace("injected ENOSPC on pwrite");
  return PlatformWrapper::PWrite(fd, data, len, offset);
}

Status FaultPlatform::SyncData(int fd) {
  ++syncs_;
  if (int ms = sync_delay_ms_; ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  if (TakeOne(sync_failures_)) return Status::IoError("injected EIO on fdatasync");
  return PlatformWrapper::SyncData(fd);
}

}  // namespace cairn::testing
