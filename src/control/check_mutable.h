// Checking, verifying and repairing a mutable (SDMF or MDMF) file, as
// Tahoe-LAFS's mutable checker and repairer do (tahoe-dirnodes.md C.4, C.5),
// through the mutable layer's public pieces: the servermap update in check
// mode (every server asked; each share's header and signature verified
// against the cap's fingerprint), the share-format interface (a whole share
// parsed and verified: key, signature, blocks, block hash tree, share hash
// chain), RetrieveMutable and PublishMutable.
//
// It lives in the control layer because it joins mutable files with the
// grid's check results; src/mutable is not changed for it. Every completion
// runs exactly once, on a later turn. Loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/grid/check.h"
#include "cairn/grid/server.h"
#include "cairn/mutable/mutable_file.h"
#include "control/check_rebalance.h"

namespace cairn::control {

// Checks the file of `cap` (a mutable write, read or verify cap). With
// `verify`, every share of the best version is read in full and verified
// (on the thread pool); a share that fails gets the corruption advisory
// and is counted corrupt, not good. `done` gets the results (an unhealthy
// or unrecoverable file is a result, not an error), or BadCap, Cancelled.
void CheckMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, bool verify, std::uint32_t happy,
                  grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<grid::CheckResults>)> done);

struct MutableRepairResult {
  bool attempted = false;
  bool successful = false;
  std::string error;         // why it was not attempted, or failed
  std::uint64_t seqnum = 0;  // of the version published (or rebalanced)
  bool rebalanced = false;   // the rebalance step ran
  RebalanceResult rebalance; // what it did
  grid::CheckResults post;   // the check after it (when attempted)
};

// Tahoe's mutable repair: when `pre` is not healthy, reads the best
// recoverable version and publishes it again as seqnum + 1 (the publish
// engine: every share of every server is tested and replaced, and copies
// of crowded shares are placed to reach happiness). When `pre` needs
// rebalancing (healthy or not), the rebalance step (check_rebalance.h)
// then copies crowded shares of the newest version, unchanged, to servers
// holding none and deletes the surplus copies once the new ones were
// acknowledged. Then it checks again. Not attempted (a result with `error`)
// with a read or verify cap, for an unrecoverable file, or when an
// unrecoverable version is newer than the best recoverable one (Tahoe's
// MustForceRepairError: a repair would roll it back). `max_share_bytes`
// bounds the share a rebalance holds (0: none). The caller holds the
// slot's lock exclusively.
void RepairMutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, grid::CheckResults pre,
                   mutable_files::MutableOptions options, std::uint64_t max_share_bytes, bool verify,
                   grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<MutableRepairResult>)> done);

}  // namespace cairn::control
