// Checking and verifying an immutable (CHK) file on the grid, as Tahoe-LAFS's
// checker and verifier do (tahoe-dirnodes.md C.1, C.2):
//
//   check   every server is asked which shares of the storage index it
//           holds (one listing each, nothing downloaded) and the answers
//           are believed;
//   verify  every share on every server is read in full: its header, the
//           URI extension block (its hash must be the cap's), the crypttext
//           hash tree, the share's block hash tree and share hash chain up
//           to the UEB's share root, and every block against its tree (the
//           block hashing runs on the thread pool, or on the loop for reads
//           of at most 64 KiB of blocks). A share that fails is
//           corrupt: its server gets the corruption advisory and it does
//           not count as good. At most kVerifyParallel shares are read at
//           once, about 1 MiB of blocks per read.
//
// A LIT cap is healthy at once (nothing is stored). The completion runs
// exactly once, on a later turn, after every advisory was answered and every
// pool job ended (grid::Operation). Loop thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/grid/check.h"
#include "cairn/grid/server.h"

namespace cairn::immutable {

inline constexpr std::size_t kVerifyParallel = 4;

struct CheckOptions {
  bool verify = false;
  std::uint32_t happy = 7;  // the configured servers of happiness (for needs-rebalancing)
};

// Checks the file of `cap` (LIT, CHK or CHK verify cap) on `servers`.
// `done` gets the results (never an error for an unhealthy or unrecoverable
// file: that is in them), or BadCap, Cancelled (`stop` said so). `progress`
// reports ("listing", servers answered, servers) and ("verifying", bytes
// verified, bytes to verify). The clients must outlive the completion.
void CheckImmutable(Loop& loop, std::vector<grid::GridServer> servers, caps::Cap cap, CheckOptions options,
                    grid::ProgressFn progress, grid::StopFn stop, Callback<void(Result<grid::CheckResults>)> done);

}  // namespace cairn::immutable
