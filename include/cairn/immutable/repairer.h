// Immutable repair (tahoe-dirnodes.md C.3), after a check said the file is
// not healthy: read its URI extension block (for the exact segment size),
// download the file (every hash checked), encode it again with the cap's
// key, k and N and that segment size (the shares come out byte-identical to
// the originals), and upload it with servers of happiness: servers answer
// "already have" for the shares they hold, so the shares that are fine are
// kept and only missing ones are written, placed to reach the configured
// happiness (which moves copies of crowded shares to other servers:
// rebalancing). A share found corrupt is never counted as held by its
// server: it is placed on another one (UploadOptions::avoid). Then the file
// is checked again (verified again if the first check verified).
//
// Nothing is deleted: GBS has no way to delete an immutable share, so a
// corrupt share and surplus copies stay where they are (as with Tahoe-LAFS)
// until their leases expire. An unrecoverable file (fewer than k good
// shares) is not touched: nothing is downloaded or written.
//
// The completion runs exactly once, on a later turn (grid::Operation).
// Loop thread only.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/grid/check.h"
#include "cairn/grid/server.h"
#include "cairn/immutable/uploader.h"

namespace cairn::immutable {

struct RepairOptions {
  std::string spool_path;    // a scratch file for the plaintext (created,
                             // truncated, left for the caller)
  std::uint32_t happy = 7;   // the configured servers of happiness (capped at the
                             // servers that answered)
  std::string lease_secret;  // the node's raw lease secret: new shares get its leases
  bool verify = false;       // verify again after the repair
};

struct RepairResult {
  bool attempted = false;
  bool successful = false;  // the check after the repair said healthy
  std::string error;        // why the repair failed, if it did
  std::size_t shares_uploaded = 0;
  std::size_t shares_reused = 0;
  std::size_t happiness = 0;  // of the upload's final placement
  grid::CheckResults post;    // the check after the repair (when attempted)
};

// Repairs the file of `cap` (CHK read cap) given the check `pre` made.
// Not attempted when `pre` is unrecoverable, or healthy and not in need
// of rebalancing. `done` gets the
// result (a failed repair is a result with `error`, not an error), or
// BadCap (not a CHK read cap: a verify cap cannot re-encode), Cancelled.
void RepairImmutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, grid::CheckResults pre,
                     RepairOptions options, grid::ProgressFn progress, grid::StopFn stop,
                     Callback<void(Result<RepairResult>)> done);

}  // namespace cairn::immutable
