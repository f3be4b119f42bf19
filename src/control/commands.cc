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
#include "cairn/core/log.h"
#include "cairn/core/version.h"
#include "cairn/crypto/hash.h"
#include "control/backup.h"
#include "control/backup_schedule.h"
#include "control/check.h"
#include "control/deep_check.h"
#include "control/maintenance.h"
#include "control/dirs.h"
#include "control/handlers.h"
#include "control/name_table.h"
#include "control/tasks.h"
#include "control/transfer.h"

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

void RunTask(CommandsState& c, Request& req, Reply& reply, TaskSpec spec) {
  SubmitAndAnswer(c.tasks, req.wait, std::move(reply), std::move(spec));
}

JobHooks TaskHooks(TaskRun& run) {
  TaskRun* runp = &run;
  JobHooks hooks;
  hooks.progress = [runp](const std::string& phase, std::uint64_t done, std::uint64_t total) {
    runp->Progress(phase, done, total);
  };
  hooks.stop = [runp] { return runp->cancel_requested(); };
  return hooks;
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
// after the locks are held (control/name_table.h).

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
  TaskSpec spec = NewTaskSpec("alias.add", req, {LockKeys::Alias(name, LockMode::kExclusive)});
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
  TaskSpec spec = NewTaskSpec("alias.rename", req, {LockKeys::Alias(from, LockMode::kExclusive), LockKeys::Alias(to, LockMode::kExclusive)});
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
  LockKey key = LockKeys::Alias(name, LockMode::kExclusive);
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
  };
  auto d = std::make_shared<Digest>(Digest{std::move(reply), std::move(req.input), &c.loop, delay_ms, {}, 0, 0, {}});
  // Waits `delay_ms` before each read: after each chunk but the last, and
  // before the first.
  auto sink = [d](std::shared_ptr<std::string> data, std::uint64_t, bool eof, Callback<void(Status)> consumed) {
    d->frames++;
    d->bytes += data->size();
    d->hasher.Update(*data);
    if (eof || d->delay_ms == 0) return consumed(Status());
    auto shared = std::make_shared<Callback<void(Status)>>(std::move(consumed));
    d->timer = d->loop->PostAfter(d->delay_ms, [shared] { (*shared)(Status()); });
  };
  auto receive = [d, sink] {
    ReceiveInput(*d->loop, std::move(d->input), ReceiveLimits{}, nullptr, sink, [d](Result<std::uint64_t> got) {
      if (!got.ok()) return d->reply.Error(got.status());
      std::string digest = d->hasher.Finish();
      static const char kHex[] = "0123456789abcdef";
      std::string hex;
      for (unsigned char ch : digest) {
        hex += kHex[ch >> 4];
        hex += kHex[ch & 15];
      }
      Json out = Json::NewObject();
      cJSON_AddNumberToObject(out.get(), "frames", static_cast<double>(d->frames));
      cJSON_AddNumberToObject(out.get(), "bytes", static_cast<double>(d->bytes));
      cJSON_AddStringToObject(out.get(), "sha256d", hex.c_str());
      d->reply.Result(std::move(out));
    });
  };
  if (delay_ms == 0) return receive();
  d->timer = c.loop.PostAfter(delay_ms, receive);
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
  Output output;
  output.size = bytes;
  output.read_at = [](std::uint64_t offset, std::size_t n) -> Result<std::string> {
    std::string data(n, '\0');
    for (std::size_t i = 0; i < n; ++i) data[i] = static_cast<char>(((offset + i) * 7) % 251);
    return data;
  };
  Json result = Json::NewObject();
  cJSON_AddNumberToObject(result.get(), "bytes", static_cast<double>(bytes));
  SendOutput(c.loop, std::make_shared<Reply>(std::move(reply)), std::move(output), std::move(result),
             static_cast<std::size_t>(chunk));
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
    {"alias.create", AliasCreate},
    {"alias.import", AliasImport},
    {"servers.add", ServersAdd},
    {"servers.remove", ServersRemove},
    {"servers.import", ServersImport},
    {"servers.list", ServersList},
    {"put", FilePut},
    {"get", FileGet},
    {"mutable.create", MutableCreate},
    {"mutable.put", MutablePut},
    {"mutable.get", MutableGet},
    {"check", FileCheck},
    {"deep-check", DeepCheck},
    {"maintenance.set", MaintenanceSet},
    {"maintenance.show", MaintenanceShow},
    {"maintenance.off", MaintenanceOff},
    {"dir.mkdir", DirMkdir},
    {"dir.ls", DirLs},
    {"dir.ln", DirLn},
    {"dir.mv", DirMv},
    {"dir.rm", DirRm},
    {"dir.put", DirPut},
    {"dir.get", DirGet},
    {"backup", BackupRun},
    {"backup.schedule.add", BackupScheduleAdd},
    {"backup.schedule.list", BackupScheduleList},
    {"backup.schedule.remove", BackupScheduleRemove},
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
      grid_(std::make_unique<grid::Grid>(loop, grid::GridOptions::FromLimits(limits, options.private_dir))) {}

Commands::~Commands() { holds_.clear(); }

Json Commands::MaintenanceStatus() const {
  if (!maintenance_) return Json::NewObject();
  return maintenance_->StatusJson();
}

Json Commands::BackupScheduleStatus() const {
  if (!backup_schedules_) return Json::NewObject();
  return backup_schedules_->StatusJson();
}

Status Commands::Open(const std::string& dir) {
  if (!options_.spool_dir.empty()) CAIRN_TRY(OpenSpool(options_.spool_dir));
  CAIRN_TRY(tasks_->Open(dir));
  aliases_ = std::make_unique<NameTable>(tasks_->store(), "aliases", "alias", 100000);
  CAIRN_TRY(aliases_->Open());
  servers_ = std::make_unique<NameTable>(tasks_->store(), "servers", "server", 256);
  CAIRN_TRY(servers_->Open());
  CommandsState state{loop_, node_, options_, *tasks_, *aliases_, *servers_, holds_, *grid_};
  maintenance_ = std::make_unique<Maintenance>(CheckEnvOf(state));
  // The node runs without a schedule rather than not at all; the methods
  // then answer unavailable.
  if (Status ms = maintenance_->Open(tasks_->store()); !ms.ok()) {
    CAIRN_LOG(Error, "maintenance schedule not available: %s", ms.ToString().c_str());
    maintenance_.reset();
  }
  // A scheduled run is the `backup` method's own request, answered to no one.
  BackupScheduleEnv backup_env{&loop_, tasks_.get(), [this](Request& req, Reply& reply) {
                                 CommandsState now{loop_, node_, options_, *tasks_, *aliases_, *servers_, holds_, *grid_,
                                                   maintenance_.get()};
                                 now.backup_schedules = backup_schedules_.get();
                                 BackupRun(now, req, reply);
                               }};
  backup_schedules_ = std::make_unique<BackupSchedules>(std::move(backup_env));
  if (Status bs = backup_schedules_->Open(tasks_->store()); !bs.ok()) {
    CAIRN_LOG(Error, "backup schedules not available: %s", bs.ToString().c_str());
    backup_schedules_.reset();
  }
  return Status::Ok();
}

void Commands::Close(Task done) {
  holds_.clear();  // test holds end with the daemon
  if (maintenance_) maintenance_->Close();  // no new passes
  if (backup_schedules_) backup_schedules_->Close();  // no new scheduled backups
  // Running grid jobs stop at their next step (ShuttingDown or Cancelled)
  // and close their sessions, so their records end before the table
  // closes; the pooled GBS clients close after the last one.
  TaskTable* tasks = tasks_.get();
  grid_->Close([tasks, done = std::move(done)]() mutable { tasks->Close(std::move(done)); });
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
  CommandsState state{loop_, node_, options_, *tasks_, *aliases_, *servers_, holds_, *grid_, maintenance_.get()};
  state.backup_schedules = backup_schedules_.get();
  for (const Method& m : kMethods) {
    if (request.method == m.name) return m.handler(state, request, reply);
  }
  reply.Error(Status::UnknownMethod("unknown method \"" + request.method + "\""));
}

}  // namespace cairn::control
