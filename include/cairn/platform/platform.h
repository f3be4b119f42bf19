// Platform: the operating-system services the store (and the grid's secret
// files) need, behind one
// interface so tests can inject faults (LevelDB's Env and EnvWrapper).
// Files are plain descriptors; offsets are 64-bit on every board (a 32-bit
// ARM board still serves a multi-terabyte disk). Any thread: implementations
// keep no per-call state, so the store's thread-pool work may call them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::platform {

struct FsSpace {
  std::uint64_t avail_bytes = 0;  // free to an unprivileged user (f_bavail * f_frsize)
  std::uint64_t total_bytes = 0;
};

class Platform {
 public:
  virtual ~Platform() = default;

  // Free and total space of the filesystem holding `path` (statvfs).
  virtual Result<FsSpace> Space(const std::string& path) = 0;
  // Seconds since the Unix epoch (lease times are wall-clock, like Tahoe's).
  virtual std::uint64_t WallSeconds() = 0;
  // Names this boot of the machine ("" if unknown): writes not yet fsynced
  // survive a process crash but not a reboot, so the store trusts its
  // unsynced records only while this is unchanged.
  virtual std::string BootId() = 0;

  // Opens `path` read-write, creating it (mode 0600) if `create`. NotFound if
  // it does not exist and !create. The descriptor is the caller's to Close.
  virtual Result<int> OpenFile(const std::string& path, bool create) = 0;
  // Creates `path` (mode 0600) for writing, failing with Conflict if it
  // exists already (O_EXCL: of two racing creators exactly one wins). The
  // descriptor is the caller's to Close.
  virtual Result<int> CreateExclusive(const std::string& path) = 0;
  // Opens an existing file read-only.
  virtual Result<int> OpenRead(const std::string& path) = 0;
  virtual void Close(int fd) = 0;
  // Writes all of `data` at `offset`. NoSpace on ENOSPC/EDQUOT, else IoError.
  virtual Status PWrite(int fd, const void* data, std::size_t len, std::uint64_t offset) = 0;
  // Reads up to `len` bytes at `offset`; fewer only at end of file.
  virtual Result<std::size_t> PRead(int fd, void* out, std::size_t len, std::uint64_t offset) = 0;
  // Makes the file's data durable (fdatasync). A failure leaves the file's
  // state unknown: callers treat it as sticky.
  virtual Status SyncData(int fd) = 0;
  // Makes a directory's entries (creations, renames, unlinks) durable.
  virtual Status SyncDir(const std::string& dir) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // NotFound if it does not exist.
  virtual Status Unlink(const std::string& path) = 0;
  // Creates a directory (mode 0700); OK if it exists already.
  virtual Status MakeDir(const std::string& path) = 0;
  // Names in `dir` except "." and "..". NotFound if `dir` does not exist.
  virtual Status ListDir(const std::string& dir, std::vector<std::string>* names) = 0;
  // OK if `path` exists; NotFound if not.
  virtual Status Exists(const std::string& path) = 0;
};

// The host's implementation (Linux). A process-wide object; never deleted.
Platform* HostPlatform();

// Sets the C library's allocator for a small-memory daemon; call once in
// main, before the loop starts. With glibc: one arena (the store's worker
// thread would otherwise keep its own, holding freed batches), blocks of
// `mmap_threshold` bytes and more mapped on their own and returned when
// freed, and free memory at the top of the heap trimmed past twice that
// (at most 1 MiB). The threshold is kept within 16 KiB and glibc's most
// (512 KiB on 32-bit builds, 32 MiB on 64-bit); returns the one in use.
// Measured by gbs_bench (cairnd's peak anonymous memory during 100
// concurrent uploads): 55.7 MB with glibc's defaults, 29.6 MB with one arena
// and a 64 KiB threshold. A 64 KiB threshold makes every large buffer (a
// segment, a TLS record batch, an upload piece) a fresh mapping, a page
// fault per 4 KiB touched: 4 MiB cut a put's client CPU by a third
// (put_get_bench), for 4-7 MB more peak (limits.malloc_mmap_threshold_bytes).
std::uint64_t TuneProcessMemory(std::uint64_t mmap_threshold);

// Returns the heap's free memory to the system (glibc: malloc_trim), if more
// than `min_free` bytes of it are free and that count differs from
// *free_bytes (the count at the last call: unchanged means nothing was freed
// since). Sets *free_bytes to the count now; true if it trimmed. The free
// memory a large buffer leaves in the middle of the heap stays resident
// otherwise. Takes the allocator's lock: call it from the loop thread, where
// it is measured, not more often than every few seconds.
bool ReleaseFreeMemory(std::uint64_t min_free, std::uint64_t* free_bytes);

// Forwards every call to `target`; a test platform derives from it and
// overrides only what it changes (LevelDB's EnvWrapper).
class PlatformWrapper : public Platform {
 public:
  explicit PlatformWrapper(Platform* target) : target_(target) {}
  Result<FsSpace> Space(const std::string& path) override { return target_->Space(path); }
  std::uint64_t WallSeconds() override { return target_->WallSeconds(); }
  std::string BootId() override { return target_->BootId(); }
  Result<int> OpenFile(const std::string& path, bool create) override { return target_->OpenFile(path, create); }
  Result<int> CreateExclusive(const std::string& path) override { return target_->CreateExclusive(path); }
  Result<int> OpenRead(const std::string& path) override { return target_->OpenRead(path); }
  void Close(int fd) override { target_->Close(fd); }
  Status PWrite(int fd, const void* data, std::size_t len, std::uint64_t offset) override {
    return target_->PWrite(fd, data, len, offset);
  }
  Result<std::size_t> PRead(int fd, void* out, std::size_t len, std::uint64_t offset) override {
    return target_->PRead(fd, out, len, offset);
  }
  Status SyncData(int fd) override { return target_->SyncData(fd); }
  Status SyncDir(const std::string& dir) override { return target_->SyncDir(dir); }
  Status Rename(const std::string& from, const std::string& to) override { return target_->Rename(from, to); }
  Status Unlink(const std::string& path) override { return target_->Unlink(path); }
  Status MakeDir(const std::string& path) override { return target_->MakeDir(path); }
  Status ListDir(const std::string& dir, std::vector<std::string>* names) override {
    return target_->ListDir(dir, names);
  }
  Status Exists(const std::string& path) override { return target_->Exists(path); }

 protected:
  Platform* target() { return target_; }

 private:
  Platform* target_;
};

}  // namespace cairn::platform
