// Node directory paths and the cairnd lock file. Any thread.
#include "cairn/core/node_dir.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

namespace cairn {

NodePaths::NodePaths(std::string d)
    : dir(std::move(d)),
      config(dir + "/cairn.json"),
      private_dir(dir + "/private"),
      tls_key(private_dir + "/node.key"),
      tls_cert(private_dir + "/node.crt"),
      swissnum(private_dir + "/swissnum"),
      store(dir + "/store"),
      control_db(dir + "/control"),
      socket(dir + "/control.sock"),
      lock(dir + "/cairnd.lock") {}

NodePaths NodePaths::MakeAbsolute() const {
  char buf[PATH_MAX];
  if (realpath(dir.c_str(), buf)) return NodePaths(buf);
  return *this;
}

Result<NodeLock> NodeLock::Acquire(const NodePaths& paths) {
  int fd = open(paths.lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Status::IoError(paths.lock + ": " + std::strerror(errno));
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    close(fd);
    if (err == EWOULDBLOCK) {
      std::string holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string("?");
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return Status::InUse("node directory " + paths.dir + " is in use by another cairnd (pid " + holder + ")");
    }
    return Status::IoError(paths.lock + ": flock: " + std::strerror(err));
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    int err = errno;
    close(fd);
    return Status::IoError(paths.lock + ": " + std::strerror(err));
  }
  return NodeLock(fd);
}

NodeLock::~NodeLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace cairn
