// The directory methods (see dirs.h and docs/dirs.md): path resolution,
// directory reads, the read-modify-write loop with its retries, and the
// thin handlers that chain a resolving task and a changing task.
// Loop thread only.
#include "control/dirs.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <tuple>

#include "cairn/caps/cap.h"
#include "cairn/core/base32.h"
#include "cairn/core/clock.h"
#include "cairn/core/file.h"
#include "cairn/core/log.h"
#include "cairn/crypto/random.h"
#include "cairn/dirnode/dirnode.h"
#include "cairn/dirnode/listing.h"
#include "cairn/dirnode/path.h"
#include "control/transfer.h"

namespace cairn::control {
namespace {

namespace mf = mutable_files;
using dirnode::Children;
using dirnode::DirPath;

// The read-modify-write loop's bounds: at most kMaxAttempts publishes,
// waiting kFirstBackoffMs after the first UncoordinatedWrite, doubling up
// to kMaxBackoffMs, each wait scaled by a random factor in [0.5, 1.5) so
// that writers that collided do not collide again.
constexpr int kMaxAttempts = 10;
constexpr std::uint64_t kFirstBackoffMs = 100;
constexpr std::uint64_t kMaxBackoffMs = 3000;

// What a directory task needs of the daemon, copied when it is submitted
// (every pointer outlives the tasks: the task table closes first).
struct DirEnv {
  Loop* loop;
  NameTable* servers;
  NameTable* aliases;
  TaskTable* tasks;
  std::map<TaskId, std::unique_ptr<Timer>>* holds;
  grid::Grid* grid;
  mf::MutableOptions mutable_options;
  immutable::UploadOptions upload_options;
  std::string spool_dir;
  std::uint64_t max_body = 0;  // the largest directory body read or written (limits.sdmf_max_bytes)
};

DirEnv EnvOf(CommandsState& c) {
  DirEnv env{&c.loop, &c.servers, &c.aliases, &c.tasks, &c.holds, &c.grid, {}, {}, c.options.spool_dir,
             c.options.sdmf_max_bytes};
  env.mutable_options.k = c.options.shares_needed;
  env.mutable_options.n = c.options.shares_total;
  env.mutable_options.happy = c.options.shares_happy;
  env.upload_options.params.k = c.options.shares_needed;
  env.upload_options.params.n = c.options.shares_total;
  env.upload_options.params.max_segment_size = c.options.max_segment_size;
  env.upload_options.happy = c.options.shares_happy;
  return env;
}

double Now() { return static_cast<double>(clock::UnixMs()) / 1000.0; }

// The file that holds a directory's body.
caps::Cap FileOf(caps::Cap cap) {
  cap.directory = false;
  return cap;
}

// A cap as a path's root or a child's link gives it ("ro." and "imm."
// prefixes of unknown caps removed).
Result<caps::Cap> ParseNodeCap(std::string_view text) {
  if (text.substr(0, 3) == "ro.") text.remove_prefix(3);
  if (text.substr(0, 4) == "imm.") text.remove_prefix(4);
  return caps::ParseCap(text);
}

Result<caps::Cap> DirCap(const std::string& text, const std::string& where) {
  auto cap = ParseNodeCap(text);
  if (!cap.ok() || !cap->directory) return Status::InvalidArgument(where + " is not a directory");
  return cap;
}

// A directory this node can change: a writable mutable one (SDMF or MDMF;
// the body is the same either way).
Status CheckWritable(const caps::Cap& cap, const std::string& where) {
  if (!cap.directory || cap.kind != caps::CapKind::kMutableWrite) {
    return Status::PermissionDenied(where + " is a read-only or immutable directory");
  }
  return Status();
}

// ---- reading ----------------------------------------------------------------

struct DirRead {
  caps::Cap cap;
  dirnode::DirAccess access;
  Children children;
  std::string body;
  std::uint64_t seqnum = 0;  // mutable directories: the version read
  std::string version;       // ... exactly (RetrieveResult::version)
  std::size_t dropped = 0;
};

Result<DirRead> Parse(caps::Cap cap, std::string body, std::uint64_t seqnum, std::string version = {}) {
  DirRead out;
  CAIRN_TRY_ASSIGN(out.access, dirnode::AccessOf(cap));
  CAIRN_TRY_ASSIGN(dirnode::Parsed parsed, dirnode::ParseBody(body, out.access));
  out.cap = std::move(cap);
  out.children = std::move(parsed.children);
  out.dropped = parsed.dropped;
  out.body = std::move(body);
  out.seqnum = seqnum;
  out.version = std::move(version);
  return out;
}

// Reads that fail while another writer replaces the shares under the read
// (UncoordinatedWrite, or too few shares of one version that verify) are
// tried again: kReadAttempts times in all, kReadRetryMs apart.
constexpr int kReadAttempts = 4;
constexpr std::uint64_t kReadRetryMs = 150;

bool ChangedUnderRead(const Status& st) {
  return st.code() == Code::kUncoordinatedWrite || st.code() == Code::kNotEnoughServers ||
         st.code() == Code::kIntegrity;
}

void RetrieveDir(const DirEnv& env, TaskRun* run, caps::Cap cap, int attempt,
                 std::shared_ptr<Callback<void(Result<DirRead>)>> finish) {
  auto snapshot = GridSnapshot(*env.servers);
  if (!snapshot.ok()) {
    return env.loop->Post([finish, st = snapshot.status()] { (*finish)(st); });
  }
  RetrieveMutableJob(*env.grid, std::move(*snapshot), FileOf(cap), TaskHooks(*run),
                     [env, run, cap, attempt, finish](Result<mf::RetrieveResult> got) {
                       if (!got.ok()) {
                         if (attempt >= kReadAttempts || !ChangedUnderRead(got.status()) || run->cancel_requested()) {
                           return (*finish)(got.status());
                         }
                         const TaskId id = run->id();
                         auto* holds = env.holds;
                         // Kept in the daemon's table of waits: shutdown cancels it.
                         (*holds)[id] = env.loop->PostAfter(kReadRetryMs * static_cast<std::uint64_t>(attempt),
                                                            [env, run, cap, attempt, finish, holds, id] {
                                                              holds->erase(id);
                                                              RetrieveDir(env, run, cap, attempt + 1, finish);
                                                            });
                         return;
                       }
                       if (got->contents.size() > env.max_body) {
                         return (*finish)(Status::ResourceExhausted("the directory is over limits.sdmf_max_bytes"));
                       }
                       (*finish)(Parse(cap, std::move(got->contents), got->seqnum, std::move(got->version)));
                     });
}

// Reads the directory of `cap` (any readable directory cap). `done` runs
// once, on a later turn.
void ReadDir(const DirEnv& env, TaskRun* run, caps::Cap cap, Callback<void(Result<DirRead>)> done) {
  auto finish = std::make_shared<Callback<void(Result<DirRead>)>>(std::move(done));
  auto access = dirnode::AccessOf(cap);
  if (!access.ok()) {
    return env.loop->Post([finish, st = access.status()] { (*finish)(st); });
  }
  auto snapshot = GridSnapshot(*env.servers);
  if (!snapshot.ok()) {
    return env.loop->Post([finish, st = snapshot.status()] { (*finish)(st); });
  }
  if (cap.kind == caps::CapKind::kLiteral) {
    return env.loop->Post([finish, cap] { (*finish)(Parse(cap, cap.literal, 0)); });
  }
  if (cap.is_mutable()) return RetrieveDir(env, run, std::move(cap), 1, std::move(finish));
  // An immutable directory: its CHK file through a spool file.
  if (cap.size > env.max_body) {
    return env.loop->Post([finish] { (*finish)(Status::ResourceExhausted("the directory is over limits.sdmf_max_bytes")); });
  }
  DirEnv e = env;
  MakeSpool(*env.loop, env.spool_dir, "get",
            [e, run, finish, cap, servers = std::move(*snapshot)](Result<std::shared_ptr<Spool>> spool) mutable {
              if (!spool.ok()) return (*finish)(spool.status());
              std::shared_ptr<Spool> file = *spool;
              GetJob(*e.grid, std::move(servers), FileOf(cap), file->path, TaskHooks(*run),
                     [e, finish, cap, file](Result<immutable::DownloadResult> got) {
                       if (!got.ok()) return (*finish)(got.status());
                       auto body = std::make_shared<std::string>();
                       e.loop->Offload(
                           [file, body, max = e.max_body]() -> Status {
                             CAIRN_TRY_ASSIGN(*body, ReadWholeFile(file->path, max));
                             return Status();
                           },
                           [finish, cap, body, file](Status read) {
                             if (!read.ok()) return (*finish)(read);
                             (*finish)(Parse(cap, std::move(*body), 0));
                           });
                     });
            });
}

// ---- resolving paths ----------------------------------------------------------

// The node a path names: its cap (the write cap where the link holds one).
struct Resolved {
  std::string cap;
  std::optional<dirnode::Child> link;  // the link that reached it (none for a root)
};

// The cap a path starts at: its root cap, or its alias's (read now: the
// caller holds the alias).
Result<std::string> RootOf(const DirEnv& env, const DirPath& path) {
  if (!path.root_cap.empty()) return path.root_cap;
  auto cap = env.aliases->Get(path.alias);
  if (!cap.ok()) {
    if (cap.status().code() == Code::kNotFound) {
      return Status::NotFound("unknown alias \"" + path.alias + "\" (cairn alias create or cairn alias add)");
    }
    return cap.status();
  }
  return *cap;
}

// A path being followed, one directory read a step.
struct Walk {
  DirEnv env;
  TaskRun* run;
  DirPath path;
  std::size_t depth;
  std::size_t at = 0;
  Resolved node;
  Callback<void(Result<Resolved>)> done;

  static void Step(std::shared_ptr<Walk> w) {
    if (w->at == w->depth) return w->done(std::move(w->node));
    DirPath shown = w->path;
    shown.components.resize(w->at);
    shown.trailing_slash = false;
    auto cap = DirCap(w->node.cap, shown.ToString());
    if (!cap.ok()) return w->done(cap.status());
    ReadDir(w->env, w->run, *cap, [w, shown](Result<DirRead> dir) mutable {
      if (!dir.ok()) return w->done(dir.status().WithContext(shown.ToString()));
      const std::string& name = w->path.components[w->at];
      auto it = dir->children.find(name);
      if (it == dir->children.end()) {
        shown.components.push_back(name);
        return w->done(Status::NotFound("no such file or directory: " + shown.ToString()));
      }
      w->node.cap = !it->second.rw_uri.empty() ? it->second.rw_uri : it->second.ro_uri;
      w->node.link = it->second;
      ++w->at;
      Step(std::move(w));
    });
  }
};

// Follows `path`'s first `depth` components from its root, one directory
// read each. `done` runs once, on a later turn: the node, or NotFound
// naming the first missing component.
void Resolve(const DirEnv& env, TaskRun* run, DirPath path, std::size_t depth, Callback<void(Result<Resolved>)> done) {
  auto root = RootOf(env, path);
  auto w = std::make_shared<Walk>(Walk{env, run, std::move(path), depth, 0, {}, std::move(done)});
  if (!root.ok()) return env.loop->Post([w, st = root.status()] { w->done(st); });
  w->node.cap = *root;
  env.loop->Post([w] { Walk::Step(w); });
}

// ---- the read-modify-write loop --------------------------------------------

// Applies a change to `children` (the newest version read). `first` is
// false on a retry after another writer's change: a change that finds
// itself already applied (its own earlier publish reached some servers)
// must then succeed without changing anything.
using Modifier = std::function<Status(Children& children, bool first)>;

struct ModifyOutcome {
  std::uint64_t seqnum = 0;
  int attempts = 0;
  bool published = false;
};

// One read-modify-write of a directory, attempt after attempt.
struct Modification {
  DirEnv env;
  TaskRun* run;
  caps::Cap cap;
  Modifier modifier;
  Callback<void(Result<ModifyOutcome>)> done;
  ModifyOutcome outcome;
  std::uint64_t backoff_ms = kFirstBackoffMs;

  static void Attempt(std::shared_ptr<Modification> m) {
    if (m->run->cancel_requested()) return m->done(Status::Cancelled("cancelled"));
    const bool first = m->outcome.attempts == 0;
    ++m->outcome.attempts;
    m->run->Progress("reading directory", static_cast<std::uint64_t>(m->outcome.attempts), kMaxAttempts);
    ReadDir(m->env, m->run, m->cap, [m, first](Result<DirRead> dir) {
      if (!dir.ok()) {
        if (ChangedUnderRead(dir.status())) return Published(m, 0, dir.status().WithContext("reading the directory"), true);
        return m->done(dir.status());
      }
      Children children = dir->children;
      Status changed = m->modifier(children, first);
      if (!changed.ok()) return m->done(changed);
      auto body = dirnode::PackBody(children, dir->access);
      if (!body.ok()) return m->done(body.status());
      if (first && *body == dir->body) {
        m->outcome.seqnum = dir->seqnum;
        return m->done(m->outcome);
      }
      if (body->size() > m->env.max_body) {
        return m->done(Status::ResourceExhausted("the directory would be over limits.sdmf_max_bytes"));
      }
      auto snapshot = GridSnapshot(*m->env.servers);
      if (!snapshot.ok()) return m->done(snapshot.status());
      m->run->Progress("publishing directory", static_cast<std::uint64_t>(m->outcome.attempts), kMaxAttempts);
      const std::uint64_t read_seqnum = dir->seqnum;
      // The version check (docs/dirs.md, "Concurrent writers"): the publish
      // writes only if its own servermap still finds, as the newest
      // version, exactly the one this change was applied to; its writes
      // then test every share against that map, so a version published by
      // anyone after the check fails them with UncoordinatedWrite. Either
      // way the change is read and applied again.
      mf::MutableOptions options = m->env.mutable_options;
      options.expected_version = dir->version;
      JobHooks hooks = TaskHooks(*m->run);
      PublishMutableJob(*m->env.grid, std::move(*snapshot), FileOf(m->cap), std::move(*body), std::move(options),
                        std::move(hooks), [m, read_seqnum](Result<mf::PublishResult> published) {
                          Published(m, read_seqnum, std::move(published));
                        });
    });
  }

  // A publish's outcome (or, with `read_failed`, a read that failed while
  // the directory changed): done, or another attempt after a wait.
  static void Published(std::shared_ptr<Modification> m, std::uint64_t read_seqnum,
                        Result<mf::PublishResult> published, bool read_failed = false) {
    if (published.ok()) {
      if (published->seqnum != read_seqnum + 1) {
        // The publish's own servermap saw a newer version than the one
        // this change was applied to (docs/dirs.md, "Concurrent writers").
        CAIRN_LOG(Warn, "directory change published seqnum %llu over a version newer than seqnum %llu it read",
                  static_cast<unsigned long long>(published->seqnum), static_cast<unsigned long long>(read_seqnum));
      }
      m->outcome.seqnum = published->seqnum;
      m->outcome.published = true;
      return m->done(m->outcome);
    }
    // A publish whose servermap met shares being replaced by another writer
    // can fail verifying them (integrity, not enough servers) rather than
    // with UncoordinatedWrite: those are collisions too.
    if (!read_failed && !ChangedUnderRead(published.status())) return m->done(published.status());
    if (m->outcome.attempts >= kMaxAttempts) {
      return m->done(published.status().WithContext("the directory kept changing under " +
                                                    std::to_string(kMaxAttempts) + " attempts"));
    }
    // Another writer: wait, then read the newest version and apply the
    // change again.
    auto jitter = crypto::RandomBytes(1);
    const double factor = 0.5 + (jitter.ok() ? static_cast<unsigned char>((*jitter)[0]) / 256.0 : 0.5);
    const auto wait = static_cast<std::uint64_t>(static_cast<double>(m->backoff_ms) * factor);
    m->backoff_ms = std::min(m->backoff_ms * 2, kMaxBackoffMs);
    m->run->Progress("another writer changed the directory; retrying",
                     static_cast<std::uint64_t>(m->outcome.attempts), kMaxAttempts);
    const TaskId id = m->run->id();
    auto* holds = m->env.holds;
    Loop* loop = m->env.loop;
    // Kept in the daemon's table of waits: shutdown cancels it, and the
    // task is then marked interrupted at the next start.
    (*holds)[id] = loop->PostAfter(wait, [holds, id, m] {
      holds->erase(id);
      Attempt(m);
    });
  }
};

// Reads the directory of `dircap` (a writable SDMF directory), applies
// `modifier` to its children and publishes the result, again on a newer
// version after each UncoordinatedWrite (at most kMaxAttempts times, with
// growing jittered waits). `done` runs once, on a later turn: the version
// published, or the modifier's error, or the last UncoordinatedWrite.
void Modify(const DirEnv& env, TaskRun* run, caps::Cap dircap, Modifier modifier,
            Callback<void(Result<ModifyOutcome>)> done) {
  auto m = std::make_shared<Modification>(
      Modification{env, run, std::move(dircap), std::move(modifier), std::move(done), {}, kFirstBackoffMs});
  env.loop->Post([m] { Modification::Attempt(m); });
}

// ---- creating directories ------------------------------------------------------

// Makes a new directory of `format` holding `children` (packed with its
// new writekey; empty for a plain mkdir): its key (recorded in the task's
// record before anything is sent: a crash cannot lose it), then its first
// version.
void CreateDirWith(const DirEnv& env, TaskRun* run, caps::MutableFormat format, Children children,
                   Callback<void(Result<caps::Cap>)> done) {
  auto finish = std::make_shared<Callback<void(Result<caps::Cap>)>>(std::move(done));
  auto kids = std::make_shared<Children>(std::move(children));
  run->Progress("generating key", 0, 1);
  mf::NewMutableKey(*env.loop, format, [env, run, finish, kids](Result<mf::NewKey> key) {
    if (!key.ok()) return (*finish)(key.status());
    caps::Cap dircap = key->writecap;
    dircap.directory = true;
    std::string body;
    if (!kids->empty()) {
      auto access = dirnode::AccessOf(dircap);
      auto packed = access.ok() ? dirnode::PackBody(*kids, *access) : Result<std::string>(access.status());
      if (!packed.ok()) return (*finish)(packed.status());
      body = std::move(*packed);
    }
    Json intent = Json::NewObject();
    cJSON_AddStringToObject(intent.get(), "dircap", caps::FormatCap(dircap).c_str());
    auto shared_key = std::make_shared<mf::NewKey>(std::move(*key));
    auto shared_body = std::make_shared<std::string>(std::move(body));
    run->RecordIntent(std::move(intent), [env, run, finish, shared_key, shared_body, dircap](Status saved) {
      if (!saved.ok()) return (*finish)(saved);
      auto snapshot = GridSnapshot(*env.servers);
      if (!snapshot.ok()) return (*finish)(snapshot.status());
      CreateMutableJob(*env.grid, std::move(*snapshot), std::move(*shared_key), std::move(*shared_body),
                       env.mutable_options, TaskHooks(*run), [finish, dircap](Result<mf::PublishResult> made) {
                         if (!made.ok()) return (*finish)(made.status());
                         (*finish)(dircap);
                       });
    });
  });
}

// Makes a new, empty SDMF directory.
void CreateDir(const DirEnv& env, TaskRun* run, Callback<void(Result<caps::Cap>)> done) {
  CreateDirWith(env, run, caps::MutableFormat::kSdmf, Children(), std::move(done));
}

// ---- parameters, keys and the two tasks ----------------------------------------

Result<DirPath> PathParam(const std::string& text) {
  auto path = dirnode::ParseDirPath(text);
  if (!path.ok()) return path.status();
  if (!path->root_cap.empty()) {
    auto cap = ParseNodeCap(path->root_cap);
    if (!cap.ok()) return cap.status();
  } else {
    Status name = NameTable::CheckName(path->alias);
    if (!name.ok()) return Status::InvalidArgument("\"" + path->alias + "\" is not an alias name");
  }
  return path;
}

// The keys of a task that resolves `paths`: the grid shared, each alias
// shared (it cannot change while it is read).
std::vector<LockKey> ResolveKeys(std::initializer_list<const DirPath*> paths) {
  std::vector<LockKey> keys{LockKeys::Servers(LockMode::kShared)};
  for (const DirPath* p : paths) {
    if (p->root_cap.empty()) keys.push_back(LockKeys::Alias(p->alias, LockMode::kShared));
  }
  return keys;
}

// The keys of a task that changes the directories of `dircaps`: the grid
// shared, each directory's slot exclusive.
Result<std::vector<LockKey>> ChangeKeys(std::initializer_list<const caps::Cap*> dircaps) {
  std::vector<LockKey> keys{LockKeys::Servers(LockMode::kShared)};
  for (const caps::Cap* c : dircaps) {
    CAIRN_TRY_ASSIGN(std::string si, caps::StorageIndexOf(*c));
    keys.push_back(LockKeys::Slot(si, LockMode::kExclusive));
  }
  return keys;
}

// Runs `first` (the resolving task), then the task `then` makes from its
// result, and answers with the second task's result. Both are waited for:
// the client sees progress from each.
void TwoTasks(TaskTable* tasks, Reply reply, TaskSpec first,
              std::function<Result<TaskSpec>(const cJSON* first_result)> then) {
  SubmitAndAnswer(*tasks, true, std::move(reply), std::move(first),
                  [tasks, then](std::shared_ptr<Reply> out, Json result) {
                    auto spec = then(result.get());
                    if (!spec.ok()) return out->Error(spec.status());
                    SubmitAndAnswer(*tasks, true, std::move(*out), std::move(*spec));
                  });
}

std::string StrOf(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

Status NeedWait(const Request& req, const char* method) {
  if (req.wait) return Status();
  return Status::InvalidArgument(std::string(method) + " runs two tasks in turn: it cannot answer before they end");
}

// A change's result: the directory changed, its new version, the attempts.
Json ChangeJson(const std::string& dircap, const ModifyOutcome& o) {
  Json out = Json::NewObject();
  cJSON_AddStringToObject(out.get(), "directory", dircap.c_str());
  cJSON_AddNumberToObject(out.get(), "seqnum", static_cast<double>(o.seqnum));
  cJSON_AddNumberToObject(out.get(), "attempts", o.attempts);
  cJSON_AddBoolToObject(out.get(), "changed", o.published);
  return out;
}

// The second task of a link: sets `name` in the directory `parent` to
// `rw`/`ro` (SetChild's rules), re-appliably.
Result<TaskSpec> LinkSpec(const DirEnv& env, const char* kind, const cJSON* params,
                          const std::string& parent_text, const std::string& name, const std::string& rw,
                          const std::string& ro, bool overwrite, bool only_files, Json extra) {
  CAIRN_TRY_ASSIGN(caps::Cap parent, DirCap(parent_text, "the parent"));
  CAIRN_TRY(CheckWritable(parent, "the parent directory"));
  CAIRN_TRY_ASSIGN(std::vector<LockKey> keys, ChangeKeys({&parent}));
  TaskSpec spec;
  spec.kind = kind;
  spec.params = Json(cJSON_Duplicate(params, true));
  spec.keys = std::move(keys);
  auto shared_extra = std::make_shared<Json>(std::move(extra));
  spec.body = [env, parent, parent_text, name, rw, ro, overwrite, only_files, shared_extra](TaskRun& run) {
    TaskRun* runp = &run;
    const double now = Now();
    Modifier change = [name, rw, ro, overwrite, only_files, now](Children& children, bool first) {
      auto it = children.find(name);
      // Already there from this change's own earlier publish.
      if (!first && it != children.end() && it->second.rw_uri == rw &&
          (it->second.ro_uri == ro || ro.empty())) {
        return Status();
      }
      return dirnode::SetChild(children, name, rw, ro, nullptr, overwrite, only_files, now);
    };
    Modify(env, runp, parent, std::move(change), [runp, parent_text, shared_extra](Result<ModifyOutcome> done) {
      if (!done.ok()) return runp->Fail(done.status());
      Json out = ChangeJson(parent_text, *done);
      const cJSON* item;
      cJSON_ArrayForEach(item, shared_extra->get()) {
        cJSON_AddItemToObject(out.get(), item->string, cJSON_Duplicate(item, true));
      }
      runp->Succeed(std::move(out));
    });
  };
  return spec;
}

// The parent path of `path` and the name in it.
DirPath ParentOf(const DirPath& path) {
  DirPath parent = path;
  parent.components.pop_back();
  parent.trailing_slash = false;
  return parent;
}

}  // namespace

// ---- alias.create ---------------------------------------------------------------

void AliasCreate(CommandsState& c, Request& req, Reply& reply) {
  std::string name;
  Status st = StringParams(req, {{"name", &name}});
  if (st.ok()) st = NameTable::CheckName(name);
  if (!st.ok()) return reply.Error(st);
  TaskSpec spec = NewTaskSpec("alias.create", req,
                              {LockKeys::Servers(LockMode::kShared), LockKeys::Alias(name, LockMode::kExclusive)});
  spec.body = [env = EnvOf(c), name](TaskRun& run) {
    TaskRun* runp = &run;
    // The name first, before a key is made or anything sent.
    auto existing = env.aliases->Get(name);
    if (existing.ok()) return run.Fail(Status::Conflict("alias \"" + name + "\" already exists"));
    if (existing.status().code() != Code::kNotFound) return run.Fail(existing.status());
    CreateDir(env, runp, [env, runp, name](Result<caps::Cap> dircap) {
      if (!dircap.ok()) return runp->Fail(dircap.status());
      std::string text = caps::FormatCap(*dircap);
      env.aliases->Add(name, text, [runp, name, text](Status added) {
        if (!added.ok()) return runp->Fail(added);
        Json out = Json::NewObject();
        cJSON_AddStringToObject(out.get(), "name", name.c_str());
        cJSON_AddStringToObject(out.get(), "cap", text.c_str());
        runp->Succeed(std::move(out));
      });
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

// ---- alias.import -----------------------------------------------------------------

void AliasImport(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  r->Accept("aliases");
  Status st = r->Finish();
  const cJSON* list = cJSON_GetObjectItemCaseSensitive(req.params.get(), "aliases");
  if (st.ok() && !cJSON_IsArray(list)) st = Status::InvalidArgument("params.aliases must be an array of {name, cap}");
  std::vector<std::pair<std::string, std::string>> entries;
  std::vector<LockKey> keys;
  std::set<std::string> names;
  const cJSON* item;
  cJSON_ArrayForEach(item, list) {
    if (!st.ok()) break;
    const std::string name = StrOf(item, "name"), text = StrOf(item, "cap");
    st = NameTable::CheckName(name);
    if (!st.ok()) {
      st = Status::InvalidArgument("alias \"" + name + "\": " + std::string(st.message()));
      break;
    }
    if (!names.insert(name).second) {
      st = Status::InvalidArgument("alias \"" + name + "\" is given twice");
      break;
    }
    // Tahoe's aliases name directories (add-alias refuses a file cap).
    auto cap = caps::ParseCap(text);
    if (!cap.ok() || !cap->directory) {
      st = Status::BadCap("alias \"" + name + "\": not a directory cap");
      break;
    }
    entries.emplace_back(name, caps::FormatCap(*cap));
    keys.push_back(LockKeys::Alias(name, LockMode::kExclusive));
  }
  if (st.ok() && entries.empty()) st = Status::InvalidArgument("no aliases to import");
  if (!st.ok()) return reply.Error(st);
  TaskSpec spec = NewTaskSpec("alias.import", req, std::move(keys));
  NameTable* aliases = &c.aliases;
  spec.body = [aliases, entries](TaskRun& run) {
    TaskRun* runp = &run;
    // One transaction: every name is new, or nothing is added.
    aliases->AddAll(entries, [runp, n = entries.size()](Status added) {
      if (!added.ok()) return runp->Fail(added);
      Json out = Json::NewObject();
      cJSON_AddNumberToObject(out.get(), "imported", static_cast<double>(n));
      runp->Succeed(std::move(out));
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

// ---- dir.mkdir ---------------------------------------------------------------------

void DirMkdir(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string text, format_text;
  Status st = r->String("path", &text);
  if (st.ok()) st = r->String("format", &format_text);
  if (st.ok()) st = r->Finish();
  if (st.ok()) st = NeedWait(req, "dir.mkdir");
  // Tahoe's --format: SDMF (the default) or MDMF, in either case.
  caps::MutableFormat format = caps::MutableFormat::kSdmf;
  std::string lower = format_text;
  for (char& ch : lower) ch = static_cast<char>(ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
  if (lower == "mdmf") {
    format = caps::MutableFormat::kMdmf;
  } else if (st.ok() && !lower.empty() && lower != "sdmf") {
    st = Status::InvalidArgument("params.format must be \"sdmf\" or \"mdmf\"");
  }
  if (!st.ok()) return reply.Error(st);
  DirEnv env = EnvOf(c);
  if (text.empty()) {
    // No path: a new directory linked nowhere; its cap is the answer.
    TaskSpec spec = NewTaskSpec("dir.mkdir", req, {LockKeys::Servers(LockMode::kShared)});
    spec.body = [env, format](TaskRun& run) {
      TaskRun* runp = &run;
      CreateDirWith(env, runp, format, Children(), [runp](Result<caps::Cap> dircap) {
        if (!dircap.ok()) return runp->Fail(dircap.status());
        Json out = Json::NewObject();
        cJSON_AddStringToObject(out.get(), "cap", caps::FormatCap(*dircap).c_str());
        runp->Succeed(std::move(out));
      });
    };
    return RunTask(c, req, reply, std::move(spec));
  }
  auto path = PathParam(text);
  if (path.ok() && path->components.empty()) path = Status::InvalidArgument("mkdir needs a name after the alias or cap");
  if (!path.ok()) return reply.Error(path.status());
  // First: the parent, then the new directory (no lock needed: it is new).
  TaskSpec resolve = NewTaskSpec("dir.mkdir", req, ResolveKeys({&*path}));
  resolve.body = [env, format, p = *path](TaskRun& run) {
    TaskRun* runp = &run;
    DirPath parent = ParentOf(p);
    Resolve(env, runp, parent, parent.components.size(), [env, runp, p, parent, format](Result<Resolved> where) {
      if (!where.ok()) return runp->Fail(where.status());
      auto cap = DirCap(where->cap, parent.ToString());
      Status ok = cap.ok() ? CheckWritable(*cap, parent.ToString()) : cap.status();
      if (!ok.ok()) return runp->Fail(ok);
      std::string parent_cap = where->cap;
      CreateDirWith(env, runp, format, Children(), [runp, parent_cap, p](Result<caps::Cap> dircap) {
        if (!dircap.ok()) return runp->Fail(dircap.status());
        Json out = Json::NewObject();
        cJSON_AddStringToObject(out.get(), "parent", parent_cap.c_str());
        cJSON_AddStringToObject(out.get(), "name", p.components.back().c_str());
        cJSON_AddStringToObject(out.get(), "cap", caps::FormatCap(*dircap).c_str());
        runp->Succeed(std::move(out));
      });
    });
  };
  Json params(cJSON_Duplicate(req.params.get(), true));
  auto shared_params = std::make_shared<Json>(std::move(params));
  TwoTasks(&c.tasks, std::move(reply), std::move(resolve), [env, shared_params, shown = path->ToString()](const cJSON* r1) {
    Json extra = Json::NewObject();
    cJSON_AddStringToObject(extra.get(), "cap", StrOf(r1, "cap").c_str());
    cJSON_AddStringToObject(extra.get(), "path", shown.c_str());
    return LinkSpec(env, "dir.link", shared_params->get(), StrOf(r1, "parent"), StrOf(r1, "name"),
                    StrOf(r1, "cap"), "", false, false, std::move(extra));
  });
}

// ---- dir.ls ----------------------------------------------------------------------------

void DirLs(CommandsState& c, Request& req, Reply& reply) {
  std::string text;
  Status st = StringParams(req, {{"path", &text}});
  auto path = st.ok() ? PathParam(text) : Result<DirPath>(st);
  if (!path.ok()) return reply.Error(path.status());
  TaskSpec spec = NewTaskSpec("dir.ls", req, ResolveKeys({&*path}));
  spec.body = [env = EnvOf(c), p = *path](TaskRun& run) {
    TaskRun* runp = &run;
    Resolve(env, runp, p, p.components.size(), [env, runp, p](Result<Resolved> node) {
      if (!node.ok()) return runp->Fail(node.status());
      auto cap = ParseNodeCap(node->cap);
      if (!cap.ok() || !cap->directory) {
        if (p.trailing_slash) return runp->Fail(Status::InvalidArgument(p.ToString() + " is not a directory"));
        Json out = Json::NewObject();
        cJSON_AddStringToObject(out.get(), "cap", node->cap.c_str());
        Json listing = dirnode::NodeJson(node->cap);
        if (node->link) {
          cJSON_AddItemToObject(cJSON_GetArrayItem(listing.get(), 1), "metadata", dirnode::ToCjson(node->link->metadata));
        }
        cJSON_AddItemToObject(out.get(), "listing", listing.release());
        return runp->Succeed(std::move(out));
      }
      std::string node_cap = node->cap;
      ReadDir(env, runp, *cap, [runp, node_cap](Result<DirRead> dir) {
        if (!dir.ok()) return runp->Fail(dir.status());
        Json out = Json::NewObject();
        cJSON_AddStringToObject(out.get(), "cap", node_cap.c_str());
        cJSON_AddNumberToObject(out.get(), "children", static_cast<double>(dir->children.size()));
        if (dir->dropped) cJSON_AddNumberToObject(out.get(), "dropped", static_cast<double>(dir->dropped));
        // The body and the parsed children go as the listing is made.
        std::string().swap(dir->body);
        cJSON_AddItemToObject(out.get(), "listing",
                              dirnode::ListingJson(dir->cap, std::move(dir->children)).release());
        runp->Succeed(std::move(out));
      });
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

// ---- dir.ln -------------------------------------------------------------------------------

namespace {

// Where a link goes: TO names a directory to put it in when it ends in '/'
// or is a bare root; else its parent and last name.
Result<std::pair<DirPath, std::string>> Destination(const DirPath& to, const DirPath* from) {
  if (to.trailing_slash || to.components.empty()) {
    if (!from || from->components.empty()) {
      return Status::InvalidArgument("the destination " + to.ToString() + " needs a name (the source has none)");
    }
    DirPath dir = to;
    dir.trailing_slash = false;
    return std::make_pair(dir, from->components.back());
  }
  return std::make_pair(ParentOf(to), to.components.back());
}

}  // namespace

void DirLn(CommandsState& c, Request& req, Reply& reply) {
  std::string from_text, to_text;
  Status st = StringParams(req, {{"from", &from_text}, {"to", &to_text}});
  if (st.ok()) st = NeedWait(req, "dir.ln");
  auto from = st.ok() ? PathParam(from_text) : Result<DirPath>(st);
  auto to = from.ok() ? PathParam(to_text) : Result<DirPath>(from.status());
  if (!to.ok()) return reply.Error(to.status());
  auto dest = Destination(*to, &*from);
  if (!dest.ok()) return reply.Error(dest.status());
  DirEnv env = EnvOf(c);
  TaskSpec resolve = NewTaskSpec("dir.ln", req, ResolveKeys({&*from, &*to}));
  resolve.body = [env, f = *from, d = *dest](TaskRun& run) {
    TaskRun* runp = &run;
    Resolve(env, runp, f, f.components.size(), [env, runp, d](Result<Resolved> source) {
      if (!source.ok()) return runp->Fail(source.status());
      std::string rw, ro;
      if (source->link) {
        rw = source->link->rw_uri;
        ro = source->link->ro_uri;
      } else {
        auto cap = ParseNodeCap(source->cap);
        if (cap.ok() && cap->kind == caps::CapKind::kMutableWrite) rw = source->cap;
        else ro = source->cap;
      }
      Resolve(env, runp, d.first, d.first.components.size(), [runp, d, rw, ro](Result<Resolved> parent) {
        if (!parent.ok()) return runp->Fail(parent.status());
        Json out = Json::NewObject();
        cJSON_AddStringToObject(out.get(), "parent", parent->cap.c_str());
        cJSON_AddStringToObject(out.get(), "name", d.second.c_str());
        cJSON_AddStringToObject(out.get(), "rw", rw.c_str());
        cJSON_AddStringToObject(out.get(), "ro", ro.c_str());
        runp->Succeed(std::move(out));
      });
    });
  };
  auto params = std::make_shared<Json>(cJSON_Duplicate(req.params.get(), true));
  TwoTasks(&c.tasks, std::move(reply), std::move(resolve), [env, params](const cJSON* r1) {
    Json extra = Json::NewObject();
    cJSON_AddStringToObject(extra.get(), "name", StrOf(r1, "name").c_str());
    return LinkSpec(env, "dir.link", params->get(), StrOf(r1, "parent"), StrOf(r1, "name"), StrOf(r1, "rw"),
                    StrOf(r1, "ro"), true, false, std::move(extra));
  });
}

// ---- dir.rm ---------------------------------------------------------------------------------

void DirRm(CommandsState& c, Request& req, Reply& reply) {
  std::string text;
  Status st = StringParams(req, {{"path", &text}});
  if (st.ok()) st = NeedWait(req, "dir.rm");
  auto path = st.ok() ? PathParam(text) : Result<DirPath>(st);
  if (path.ok() && path->components.empty()) path = Status::InvalidArgument("rm needs a name after the alias or cap");
  if (!path.ok()) return reply.Error(path.status());
  DirEnv env = EnvOf(c);
  TaskSpec resolve = NewTaskSpec("dir.rm", req, ResolveKeys({&*path}));
  resolve.body = [env, p = *path](TaskRun& run) {
    TaskRun* runp = &run;
    DirPath parent = ParentOf(p);
    Resolve(env, runp, parent, parent.components.size(), [runp, p](Result<Resolved> where) {
      if (!where.ok()) return runp->Fail(where.status());
      Json out = Json::NewObject();
      cJSON_AddStringToObject(out.get(), "parent", where->cap.c_str());
      cJSON_AddStringToObject(out.get(), "name", p.components.back().c_str());
      runp->Succeed(std::move(out));
    });
  };
  auto params = std::make_shared<Json>(cJSON_Duplicate(req.params.get(), true));
  TwoTasks(&c.tasks, std::move(reply), std::move(resolve), [env, params, shown = path->ToString()](const cJSON* r1) -> Result<TaskSpec> {
    const std::string parent_text = StrOf(r1, "parent");
    const std::string name = StrOf(r1, "name");
    CAIRN_TRY_ASSIGN(caps::Cap parent, DirCap(parent_text, "the parent"));
    CAIRN_TRY(CheckWritable(parent, "the parent directory"));
    CAIRN_TRY_ASSIGN(std::vector<LockKey> keys, ChangeKeys({&parent}));
    TaskSpec spec;
    spec.kind = "dir.unlink";
    spec.params = Json(cJSON_Duplicate(params->get(), true));
    spec.keys = std::move(keys);
    spec.body = [env, parent, parent_text, name, shown](TaskRun& run) {
      TaskRun* runp = &run;
      Modifier change = [name, shown](Children& children, bool first) {
        Status gone = dirnode::DeleteChild(children, name);
        // Gone on a retry: this change's own earlier publish removed it.
        if (!gone.ok() && gone.code() == Code::kNotFound) {
          return first ? Status::NotFound("no such file or directory: " + shown) : Status();
        }
        return gone;
      };
      Modify(env, runp, parent, std::move(change), [runp, parent_text](Result<ModifyOutcome> done) {
        if (!done.ok()) return runp->Fail(done.status());
        runp->Succeed(ChangeJson(parent_text, *done));
      });
    };
    return spec;
  });
}

// ---- dir.mv ----------------------------------------------------------------------------------

void DirMv(CommandsState& c, Request& req, Reply& reply) {
  std::string from_text, to_text;
  Status st = StringParams(req, {{"from", &from_text}, {"to", &to_text}});
  if (st.ok()) st = NeedWait(req, "dir.mv");
  auto from = st.ok() ? PathParam(from_text) : Result<DirPath>(st);
  if (from.ok() && from->components.empty()) from = Status::InvalidArgument("mv moves a link: FROM needs a name");
  auto to = from.ok() ? PathParam(to_text) : Result<DirPath>(from.status());
  if (!to.ok()) return reply.Error(to.status());
  auto dest = Destination(*to, &*from);
  if (!dest.ok()) return reply.Error(dest.status());
  DirEnv env = EnvOf(c);
  TaskSpec resolve = NewTaskSpec("dir.mv", req, ResolveKeys({&*from, &*to}));
  resolve.body = [env, f = *from, d = *dest](TaskRun& run) {
    TaskRun* runp = &run;
    DirPath from_parent = ParentOf(f);
    Resolve(env, runp, from_parent, from_parent.components.size(), [env, runp, f, d](Result<Resolved> src) {
      if (!src.ok()) return runp->Fail(src.status());
      std::string src_cap = src->cap;
      Resolve(env, runp, d.first, d.first.components.size(), [runp, f, d, src_cap](Result<Resolved> dst) {
        if (!dst.ok()) return runp->Fail(dst.status());
        Json out = Json::NewObject();
        cJSON_AddStringToObject(out.get(), "from_parent", src_cap.c_str());
        cJSON_AddStringToObject(out.get(), "from_name", f.components.back().c_str());
        cJSON_AddStringToObject(out.get(), "to_parent", dst->cap.c_str());
        cJSON_AddStringToObject(out.get(), "to_name", d.second.c_str());
        runp->Succeed(std::move(out));
      });
    });
  };
  auto params = std::make_shared<Json>(cJSON_Duplicate(req.params.get(), true));
  TwoTasks(&c.tasks, std::move(reply), std::move(resolve), [env, params, shown = from->ToString()](const cJSON* r1) -> Result<TaskSpec> {
    const std::string from_text1 = StrOf(r1, "from_parent"), to_text1 = StrOf(r1, "to_parent");
    const std::string from_name = StrOf(r1, "from_name"), to_name = StrOf(r1, "to_name");
    CAIRN_TRY_ASSIGN(caps::Cap src, DirCap(from_text1, "the source's directory"));
    CAIRN_TRY_ASSIGN(caps::Cap dst, DirCap(to_text1, "the destination's directory"));
    CAIRN_TRY(CheckWritable(src, "the source's directory"));
    CAIRN_TRY(CheckWritable(dst, "the destination's directory"));
    auto si_src = caps::StorageIndexOf(src), si_dst = caps::StorageIndexOf(dst);
    const bool same = si_src.ok() && si_dst.ok() && *si_src == *si_dst;
    CAIRN_TRY_ASSIGN(std::vector<LockKey> keys, same ? ChangeKeys({&src}) : ChangeKeys({&src, &dst}));
    TaskSpec spec;
    spec.kind = "dir.move";
    spec.params = Json(cJSON_Duplicate(params->get(), true));
    spec.keys = std::move(keys);
    spec.body = [env, src, dst, same, from_name, to_name, shown, to_text1](TaskRun& run) {
      TaskRun* runp = &run;
      const double now = Now();
      if (same) {
        if (from_name == to_name) return run.Succeed(Json::NewObject());
        Modifier change = [from_name, to_name, shown, now](Children& children, bool first) {
          auto it = children.find(from_name);
          if (it == children.end()) {
            return first ? Status::NotFound("no such file or directory: " + shown) : Status();
          }
          dirnode::Child moved = it->second;
          CAIRN_TRY(dirnode::SetChild(children, to_name, moved.rw_uri, moved.ro_uri, &moved.metadata, true, true, now));
          children.erase(from_name);
          return Status();
        };
        return Modify(env, runp, dst, std::move(change), [runp, to_text1](Result<ModifyOutcome> done) {
          if (!done.ok()) return runp->Fail(done.status());
          runp->Succeed(ChangeJson(to_text1, *done));
        });
      }
      // Two directories: read the link, add it at the destination, then
      // remove it at the source if it still names the same node.
      ReadDir(env, runp, src, [env, runp, src, dst, from_name, to_name, shown, to_text1, now](Result<DirRead> dir) {
        if (!dir.ok()) return runp->Fail(dir.status());
        auto it = dir->children.find(from_name);
        if (it == dir->children.end()) return runp->Fail(Status::NotFound("no such file or directory: " + shown));
        dirnode::Child moved = it->second;
        Modifier add = [to_name, moved, now](Children& children, bool first) {
          auto at = children.find(to_name);
          if (!first && at != children.end() && at->second.ro_uri == moved.ro_uri && at->second.rw_uri == moved.rw_uri) {
            return Status();
          }
          return dirnode::SetChild(children, to_name, moved.rw_uri, moved.ro_uri, &moved.metadata, true, true, now);
        };
        Modify(env, runp, dst, std::move(add), [env, runp, src, from_name, moved, to_text1](Result<ModifyOutcome> added) {
          if (!added.ok()) return runp->Fail(added.status());
          Modifier remove = [from_name, moved](Children& children, bool) {
            auto at = children.find(from_name);
            if (at == children.end()) return Status();
            if (at->second.ro_uri != moved.ro_uri || at->second.rw_uri != moved.rw_uri) {
              return Status::Conflict("the source \"" + from_name +
                                      "\" was changed meanwhile: it was linked at the destination and left in place");
            }
            children.erase(at);
            return Status();
          };
          ModifyOutcome first_change = *added;
          Modify(env, runp, src, std::move(remove), [runp, to_text1, first_change](Result<ModifyOutcome> removed) {
            if (!removed.ok()) return runp->Fail(removed.status());
            Json out = ChangeJson(to_text1, first_change);
            cJSON_AddNumberToObject(out.get(), "source_seqnum", static_cast<double>(removed->seqnum));
            runp->Succeed(std::move(out));
          });
        });
      });
    };
    return spec;
  });
}

// ---- dir.put ----------------------------------------------------------------------------------

void DirPut(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string text;
  std::uint64_t size = 0;
  const bool size_given = cJSON_GetObjectItemCaseSensitive(req.params.get(), "size") != nullptr;
  Status st = r->String("path", &text, true);
  if (st.ok()) st = r->Uint("size", &size);
  if (st.ok()) st = r->Finish();
  if (st.ok()) st = NeedWait(req, "dir.put");
  auto path = st.ok() ? PathParam(text) : Result<DirPath>(st);
  if (path.ok() && path->components.empty()) path = Status::InvalidArgument("put needs a name after the alias or cap");
  if (!path.ok()) return reply.Error(path.status());
  DirEnv env = EnvOf(c);
  auto spool = std::make_shared<std::shared_ptr<Spool>>();
  TaskSpec resolve = NewTaskSpec("dir.put", req, ResolveKeys({&*path}));
  resolve.body = [env, spool, p = *path](TaskRun& run) {
    TaskRun* runp = &run;
    DirPath parent = ParentOf(p);
    // The parent first: nothing is uploaded for a path that cannot take it.
    Resolve(env, runp, parent, parent.components.size(), [env, runp, spool, p, parent](Result<Resolved> where) {
      if (!where.ok()) return runp->Fail(where.status());
      auto cap = DirCap(where->cap, parent.ToString());
      Status ok = cap.ok() ? CheckWritable(*cap, parent.ToString()) : cap.status();
      if (!ok.ok()) return runp->Fail(ok);
      auto snapshot = GridSnapshot(*env.servers);
      if (!snapshot.ok()) return runp->Fail(snapshot.status());
      std::string parent_cap = where->cap;
      PutJob(*env.grid, std::move(*snapshot), (*spool)->path, env.upload_options, TaskHooks(*runp),
             [runp, parent_cap, p](Result<immutable::UploadResult> up) {
               if (!up.ok()) return runp->Fail(up.status());
               Json out = Json::NewObject();
               cJSON_AddStringToObject(out.get(), "parent", parent_cap.c_str());
               cJSON_AddStringToObject(out.get(), "name", p.components.back().c_str());
               cJSON_AddStringToObject(out.get(), "cap", caps::FormatCap(up->cap).c_str());
               cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(up->size));
               runp->Succeed(std::move(out));
             });
    });
  };
  auto params = std::make_shared<Json>(cJSON_Duplicate(req.params.get(), true));
  ReceiveLimits limits;
  if (size_given) limits.announced = size;
  TaskTable* tasks = &c.tasks;
  grid::Grid* grid = &c.grid;
  Loop* loop = &c.loop;
  auto pending = std::make_shared<std::tuple<Reply, TaskSpec, InputStream>>(std::move(reply), std::move(resolve),
                                                                           std::move(req.input));
  MakeSpool(*loop, c.options.spool_dir, "put",
            [env, loop, grid, tasks, pending, spool, params, limits](Result<std::shared_ptr<Spool>> made) {
              if (!made.ok()) return std::get<0>(*pending).Error(made.status());
              *spool = *made;
              ReceiveInput(*loop, std::move(std::get<2>(*pending)), limits, [grid] { return grid->stopping(); },
                           ToSpool(*loop, *spool, nullptr), [env, tasks, pending, params](Result<std::uint64_t> got) {
                             if (!got.ok()) return std::get<0>(*pending).Error(got.status());
                             TwoTasks(tasks, std::move(std::get<0>(*pending)), std::move(std::get<1>(*pending)),
                                      [env, params](const cJSON* r1) {
                                        Json extra = Json::NewObject();
                                        cJSON_AddStringToObject(extra.get(), "cap", StrOf(r1, "cap").c_str());
                                        const cJSON* sz = cJSON_GetObjectItemCaseSensitive(r1, "size");
                                        cJSON_AddNumberToObject(extra.get(), "size", cJSON_IsNumber(sz) ? sz->valuedouble : 0);
                                        return LinkSpec(env, "dir.link", params->get(), StrOf(r1, "parent"),
                                                        StrOf(r1, "name"), "", StrOf(r1, "cap"), true, true,
                                                        std::move(extra));
                                      });
                           });
            });
}

// ---- dir.get ---------------------------------------------------------------------------------------

void DirGet(CommandsState& c, Request& req, Reply& reply) {
  std::string text;
  Status st = StringParams(req, {{"path", &text}});
  if (st.ok() && !req.wait) {
    st = Status::InvalidArgument("dir.get sends the file back on this connection: it cannot answer before it ends");
  }
  auto path = st.ok() ? PathParam(text) : Result<DirPath>(st);
  if (!path.ok()) return reply.Error(path.status());
  DirEnv env = EnvOf(c);
  struct Fetched {
    std::shared_ptr<Spool> spool;
    std::shared_ptr<std::string> memory;  // a mutable file's contents
  };
  auto fetched = std::make_shared<Fetched>();
  TaskSpec spec = NewTaskSpec("dir.get", req, ResolveKeys({&*path}));
  spec.body = [env, fetched, p = *path](TaskRun& run) {
    TaskRun* runp = &run;
    Resolve(env, runp, p, p.components.size(), [env, runp, fetched, p](Result<Resolved> node) {
      if (!node.ok()) return runp->Fail(node.status());
      auto cap = ParseNodeCap(node->cap);
      if (!cap.ok()) return runp->Fail(Status::BadCap(p.ToString() + " is a node of a kind cairn does not know"));
      if (cap->directory) return runp->Fail(Status::InvalidArgument(p.ToString() + " is a directory (cairn ls lists it)"));
      auto snapshot = GridSnapshot(*env.servers);
      if (!snapshot.ok()) return runp->Fail(snapshot.status());
      std::string cap_text = node->cap;
      if (cap->is_mutable()) {
        return RetrieveMutableJob(*env.grid, std::move(*snapshot), *cap, TaskHooks(*runp),
                                  [runp, fetched, cap_text](Result<mf::RetrieveResult> got) {
                                    if (!got.ok()) return runp->Fail(got.status());
                                    Json out = Json::NewObject();
                                    cJSON_AddStringToObject(out.get(), "cap", cap_text.c_str());
                                    cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(got->contents.size()));
                                    cJSON_AddNumberToObject(out.get(), "seqnum", static_cast<double>(got->seqnum));
                                    fetched->memory = std::make_shared<std::string>(std::move(got->contents));
                                    runp->Succeed(std::move(out));
                                  });
      }
      GetJob(*env.grid, std::move(*snapshot), *cap, fetched->spool->path, TaskHooks(*runp),
             [runp, cap_text](Result<immutable::DownloadResult> got) {
               if (!got.ok()) return runp->Fail(got.status());
               Json out = Json::NewObject();
               cJSON_AddStringToObject(out.get(), "cap", cap_text.c_str());
               cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(got->size));
               runp->Succeed(std::move(out));
             });
    });
  };
  Loop* loop = &c.loop;
  TaskTable* tasks = &c.tasks;
  grid::Grid* grid = &c.grid;
  auto pending = std::make_shared<std::pair<Reply, TaskSpec>>(std::move(reply), std::move(spec));
  MakeSpool(*loop, c.options.spool_dir, "get", [loop, grid, tasks, pending, fetched](Result<std::shared_ptr<Spool>> made) {
    Reply& answer = pending->first;
    if (!made.ok()) return answer.Error(made.status());
    if (grid->stopping()) return answer.Error(Status::ShuttingDown("the daemon is stopping"));
    fetched->spool = *made;
    SubmitAndAnswer(*tasks, true, std::move(answer), std::move(pending->second),
                    [loop, fetched](std::shared_ptr<Reply> out, Json result) {
                      if (fetched->memory) {
                        return SendOutput(*loop, std::move(out), Output::Memory(fetched->memory), std::move(result));
                      }
                      const cJSON* size = cJSON_GetObjectItemCaseSensitive(result.get(), "size");
                      std::uint64_t bytes = cJSON_IsNumber(size) ? static_cast<std::uint64_t>(size->valuedouble) : 0;
                      SendOutput(*loop, std::move(out), Output::Spooled(fetched->spool, bytes), std::move(result));
                    });
  });
}


// ---- backup support (control/backup.cc) ------------------------------------------------

struct DirTools {
  DirEnv env;
};

std::shared_ptr<const DirTools> DirToolsOf(CommandsState& c) {
  return std::make_shared<const DirTools>(DirTools{EnvOf(c)});
}

namespace {

// A backup target followed as far as it exists: its caps from the root and
// the names still missing (the path's, then "Archives").
struct TargetWalk {
  DirEnv env;
  TaskRun* run;
  std::vector<std::string> names;
  std::vector<std::string> found;
  Callback<void(Result<Json>)> done;

  void Finish() {
    Json out = Json::NewObject();
    cJSON* f = cJSON_AddArrayToObject(out.get(), "found");
    for (const std::string& cap : found) cJSON_AddItemToArray(f, cJSON_CreateString(cap.c_str()));
    cJSON* m = cJSON_AddArrayToObject(out.get(), "missing");
    for (std::size_t i = found.size() - 1; i < names.size(); ++i) {
      cJSON_AddItemToArray(m, cJSON_CreateString(names[i].c_str()));
    }
    done(std::move(out));
  }

  static void Step(std::shared_ptr<TargetWalk> w) {
    const std::size_t at = w->found.size() - 1;
    if (at == w->names.size()) return w->Finish();
    auto cap = DirCap(w->found.back(), at == 0 ? "the target's root" : "\"" + w->names[at - 1] + "\"");
    if (!cap.ok()) return w->done(cap.status());
    ReadDir(w->env, w->run, *cap, [w, at](Result<DirRead> dir) {
      if (!dir.ok()) return w->done(dir.status());
      auto it = dir->children.find(w->names[at]);
      if (it == dir->children.end()) return w->Finish();
      w->found.push_back(!it->second.rw_uri.empty() ? it->second.rw_uri : it->second.ro_uri);
      Step(w);
    });
  }
};

std::vector<std::string> StringsOf(const cJSON* array) {
  std::vector<std::string> out;
  const cJSON* item;
  cJSON_ArrayForEach(item, array) {
    if (cJSON_IsString(item)) out.emplace_back(item->valuestring);
  }
  return out;
}

// Sets `name` to a directory's write cap (`rw`) or an immutable node's read
// cap (`ro`) in `children`, as a re-appliable change: on a retry, the same
// node already there is success.
Status LinkInto(Children& children, const std::string& name, const std::string& rw, const std::string& ro,
                bool overwrite, bool first, double now) {
  auto it = children.find(name);
  if (!first && it != children.end() && it->second.rw_uri == rw && (rw.empty() ? it->second.ro_uri == ro : true)) {
    return Status();
  }
  return dirnode::SetChild(children, name, rw, ro, nullptr, overwrite, false, now);
}

}  // namespace

Result<std::string> BackupTargetText(const std::string& to_text) {
  CAIRN_TRY_ASSIGN(DirPath path, PathParam(to_text));
  return path.ToString();
}

Result<std::vector<LockKey>> BackupResolveKeys(const std::string& to_text) {
  CAIRN_TRY_ASSIGN(DirPath path, PathParam(to_text));
  return ResolveKeys({&path});
}

void ResolveBackupTarget(std::shared_ptr<const DirTools> tools, TaskRun* run, const std::string& to_text,
                         Callback<void(Result<Json>)> done) {
  auto path = PathParam(to_text);
  auto root = path.ok() ? RootOf(tools->env, *path) : Result<std::string>(path.status());
  auto w = std::make_shared<TargetWalk>(TargetWalk{tools->env, run, {}, {}, std::move(done)});
  if (!root.ok()) return tools->env.loop->Post([w, st = root.status()] { w->done(st); });
  w->names = path->components;
  w->names.push_back("Archives");
  w->found.push_back(*root);
  tools->env.loop->Post([w] { TargetWalk::Step(w); });
}

namespace {

// Links `snapshot` under the target whose existing caps are `found` and
// missing names `missing` (ResolveBackupTarget's answer, read under the
// link task's locks); `finish` runs once.
void LinkSnapshot(const DirEnv& env, TaskRun* runp, std::vector<std::string> found, std::vector<std::string> missing,
                  const std::string& snapshot, const std::string& archive, std::function<void(Status)> finish) {
  const double now = Now();
  if (missing.empty()) {
    // TO/Archives exists: a new entry there, then Latest in TO.
    auto archives = DirCap(found.back(), "Archives");
    auto to = found.size() >= 2 ? DirCap(found[found.size() - 2], "the backup target")
                                : Result<caps::Cap>(Status::InvalidArgument("no backup target"));
    Status ok = archives.ok() ? CheckWritable(*archives, "Archives") : archives.status();
    if (ok.ok()) ok = to.ok() ? CheckWritable(*to, "the backup target") : to.status();
    if (!ok.ok()) return finish(ok);
    Modifier add = [snapshot, archive, now](Children& children, bool first) {
      return LinkInto(children, archive, "", snapshot, true, first, now);
    };
    caps::Cap to_cap = *to;
    return Modify(env, runp, *archives, std::move(add), [env, runp, to_cap, snapshot, now, finish](Result<ModifyOutcome> added) {
      if (!added.ok()) return finish(added.status());
      Modifier latest = [snapshot, now](Children& children, bool first) {
        return LinkInto(children, "Latest", "", snapshot, true, first, now);
      };
      Modify(env, runp, to_cap, std::move(latest), [finish](Result<ModifyOutcome> linked) { finish(linked.status()); });
    });
  }
  // Part of TO/Archives is missing: new directories, from Archives up, each
  // made with its contents, and one change of the deepest that exists.
  auto deepest = DirCap(found.back(), "the backup target's parent");
  Status ok = deepest.ok() ? CheckWritable(*deepest, "the backup target's parent") : deepest.status();
  if (!ok.ok()) return finish(ok);
  struct Chain {
    std::size_t next;  // the index in `missing` of the directory made next
    std::string made;  // the write cap of the last directory made
  };
  auto chain = std::make_shared<Chain>(Chain{missing.size() - 1, {}});
  caps::Cap parent = *deepest;
  // Links the chain's top into the deepest existing directory.
  auto link_top = [env, runp, parent, missing, chain, snapshot, now, finish] {
    const std::string top = chain->made;
    const bool into_target = missing.size() == 1;  // the target exists; only Archives is new
    Modifier change = [missing, top, snapshot, now, into_target](Children& children, bool first) {
      CAIRN_TRY(LinkInto(children, missing[0], top, "", false, first, now));
      if (into_target) CAIRN_TRY(LinkInto(children, "Latest", "", snapshot, true, first, now));
      return Status();
    };
    Modify(env, runp, parent, std::move(change), [finish](Result<ModifyOutcome> done) { finish(done.status()); });
  };
  auto step = std::make_shared<std::function<void()>>();
  // The step holds itself only weakly; each directory's completion holds
  // it until the next step starts.
  std::weak_ptr<std::function<void()>> weak = step;
  *step = [env, runp, missing, chain, snapshot, archive, now, weak, link_top, finish] {
    const std::size_t i = chain->next;
    Children kids;
    Status st;
    if (i == missing.size() - 1) {
      st = dirnode::SetChild(kids, archive, "", snapshot, nullptr, true, false, now);
    } else {
      st = dirnode::SetChild(kids, missing[i + 1], chain->made, "", nullptr, true, false, now);
      if (st.ok() && i == missing.size() - 2) {
        st = dirnode::SetChild(kids, "Latest", "", snapshot, nullptr, true, false, now);
      }
    }
    if (!st.ok()) return finish(st);
    CreateDirWith(env, runp, caps::MutableFormat::kSdmf, std::move(kids),
                  [chain, self = weak.lock(), link_top, finish](Result<caps::Cap> made) {
                    if (!made.ok()) return finish(made.status());
                    chain->made = caps::FormatCap(*made);
                    if (chain->next == 0) return link_top();
                    --chain->next;
                    (*self)();
                  });
  };
  (*step)();
}

}  // namespace

Result<TaskSpec> SnapshotLinkSpec(std::shared_ptr<const DirTools> tools, const cJSON* params, const cJSON* target,
                                  const std::string& to_text, const std::string& snapshot, const std::string& archive,
                                  Json extra) {
  const std::vector<std::string> found = StringsOf(cJSON_GetObjectItemCaseSensitive(target, "found"));
  const std::vector<std::string> missing = StringsOf(cJSON_GetObjectItemCaseSensitive(target, "missing"));
  if (found.empty() || (missing.empty() && found.size() < 2)) return Status::Internal("backup target not resolved");
  CAIRN_TRY_ASSIGN(std::string target_text, BackupTargetText(to_text));
  // The keys, from what the first task found: the directories the link
  // changes. The body reads the target again under them (another backup of
  // the target may have made TO or Archives meanwhile), and holds
  // backup/<TO> so that the links of two backups of one target run one
  // after the other.
  TaskSpec spec;
  spec.kind = "backup.link";
  spec.params = Json(cJSON_Duplicate(params, true));
  if (missing.empty()) {
    CAIRN_TRY_ASSIGN(caps::Cap archives, DirCap(found.back(), "Archives"));
    CAIRN_TRY_ASSIGN(caps::Cap to, DirCap(found[found.size() - 2], "the backup target"));
    CAIRN_TRY(CheckWritable(archives, "Archives"));
    CAIRN_TRY(CheckWritable(to, "the backup target"));
    CAIRN_TRY_ASSIGN(spec.keys, ChangeKeys({&archives, &to}));
  } else {
    CAIRN_TRY_ASSIGN(caps::Cap deepest, DirCap(found.back(), "the backup target's parent"));
    CAIRN_TRY(CheckWritable(deepest, "the backup target's parent"));
    CAIRN_TRY_ASSIGN(spec.keys, ChangeKeys({&deepest}));
  }
  CAIRN_TRY_ASSIGN(std::vector<LockKey> resolve_keys, BackupResolveKeys(to_text));
  for (LockKey& k : resolve_keys) {
    if (k.name != "servers") spec.keys.push_back(std::move(k));
  }
  spec.keys.push_back(LockKeys::Backup(target_text));
  auto shared_extra = std::make_shared<Json>(std::move(extra));
  const DirEnv env = tools->env;
  spec.body = [env, tools, to_text, snapshot, archive, shared_extra](TaskRun& run) {
    TaskRun* runp = &run;
    ResolveBackupTarget(tools, runp, to_text, [env, runp, snapshot, archive, shared_extra](Result<Json> now_found) {
      if (!now_found.ok()) return runp->Fail(now_found.status());
      LinkSnapshot(env, runp, StringsOf(cJSON_GetObjectItemCaseSensitive(now_found->get(), "found")),
                   StringsOf(cJSON_GetObjectItemCaseSensitive(now_found->get(), "missing")), snapshot, archive,
                   [runp, snapshot, archive, shared_extra](Status linked) {
                     if (!linked.ok()) return runp->Fail(linked);
                     // The result: the first task's, with the snapshot's links.
                     Json out(cJSON_Duplicate(shared_extra->get(), true));
                     cJSON_AddStringToObject(out.get(), "snapshot", snapshot.c_str());
                     cJSON_AddStringToObject(out.get(), "archive", archive.c_str());
                     runp->Succeed(std::move(out));
                   });
    });
  };
  return spec;
}

void ChainTasks(TaskTable* tasks, Reply reply, TaskSpec first,
                std::function<Result<TaskSpec>(const cJSON* first_result)> then) {
  TwoTasks(tasks, std::move(reply), std::move(first), std::move(then));
}

}  // namespace cairn::control
