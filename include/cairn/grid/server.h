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
  std::string seed;               // 20 bytes: permutation and lease seed (gbs::ServerSeed)
  std::string name;               // for messages and results (a nickname or the server id)
};

// Reports progress: phase ("hashing", "placing", "uploading", ...), bytes
// (or steps) done and the total. Called on the loop thread, any number of times.
using ProgressFn = Callback<void(const std::string& phase, std::uint64_t done, std::uint64_t total)>;
// Asked between steps; returning true stops the operation with Cancelled.
using StopFn = Callback<bool()>;

}  // namespace cairn::grid
