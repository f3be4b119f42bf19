// Blocking file access for the thread pool (see the header).
#include "immutable/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cairn::immutable {
namespace {

Status OsError(const char* what, const std::string& path) {
  int e = errno;
  std::string msg = std::string(what) + " " + path + ": " + std::strerror(e);
  if (e == ENOENT) return Status::NotFound(msg);
  if (e == EACCES || e == EPERM) return Status::PermissionDenied(msg);
  if (e == ENOSPC) return Status::NoSpace(msg);
  return Status::IoError(msg);
}

}  // namespace

Result<int> OpenForRead(const std::string& path, std::uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OsError("cannot open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    Status s = OsError("cannot stat", path);
    ::close(fd);
    return s;
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument(path + " is not a regular file");
  }
  *size = static_cast<std::uint64_t>(st.st_size);
  return fd;
}

Result<int> OpenForWrite(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return OsError("cannot create", path);
  return fd;
}

Status ReadAt(int fd, std::uint64_t offset, char* buf, std::size_t len, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::pread(fd, buf, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return OsError("cannot read", path);
    if (n == 0) return Status::IoError(path + " became shorter while it was read");
    buf += n;
    len -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return Status();
}

Status WriteAt(int fd, std::uint64_t offset, const char* buf, std::size_t len, const std::string& path) {
  while (len > 0) {
    ssize_t n = ::pwrite(fd, buf, len, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return OsError("cannot write", path);
    buf += n;
    len -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return Status();
}

Status SyncAndClose(int fd, const std::string& path) {
  if (::fsync(fd) != 0) {
    Status s = OsError("cannot sync", path);
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return OsError("cannot close", path);
  return Status();
}

void CloseFile(int fd) {
  if (fd >= 0) ::close(fd);
}

}  // namespace cairn::immutable
