// FaultPlatform. Any thread.
#include "support/fault_platform.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
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

unsigned long long InodeOf(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 ? static_cast<unsigned long long>(st.st_ino) : 0;
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
  Status st = PlatformWrapper::PWrite(fd, data, len, offset);
  if (st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    unsynced_[InodeOf(fd)].emplace_back(offset, len);
  }
  return st;
}

Status FaultPlatform::SyncData(int fd) {
  ++syncs_;
  if (int ms = sync_delay_ms_; ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  if (TakeOne(sync_failures_)) return Status::IoError("injected EIO on fdatasync");
  Status st = PlatformWrapper::SyncData(fd);
  if (st.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    unsynced_.erase(InodeOf(fd));
  }
  return st;
}

std::string FaultPlatform::BootId() {
  std::lock_guard<std::mutex> lock(mu_);
  return "fault-platform-boot-" + std::to_string(boots_);
}

void FaultPlatform::LoseUnsyncedWrites(const std::string& dir) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    struct stat st;
    if (stat(e.path().c_str(), &st) != 0) continue;
    auto it = unsynced_.find(static_cast<unsigned long long>(st.st_ino));
    if (it == unsynced_.end()) continue;
    int fd = open(e.path().c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) continue;
    for (auto [off, len] : it->second) {
      std::string zeros(static_cast<std::size_t>(len), '\0');
      if (pwrite(fd, zeros.data(), zeros.size(), static_cast<off_t>(off)) < 0) break;
    }
    close(fd);
  }
  unsynced_.clear();
  ++boots_;
}

}  // namespace cairn::testing
