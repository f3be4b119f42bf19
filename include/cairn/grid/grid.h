// Grid: the client side's connections to the storage servers of the node's
// grid, and its secrets — what every client operation (put, get, mutable
// publish and retrieve; later backups and maintenance) needs, whoever starts
// it: a control task or a daemon timer.
//
// An operation opens a Session from a snapshot of the servers table (the
// caller reads the table, under whatever lock keeps it steady), runs on the
// session's servers, and closes the session. Sessions share one pool of GBS
// clients: a client whose server is unchanged (same id, same NURL) is reused
// across sessions, so an operation reuses the kept-alive TLS connections of
// the one before it (a fresh client per operation paid a TLS handshake per
// server per operation: 44% of a 1 MiB mutable update's client CPU). A client
// whose server left the snapshot, or changed its NURL, retires, and is closed
// once no session holds it.
//
// Loop thread only (the secrets are read on the thread pool).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/limits.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"
#include "cairn/grid/identity.h"
#include "cairn/grid/secrets.h"
#include "cairn/grid/server.h"

namespace cairn::gbs {
class Client;
}
namespace cairn::platform {
class Platform;
}

namespace cairn::grid {

// One storage server as the servers table records it.
struct ServerEntry {
  std::string id;    // the server id (its NURL's SPKI hash); the pool's key
  std::string nurl;  // as stored (canonical)
  std::string name;  // its nickname, or the id: for messages and results
  // How a Tahoe-LAFS client would know it (grid/identity.h). Left empty
  // (kCairn, no seeds), it is a cairn node's: both seeds from the NURL.
  ServerIdentity identity;
};

struct GridOptions {
  std::string private_dir;            // where the node's secrets live (DIR/private)
  platform::Platform* platform = nullptr;  // reads and writes them; nullptr: the host platform
  std::uint64_t connect_ms = 5000;    // limits.grid_connect_ms
  std::uint64_t keep_idle_ms = 10000;  // limits.grid_keep_idle_ms
  static GridOptions FromLimits(const Limits& limits, std::string private_dir);
};

class Grid;

// The clients of one operation, from the pool. Closed exactly once, with
// Close; until then its clients stay open (and are not retired).
class Session {
 public:
  ~Session();
  // One entry per server of the snapshot, in its order. The clients are
  // valid until Close's `then` has run.
  const std::vector<GridServer>& servers() const { return servers_; }
  // True once the grid is closing: an operation should stop at its next step.
  bool stopping() const;
  // Gives the clients back to the pool and runs `then` on a later turn;
  // the pool then closes the retired clients no session holds. Once the
  // last session of a closing grid has closed, the grid's Close goes on.
  static void Close(std::shared_ptr<Session> session, Task then);

  struct State;

 private:
  friend class Grid;
  explicit Session(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
  std::vector<std::shared_ptr<gbs::Client>> clients_;  // shared with the pool
  std::vector<GridServer> servers_;
  bool closed_ = false;
};

class Grid {
 public:
  Grid(Loop& loop, GridOptions options);
  ~Grid();  // REQUIRES: Close() completed, or no session was ever opened (pooled clients must be closed).
  Grid(const Grid&) = delete;
  Grid& operator=(const Grid&) = delete;

  // A session on `servers`, at once (no I/O: new clients connect on their
  // first request). ShuttingDown once Close began; InvalidArgument for an
  // entry whose NURL does not parse or whose announced identity is not 20
  // bytes of tub id and a permutation seed; the TLS context's error if it cannot
  // be made. Nothing is changed in the pool unless it succeeds.
  Result<std::shared_ptr<Session>> Open(const std::vector<ServerEntry>& servers);

  // Reads (or creates) the secrets asked for on the thread pool; `done`
  // runs once on a later turn with them or the file's error.
  void ReadSecrets(bool convergence, bool lease, Callback<void(Result<NodeSecrets>)> done);
  // The secret files, for work already on the thread pool (blocking).
  const SecretFiles& secret_files() const { return secrets_; }

  // True once Close began.
  bool stopping() const;
  // Sessions open now.
  std::size_t active() const;
  // Stops: Open fails from now on and every session's stopping() is true;
  // once the last open session has closed, every pooled client is closed;
  // then `done` runs, on a later turn.
  void Close(Task done);

  Loop& loop() { return loop_; }

 private:
  Loop& loop_;
  GridOptions options_;
  SecretFiles secrets_;
  std::shared_ptr<Session::State> state_;
};

}  // namespace cairn::grid
