// The grid's client pool, sessions and secrets (cairn/grid/grid.h). Loop
// thread only.
#include "cairn/grid/grid.h"

#include <map>

#include "cairn/core/log.h"
#include "cairn/gbs/client.h"
#include "cairn/gbs/nurl.h"
#include "cairn/tls/session.h"

namespace cairn::grid {

namespace {
// How long a pooled client reuses a server's version answer.
constexpr std::uint64_t kVersionCacheMs = 60000;
}  // namespace

// What the grid and its sessions share; it outlives both (a session's
// close is posted, and may run after the grid's owner has let go).
struct Session::State {
  struct Pooled {
    std::string nurl;
    std::shared_ptr<gbs::Client> client;
  };
  explicit State(Loop& l) : loop(l) {}
  Loop& loop;
  std::shared_ptr<tls::Context> tls;  // for every client; made on the first Open
  std::size_t active = 0;             // sessions open
  bool stopping = false;
  Task on_idle;  // runs (posted) when `active` drops to 0 while stopping
  std::map<std::string, Pooled> pool;  // by server id
  std::vector<std::shared_ptr<gbs::Client>> retiring;

  // Closes the retiring clients no session holds any more; each is freed
  // on a later turn, never inside its own callback.
  void SweepRetiring() {
    for (auto it = retiring.begin(); it != retiring.end();) {
      if (it->use_count() > 1) {
        ++it;
        continue;
      }
      std::shared_ptr<gbs::Client> client = std::move(*it);
      it = retiring.erase(it);
      gbs::Client* raw = client.get();
      Loop* l = &loop;
      raw->Close([l, client = std::move(client)]() mutable { l->Post([client = std::move(client)] {}); });
    }
  }
};

GridOptions GridOptions::FromLimits(const Limits& limits, std::string private_dir) {
  GridOptions o;
  o.private_dir = std::move(private_dir);
  o.connect_ms = limits.grid_connect_ms;
  o.keep_idle_ms = limits.grid_keep_idle_ms;
  return o;
}

Session::~Session() = default;

bool Session::stopping() const { return state_->stopping; }

void Session::Close(std::shared_ptr<Session> session, Task then) {
  CAIRN_CHECK(session && !session->closed_, "grid::Session closed twice");
  session->closed_ = true;
  session->clients_.clear();
  session->servers_.clear();
  std::shared_ptr<State> state = session->state_;
  state->loop.Post([state, then = std::move(then)]() mutable {
    then();
    state->SweepRetiring();
    // The last session of a closing grid lets the grid's Close go on.
    if (--state->active == 0 && state->stopping && state->on_idle) state->loop.Post(std::move(state->on_idle));
  });
}

Grid::Grid(Loop& loop, GridOptions options)
    : loop_(loop), options_(std::move(options)), secrets_(options_.private_dir, options_.platform),
      state_(std::make_shared<Session::State>(loop)) {}

Grid::~Grid() = default;

bool Grid::stopping() const { return state_->stopping; }
std::size_t Grid::active() const { return state_->active; }

Result<std::shared_ptr<Session>> Grid::Open(const std::vector<ServerEntry>& servers) {
  Session::State& st = *state_;
  if (st.stopping) return Status::ShuttingDown("the daemon is stopping");
  if (!st.tls) {
    CAIRN_TRY_ASSIGN(st.tls, tls::Context::NewClient());
  }
  // Everything that can fail first, before the pool is touched.
  struct Parsed {
    gbs::Nurl nurl;
    ServerIdentity identity;
  };
  std::vector<Parsed> parsed;
  for (const ServerEntry& e : servers) {
    CAIRN_TRY_ASSIGN(gbs::Nurl nurl, gbs::ParseNurl(e.nurl));
    ServerIdentity identity = e.identity;
    if (identity.kind == IdentityKind::kCairn) {
      CAIRN_TRY_ASSIGN(identity, CairnIdentity(e.nurl));
    } else if (identity.tub_id.size() != 20 || identity.permutation_seed.empty()) {
      return Status::InvalidArgument("server " + e.name +
                                     " has an announced identity without a 20-byte tub id and a permutation seed");
    }
    parsed.push_back(Parsed{std::move(nurl), std::move(identity)});
  }
  auto session = std::shared_ptr<Session>(new Session(state_));
  std::map<std::string, Session::State::Pooled> kept;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    const ServerEntry& e = servers[i];
    auto pooled = st.pool.find(e.id);
    if (pooled != st.pool.end() && pooled->second.nurl == e.nurl) {
      kept[e.id] = std::move(pooled->second);
      st.pool.erase(pooled);
    } else if (kept.count(e.id) == 0) {
      gbs::ClientOptions options;
      options.connect_ms = options_.connect_ms;
      // Below the servers' usual idle timeouts, so that a kept connection is
      // rarely closed by the server just as a request goes out on it.
      options.keep_idle_ms = options_.keep_idle_ms;
      // Every connection a burst opened stays for the next one: with fewer
      // kept than may be open, concurrent operations (a backup's uploads)
      // closed and re-handshook connections all the time.
      options.max_idle = options.max_connections;
      // A server's version (its room) is asked once a minute, not once per
      // upload: at 3-of-10 it was a tenth of a small file's requests.
      options.version_cache_ms = kVersionCacheMs;
      kept[e.id] = Session::State::Pooled{e.nurl, std::make_shared<gbs::Client>(loop_, st.tls, parsed[i].nurl,
                                                                                std::move(options))};
    }
    session->clients_.push_back(kept[e.id].client);
    session->servers_.push_back(
        GridServer{kept[e.id].client.get(), parsed[i].identity.permutation_seed, parsed[i].identity.tub_id, e.name});
  }
  // What is left in the pool is no longer in the snapshot (or has a new NURL).
  for (auto& [id, old] : st.pool) st.retiring.push_back(std::move(old.client));
  st.pool = std::move(kept);
  st.SweepRetiring();
  ++st.active;
  return session;
}

void Grid::ReadSecrets(bool convergence, bool lease, Callback<void(Result<NodeSecrets>)> done) {
  auto out = std::make_shared<NodeSecrets>();
  SecretFiles files = secrets_;
  loop_.Offload(
      [files, out, convergence, lease]() -> Status {
        CAIRN_TRY_ASSIGN(*out, files.Read(convergence, lease));
        return Status();
      },
      [out, done = std::move(done)](Status read) mutable {
        if (!read.ok()) return done(read);
        done(std::move(*out));
      });
}

void Grid::Close(Task done) {
  std::shared_ptr<Session::State> state = state_;
  state->stopping = true;
  auto close_pool = [state, done = std::move(done)]() mutable {
    for (auto& [id, pooled] : state->pool) state->retiring.push_back(std::move(pooled.client));
    state->pool.clear();
    auto remaining = std::make_shared<std::size_t>(state->retiring.size());
    auto finish = std::make_shared<Task>(std::move(done));
    Loop* loop = &state->loop;
    if (*remaining == 0) return loop->Post([finish] { (*finish)(); });
    for (auto& client : state->retiring) {
      gbs::Client* raw = client.get();
      raw->Close([loop, remaining, finish, client = std::move(client)]() mutable {
        // Freed on a later turn, never inside its own callback.
        loop->Post([client = std::move(client)] {});
        if (--*remaining == 0) loop->Post([finish] { (*finish)(); });
      });
    }
    state->retiring.clear();
  };
  if (state->active == 0) return close_pool();
  state->on_idle = std::move(close_pool);
}

}  // namespace cairn::grid
