// THE control command table. Loop thread only.
//
// Every handler validates and copies its parameters before anything
// asynchronous happens (aptly #1573: a recycled request context). Mutating
// methods run as tasks (src/control/tasks.cc): they name the resources they
// touch, and their body runs only once those are held.
#include "cairn/control/commands.h"

#include <cjson/cJSON.h>

#include <map>

#include "cairn/caps/cap.h"
#include "cairn/control/protocol.h"
#include "cairn/core/version.h"
#include "cairn/crypto/hash.h"
#include "control/name_table.h"
#include "control/handlers.h"
#include "control/tasks.h"

namespace cairn::control {

Status NoParams(const Request& req) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return r.status();
  return r->Finish();
}

namespace {

// Reads {"id": N} (and nothing else).
Result<TaskId> TaskIdParam(const Request& req) {
  CAIRN_TRY_ASSIGN(JsonObjectReader r, JsonObjectReader::Open(req.params.get(), "params."));
  std::uint64_t id = 0;
  CAIRN_TRY(r.Uint("id", &id, true));
  CAIRN_TRY(r.Finish());
  return id;
}

}  // namespace

// Submits a task and answers the request: at once with {"task", "state"}
// when the client asked not to wait, else with the task's result or error.
void RunTask(CommandsState& c, Request& req, Reply& reply, TaskSpec spec) {
  RunTaskOn(c.tasks, req.wait, std::move(reply), std::move(spec));
}

void RunTaskOn(TaskTable& task_table, bool wait, Reply reply, TaskSpec spec) {
  TaskTable* tasks = &task_table;
  // Shared by the progress watcher and the final answer.
  auto shared = std::make_shared<Reply>(std::move(reply));
  tasks->Submit(std::move(spec), [tasks, wait, shared](Result<TaskId> id) mutable {
    if (!id.ok()) return shared->Error(id.status());
    if (!wait) {
      Json out = Json::NewObject();
      cJSON_AddNumberToObject(out.get(), "task", static_cast<double>(*id));
      cJSON_AddStringToObject(out.get(), "state", "queued");
      // What it waits for, as tasks.show tells it: {key, held_by} per busy key.
      auto shown = tasks->Show(*id);
      const cJSON* waiting = shown.ok() ? cJSON_GetObjectItemCaseSensitive(shown->get(), "waiting_on") : nullptr;
      if (waiting) cJSON_AddItemToObject(out.get(), "waiting_on", cJSON_Duplicate(waiting, true));
      return shared->Result(std::move(out));
    }
    TaskId task = *id;
    tasks->WatchProgress(task, [shared](Json event) { shared->Progress(std::move(event)); });
    tasks->Wait(task, [task, shared](Result<Json> record) mutable {
      if (!record.ok()) return shared->Error(record.status());
      const cJSON* o = record->get();
      const cJSON* error = cJSON_GetObjectItemCaseSensitive(o, "error");
      if (error) return shared->Error(ErrorFromJson(error).WithContext("task " + std::to_string(task)));
      const cJSON* result = cJSON_GetObjectItemCaseSensitive(o, "result");
      Json out(result ? cJSON_Duplicate(result, true) : cJSON_CreateObject());
      cJSON_AddNumberToObject(out.get(), "task", static_cast<double>(task));
      shared->Result(std::move(out));
    });
  });
}

namespace {

using Handler = void (*)(CommandsState& c, Request& req, Reply& reply);

void Hello(CommandsState&, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string client;
  Status st = r->String("client", &client);
  if (st.ok()) st = r->Finish();
  if (!st.ok()) return reply.Error(st);
  Json out = Json::NewObject();
  cJSON* protocols = cJSON_AddArrayToObject(out.get(), "protocol");
  cJSON_AddItemToArray(protocols, cJSON_CreateNumber(kProtocolVersion));
  cJSON_AddStringToObject(out.get(), "server", (std::string("cairnd ") + kVersion).c_str());
  cJSON* methods = cJSON_AddArrayToObject(out.get(), "methods");
  for (const std::string& m : Commands::Methods()) cJSON_AddItemToArray(methods, cJSON_CreateString(m.c_str()));
  reply.Result(std::move(out));
}

void GetStatus(CommandsState& c, Request& req, Reply& reply) {
  Status st = NoParams(req);
  if (!st.ok()) return reply.Error(st);
  reply.Result(c.node.StatusJson());
}

void Metrics(CommandsState& c, Request& req, Reply& reply) {
  Status st = NoParams(req);
  if (!st.ok()) return reply.Error(st);
  Json out = Json::NewObject();
  cJSON_AddStringToObject(out.get(), "text", c.node.MetricsText().c_str());
  reply.Result(std::move(out));
}

void TasksList(CommandsState& c, Request& req, Reply& reply) {
  Status st = NoParams(req);
  if (!st.ok()) return reply.Error(st);
  Json out = Json::NewObject();
  cJSON_AddItemToObject(out.get(), "tasks", c.tasks.List().release());
  reply.Result(std::move(out));
}

void TasksShow(CommandsState& c, Request& req, Reply& reply) {
  auto id = TaskIdParam(req);
  if (!id.ok()) return reply.Error(id.status());
  auto record = c.tasks.Show(*id);
  if (!record.ok()) return reply.Error(record.status());
  reply.Result(std::move(*record));
}

void TasksWait(CommandsState& c, Request& req, Reply& reply) {
  auto id = TaskIdParam(req);
  if (!id.ok()) return reply.Error(id.status());
  c.tasks.Wait(*id, [reply = std::move(reply)](Result<Json> record) mutable {
    if (!record.ok()) return reply.Error(record.status());
    reply.Result(std::move(*record));
  });
}

void TasksCancel(CommandsState& c, Request& req, Reply& reply) {
  auto id = TaskIdParam(req);
  if (!id.ok()) return reply.Error(id.status());
  auto state = c.tasks.Cancel(*id);
  if (!state.ok()) return reply.Error(state.status());
  Json out = Json::NewObject();
  cJSON_AddNumberToObject(out.get(), "task", static_cast<double>(*id));
  cJSON_AddStringToObject(out.get(), "state", TaskStateName(*state));
  cJSON_AddBoolToObject(out.get(), "cancel_requested", true);
  reply.Result(std::move(out));
}

// ---- aliases ----------------------------------------------------------------
// Each mutating alias method runs as a task holding alias/<name> (both names
// for a rename); the check and the change happen inside one LMDB transaction
// after the locks are held (control/aliases.h).

std::string AliasKey(const std::string& name) { return "alias/" + name; }

Json AliasJson(const std::string& name, const std::string& cap) {
  Json out = Json::NewObject();
  cJSON_AddStringToObject(out.get(), "name", name.c_str());
  cJSON_AddStringToObject(out.get(), "cap", cap.c_str());
  return out;
}


}  // namespace

// Reads the named string parameters (all required) and nothing else.
Status StringParams(const Request& req, std::initializer_list<std::pair<const char*, std::string*>> fields) {
  CAIRN_TRY_ASSIGN(JsonObjectReader r, JsonObjectReader::Open(req.params.get(), "params."));
  for (const auto& [key, out] : fields) CAIRN_TRY(r.String(key, out, true));
  return r.Finish();
}

TaskSpec NewTaskSpec(const char* kind, const Request& req, std::vector<LockKey> keys) {
  TaskSpec spec;
  spec.kind = kind;
  spec.params = Json(cJSON_Duplicate(req.params.get(), true));
  spec.keys = std::move(keys);
  spec.requester_uid = req.peer_uid;
  return spec;
}

namespace {

void AliasAdd(CommandsState& c, Request& req, Reply& reply) {
  std::string name, cap_text;
  Status st = StringParams(req, {{"name", &name}, {"cap", &cap_text}});
  if (st.ok()) st = NameTable::CheckName(name);
  auto cap = caps::ParseCap(cap_text);
  if (st.ok() && !cap.ok()) st = cap.status();
  if (!st.ok()) return reply.Error(st);
  std::string canonical = caps::FormatCap(*cap);
  TaskSpec spec = NewTaskSpec("alias.add", req, {LockKey{AliasKey(name)}});
  NameTable* aliases = &c.aliases;
  spec.body = [aliases, name, canonical](TaskRun& run) {
    TaskRun* runp = &run;
    aliases->Add(name, canonical, [runp, name, canonical](Status added) {
      if (!added.ok()) return runp->Fail(added);
      runp->Succeed(AliasJson(name, canonical));
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

void AliasRename(CommandsState& c, Request& req, Reply& reply) {
  std::string from, to;
  Status st = StringParams(req, {{"from", &from}, {"to", &to}});
  if (st.ok()) st = NameTable::CheckName(from);
  if (st.ok()) st = NameTable::CheckName(to);
  if (!st.ok()) return reply.Error(st);
  TaskSpec spec = NewTaskSpec("alias.rename", req, {LockKey{AliasKey(from)}, LockKey{AliasKey(to)}});
  NameTable* aliases = &c.aliases;
  spec.body = [aliases, from, to](TaskRun& run) {
    TaskRun* runp = &run;
    aliases->Rename(from, to, [runp, from, to](Status renamed) {
      if (!renamed.ok()) return runp->Fail(renamed);
      Json out = Json::NewObject();
      cJSON_AddStringToObject(out.get(), "from", from.c_str());
      cJSON_AddStringToObject(out.get(), "to", to.c_str());
      runp->Succeed(std::move(out));
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

void AliasRemove(CommandsState& c, Request& req, Reply& reply) {
  std::string name;
  Status st = StringParams(req, {{"name", &name}});
  if (st.ok()) st = NameTable::CheckName(name);
  if (!st.ok()) return reply.Error(st);
  // Refused, not queued, while another task holds or awaits the name.
  LockKey key{AliasKey(name)};
  key.refuse_if_busy = true;
  TaskSpec spec = NewTaskSpec("alias.remove", req, {key});
  NameTable* aliases = &c.aliases;
  spec.body = [aliases, name](TaskRun& run) {
    TaskRun* runp = &run;
    aliases->Remove(name, [runp, name](Result<std::string> cap) {
      if (!cap.ok()) return runp->Fail(cap.status());
      runp->Succeed(AliasJson(name, *cap));
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

void AliasList(CommandsState& c, Request& req, Reply& reply) {
  Status st = NoParams(req);
  if (!st.ok()) return reply.Error(st);
  auto all = c.aliases.List();
  if (!all.ok()) return reply.Error(all.status());
  Json out = Json::NewObject();
  cJSON* list = cJSON_AddArrayToObject(out.get(), "aliases");
  for (const auto& [name, cap] : *all) cJSON_AddItemToArray(list, AliasJson(name, cap).release());
  reply.Result(std::move(out));
}

void AliasGet(CommandsState& c, Request& req, Reply& reply) {
  std::string name;
  Status st = StringParams(req, {{"name", &name}});
  if (st.ok()) st = NameTable::CheckName(name);
  if (!st.ok()) return reply.Error(st);
  auto cap = c.aliases.Get(name);
  if (!cap.ok()) return reply.Error(cap.status());
  reply.Result(AliasJson(name, *cap));
}

// Test hook: reads the request's data frames to the end (waiting
// `delay_ms` before each read, to be a slow consumer) and answers with their
// count, total size and SHA-256d, so that tests can check attachments and
// back-pressure over the real socket.
void DebugDigest(CommandsState& c, Request& req, Reply& reply) {
  if (!c.options.test_hooks) return reply.Error(Status::UnknownMethod("unknown method \"debug.digest\""));
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::uint64_t delay_ms = 0;
  Status st = r->Uint("delay_ms", &delay_ms, false, 10000);
  if (st.ok()) st = r->Finish();
  if (!st.ok()) return reply.Error(st);
  struct Digest {
    Reply reply;
    InputStream input;
    Loop* loop;
    std::uint64_t delay_ms;
    crypto::Sha256dHasher hasher;
    std::uint64_t bytes = 0, frames = 0;
    std::unique_ptr<Timer> timer;
    void Next(std::shared_ptr<Digest> self) {
      if (delay_ms == 0) return Read(self);
      timer = loop->PostAfter(delay_ms, [self] { self->Read(self); });
    }
    void Read(std::shared_ptr<Digest> self) {
      input.Read([self](Result<InputChunk> chunk) {
        if (!chunk.ok()) return self->reply.Error(chunk.status());
        self->frames++;
        self->bytes += chunk->data.size();
        self->hasher.Update(chunk->data);
        if (!chunk->eof) return self->Next(self);
        std::string d = self->hasher.Finish();
        static const char kHex[] = "0123456789abcdef";
        std::string hex;
        for (unsigned char ch : d) {
          hex += kHex[ch >> 4];
          hex += kHex[ch & 15];
        }
        Json r = Json::NewObject();
        cJSON_AddNumberToObject(r.get(), "frames", static_cast<double>(self->frames));
        cJSON_AddNumberToObject(r.get(), "bytes", static_cast<double>(self->bytes));
        cJSON_AddStringToObject(r.get(), "sha256d", hex.c_str());
        self->reply.Result(std::move(r));
      });
    }
  };
  auto d = std::make_shared<Digest>(Digest{std::move(reply), std::move(req.input), &c.loop, delay_ms, {}, 0, 0, {}});
  d->Next(d);
}

// Test hook: answers with `bytes` bytes (byte i is i * 7 mod 251) in data
// frames of `chunk` bytes, waiting for the client to read between chunks.
void DebugEmit(CommandsState& c, Request& req, Reply& reply) {
  if (!c.options.test_hooks) return reply.Error(Status::UnknownMethod("unknown method \"debug.emit\""));
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::uint64_t bytes = 0, chunk = 262144;
  Status st = r->Uint("bytes", &bytes, true, 1ull << 32);
  if (st.ok()) st = r->Uint("chunk", &chunk, false, 1 << 20);
  if (st.ok() && chunk == 0) st = Status::InvalidArgument("params.chunk must be at least 1");
  if (st.ok()) st = r->Finish();
  if (!st.ok()) return reply.Error(st);
  struct Emit {
    Reply reply;
    std::uint64_t total, chunk, sent = 0;
    void Next(std::shared_ptr<Emit> self) {
      if (!reply.connected()) return reply.Error(Status::Unavailable("the client left"));
      std::uint64_t n = std::min(chunk, total - sent);
      std::string data(static_cast<std::size_t>(n), '\0');
      for (std::uint64_t i = 0; i < n; ++i) data[i] = static_cast<char>(((sent + i) * 7) % 251);
      sent += n;
      reply.Data(std::move(data), sent == total);
      if (sent == total) {
        Json res = Json::NewObject();
        cJSON_AddNumberToObject(res.get(), "bytes", static_cast<double>(total));
        return reply.Result(std::move(res));
      }
      reply.WhenWritable([self] { self->Next(self); });
    }
  };
  auto e = std::make_shared<Emit>(Emit{std::move(reply), bytes, chunk});
  e->reply.WhenWritable([e] { e->Next(e); });
}

// Test hook: a task that holds `keys` for `ms` milliseconds, then succeeds
// (or fails with `fail`, a code name). Lets tests make lock contention
// deterministic over the real socket.
void DebugHold(CommandsState& c, Request& req, Reply& reply) {
  if (!c.options.test_hooks) return reply.Error(Status::UnknownMethod("unknown method \"debug.hold\""));
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::uint64_t ms = 0;
  bool shared = false;
  std::string fail;
  Status st = r->Uint("ms", &ms, true, 600000);
  if (st.ok()) st = r->Bool("shared", &shared);
  if (st.ok()) st = r->String("fail", &fail);
  Code fail_code = Code::kOk;
  if (st.ok() && !fail.empty() && (!CodeFromName(fail, &fail_code) || fail_code == Code::kOk)) {
    st = Status::InvalidArgument("params.fail must be an error code name");
  }
  std::vector<LockKey> keys;
  const cJSON* list = cJSON_GetObjectItemCaseSensitive(req.params.get(), "keys");
  r->Accept("keys");
  if (st.ok() && (!cJSON_IsArray(list) || cJSON_GetArraySize(list) == 0)) {
    st = Status::InvalidArgument("params.keys must be a non-empty array of strings");
  }
  const cJSON* k;
  cJSON_ArrayForEach(k, list) {
    if (!cJSON_IsString(k)) {
      st = Status::InvalidArgument("params.keys must be a non-empty array of strings");
      break;
    }
    keys.push_back(LockKey{k->valuestring, shared ? LockMode::kShared : LockMode::kExclusive});
  }
  if (st.ok()) st = r->Finish();
  if (!st.ok()) return reply.Error(st);

  TaskSpec spec;
  spec.kind = "debug.hold";
  spec.params = Json(cJSON_Duplicate(req.params.get(), true));
  spec.keys = std::move(keys);
  spec.requester_uid = req.peer_uid;
  Loop* loop = &c.loop;
  auto* holds = &c.holds;
  spec.body = [loop, holds, ms, fail_code](TaskRun& run) {
    TaskId id = run.id();
    TaskRun* runp = &run;
    run.Progress("holding", 0, ms);
    (*holds)[id] = loop->PostAfter(ms, [holds, id, runp, ms, fail_code] {
      holds->erase(id);
      if (runp->cancel_requested()) return runp->Fail(Status::Cancelled("cancelled while holding"));
      runp->Progress("holding", ms, ms);
      if (fail_code != Code::kOk) return runp->Fail(Status(fail_code, "debug.hold was asked to fail"));
      Json out = Json::NewObject();
      cJSON_AddNumberToObject(out.get(), "held_ms", static_cast<double>(ms));
      runp->Succeed(std::move(out));
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

struct Method {
  const char* name;
  Handler handler;
};

// One line per method.
constexpr Method kMethods[] = {
    {"hello", Hello},
    {"status", GetStatus},
    {"metrics", Metrics},
    {"tasks.list", TasksList},
    {"tasks.show", TasksShow},
    {"tasks.wait", TasksWait},
    {"tasks.cancel", TasksCancel},
    {"alias.add", AliasAdd},
    {"alias.rename", AliasRename},
    {"alias.remove", AliasRemove},
    {"alias.list", AliasList},
    {"alias.get", AliasGet},
    {"servers.add", ServersAdd},
    {"servers.remove", ServersRemove},
    {"servers.list", ServersList},
    {"put", FilePut},
    {"get", FileGet},
    {"mutable.create", MutableCreate},
    {"mutable.put", MutablePut},
    {"mutable.get", MutableGet},
    {"debug.hold", DebugHold},
    {"debug.digest", DebugDigest},
    {"debug.emit", DebugEmit},
};

}  // namespace

Commands::Commands(Loop& loop, const Limits& limits, NodeView& node, CommandsOptions options)
    : loop_(loop),
      node_(node),
      options_(options),
      tasks_(std::make_unique<TaskTable>(
          loop, TaskLimits{static_cast<std::size_t>(limits.tasks_max_active),
                           static_cast<std::size_t>(limits.tasks_max_per_key),
                           static_cast<std::size_t>(limits.task_history)})),
      grid_ops_(std::make_shared<GridOps>()) {}

Commands::~Commands() { holds_.clear(); }

Status Commands::Open(const std::string& dir) {
  if (!options_.spool_dir.empty()) CAIRN_TRY(OpenSpool(options_.spool_dir));
  CAIRN_TRY(tasks_->Open(dir));
  aliases_ = std::make_unique<NameTable>(tasks_->store(), "aliases", "alias", 100000);
  CAIRN_TRY(aliases_->Open());
  servers_ = std::make_unique<NameTable>(tasks_->store(), "servers", "server", 256);
  return servers_->Open();
}

void Commands::Close(Task done) {
  holds_.clear();  // test holds end with the daemon
  // Running put and get tasks stop at their next step (Cancelled-like
  // ShuttingDown) and close their clients; their records end before the
  // table closes.
  grid_ops_->stopping = true;
  if (grid_ops_->active == 0) return tasks_->Close(std::move(done));
  TaskTable* tasks = tasks_.get();
  auto shared_done = std::make_shared<Task>(std::move(done));
  grid_ops_->on_idle = [tasks, shared_done] { tasks->Close(std::move(*shared_done)); };
}

std::vector<std::string> Commands::Methods() {
  std::vector<std::string> out;
  for (const Method& m : kMethods) out.emplace_back(m.name);
  return out;
}

Json Commands::TaskSummary() const {
  Json out = Json::NewObject();
  cJSON_AddNumberToObject(out.get(), "active", static_cast<double>(tasks_->active()));
  Json all = tasks_->List();
  cJSON_AddNumberToObject(out.get(), "kept", static_cast<double>(cJSON_GetArraySize(all.get())));
  cJSON* by_state = cJSON_AddObjectToObject(out.get(), "by_state");
  for (TaskState s : {TaskState::kQueued, TaskState::kRunning, TaskState::kSucceeded, TaskState::kFailed,
                      TaskState::kCancelled}) {
    cJSON_AddNumberToObject(by_state, TaskStateName(s), 0);
  }
  const cJSON* t;
  cJSON_ArrayForEach(t, all.get()) {
    cJSON* n = cJSON_GetObjectItemCaseSensitive(by_state, cJSON_GetObjectItemCaseSensitive(t, "state")->valuestring);
    if (n) cJSON_SetNumberValue(n, n->valuedouble + 1);
  }
  return out;
}

void Commands::Handle(Request request, Reply reply) {
  CommandsState state{loop_, node_, options_, *tasks_, *aliases_, *servers_, holds_, client_tls_, grid_ops_};
  for (const Method& m : kMethods) {
    if (request.method == m.name) return m.handler(state, request, reply);
  }
  reply.Error(Status::UnknownMethod("unknown method \"" + request.method + "\""));
}

}  // namespace cairn::control
