// --add-lease (tahoe-dirnodes.md C.8): renews the node's lease on every
// share of one storage index, on every server of a session, with the renew
// and cancel secrets Tahoe-LAFS derives from the node's lease secret, the
// storage index and each server's lease seed (its tub id), so a Tahoe-LAFS
// client with the same secret holds the same lease. A server that holds no
// share answers 404, which is counted, not an error (as Tahoe ignores it).
// Loop thread only.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/grid/server.h"

namespace cairn::grid {

struct LeaseReport {
  std::vector<std::string> renewed;    // servers that renewed (they hold shares)
  std::vector<std::string> no_shares;  // servers that hold none (404)
  std::vector<std::string> failed;     // "name: why" for the others
};

// Sends PUT /lease/<si> to every server of `servers` at once. `done` runs
// exactly once, on a later turn, after every answer (also with no servers).
// `lease_secret` is the node's raw secret; `storage_index` raw (16 bytes).
// The servers' clients must outlive the completion.
void AddLeases(Loop& loop, const std::vector<GridServer>& servers, const std::string& storage_index,
               const std::string& lease_secret, Callback<void(LeaseReport)> done);

}  // namespace cairn::grid
