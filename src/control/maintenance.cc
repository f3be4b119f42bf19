// The maintenance schedule (maintenance.h, docs/check.md): its table in the
// control store, its timer, the pass task and the three control methods.
// Loop thread only.
#include "control/maintenance.h"

#include <cjson/cJSON.h>
#include <lmdb.h>

#include <algorithm>

#include "cairn/core/clock.h"
#include "cairn/core/log.h"
#include "control/deep_check.h"
#include "control/task_store.h"

namespace cairn::control {
namespace {

constexpr const char* kScheduleKey = "schedule";
constexpr const char* kStateKey = "state";
// How long a due pass waits while other tasks run before it looks again.
constexpr std::uint64_t kDeferMs = 1000;

MDB_val Val(const std::string& s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

const cJSON* Obj(const cJSON* o, const char* k) { return o ? cJSON_GetObjectItemCaseSensitive(o, k) : nullptr; }
double Num(const cJSON* o, const char* k) {
  const cJSON* v = Obj(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}
std::uint64_t U64(const cJSON* o, const char* k) { return static_cast<std::uint64_t>(Num(o, k)); }

Json ScheduleJson(const MaintenanceSchedule& s) {
  Json out = Json::NewObject();
  cJSON_AddNumberToObject(out.get(), "every_s", static_cast<double>(s.every_s));
  cJSON_AddBoolToObject(out.get(), "repair", s.repair);
  cJSON_AddBoolToObject(out.get(), "add_lease", s.add_lease);
  cJSON_AddNumberToObject(out.get(), "verify_every_s", static_cast<double>(s.verify_every_s));
  if (s.test_hold_ms) cJSON_AddNumberToObject(out.get(), "test_hold_ms", static_cast<double>(s.test_hold_ms));
  return out;
}

MaintenanceSchedule ScheduleOf(const cJSON* o) {
  MaintenanceSchedule s;
  s.every_s = U64(o, "every_s");
  s.repair = cJSON_IsTrue(Obj(o, "repair"));
  s.add_lease = cJSON_IsTrue(Obj(o, "add_lease"));
  s.verify_every_s = U64(o, "verify_every_s");
  s.test_hold_ms = U64(o, "test_hold_ms");
  return s;
}

}  // namespace

Maintenance::Maintenance(CheckEnv env) : env_(std::move(env)), alive_(std::make_shared<bool>(true)) {}

Maintenance::~Maintenance() { *alive_ = false; }

Status Maintenance::Open(TaskStore& store) {
  store_ = &store;
  CAIRN_TRY_ASSIGN(dbi_, store.OpenTable("maintenance"));
  std::string schedule, state;
  MDB_dbi dbi = dbi_;
  CAIRN_TRY(store.Read([&](MDB_txn* txn) -> Status {
    for (auto [key, out] : {std::pair<const char*, std::string*>{kScheduleKey, &schedule}, {kStateKey, &state}}) {
      std::string k(key);
      MDB_val kv = Val(k), v;
      int rc = mdb_get(txn, dbi, &kv, &v);
      if (rc == MDB_NOTFOUND) continue;
      if (rc != 0) return Status::IoError(std::string("maintenance table: ") + mdb_strerror(rc));
      out->assign(static_cast<const char*>(v.mv_data), v.mv_size);
    }
    return Status();
  }));
  if (!schedule.empty()) {
    auto j = Json::Parse(schedule);
    if (j.ok()) schedule_ = ScheduleOf(j->get());
  }
  std::uint64_t last_finished = 0;
  if (!state.empty()) {
    auto j = Json::Parse(state);
    if (j.ok()) {
      passes_ = U64(j->get(), "passes");
      last_verify_ms_ = U64(j->get(), "last_verify_ms");
      const cJSON* last = Obj(j->get(), "last");
      if (cJSON_IsObject(last)) {
        last_ = Json(cJSON_Duplicate(last, true));
        last_finished = U64(last, "finished_ms");
      }
    }
  }
  if (schedule_.every_s) {
    // Due one interval after the last pass ended (at once if that is past).
    const std::uint64_t now = clock::UnixMs();
    const std::uint64_t due = last_finished ? last_finished + schedule_.every_s * 1000 : now + schedule_.every_s * 1000;
    Arm(due > now ? due - now : 0);
  }
  return Status();
}

void Maintenance::Close() {
  closed_ = true;
  timer_.reset();
  hold_.reset();
}

void Maintenance::Arm(std::uint64_t delay_ms) {
  timer_.reset();
  if (closed_ || !schedule_.every_s) {
    next_run_ms_ = 0;
    return;
  }
  next_run_ms_ = clock::UnixMs() + delay_ms;
  timer_ = env_.loop->PostAfter(delay_ms, [this, alive = alive_] {
    if (*alive) Fire();
  });
}

void Maintenance::Fire() {
  timer_.reset();
  if (closed_ || running_ || !schedule_.every_s) return;
  // Client work first: a pass waits while any other task is queued or running.
  if (env_.tasks->active() > 0) {
    ++deferred_;
    return Arm(kDeferMs);
  }
  Submit();
}

void Maintenance::Submit() {
  const std::uint64_t now = clock::UnixMs();
  CheckWanted wanted;
  wanted.repair = schedule_.repair;
  wanted.add_lease = schedule_.add_lease;
  wanted.verify =
      schedule_.verify_every_s && (last_verify_ms_ == 0 || now >= last_verify_ms_ + schedule_.verify_every_s * 1000);
  TaskSpec spec;
  spec.kind = "maintenance";
  spec.params = Json::NewObject();
  cJSON_AddBoolToObject(spec.params.get(), "verify", wanted.verify);
  cJSON_AddBoolToObject(spec.params.get(), "repair", wanted.repair);
  cJSON_AddBoolToObject(spec.params.get(), "add_lease", wanted.add_lease);
  spec.keys = {LockKeys::Maintenance()};
  CheckEnv env = env_;
  Maintenance* self = this;
  auto alive = alive_;
  const std::uint64_t hold_ms = schedule_.test_hold_ms;
  spec.body = [env, wanted, self, alive, hold_ms](TaskRun& run) {
    TaskRun* runp = &run;
    auto walk = [env, wanted, runp] {
      if (runp->cancel_requested()) return runp->Fail(Status::Cancelled("maintenance pass cancelled"));
      auto aliases = env.aliases->List();
      if (!aliases.ok()) return runp->Fail(aliases.status());
      std::vector<WalkRoot> roots;
      for (auto& entry : *aliases) roots.push_back(WalkRoot{entry.first, entry.second, {}});
      // Client work first: between objects, the pass waits while any task
      // but itself is queued or running (its own object tasks have ended
      // by then).
      TaskTable* tasks = env.tasks;
      auto pause = [tasks] { return tasks->active() > 1; };
      WalkAndCheck(
          env, wanted, std::move(roots), true, runp,
          [runp](Result<std::pair<Json, WalkTotals>> out) {
            if (!out.ok()) return runp->Fail(out.status());
            // The record keeps the totals, not every object's line.
            cJSON_DeleteItemFromObjectCaseSensitive(out->first.get(), "objects");
            runp->Succeed(std::move(out->first));
          },
          pause);
    };
    if (hold_ms == 0 || !*alive) return walk();
    runp->Progress("test hold", 0, hold_ms);
    self->hold_ = env.loop->PostAfter(hold_ms, std::move(walk));
  };
  running_ = true;
  if (wanted.verify) last_verify_ms_ = now;
  TaskTable* tasks = env_.tasks;
  tasks->Submit(std::move(spec), [self, alive, tasks](Result<TaskId> id) {
    if (!*alive) return;
    if (!id.ok()) {
      CAIRN_LOG(Warn, "maintenance pass not started: %s", id.status().ToString().c_str());
      self->running_ = false;
      return self->Arm(self->schedule_.every_s * 1000);
    }
    self->running_task_ = *id;
    tasks->Wait(*id, [self, alive, task = *id](Result<Json> record) {
      if (!*alive) return;
      self->Ended(task, record.ok() ? record->get() : nullptr);
    });
  });
}

void Maintenance::Ended(std::uint64_t task, const cJSON* record) {
  running_ = false;
  running_task_ = 0;
  ++passes_;
  const cJSON* r = Obj(record, "result");
  const bool repaired = Obj(r, "count-objects-unhealthy-pre-repair") != nullptr;
  Json last = Json::NewObject();
  cJSON* o = last.get();
  cJSON_AddNumberToObject(o, "task", static_cast<double>(task));
  const cJSON* state = Obj(record, "state");
  cJSON_AddStringToObject(o, "state", cJSON_IsString(state) ? state->valuestring : "unknown");
  cJSON_AddNumberToObject(o, "started_ms", Num(record, "started_ms"));
  cJSON_AddNumberToObject(o, "finished_ms", static_cast<double>(clock::UnixMs()));
  cJSON_AddNumberToObject(o, "objects_checked", Num(r, "count-objects-checked"));
  cJSON_AddNumberToObject(o, "unhealthy",
                          Num(r, repaired ? "count-objects-unhealthy-pre-repair" : "count-objects-unhealthy"));
  cJSON_AddNumberToObject(o, "repaired", Num(r, "count-repairs-successful"));
  cJSON_AddNumberToObject(o, "unrecoverable", Num(r, "count-objects-unrecoverable"));
  cJSON_AddNumberToObject(o, "leases_renewed", Num(Obj(r, "lease"), "renewed"));
  cJSON_AddNumberToObject(o, "errors", static_cast<double>(cJSON_GetArraySize(Obj(r, "list-errors"))));
  cJSON_AddNumberToObject(o, "paused_ms", Num(r, "paused-ms"));
  const cJSON* params = Obj(record, "params");
  cJSON_AddBoolToObject(o, "verified", cJSON_IsTrue(Obj(params, "verify")));
  const cJSON* error = Obj(record, "error");
  if (error) {
    const cJSON* msg = Obj(error, "message");
    cJSON_AddStringToObject(o, "error", cJSON_IsString(msg) ? msg->valuestring : "failed");
  }
  last_ = std::move(last);
  Persist([](Status st) {
    if (!st.ok()) CAIRN_LOG(Warn, "maintenance state not saved: %s", st.ToString().c_str());
  });
  Arm(schedule_.every_s * 1000);
}

void Maintenance::Persist(Callback<void(Status)> done) {
  Json state = Json::NewObject();
  cJSON_AddNumberToObject(state.get(), "passes", static_cast<double>(passes_));
  cJSON_AddNumberToObject(state.get(), "last_verify_ms", static_cast<double>(last_verify_ms_));
  if (last_.get()) cJSON_AddItemToObject(state.get(), "last", cJSON_Duplicate(last_.get(), true));
  std::string schedule_text = ScheduleJson(schedule_).Print();
  std::string state_text = state.Print();
  MDB_dbi dbi = dbi_;
  store_->Transact(
      [dbi, schedule_text, state_text](MDB_txn* txn) -> Status {
        for (auto [key, value] :
             {std::pair<const char*, const std::string*>{kScheduleKey, &schedule_text}, {kStateKey, &state_text}}) {
          std::string k(key);
          MDB_val kv = Val(k), v = Val(*value);
          if (int rc = mdb_put(txn, dbi, &kv, &v, 0); rc != 0) {
            return Status::IoError(std::string("maintenance table: ") + mdb_strerror(rc));
          }
        }
        return Status();
      },
      std::move(done));
}

void Maintenance::Set(MaintenanceSchedule schedule, Callback<void(Status)> done) {
  schedule_ = schedule;
  auto alive = alive_;
  Persist([this, alive, done = std::move(done)](Status st) mutable {
    // Off (every_s 0) disarms; a running pass arms the next when it ends.
    if (*alive && st.ok() && !running_) Arm(schedule_.every_s * 1000);
    done(st);
  });
}

Json Maintenance::StatusJson() const {
  Json out = Json::NewObject();
  cJSON* o = out.get();
  if (schedule_.every_s) {
    cJSON_AddItemToObject(o, "schedule", ScheduleJson(schedule_).release());
  } else {
    cJSON_AddNullToObject(o, "schedule");
  }
  cJSON_AddBoolToObject(o, "running", running_);
  if (running_task_) cJSON_AddNumberToObject(o, "running_task", static_cast<double>(running_task_));
  cJSON_AddNumberToObject(o, "passes", static_cast<double>(passes_));
  cJSON_AddNumberToObject(o, "deferred", static_cast<double>(deferred_));
  if (next_run_ms_ && !running_) {
    cJSON_AddNumberToObject(o, "next_run_ms", static_cast<double>(next_run_ms_));
  } else {
    cJSON_AddNullToObject(o, "next_run_ms");
  }
  if (last_.get()) {
    cJSON_AddItemToObject(o, "last", cJSON_Duplicate(last_.get(), true));
  } else {
    cJSON_AddNullToObject(o, "last");
  }
  return out;
}

// ---- control methods ---------------------------------------------------------

void MaintenanceSet(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  MaintenanceSchedule s;
  Status st = r->Uint("every_s", &s.every_s, true);
  if (st.ok()) st = r->Bool("repair", &s.repair);
  if (st.ok()) st = r->Bool("add_lease", &s.add_lease);
  if (st.ok()) st = r->Uint("verify_every_s", &s.verify_every_s);
  if (st.ok() && c.options.test_hooks) st = r->Uint("test_hold_ms", &s.test_hold_ms, false, 60000);
  if (st.ok()) st = r->Finish();
  if (!st.ok()) return reply.Error(st);
  if (s.every_s < kMaintenanceMinEverySeconds || s.every_s > 10ull * 365 * 86400) {
    return reply.Error(Status::InvalidArgument("params.every_s: 1 second to 10 years"));
  }
  if (s.verify_every_s > 10ull * 365 * 86400) {
    return reply.Error(Status::InvalidArgument("params.verify_every_s: at most 10 years"));
  }
  if (!c.maintenance) return reply.Error(Status::Unavailable("the maintenance schedule is not open"));
  auto shared = std::make_shared<Reply>(std::move(reply));
  Maintenance* m = c.maintenance;
  m->Set(s, [shared, m](Status done) {
    if (!done.ok()) return shared->Error(done);
    shared->Result(m->StatusJson());
  });
}

void MaintenanceShow(CommandsState& c, Request& req, Reply& reply) {
  Status st = NoParams(req);
  if (!st.ok()) return reply.Error(st);
  if (!c.maintenance) return reply.Error(Status::Unavailable("the maintenance schedule is not open"));
  reply.Result(c.maintenance->StatusJson());
}

void MaintenanceOff(CommandsState& c, Request& req, Reply& reply) {
  Status st = NoParams(req);
  if (!st.ok()) return reply.Error(st);
  if (!c.maintenance) return reply.Error(Status::Unavailable("the maintenance schedule is not open"));
  auto shared = std::make_shared<Reply>(std::move(reply));
  Maintenance* m = c.maintenance;
  m->Set(MaintenanceSchedule{}, [shared, m](Status done) {
    if (!done.ok()) return shared->Error(done);
    shared->Result(m->StatusJson());
  });
}

}  // namespace cairn::control
