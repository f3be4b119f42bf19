// `deep-check`: checks (verifies, repairs, renews the leases of) everything
// reachable from an alias or a directory, each object once, as Tahoe-LAFS's
// deep-check does (tahoe-dirnodes.md A.9, C.7, C.9; docs/check.md).
// Loop thread only.
//
// The walk runs in one task. It checks up to kWalkInFlight objects at once
// (below), in Tahoe's order: objects are started in walk order, and a
// directory's children (which come next) only once it has been read; the
// outcomes are counted and listed in walk order. Its key ("deep-check" shared, or a maintenance
// pass's "maintenance" exclusive) is one no other kind of task takes, so
// the walker may wait for the tasks it starts without a wait cycle: an
// immutable object is checked inside the walking task; a mutable object
// (file or directory) in a task of its own holding only "slot/<SI>" (shared,
// exclusive to repair), so that its check, repair and, for a directory, the
// read of its children never interleave with a `mutable put` or a directory
// change of this node.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/json.h"
#include "control/check.h"

namespace cairn::control {

struct Spool;

// params {"target": alias name, ALIAS:path, a cap or URI:DIR2:.../path,
// "verify", "repair", "add_lease", "stream": bools}. The result is Tahoe's
// deep-check JSON (docs/check.md). With "stream" (the request must wait
// for the answer), the answer's data frames first carry Tahoe's
// stream-deep-check lines: one JSON object a line per object checked, in
// walk order, then {"type": "stats", ...}; the result adds "stream-bytes".
void DeepCheck(CommandsState& c, Request& req, Reply& reply);

// Submits a walking task for `target` (as DeepCheck's params). With
// `recurse` false only the node the target names is checked and the
// result is its single-object check JSON (`check ALIAS:path`). With
// `stream` (REQUIRES: the request waits), the walk writes its stream lines
// to a spool file, sent back in data frames before the result.
void SubmitDeepCheck(CommandsState& c, Request& req, Reply& reply, std::string target, CheckWanted wanted,
                     bool recurse, bool stream = false);

// Tahoe's deep-stats bucket of a file size (dirnode.py DeepStats.which_bucket):
// [0, 0], [1, 3], then from one past the previous bucket's top to the next
// power of sqrt(10) at or above it (mathutil.next_power_of_k, in floating
// point, truncated): [4, 10], [11, 31], [32, 100], [101, 316], ...
std::pair<std::uint64_t, std::uint64_t> SizeBucket(std::uint64_t size);

// One root of a walk: its name as shown ("" for a deep-check's target; the
// alias name in a maintenance pass) and its cap.
struct WalkRoot {
  std::string name;
  std::string cap;
  std::vector<std::string> components;  // a path below `cap` to start at (NFC names)
};

// The totals of a walk, for a maintenance pass's record (the deep-check
// JSON holds them too).
struct WalkTotals {
  std::uint64_t objects = 0;         // checked, LIT files excluded
  std::uint64_t unhealthy = 0;       // before any repair
  std::uint64_t repaired = 0;        // repairs that succeeded
  std::uint64_t unrecoverable = 0;   // after any repair
  std::uint64_t leases_renewed = 0;  // servers that renewed a lease
  std::uint64_t bytes_verified = 0;
  std::uint64_t errors = 0;  // directories that could not be read, objects whose check failed
};

// Walks every root in `roots`, in the order given, depth-first (A.9),
// each storage index once across all of them, inside the running task
// `run` (which must hold a key no object task waits on). A root's path is
// followed first (one directory read a component). With `recurse` false,
// only the first root's node is checked and the JSON is its single-object
// check JSON. `done` runs once, on a later turn, with the deep-check JSON
// and its totals, or Cancelled when the task was cancelled, NotFound when a
// path does not exist.
//
// `stream` (may be null): an open spool file the walk writes the
// stream-deep-check lines to (on the thread pool, a batch at a time), all
// written before `done` runs; "stream-bytes" in the JSON is their size.
//
// `pause` (may be empty) is asked before each object is started: while it says true,
// the walk waits (kPauseMs at a time; "paused-ms" in the JSON sums the
// waits). A maintenance pass pauses so while client tasks run.
inline constexpr std::uint64_t kPauseMs = 500;
// How many objects a walk checks at once; with --verify, fewer, as each
// verify holds four reads of about 1 MiB (docs/check.md, "Objects in
// flight"). Measured on the release build, 10 nodes, small files: 8 checked
// 2,800 to 4,100 objects/s where 4 did 1,450 to 1,700 and 16 2,900 to
// 3,900, at the same client CPU per object (0.14 to 0.19 ms: connections
// are pooled, no request opens one); --verify did 730 to 830 objects/s at
// 8, 540 to 690 at 4.
inline constexpr std::size_t kWalkInFlight = 8;
inline constexpr std::size_t kWalkVerifyInFlight = 4;
void WalkAndCheck(CheckEnv env, CheckWanted wanted, std::vector<WalkRoot> roots, bool recurse, TaskRun* run,
                  Callback<void(Result<std::pair<Json, WalkTotals>>)> done, std::function<bool()> pause = nullptr,
                  std::shared_ptr<Spool> stream = nullptr);

}  // namespace cairn::control
