// The node directory's layout (docs/operations.md) and its lock. The daemon
// and the cairn command both name files only through NodePaths. Any thread.
#pragma once

#include <string>

#include "cairn/core/status.h"

namespace cairn {

struct NodePaths {
  explicit NodePaths(std::string dir);
  std::string dir;          // as given (absolute after MakeAbsolute)
  std::string config;       // DIR/cairn.json
  std::string private_dir;  // DIR/private (0700)
  std::string tls_key;      // DIR/private/node.key
  std::string tls_cert;     // DIR/private/node.crt
  std::string swissnum;     // DIR/private/swissnum
  std::string store;        // DIR/store: the share store's LMDB environment
  std::string control_db;   // DIR/control: task records (an LMDB environment of their own)
  std::string socket;       // DIR/control.sock (0600)
  std::string lock;         // DIR/cairnd.lock

  // The same paths with DIR made absolute (the daemon reports these).
  NodePaths MakeAbsolute() const;
};

// An exclusive lock on DIR/cairnd.lock, held for the life of the object (and
// released by the kernel if the process dies). The file holds the holder's pid.
class NodeLock {
 public:
  // InUse, naming the holder's pid, if another process holds the lock.
  static Result<NodeLock> Acquire(const NodePaths& paths);
  NodeLock(NodeLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  NodeLock& operator=(NodeLock&&) = delete;
  NodeLock(const NodeLock&) = delete;
  ~NodeLock();

 private:
  explicit NodeLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace cairn
