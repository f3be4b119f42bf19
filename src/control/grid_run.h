// What every grid task (put, get, mutable.*) shares: its GBS clients, opened
// after the task's "servers" lock is held and closed before it ends, and the
// node's secrets. Defined in files.cc. Loop thread only.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "cairn/gbs/client.h"
#include "cairn/grid/server.h"
#include "control/handlers.h"

namespace cairn::control {

// What one grid task owns while it runs.
struct GridRun {
  std::shared_ptr<GridOps> ops;  // counted in ops->active while this runs
  std::vector<std::unique_ptr<gbs::Client>> clients;
  std::vector<grid::GridServer> servers;
  std::string convergence;
  std::string lease_secret;
};

// Reads a base32 secret file, or creates it with 32 random bytes (0600,
// exclusive create). Blocking: thread pool only.
Result<std::string> LoadOrCreateSecret(const std::string& path);

// The start of a grid task: one client per server of the servers table,
// counted in `ops`. Null once `run` has been failed (the daemon is
// stopping, or the table could not be read).
std::shared_ptr<GridRun> StartGrid(Loop& loop, NameTable& servers, const std::shared_ptr<tls::Context>& ctx,
                                   const std::shared_ptr<GridOps>& ops, TaskRun& run);

// Closes every client, then runs `then` (which ends the task) on a later
// turn.
void CloseGrid(Loop* loop, std::shared_ptr<GridRun> run, Task then);

// The GBS clients' TLS context, made on first use.
Result<std::shared_ptr<tls::Context>> ClientContext(CommandsState& c);

}  // namespace cairn::control
