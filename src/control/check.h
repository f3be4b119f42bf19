// `check`: check, verify, repair and renew the leases of one file
// (docs/check.md). Loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/json.h"
#include "control/handlers.h"

namespace cairn::control {

struct CheckWanted {
  bool verify = false;
  bool repair = false;
  bool add_lease = false;
};

// What a check needs of the daemon, copied when a task is submitted (every
// pointer outlives the tasks: the task table closes first).
struct CheckEnv {
  Loop* loop;
  NameTable* servers;
  NameTable* aliases;
  TaskTable* tasks;
  grid::Grid* grid;
  std::string spool_dir;
  std::uint32_t k, n, happy;
  std::uint64_t max_body;  // limits.sdmf_max_bytes: the largest directory body read
};
CheckEnv CheckEnvOf(CommandsState& c);

// One object's check job, for a caller that holds its locks (a `check` task,
// or a deep-check for its immutable objects and, in a task holding the
// slot, its mutable ones): opens a session on `servers`, reads the lease
// secret when it renews or repairs, checks, renews, repairs, closes the
// session. `cap` may be a directory cap: its backing file is checked (C.7).
// `done` runs exactly once, on a later turn, with the single-object check
// JSON (docs/check.md), or Cancelled / the session's error.
void RunCheckJob(CheckEnv env, CheckWanted wanted, caps::Cap cap, std::vector<grid::ServerEntry> servers,
                 JobHooks hooks, Callback<void(Result<Json>)> done);

// params {"target": CAP or alias name, "verify", "repair", "add_lease": bools}.
// Runs as a task ("servers" shared, the alias shared, a mutable file's slot
// shared, or exclusive to repair it); its result is Tahoe's check JSON
// (docs/check.md), with "repair-*" and "pre/post-repair-results" when a
// repair was asked and "lease" with --add-lease.
//
// A target that is a path (ALIAS:path, URI:DIR2:.../path) is checked by the
// deep-check walker without recursion (control/deep_check.h).
void FileCheck(CommandsState& c, Request& req, Reply& reply);

}  // namespace cairn::control
