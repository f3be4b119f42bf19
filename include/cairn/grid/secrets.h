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

namespace cairn::grid {

struct NodeSecrets {
  std::string convergence;  // raw; empty unless asked for
  std::string lease;        // raw; empty unless asked for
};

// Reads a base32 secret file, or creates it with 32 random bytes (mode 0600,
// exclusive create: two first uses agree on one secret). InvalidArgument if
// the file holds no base32 secret; IoError if it cannot be read or written.
// Blocking: thread pool only.
Result<std::string> LoadOrCreateSecret(const std::string& path);

// The node's secret files in `private_dir`. Blocking: thread pool only.
class SecretFiles {
 public:
  explicit SecretFiles(std::string private_dir) : dir_(std::move(private_dir)) {}
  Result<std::string> Convergence() const { return LoadOrCreateSecret(dir_ + "/convergence"); }
  Result<std::string> Lease() const { return LoadOrCreateSecret(dir_ + "/secret"); }
  // The secrets asked for; the others are left empty.
  Result<NodeSecrets> Read(bool convergence, bool lease) const;

 private:
  std::string dir_;
};

}  // namespace cairn::grid
