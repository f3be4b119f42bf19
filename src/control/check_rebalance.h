// Rebalancing a mutable (SDMF or MDMF) file whose shares are crowded on a
// few servers (docs/check.md, "Rebalance"): the repair's step that raises
// servers of happiness without making a new version. Tahoe-LAFS has no such
// step; its repairer only republishes where the shares are.
//
// One pass, in this order:
//   1. a servermap update in check mode (every server asked, each share's
//      header and signature verified against the cap's fingerprint);
//   2. a plan from the one version found: the shares a maximum matching
//      leaves unmatched go to servers that hold no matched share, as an
//      upload's placement puts them (grid::PlanPlacement);
//   3. each such share, one at a time, is read whole from a holder,
//      parsed and verified on the thread pool (a copy of a bad share is
//      never made), and written unchanged to its new server in one
//      read-test-write whose test vector expects no share there: the same
//      version, the same sequence number, byte for byte;
//   4. only after every copy was answered, the surplus copies (a share's
//      copy whose removal lowers neither happiness nor leaves the share
//      without a holder) are deleted, one read-test-write per server, each
//      share tested against the version's checkstring with new-length 0:
//      a share another writer replaced since the map is never deleted.
//
// The caller holds the file's slot lock exclusively (as a repair does).
// Memory: one share at a time. Loop thread only; the completion runs
// exactly once, on a later turn (grid::Operation).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/grid/server.h"

namespace cairn::control {

struct RebalanceOptions {
  std::uint32_t happy = 7;            // the configured servers of happiness
  std::string lease_secret;           // the node's raw lease secret: copies get its leases
  std::uint64_t max_share_bytes = 0;  // a larger share is not copied (0: no bound)
  // Tests only: called once the copies were answered, before the surplus
  // copies are deleted, with the continuation that deletes them (a test can
  // publish another version in between). Unset: straight on.
  std::function<void(std::function<void()> resume)> TEST_before_delete;
};

struct RebalanceResult {
  std::size_t happiness_before = 0;
  std::size_t happiness_after = 0;  // of the shares acknowledged, after the deletions
  std::size_t copied = 0;           // shares written to servers that held none
  std::size_t copy_failed = 0;      // copies a server refused or failed
  std::size_t deleted = 0;          // surplus copies removed
  std::size_t kept = 0;             // surplus copies not removed (a changed share, a failed server)
  std::uint64_t seqnum = 0;         // of the version rebalanced (unchanged)
  std::string error;                // why happiness stays short, or why nothing was done
};

// Rebalances the file of `writecap` (URI:SSK: or URI:MDMF:) on `servers`.
// Nothing is done (a result with `error`) when the map finds no share,
// several versions or a bad share (repair first), or when happiness is
// already what the servers that answered allow. `done` runs once, on a
// later turn, with the result, or BadCap (not a write cap), Cancelled
// (`stop`), the servermap's error. `servers`' clients must outlive it.
void RebalanceMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap writecap, RebalanceOptions options,
                      grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<RebalanceResult>)> done);

}  // namespace cairn::control
