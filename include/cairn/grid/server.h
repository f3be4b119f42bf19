// One storage server of the grid as the file operations (immutable and
// mutable) use it, and the two callbacks every long file operation takes.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/core/callback.h"

namespace cairn::gbs {
class Client;
}

namespace cairn::grid {

struct GridServer {
  gbs::Client* client = nullptr;  // not owned; must outlive the operation
  std::string permutation_seed;   // where it falls in a file's permuted order (grid/identity.h)
  std::string lease_seed;         // 20 bytes, its tub id: write enablers and lease secrets derive from it
  std::string name;               // for messages and results (a nickname or the server id)
};

// Reports progress: phase ("hashing", "placing", "uploading", ...), bytes
// (or steps) done and the total. Called on the loop thread, any number of times.
using ProgressFn = Callback<void(const std::string& phase, std::uint64_t done, std::uint64_t total)>;
// Asked between steps; returning true stops the operation with Cancelled.
using StopFn = Callback<bool()>;

}  // namespace cairn::grid
