// Immutable (CHK) download over GBS (tahoe-protocol.md 5.5, "Downloader
// summary"): a LIT cap is written out at once; a CHK cap's shares are
// listed on every server (permuted order), and the servers that answer first
// are used first. For k shares of distinct numbers the header, the URI
// extension block (checked against the cap), the crypttext hash tree and the
// share's block hash tree and share hash chain are fetched and verified
// (chk_reader.h); then the segments are fetched through a window: while
// the thread pool verifies, decodes, decrypts and writes one segment (at its
// offset in the output file), the blocks of the next ones are read already.
// A share that cannot be read is replaced by another; a share that fails a
// hash check is replaced too, and its server gets the corruption advisory.
// A share whose read is overdue (several times the median latency of recent
// answers, at least a second) is replaced when a spare share exists; its
// late answers are dropped, never used. Nothing unverified is written.
//
// Memory: the blocks of at most 3 segments (k blocks each) and one
// segment's plaintext. Every completion runs on a later loop turn, exactly
// once, also when the call fails at once, and only after every corruption
// advisory the download sent and every job it ran on the thread pool has
// ended (grid::Operation). Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/immutable/uploader.h"

namespace cairn::immutable {

struct DownloadResult {
  std::uint64_t size = 0;
  // Share number -> the server it was read from (the last k used).
  std::map<std::uint32_t, std::string> shares_used;
  std::size_t corrupt_shares = 0;  // shares that failed a check (advisories sent)
  std::size_t failed_reads = 0;    // reads that failed (server errors)
  std::size_t overdue_shares = 0;  // shares given up for a spare because a read was overdue
};

// Writes the file of `cap` (LIT or CHK) to `path` (created or truncated;
// removed again on failure). `done` runs once on a later turn with the
// result, or: BadCap (a cap that is not LIT or CHK), NotEnoughServers (fewer
// than k good shares could be found and read), NotFound/PermissionDenied/
// IoError/NoSpace (the output file), Cancelled (`stop` said so).
void DownloadFile(Loop& loop, std::vector<GridServer> servers, caps::Cap cap, std::string path, ProgressFn progress,
                  StopFn stop, Callback<void(Result<DownloadResult>)> done);

}  // namespace cairn::immutable
