// put / get: immutable files on the node's grid (docs/put-get.md). Each runs
// as a task holding the "servers" lock shared (the grid does not change under
// it), reads the grid from the servers table after the lock is held, opens
// one GBS client per server for the task, and closes them all before the
// task ends. The node's secrets (DIR/private/convergence and
// DIR/private/secret, 32 random bytes in Tahoe base32 each) are read, or
// created on first use, on the thread pool. Loop thread only.
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "cairn/caps/cap.h"
#include "cairn/core/base32.h"
#include "cairn/crypto/base64.h"
#include "cairn/crypto/random.h"
#include "cairn/gbs/client.h"
#include "cairn/gbs/nurl.h"
#include "cairn/immutable/downloader.h"
#include "cairn/immutable/uploader.h"
#include "cairn/tls/session.h"
#include "control/handlers.h"

namespace cairn::control {
namespace {

constexpr const char* kServersKey = "servers";

// Reads a base32 secret file, or creates it with 32 random bytes (0600,
// exclusive create: two first uses agree on one secret). Blocking: thread
// pool only.
Result<std::string> LoadOrCreateSecret(const std::string& path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[256];
      ssize_t n = ::read(fd, buf, sizeof buf);
      ::close(fd);
      if (n < 0) return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
      std::string text(buf, static_cast<std::size_t>(n));
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
      auto raw = Base32Decode(text);
      if (!raw.ok() || raw->empty()) return Status::InvalidArgument(path + " does not hold a base32 secret");
      return *raw;
    }
    if (errno != ENOENT) return Status::IoError("cannot open " + path + ": " + std::strerror(errno));
    CAIRN_TRY_ASSIGN(std::string raw, crypto::RandomBytes(32));
    std::string text = Base32Encode(raw) + "\n";
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) continue;  // another task created it first: read theirs
    if (fd < 0) return Status::IoError("cannot create " + path + ": " + std::strerror(errno));
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      ::unlink(path.c_str());
      return Status::IoError("cannot write " + path);
    }
    return raw;
  }
  return Status::Internal("secret file " + path + " appeared and vanished");
}

// What one put or get owns while it runs.
struct GridRun {
  std::shared_ptr<GridOps> ops;  // counted in ops->active while this runs
  std::vector<std::unique_ptr<gbs::Client>> clients;
  std::vector<immutable::GridServer> servers;
  std::string convergence;
  std::string lease_secret;
};

// The servers table's entries as clients. InvalidArgument for a stored NURL
// that no longer parses (never expected: it was checked when added).
Status OpenGrid(Loop& loop, NameTable& servers, std::shared_ptr<tls::Context> ctx, GridRun* run) {
  CAIRN_TRY_ASSIGN(auto all, servers.List());
  for (const auto& [id, text] : all) {
    CAIRN_TRY_ASSIGN(Json record, Json::Parse(text));
    const cJSON* nurl_text = cJSON_GetObjectItemCaseSensitive(record.get(), "nurl");
    const cJSON* nickname = cJSON_GetObjectItemCaseSensitive(record.get(), "nickname");
    if (!cJSON_IsString(nurl_text)) return Status::Internal("server " + id + " has no NURL");
    CAIRN_TRY_ASSIGN(gbs::Nurl nurl, gbs::ParseNurl(nurl_text->valuestring));
    CAIRN_TRY_ASSIGN(std::string seed, gbs::ServerSeed(nurl));
    gbs::ClientOptions options;
    options.connect_ms = 5000;
    run->clients.push_back(std::make_unique<gbs::Client>(loop, ctx, nurl, std::move(options)));
    run->servers.push_back(
        immutable::GridServer{run->clients.back().get(), seed, cJSON_IsString(nickname) ? nickname->valuestring : id});
  }
  return Status();
}

// Closes every client, then runs `then` (which ends the task) on a later
// turn; the clients are freed with that task, never inside their own
// callbacks.
void CloseGrid(Loop* loop, std::shared_ptr<GridRun> run, Task then) {
  auto remaining = std::make_shared<std::size_t>(run->clients.size());
  auto finish = std::make_shared<Task>([loop, run, then = std::move(then)]() mutable {
    then();
    // The last put or get of a stopping daemon lets the task table close.
    GridOps& ops = *run->ops;
    if (--ops.active == 0 && ops.stopping && ops.on_idle) loop->Post(std::move(ops.on_idle));
  });
  if (*remaining == 0) return loop->Post([finish] { (*finish)(); });
  for (auto& client : run->clients) {
    client->Close([loop, remaining, finish] {
      if (--*remaining == 0) loop->Post([finish] { (*finish)(); });
    });
  }
}

Result<std::shared_ptr<tls::Context>> ClientContext(CommandsState& c) {
  if (!c.client_tls) {
    CAIRN_TRY_ASSIGN(c.client_tls, tls::Context::NewClient());
  }
  return c.client_tls;
}

bool IsAbsolute(const std::string& path) { return !path.empty() && path[0] == '/'; }

}  // namespace

void FilePut(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string path, convergence_b64;
  Status st = r->String("path", &path, true);
  if (st.ok()) st = r->String("convergence", &convergence_b64);
  if (st.ok()) st = r->Finish();
  if (st.ok() && !IsAbsolute(path)) st = Status::InvalidArgument("params.path must be an absolute path");
  std::string convergence;
  if (st.ok() && !convergence_b64.empty()) {
    auto decoded = crypto::Base64Decode(convergence_b64);
    if (!decoded.ok())
      st = Status::InvalidArgument("params.convergence must be base64");
    else
      convergence = *decoded;
  }
  auto ctx = ClientContext(c);
  if (st.ok() && !ctx.ok()) st = ctx.status();
  if (!st.ok()) return reply.Error(st);
  TaskSpec spec = NewTaskSpec("put", req, {LockKey{kServersKey, LockMode::kShared}});
  NameTable* servers = &c.servers;
  Loop* loop = &c.loop;
  std::string private_dir = c.options.private_dir;
  immutable::UploadOptions options;
  options.params.k = c.options.shares_needed;
  options.params.n = c.options.shares_total;
  options.params.max_segment_size = c.options.max_segment_size;
  options.happy = c.options.shares_happy;
  // The grid is read when the task runs (after the lock), not now: the
  // CommandsState outlives every task (the table closes first).
  std::shared_ptr<GridOps> ops = c.grid_ops;
  spec.body = [servers, loop, ops, ctx = *ctx, private_dir, path, convergence, options](TaskRun& run) mutable {
    TaskRun* runp = &run;
    if (ops->stopping) return run.Fail(Status::ShuttingDown("the daemon is stopping"));
    auto grid = std::make_shared<GridRun>();
    grid->ops = ops;
    ++ops->active;
    Status opened = OpenGrid(*loop, *servers, ctx, grid.get());
    if (!opened.ok()) return CloseGrid(loop, grid, [runp, opened] { runp->Fail(opened); });
    grid->convergence = convergence;
    loop->Offload(
        [grid, private_dir]() -> Status {
          if (grid->convergence.empty()) {
            CAIRN_TRY_ASSIGN(grid->convergence, LoadOrCreateSecret(private_dir + "/convergence"));
          }
          CAIRN_TRY_ASSIGN(grid->lease_secret, LoadOrCreateSecret(private_dir + "/secret"));
          return Status();
        },
        [loop, grid, runp, ops, path, options](Status secrets) mutable {
          if (!secrets.ok()) return CloseGrid(loop, grid, [runp, secrets] { runp->Fail(secrets); });
          options.convergence = grid->convergence;
          options.lease_secret = grid->lease_secret;
          immutable::UploadFile(
              *loop, grid->servers, path, std::move(options),
              [runp](const std::string& phase, std::uint64_t done, std::uint64_t total) {
                runp->Progress(phase, done, total);
              },
              [runp, ops] { return ops->stopping || runp->cancel_requested(); },
              [loop, grid, runp](Result<immutable::UploadResult> up) {
                if (!up.ok()) {
                  Status error = up.status();
                  return CloseGrid(loop, grid, [runp, error] { runp->Fail(error); });
                }
                Json out = Json::NewObject();
                cJSON_AddStringToObject(out.get(), "cap", caps::FormatCap(up->cap).c_str());
                cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(up->size));
                cJSON_AddNumberToObject(out.get(), "happiness", static_cast<double>(up->happiness));
                cJSON_AddNumberToObject(out.get(), "shares_uploaded", static_cast<double>(up->shares_uploaded));
                cJSON_AddNumberToObject(out.get(), "shares_reused", static_cast<double>(up->shares_reused));
                cJSON_AddNumberToObject(out.get(), "max_segments_in_flight",
                                        static_cast<double>(up->max_segments_in_flight));
                cJSON* placement = cJSON_AddObjectToObject(out.get(), "placement");
                for (const auto& [sh, names] : up->placement) {
                  cJSON* list = cJSON_AddArrayToObject(placement, std::to_string(sh).c_str());
                  for (const std::string& n : names) cJSON_AddItemToArray(list, cJSON_CreateString(n.c_str()));
                }
                auto result = std::make_shared<Json>(std::move(out));
                CloseGrid(loop, grid, [runp, result] { runp->Succeed(std::move(*result)); });
              });
        });
  };
  RunTask(c, req, reply, std::move(spec));
}

// The immutable read cap in `text`, or why it is not one.
static Result<caps::Cap> ImmutableReadCap(const std::string& text) {
  auto cap = caps::ParseCap(text);
  if (!cap.ok()) return cap.status();
  if (cap->kind != caps::CapKind::kLiteral && cap->kind != caps::CapKind::kChk) {
    return Status::BadCap("get takes an immutable read cap (URI:CHK: or URI:LIT:)");
  }
  return cap;
}

void FileGet(CommandsState& c, Request& req, Reply& reply) {
  std::string cap_text, path;
  Status st = StringParams(req, {{"cap", &cap_text}, {"path", &path}});
  if (st.ok() && !IsAbsolute(path)) st = Status::InvalidArgument("params.path must be an absolute path");
  // A cap, or an alias: the alias is read after its lock is held (it may be
  // renamed or removed until then), and stays held while the file is read.
  const bool by_alias = st.ok() && cap_text.rfind("URI:", 0) != 0;
  std::optional<caps::Cap> given;
  if (st.ok() && by_alias) {
    st = NameTable::CheckName(cap_text);
    if (!st.ok()) st = Status::BadCap("\"" + cap_text + "\" is neither a cap nor an alias name");
  } else if (st.ok()) {
    auto cap = ImmutableReadCap(cap_text);
    if (cap.ok()) given = *cap;
    st = cap.status();
  }
  auto ctx = ClientContext(c);
  if (st.ok() && !ctx.ok()) st = ctx.status();
  if (!st.ok()) return reply.Error(st);
  std::vector<LockKey> keys{LockKey{kServersKey, LockMode::kShared}};
  if (by_alias) keys.push_back(LockKey{"alias/" + cap_text, LockMode::kShared});
  TaskSpec spec = NewTaskSpec("get", req, std::move(keys));
  NameTable* servers = &c.servers;
  NameTable* aliases = &c.aliases;
  Loop* loop = &c.loop;
  std::shared_ptr<GridOps> ops = c.grid_ops;
  spec.body = [servers, aliases, loop, ops, ctx = *ctx, given, alias = by_alias ? cap_text : "", path](TaskRun& run) {
    caps::Cap cap;
    if (given) {
      cap = *given;
    } else {
      auto text = aliases->Get(alias);
      if (!text.ok()) return run.Fail(text.status());
      auto parsed = ImmutableReadCap(*text);
      if (!parsed.ok()) return run.Fail(Status(parsed.status().code(), "alias \"" + alias + "\": " +
                                                                         std::string(parsed.status().message())));
      cap = *parsed;
    }
    TaskRun* runp = &run;
    if (ops->stopping) return run.Fail(Status::ShuttingDown("the daemon is stopping"));
    auto grid = std::make_shared<GridRun>();
    grid->ops = ops;
    ++ops->active;
    Status opened = OpenGrid(*loop, *servers, ctx, grid.get());
    if (!opened.ok()) return CloseGrid(loop, grid, [runp, opened] { runp->Fail(opened); });
    immutable::DownloadFile(
        *loop, grid->servers, cap, path,
        [runp](const std::string& phase, std::uint64_t done, std::uint64_t total) {
          runp->Progress(phase, done, total);
        },
        [runp, ops] { return ops->stopping || runp->cancel_requested(); },
        [loop, grid, runp, path](Result<immutable::DownloadResult> down) {
          if (!down.ok()) {
            Status error = down.status();
            return CloseGrid(loop, grid, [runp, error] { runp->Fail(error); });
          }
          Json out = Json::NewObject();
          cJSON_AddStringToObject(out.get(), "path", path.c_str());
          cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(down->size));
          cJSON_AddNumberToObject(out.get(), "corrupt_shares", static_cast<double>(down->corrupt_shares));
          cJSON* used = cJSON_AddObjectToObject(out.get(), "shares_used");
          for (const auto& [sh, name] : down->shares_used) {
            cJSON_AddStringToObject(used, std::to_string(sh).c_str(), name.c_str());
          }
          auto result = std::make_shared<Json>(std::move(out));
          CloseGrid(loop, grid, [runp, result] { runp->Succeed(std::move(*result)); });
        });
  };
  RunTask(c, req, reply, std::move(spec));
}

}  // namespace cairn::control
