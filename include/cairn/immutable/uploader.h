// Immutable (CHK) upload over GBS (tahoe-protocol.md 5.5); the download is
// in downloader.h (src/immutable/downloader.cc).
//
//   UploadFile: pass 1 hashes the file off the loop for the convergent key
//   (LIT cap for 55 bytes or less, nothing stored), unless the caller gives
//   the key (UploadOptions::convergent_key); then asks every server
//   for its version (room; gbs::ClientOptions::version_cache_ms may answer
//   from the last answer) and, unless UploadOptions::list_existing is
//   false, the shares it already has, plans placement
//   with servers of happiness (grid/placement.h, reusing existing shares),
//   allocates buckets (shares a server refused or failed to take are planned
//   again on the other servers, up to 4 rounds), and streams the file one
//   segment at a time: read, encrypt and encode on the thread pool, PATCH
//   each block to its bucket; the trailers (hash trees, UEB) are made with
//   the last segment and travel in its PATCH, which completes each share
//   (a one-segment file is one PATCH per share).
//
// Memory: one segment is encoded and one waits while up to
// `segments_in_flight` segments' blocks are in flight or batched, so at most
// segments_in_flight + 2 segments' blocks (N/k times the segment size each)
// are held, whatever the file size. Consecutive segments are batched into
// one PATCH per share (up to 1 MiB of a share, or half the window of
// segments), and a batch goes out only when the segments in flight plus
// its own fit the window.
//
// Every completion runs on a later loop turn, exactly once, also when the
// call fails at once (design rule 1), and only after every request the
// upload sent besides its main line (bucket aborts) and every job it ran on
// the thread pool has ended (grid::Operation). Loop thread only.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/grid/server.h"
#include "cairn/immutable/chk.h"

namespace cairn::immutable {

using grid::GridServer;
using grid::ProgressFn;
using grid::StopFn;

struct UploadOptions {
  ChkParams params;          // k, N, maximum segment size
  std::uint32_t happy = 7;   // servers of happiness required
  std::string convergence;   // the raw convergence secret (any length)
  std::string lease_secret;  // the client's raw lease secret (32 bytes)
  // Segments whose PATCHes may be outstanding or batched at once (>= 1):
  // each server has at most this many segments' blocks of its shares in
  // flight (two batches of two segments by default).
  std::size_t segments_in_flight = 4;
  // Whether placement first asks every server which shares of this file it
  // holds (GET .../shares). False: as Tahoe-LAFS's uploader does, they are
  // learnt from the allocations' already-have answers (one request a server
  // fewer; a share a server holds but was not asked for may be placed a
  // second time elsewhere). A backup's uploads, mostly new files, use false.
  bool list_existing = true;
  // The convergent key, when the caller hashed the file already as it
  // arrived (caps::ConvergentKeyHasher with `convergence`, `params` and a
  // size of `prehashed_size`): the first pass over the file is skipped. Used
  // only if the file has exactly prehashed_size bytes; the cap is the same.
  std::string convergent_key;
  std::uint64_t prehashed_size = 0;
  // Repair only (immutable/repairer.h): server index -> the share numbers
  // it holds corrupt. They do not count as held there, that server is never
  // asked to take them, and its "already have" of them is ignored, so the
  // share is placed on another server.
  std::map<std::size_t, std::set<std::uint32_t>> avoid;
};

struct UploadResult {
  caps::Cap cap;
  std::uint64_t size = 0;
  std::size_t happiness = 0;               // of the final placement (0 for LIT)
  std::size_t shares_uploaded = 0;         // buckets written and completed
  std::size_t shares_reused = 0;           // shares servers already held
  std::size_t max_segments_in_flight = 0;  // the most segments with PATCHes outstanding at once
  // Share number -> names of the servers that hold it after the upload.
  std::map<std::uint32_t, std::vector<std::string>> placement;
};

// Uploads the file at `path` (read on the thread pool; it must not change
// meanwhile) to `servers`. `done` runs once on a later turn with the cap, or:
// InvalidArgument (bad parameters: 1 <= k <= N <= 256, 1 <= happy <= N),
// NotFound/IoError (the file), NotEnoughServers (happiness cannot be reached
// or fell below `happy` when servers failed; every bucket this upload
// allocated is aborted), Cancelled (`stop` said so). `servers`' clients must
// outlive the call's completion; everything else is copied.
void UploadFile(Loop& loop, std::vector<GridServer> servers, std::string path, UploadOptions options,
                ProgressFn progress, StopFn stop, Callback<void(Result<UploadResult>)> done);

}  // namespace cairn::immutable
