// The node's client secrets, kept in DIR/private as 32 random bytes in Tahoe
// base32 each, made on first use:
//   convergence  the convergence secret (immutable keys derive from it);
//   secret       the lease secret (each server's renew and cancel secrets
//                derive from it and the server's seed).
// Reading (and creating) them is blocking file I/O: thread pool only; the
// grid (cairn/grid/grid.h) schedules it there.
#pragma once

#include <string>

#include "cairn/core/status.h"

namespace cairn::platform {
class Platform;
}

namespace cairn::grid {

struct NodeSecrets {
  std::string convergence;  // raw; empty unless asked for
  std::string lease;        // raw; empty unless asked for
};

// Reads a base32 secret file through `platform`, or creates it with 32
// random bytes (mode 0600, exclusive create: two first uses agree on one
// secret), made durable with its directory entry before it is returned.
// InvalidArgument if the file holds no base32 secret; the platform's error
// if it cannot be read or written. Blocking: thread pool only.
Result<std::string> LoadOrCreateSecret(platform::Platform& platform, const std::string& path);
// The same on the host platform.
Result<std::string> LoadOrCreateSecret(const std::string& path);

// The node's secret files in `private_dir`, through `platform` (nullptr: the
// host platform). Blocking: thread pool only.
class SecretFiles {
 public:
  explicit SecretFiles(std::string private_dir, platform::Platform* platform = nullptr)
      : dir_(std::move(private_dir)), platform_(platform) {}
  Result<std::string> Convergence() const { return Load("/convergence"); }
  Result<std::string> Lease() const { return Load("/secret"); }
  // The secrets asked for; the others are left empty.
  Result<NodeSecrets> Read(bool convergence, bool lease) const;

 private:
  Result<std::string> Load(const char* name) const {
    return platform_ ? LoadOrCreateSecret(*platform_, dir_ + name) : LoadOrCreateSecret(dir_ + name);
  }
  std::string dir_;
  platform::Platform* platform_;
};

}  // namespace cairn::grid
