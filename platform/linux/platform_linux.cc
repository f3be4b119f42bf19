// The host Platform on Linux: POSIX file calls with 64-bit offsets (pread64
// and friends, so 32-bit ARM builds address files past 2 GiB), statvfs64,
// fdatasync. Any thread.
#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "cairn/core/log.h"
#include "cairn/platform/platform.h"

namespace cairn::platform {
namespace {

Status Errno(const char* what, const std::string& path, int err) {
  std::string msg = std::string(what) + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) return Status::NotFound(msg);
  if (err == ENOSPC || err == EDQUOT) return Status::NoSpace(msg);
  return Status::IoError(msg);
}

class LinuxPlatform final : public Platform {
 public:
  Result<FsSpace> Space(const std::string& path) override {
    struct statvfs64 s;
    if (statvfs64(path.c_str(), &s) != 0) return Errno("statvfs", path, errno);
    FsSpace out;
    out.avail_bytes = static_cast<std::uint64_t>(s.f_bavail) * s.f_frsize;
    out.total_bytes = static_cast<std::uint64_t>(s.f_blocks) * s.f_frsize;
    return out;
  }

  std::uint64_t WallSeconds() override {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec);
  }

  std::string BootId() override {
    char buf[64] = {0};
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "";
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    std::string id(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    return id;
  }

  Result<int> OpenFile(const std::string& path, bool create) override {
    int fd = open64(path.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
    if (fd < 0) return Errno("open", path, errno);
    return fd;
  }

  Result<int> CreateExclusive(const std::string& path) override {
    int fd = open64(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) return Status::Conflict("create " + path + ": it exists already");
    if (fd < 0) return Errno("create", path, errno);
    return fd;
  }

  Result<int> OpenRead(const std::string& path) override {
    int fd = open64(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Errno("open", path, errno);
    return fd;
  }

  void Close(int fd) override { ::close(fd); }

  Status PWrite(int fd, const void* data, std::size_t len, std::uint64_t offset) override {
    const char* p = static_cast<const char*>(data);
    while (len > 0) {
      ssize_t n = pwrite64(fd, p, len, static_cast<off64_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("pwrite", "fd " + std::to_string(fd), errno);
      }
      p += n;
      len -= static_cast<std::size_t>(n);
      offset += static_cast<std::uint64_t>(n);
    }
    return Status();
  }

  Result<std::size_t> PRead(int fd, void* out, std::size_t len, std::uint64_t offset) override {
    char* p = static_cast<char*>(out);
    std::size_t got = 0;
    while (got < len) {
      ssize_t n = pread64(fd, p + got, len - got, static_cast<off64_t>(offset + got));
      if (n < 0) {
        if (errno == EINTR) continue;
        return Errno("pread", "fd " + std::to_string(fd), errno);
      }
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    return got;
  }

  Status SyncData(int fd) override {
    if (fdatasync(fd) != 0) return Errno("fdatasync", "fd " + std::to_string(fd), errno);
    return Status();
  }

  Status SyncDir(const std::string& dir) override {
    int fd = open64(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return Errno("open", dir, errno);
    int rc = fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return Errno("fsync", dir, err);
    return Status();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (rename(from.c_str(), to.c_str()) != 0) return Errno("rename", from + " -> " + to, errno);
    return Status();
  }

  Status Unlink(const std::string& path) override {
    if (unlink(path.c_str()) != 0) return Errno("unlink", path, errno);
    return Status();
  }

  Status MakeDir(const std::string& path) override {
    if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) return Errno("mkdir", path, errno);
    return Status();
  }

  Status ListDir(const std::string& dir, std::vector<std::string>* names) override {
    DIR* d = opendir(dir.c_str());
    if (!d) return Errno("opendir", dir, errno);
    // readdir returns NULL both at the end and on failure (EOVERFLOW for a
    // 64-bit entry offset on a 32-bit build, EIO): only errno tells them
    // apart, and a failure taken for the end would silently drop entries.
    for (;;) {
      errno = 0;
      struct dirent* e = readdir(d);
      if (!e) break;
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      names->emplace_back(e->d_name);
    }
    int err = errno;
    closedir(d);
    if (err != 0) return Errno("readdir", dir, err);
    return Status();
  }

  Status Exists(const std::string& path) override {
    struct stat64 st;
    if (stat64(path.c_str(), &st) != 0) return Errno("stat", path, errno);
    return Status();
  }
};

}  // namespace

Platform* HostPlatform() {
  static LinuxPlatform* host = new LinuxPlatform();
  return host;
}

std::uint64_t TuneProcessMemory(std::uint64_t mmap_threshold) {
#if defined(__GLIBC__)
  // glibc refuses thresholds above 512 KiB on 32-bit builds, 32 MiB on
  // 64-bit; below 16 KiB every small buffer would be a mapping.
  const std::uint64_t most = sizeof(long) == 4 ? 512u << 10 : 32u << 20;
  const int threshold = static_cast<int>(std::clamp<std::uint64_t>(mmap_threshold, 16u << 10, most));
  mallopt(M_ARENA_MAX, 1);
  // Setting it also stops glibc raising it on its own.
  if (mallopt(M_MMAP_THRESHOLD, threshold) != 1) {
    CAIRN_LOG(Warn, "malloc refused an mmap threshold of %d bytes; its default applies", threshold);
  }
  mallopt(M_TRIM_THRESHOLD, std::min(2 * threshold, 1 << 20));
  return static_cast<std::uint64_t>(threshold);
#else
  return mmap_threshold;
#endif
}

bool ReleaseFreeMemory(std::uint64_t min_free, std::uint64_t* free_bytes) {
#if defined(__GLIBC__)
  const std::uint64_t seen = *free_bytes;
  *free_bytes = mallinfo2().fordblks;
  if (*free_bytes <= min_free || *free_bytes == seen) return false;
  malloc_trim(0);
  return true;
#else
  (void)min_free;
  *free_bytes = 0;
  return false;
#endif
}

}  // namespace cairn::platform
