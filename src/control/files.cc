// put / get: immutable files on the node's grid (docs/put-get.md). Each runs
// as a task holding the "servers" lock shared (the grid does not change under
// it), reads the grid from the servers table after the lock is held, opens
// one GBS client per server for the task, and closes them all before the
// task ends. The node's secrets (DIR/private/convergence and
// DIR/private/secret, 32 random bytes in Tahoe base32 each) are read, or
// created on first use, on the thread pool. Loop thread only.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/core/base32.h"
#include "cairn/crypto/base64.h"
#include "cairn/crypto/random.h"
#include "cairn/gbs/client.h"
#include "cairn/gbs/nurl.h"
#include "cairn/immutable/downloader.h"
#include "cairn/immutable/uploader.h"
#include "cairn/tls/session.h"
#include "cairn/control/protocol.h"
#include "control/grid_run.h"
#include "control/handlers.h"

namespace cairn::control {
namespace {
constexpr const char* kServersKey = "servers";
}  // namespace

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

namespace {
// Closes the retiring clients no task holds any more; each is freed on a
// later turn, never inside its own callback.
void SweepRetiring(Loop& loop, GridOps& ops) {
  auto& retiring = ops.retiring;
  for (auto it = retiring.begin(); it != retiring.end();) {
    if (it->use_count() > 1) {
      ++it;
      continue;
    }
    std::shared_ptr<gbs::Client> client = std::move(*it);
    it = retiring.erase(it);
    gbs::Client* raw = client.get();
    raw->Close([&loop, client = std::move(client)]() mutable { loop.Post([client = std::move(client)] {}); });
  }
}

// The servers table's entries as clients, from the pool where the server's
// NURL is unchanged. InvalidArgument for a stored NURL that no longer parses
// (never expected: it was checked when added).
Status OpenGrid(Loop& loop, NameTable& servers, std::shared_ptr<tls::Context> ctx, GridRun* run) {
  GridOps& ops = *run->ops;
  struct Entry {
    std::string id, nurl_text, seed, name;
    gbs::Nurl nurl;
  };
  // Everything that can fail first, before the pool is touched.
  std::vector<Entry> entries;
  CAIRN_TRY_ASSIGN(auto all, servers.List());
  for (const auto& [id, text] : all) {
    CAIRN_TRY_ASSIGN(Json record, Json::Parse(text));
    const cJSON* nurl_text = cJSON_GetObjectItemCaseSensitive(record.get(), "nurl");
    const cJSON* nickname = cJSON_GetObjectItemCaseSensitive(record.get(), "nickname");
    if (!cJSON_IsString(nurl_text)) return Status::Internal("server " + id + " has no NURL");
    CAIRN_TRY_ASSIGN(gbs::Nurl nurl, gbs::ParseNurl(nurl_text->valuestring));
    CAIRN_TRY_ASSIGN(std::string seed, gbs::ServerSeed(nurl));
    entries.push_back(Entry{id, nurl_text->valuestring, std::move(seed),
                            cJSON_IsString(nickname) ? nickname->valuestring : id, std::move(nurl)});
  }
  std::map<std::string, GridOps::Pooled> kept;
  for (Entry& e : entries) {
    auto pooled = ops.pool.find(e.id);
    if (pooled != ops.pool.end() && pooled->second.nurl == e.nurl_text) {
      kept[e.id] = std::move(pooled->second);
      ops.pool.erase(pooled);
    } else {
      gbs::ClientOptions options;
      options.connect_ms = 5000;
      // Below the servers' usual idle timeouts, so that a kept connection is
      // rarely closed by the server just as a request goes out on it.
      options.keep_idle_ms = 10000;
      kept[e.id] = GridOps::Pooled{e.nurl_text, std::make_shared<gbs::Client>(loop, ctx, e.nurl, std::move(options))};
    }
    run->clients.push_back(kept[e.id].client);
    run->servers.push_back(grid::GridServer{kept[e.id].client.get(), e.seed, e.name});
  }
  // What is left in the pool is no longer in the table (or has a new NURL).
  for (auto& [id, old] : ops.pool) ops.retiring.push_back(std::move(old.client));
  ops.pool = std::move(kept);
  SweepRetiring(loop, ops);
  return Status();
}
}  // namespace

// Gives the clients back to the pool, then runs `then` (which ends the task)
// on a later turn.
void CloseGrid(Loop* loop, std::shared_ptr<GridRun> run, Task then) {
  run->clients.clear();
  run->servers.clear();
  loop->Post([loop, run, then = std::move(then)]() mutable {
    then();
    GridOps& ops = *run->ops;
    SweepRetiring(*loop, ops);
    // The last grid task of a stopping daemon lets the task table close.
    if (--ops.active == 0 && ops.stopping && ops.on_idle) loop->Post(std::move(ops.on_idle));
  });
}

void ClosePool(Loop* loop, GridOps& ops, Task done) {
  for (auto& [id, pooled] : ops.pool) ops.retiring.push_back(std::move(pooled.client));
  ops.pool.clear();
  auto remaining = std::make_shared<std::size_t>(ops.retiring.size());
  auto finish = std::make_shared<Task>(std::move(done));
  if (*remaining == 0) return loop->Post([finish] { (*finish)(); });
  for (auto& client : ops.retiring) {
    gbs::Client* raw = client.get();
    raw->Close([loop, remaining, finish, client = std::move(client)]() mutable {
      // Freed on a later turn, never inside its own callback.
      loop->Post([client = std::move(client)] {});
      if (--*remaining == 0) loop->Post([finish] { (*finish)(); });
    });
  }
  ops.retiring.clear();
}

// The start of every put and get task: its clients, counted in `ops`. Null
// once `run` has been failed (the daemon is stopping, or the grid's table
// could not be read).
std::shared_ptr<GridRun> StartGrid(Loop& loop, NameTable& servers, const std::shared_ptr<tls::Context>& ctx,
                                   const std::shared_ptr<GridOps>& ops, TaskRun& run) {
  if (ops->stopping) {
    run.Fail(Status::ShuttingDown("the daemon is stopping"));
    return nullptr;
  }
  auto grid = std::make_shared<GridRun>();
  grid->ops = ops;
  ++ops->active;
  Status opened = OpenGrid(loop, servers, ctx, grid.get());
  if (!opened.ok()) {
    TaskRun* runp = &run;
    CloseGrid(&loop, grid, [runp, opened] { runp->Fail(opened); });
    return nullptr;
  }
  return grid;
}

Result<std::shared_ptr<tls::Context>> ClientContext(CommandsState& c) {
  if (!c.client_tls) {
    CAIRN_TRY_ASSIGN(c.client_tls, tls::Context::NewClient());
  }
  return c.client_tls;
}

namespace {

// A daemon-owned temporary file in the spool directory: a put's input as it
// arrives, a get's output before it is sent back. Closed and removed when
// the last holder lets go, on the loop thread: an unlink is one short
// system call (the destructor may run during shutdown, after the loop has
// stopped taking thread-pool work). What a crash leaves is removed at the
// next start (OpenSpool).
struct Spool {
  std::string path;
  int fd = -1;
  ~Spool() {
    if (fd >= 0) ::close(fd);
    if (!path.empty()) ::unlink(path.c_str());
  }
};

// Creates a spool file `prefix`-XXXXXX (thread pool only).
Status CreateSpool(const std::string& dir, const char* prefix, Spool* spool) {
  std::string tmpl = dir + "/" + prefix + "-XXXXXX";
  int fd = ::mkstemp(tmpl.data());
  if (fd < 0) return Status::IoError("cannot create a file in " + dir + ": " + std::strerror(errno));
  spool->fd = fd;
  spool->path = tmpl;
  return Status();
}

Status WriteAll(int fd, const std::string& data, std::uint64_t offset, const std::string& path) {
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      if (errno == ENOSPC || errno == EDQUOT) return Status::NoSpace("spooling to " + path + ": no space left");
      return Status::IoError("spooling to " + path + ": " + std::strerror(errno));
    }
    done += static_cast<std::size_t>(n);
  }
  return Status();
}

// A put's input as learnt while it arrives (see FilePut).
struct PutInput {
  std::string convergence;  // raw; empty until known
  std::string key;          // the convergent key of `size` bytes, or empty
  std::uint64_t size = 0;
};

// A get's answer after its task: the spooled file in data frames, then the
// final frame. Chunks are read on the thread pool and sent only once the
// client has taken all but one.
constexpr std::size_t kSendChunk = 256 << 10;  // within every board's control_chunk_bytes

struct SendBack {
  Loop* loop;
  std::shared_ptr<Reply> reply;
  std::shared_ptr<Spool> spool;
  Json result;
  std::uint64_t size = 0, sent = 0;
  std::string chunk;

  static void Next(std::shared_ptr<SendBack> self) {
    if (!self->reply->connected()) return self->reply->Error(Status::Unavailable("the client left"));
    if (self->sent == self->size && self->sent > 0) return self->reply->Result(std::move(self->result));
    self->loop->Offload(
        [self]() -> Status {
          std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kSendChunk, self->size - self->sent));
          self->chunk.assign(n, '\0');
          std::size_t got = 0;
          while (got < n) {
            ssize_t r = ::pread(self->spool->fd, self->chunk.data() + got, n - got,
                                static_cast<off_t>(self->sent + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return Status::IoError("reading back " + self->spool->path);
            got += static_cast<std::size_t>(r);
          }
          return Status();
        },
        [self](Status read) {
          if (!read.ok()) return self->reply->Error(read);
          self->sent += self->chunk.size();
          bool eof = self->sent == self->size;
          self->reply->Data(std::move(self->chunk), eof);
          self->chunk.clear();
          if (eof) return self->reply->Result(std::move(self->result));
          self->reply->WhenWritable([self] { Next(self); });
        });
  }
};


}  // namespace

Status OpenSpool(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::IoError("cannot create " + dir + ": " + std::strerror(errno));
  }
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::IoError("cannot read " + dir + ": " + std::strerror(errno));
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("put-", 0) == 0 || name.rfind("get-", 0) == 0) ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
  return Status();
}

void FilePut(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string convergence_b64;
  std::uint64_t size = 0;
  bool size_given = cJSON_GetObjectItemCaseSensitive(req.params.get(), "size") != nullptr;
  Status st = r->Uint("size", &size);
  if (st.ok()) st = r->String("convergence", &convergence_b64);
  if (st.ok()) st = r->Finish();
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
  auto spool = std::make_shared<Spool>();
  // What the input's arrival learns for the task: the convergence secret
  // and the input's convergent key, hashed as the data frames are spooled
  // (the upload then makes no first pass over the spool: one read of the
  // file less, and the hashing overlaps the transfer). Not for an input
  // without announced size that turns out shorter than one segment.
  auto input = std::make_shared<PutInput>();
  input->convergence = convergence;
  // The task reads the spool; it holds it (and so the file) until it ends.
  spec.body = [servers, loop, ops, ctx = *ctx, private_dir, spool, input, options](TaskRun& run) mutable {
    TaskRun* runp = &run;
    const std::string& path = spool->path;
    auto grid = StartGrid(*loop, *servers, ctx, ops, run);
    if (!grid) return;
    grid->convergence = input->convergence;
    options.convergent_key = input->key;
    options.prehashed_size = input->size;
    loop->Offload(
        [grid, private_dir]() -> Status {
          if (grid->convergence.empty()) {
            CAIRN_TRY_ASSIGN(grid->convergence, LoadOrCreateSecret(private_dir + "/convergence"));
          }
          CAIRN_TRY_ASSIGN(grid->lease_secret, LoadOrCreateSecret(private_dir + "/secret"));
          return Status();
        },
        [loop, grid, runp, ops, path, spool, options](Status secrets) mutable {
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
  // Receive the input (data frames) into the spool, then submit the task.
  // Nothing here touches `c` later: it is this call's own.
  struct Receive {
    Loop* loop;
    std::shared_ptr<GridOps> ops;
    TaskTable* tasks;
    bool wait;
    Reply reply;
    InputStream input;
    std::shared_ptr<Spool> spool;
    std::string spool_dir;
    bool size_given;
    std::uint64_t size, received = 0;
    TaskSpec spec;
    std::shared_ptr<PutInput> learnt;
    std::string private_dir;
    immutable::ChkParams params;
    // Fed on the pool, one frame at a time (the next frame is read only once
    // the previous one is written and hashed).
    std::optional<caps::ConvergentKeyHasher> hasher;

    static void Fail(const std::shared_ptr<Receive>& self, Status st) { self->reply.Error(st); }
    std::optional<std::uint64_t> announced() const { return size_given ? std::optional(size) : std::nullopt; }
    static void Read(std::shared_ptr<Receive> self) {
      if (self->ops->stopping) return Fail(self, Status::ShuttingDown("the daemon is stopping"));
      self->input.Read([self](Result<InputChunk> chunk) {
        if (self->ops->stopping) return Fail(self, Status::ShuttingDown("the daemon is stopping"));
        if (!chunk.ok()) return Fail(self, chunk.status());
        std::uint64_t offset = self->received;
        self->received += chunk->data.size();
        Status sized = CheckAnnouncedSize(self->announced(), self->received, false);
        if (!sized.ok()) return Fail(self, sized);
        bool eof = chunk->eof;
        auto data = std::make_shared<std::string>(std::move(chunk->data));
        self->loop->Offload(
            [self, data, offset]() -> Status {
              CAIRN_TRY(WriteAll(self->spool->fd, *data, offset, self->spool->path));
              if (self->hasher) self->hasher->Update(*data);
              return Status();
            },
            [self, eof](Status written) {
              if (self->ops->stopping) return Fail(self, Status::ShuttingDown("the daemon is stopping"));
              if (!written.ok()) return Fail(self, written);
              if (!eof) return Read(self);
              Status whole = CheckAnnouncedSize(self->announced(), self->received, true);
              if (!whole.ok()) return Fail(self, whole);
              // An unsized input was hashed on the guess that it fills a
              // whole segment (the key covers the segment size); one whose
              // segment size turns out otherwise is hashed again by the upload.
              const immutable::ChkParams& p = self->params;
              if (self->hasher &&
                  (self->size_given || caps::ChkSegmentSize(self->received, p.max_segment_size, p.k) ==
                                           caps::ChkSegmentSize(p.max_segment_size, p.max_segment_size, p.k))) {
                self->learnt->key = self->hasher->Finish();
                self->learnt->size = self->received;
              }
              self->hasher.reset();
              RunTaskOn(*self->tasks, self->wait, std::move(self->reply), std::move(self->spec));
            });
      });
    }
  };
  auto rx = std::make_shared<Receive>(Receive{loop, ops, &c.tasks, req.wait, std::move(reply), std::move(req.input),
                                              spool, c.options.spool_dir, size_given, size, 0, std::move(spec), input,
                                              private_dir, options.params, std::nullopt});
  loop->Offload(
      [rx]() -> Status {
        CAIRN_TRY(CreateSpool(rx->spool_dir, "put", rx->spool.get()));
        // A LIT-sized input is not hashed. The segment size (part of the
        // key) of an unsized one is guessed: a whole segment, as for any
        // input of at least max_segment_size bytes.
        if (rx->size_given && rx->size <= caps::kLiteralMaxSize) return Status();
        PutInput& in = *rx->learnt;
        if (in.convergence.empty()) {
          CAIRN_TRY_ASSIGN(in.convergence, LoadOrCreateSecret(rx->private_dir + "/convergence"));
        }
        const immutable::ChkParams& p = rx->params;
        const std::uint64_t size_for_key = rx->size_given ? rx->size : p.max_segment_size;
        rx->hasher.emplace(in.convergence, p.k, p.n, caps::ChkSegmentSize(size_for_key, p.max_segment_size, p.k));
        return Status();
      },
                [rx](Status created) {
                  if (!created.ok()) return Receive::Fail(rx, created);
                  Receive::Read(rx);
                });
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
  std::string cap_text;
  Status st = StringParams(req, {{"cap", &cap_text}});
  if (st.ok() && !req.wait) {
    st = Status::InvalidArgument("get sends the file back on this connection: it cannot answer before it ends");
  }
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
  auto spool = std::make_shared<Spool>();
  spec.body = [servers, aliases, loop, ops, ctx = *ctx, given, alias = by_alias ? cap_text : "", spool](TaskRun& run) {
    const std::string& path = spool->path;
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
    auto grid = StartGrid(*loop, *servers, ctx, ops, run);
    if (!grid) return;
    immutable::DownloadFile(
        *loop, grid->servers, cap, path,
        [runp](const std::string& phase, std::uint64_t done, std::uint64_t total) {
          runp->Progress(phase, done, total);
        },
        [runp, ops] { return ops->stopping || runp->cancel_requested(); },
        [loop, grid, runp, spool](Result<immutable::DownloadResult> down) {
          if (!down.ok()) {
            Status error = down.status();
            return CloseGrid(loop, grid, [runp, error] { runp->Fail(error); });
          }
          Json out = Json::NewObject();
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
  // The spool first; then the task (which fills it); then the file goes
  // back in data frames and the task's result is the final frame.
  TaskTable* tasks = &c.tasks;
  auto shared = std::make_shared<Reply>(std::move(reply));
  auto pending = std::make_shared<TaskSpec>(std::move(spec));
  std::string spool_dir = c.options.spool_dir;
  loop->Offload([spool, spool_dir]() -> Status { return CreateSpool(spool_dir, "get", spool.get()); },
                [loop, ops, tasks, shared, pending, spool](Status created) {
                  if (!created.ok()) return shared->Error(created);
                  if (ops->stopping) return shared->Error(Status::ShuttingDown("the daemon is stopping"));
                  tasks->Submit(std::move(*pending), [loop, tasks, shared, spool](Result<TaskId> id) {
                    if (!id.ok()) return shared->Error(id.status());
                    TaskId task = *id;
                    tasks->WatchProgress(task, [shared](Json event) { shared->Progress(std::move(event)); });
                    tasks->Wait(task, [loop, task, shared, spool](Result<Json> record) {
                      if (!record.ok()) return shared->Error(record.status());
                      const cJSON* o = record->get();
                      const cJSON* error = cJSON_GetObjectItemCaseSensitive(o, "error");
                      if (error) return shared->Error(ErrorFromJson(error).WithContext("task " + std::to_string(task)));
                      const cJSON* result = cJSON_GetObjectItemCaseSensitive(o, "result");
                      auto back = std::make_shared<SendBack>();
                      back->loop = loop;
                      back->reply = shared;
                      back->spool = spool;
                      back->result = Json(result ? cJSON_Duplicate(result, true) : cJSON_CreateObject());
                      cJSON_AddNumberToObject(back->result.get(), "task", static_cast<double>(task));
                      const cJSON* size = cJSON_GetObjectItemCaseSensitive(back->result.get(), "size");
                      back->size = cJSON_IsNumber(size) ? static_cast<std::uint64_t>(size->valuedouble) : 0;
                      SendBack::Next(back);
                    });
                  });
                });
}

}  // namespace cairn::control
