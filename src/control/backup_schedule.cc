// Scheduled backups (backup_schedule.h, docs/dirs.md, "Scheduled backups"): the
// "backup_schedule" table, a timer per schedule, a run started through the
// `backup` method and followed through its two task records, and the three
// control methods. Loop thread only.
#include "control/backup_schedule.h"

#include <cjson/cJSON.h>
#include <lmdb.h>
#include <unistd.h>

#include <utility>
#include <vector>

#include "cairn/core/clock.h"
#include "cairn/core/log.h"
#include "cairn/core/loop.h"
#include "control/dirs.h"
#include "control/task_store.h"

namespace cairn::control {
namespace {

// Loop turns a run looks for its "backup.link" task after the walk ended:
// the `backup` method submits it on the turn it hears of the walk's end.
constexpr int kLinkLookTurns = 4;

MDB_val Val(const std::string& s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

const cJSON* Obj(const cJSON* o, const char* k) { return o ? cJSON_GetObjectItemCaseSensitive(o, k) : nullptr; }
double Num(const cJSON* o, const char* k) {
  const cJSON* v = Obj(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}
std::string Str(const cJSON* o, const char* k) {
  const cJSON* v = Obj(o, k);
  return cJSON_IsString(v) ? v->valuestring : "";
}

// The newest task's id (0 when there is none).
TaskId NewestTask(const TaskTable& tasks) {
  Json all = tasks.List();
  const cJSON* first = cJSON_GetArrayItem(all.get(), 0);
  return static_cast<TaskId>(Num(first, "id"));
}

}  // namespace

struct BackupSchedules::Entry {
  std::string target;
  Json params;  // the `backup` method's: from, to, exclude?, exclude_vcs?
  std::uint64_t every_s = 0;
  std::uint64_t serial = 0;  // this entry's, so a removed schedule's callbacks find nothing
  std::unique_ptr<Timer> timer;
  bool running = false;
  TaskId running_task = 0;
  std::uint64_t runs = 0;
  std::uint64_t next_run_ms = 0;  // wall clock; 0 while running
  Json last;                      // null before the first run
};

BackupSchedules::BackupSchedules(BackupScheduleEnv env) : env_(std::move(env)), alive_(std::make_shared<bool>(true)) {}

BackupSchedules::~BackupSchedules() { *alive_ = false; }

Status BackupSchedules::Open(TaskStore& store) {
  store_ = &store;
  CAIRN_TRY_ASSIGN(dbi_, store.OpenTable("backup_schedule"));
  std::vector<std::pair<std::string, std::string>> rows;
  MDB_dbi dbi = dbi_;
  CAIRN_TRY(store.Read([&](MDB_txn* txn) -> Status {
    MDB_cursor* cur = nullptr;
    if (int rc = mdb_cursor_open(txn, dbi, &cur); rc != 0) {
      return Status::IoError(std::string("backup_schedule table: ") + mdb_strerror(rc));
    }
    MDB_val k, v;
    int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (rc == 0) {
      rows.emplace_back(std::string(static_cast<const char*>(k.mv_data), k.mv_size),
                        std::string(static_cast<const char*>(v.mv_data), v.mv_size));
      rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return Status::IoError(std::string("backup_schedule table: ") + mdb_strerror(rc));
    return Status();
  }));
  const std::uint64_t now = clock::UnixMs();
  for (auto& row : rows) {
    auto j = Json::Parse(row.second);
    if (!j.ok() || !cJSON_IsObject(Obj(j->get(), "params"))) {
      CAIRN_LOG(Warn, "backup schedule %s: unreadable row skipped", row.first.c_str());
      continue;
    }
    auto e = std::make_unique<Entry>();
    e->target = row.first;
    e->params = Json(cJSON_Duplicate(Obj(j->get(), "params"), true));
    e->every_s = static_cast<std::uint64_t>(Num(j->get(), "every_s"));
    e->runs = static_cast<std::uint64_t>(Num(j->get(), "runs"));
    e->serial = next_serial_++;
    const cJSON* last = Obj(j->get(), "last");
    std::uint64_t last_finished = 0;
    if (cJSON_IsObject(last)) {
      e->last = Json(cJSON_Duplicate(last, true));
      last_finished = static_cast<std::uint64_t>(Num(last, "finished_ms"));
    }
    if (e->every_s < kBackupScheduleMinEverySeconds) e->every_s = kBackupScheduleMinEverySeconds;
    const std::uint64_t due = last_finished ? last_finished + e->every_s * 1000 : now + e->every_s * 1000;
    Entry& ref = *e;
    entries_[row.first] = std::move(e);
    Arm(ref, due > now ? due - now : 0);
  }
  return Status();
}

void BackupSchedules::Close() {
  closed_ = true;
  for (auto& [target, e] : entries_) e->timer.reset();
}

BackupSchedules::Entry* BackupSchedules::Find(const std::string& target, std::uint64_t serial) {
  auto it = entries_.find(target);
  if (it == entries_.end() || it->second->serial != serial) return nullptr;
  return it->second.get();
}

void BackupSchedules::Arm(Entry& e, std::uint64_t delay_ms) {
  e.timer.reset();
  if (closed_) {
    e.next_run_ms = 0;
    return;
  }
  e.next_run_ms = clock::UnixMs() + delay_ms;
  e.timer = env_.loop->PostAfter(delay_ms, [this, alive = alive_, target = e.target, serial = e.serial] {
    if (*alive) Fire(target, serial);
  });
}

void BackupSchedules::Fire(const std::string& target, std::uint64_t serial) {
  Entry* e = Find(target, serial);
  if (!e) return;
  e->timer.reset();
  if (closed_ || e->running) return;
  // The run is the `backup` method's own, answered to no one: its record is
  // followed through the task table instead. The first task is submitted
  // before the method returns, so it is the newest task if there is a new
  // one at all.
  const TaskId before = NewestTask(*env_.tasks);
  Request req;
  req.method = "backup";
  req.params = Json(cJSON_Duplicate(e->params.get(), true));
  req.peer_uid = getuid();
  req.wait = true;
  Reply reply(std::weak_ptr<Connection>(), Json(), env_.loop);
  env_.start_backup(req, reply);
  const TaskId walk = NewestTask(*env_.tasks);
  e->running = true;
  e->next_run_ms = 0;
  if (walk <= before) {
    // Refused before a task existed (too many tasks, or the parameters no
    // longer hold): a failed run.
    return env_.loop->Post([this, alive = alive_, target, serial] {
      if (*alive) Ended(target, serial, 0, 0, nullptr, nullptr, "the backup method did not start a task");
    });
  }
  e->running_task = walk;
  WaitWalk(target, serial, walk);
}

void BackupSchedules::WaitWalk(const std::string& target, std::uint64_t serial, TaskId walk) {
  env_.tasks->Wait(walk, [this, alive = alive_, target, serial, walk](Result<Json> record) {
    if (!*alive) return;
    if (!record.ok()) return Ended(target, serial, walk, 0, nullptr, nullptr, record.status().ToString());
    if (Str(record->get(), "state") != "succeeded") {
      return Ended(target, serial, walk, 0, record->get(), record->get(), "");
    }
    FindLink(target, serial, walk, std::move(*record), 0);
  });
}

void BackupSchedules::FindLink(const std::string& target, std::uint64_t serial, TaskId walk, Json walked, int tries) {
  Entry* e = Find(target, serial);
  // The link is the oldest "backup.link" task after the walk with the same
  // target (the `backup` method copies the params into it).
  TaskId link = 0;
  Json all = env_.tasks->List();
  const cJSON* t;
  const std::string to = e ? Str(e->params.get(), "to") : "";
  cJSON_ArrayForEach(t, all.get()) {
    const auto id = static_cast<TaskId>(Num(t, "id"));
    if (id <= walk) break;  // newest first
    if (Str(t, "kind") == "backup.link" && Str(Obj(t, "params"), "to") == to) link = id;
  }
  if (link == 0 && tries < kLinkLookTurns) {
    auto shared = std::make_shared<Json>(std::move(walked));
    env_.loop->Post([this, alive = alive_, target, serial, walk, shared, tries] {
      if (*alive) FindLink(target, serial, walk, std::move(*shared), tries + 1);
    });
    return;
  }
  if (link == 0) {
    return Ended(target, serial, walk, 0, walked.get(), walked.get(), "the backup's link task did not start");
  }
  if (e) e->running_task = link;
  auto shared = std::make_shared<Json>(std::move(walked));
  env_.tasks->Wait(link, [this, alive = alive_, target, serial, walk, link, shared](Result<Json> record) {
    if (!*alive) return;
    if (!record.ok()) return Ended(target, serial, walk, link, shared->get(), nullptr, record.status().ToString());
    Ended(target, serial, walk, link, shared->get(), record->get(), "");
  });
}

void BackupSchedules::Ended(const std::string& target, std::uint64_t serial, TaskId walk, TaskId link,
                            const cJSON* walk_record, const cJSON* final_record, const std::string& error) {
  Entry* e = Find(target, serial);
  if (!e) return;  // removed meanwhile
  // A run cut off by shutdown is not counted: after the restart the
  // schedule is due one interval after the last run that ended.
  if (closed_) return;
  e->running = false;
  e->running_task = 0;
  ++e->runs;
  Json last = Json::NewObject();
  cJSON* o = last.get();
  cJSON_AddNumberToObject(o, "task", static_cast<double>(walk));
  if (link) cJSON_AddNumberToObject(o, "link_task", static_cast<double>(link));
  std::string state = final_record ? Str(final_record, "state") : "";
  if (state.empty() || !error.empty()) state = "failed";
  cJSON_AddStringToObject(o, "state", state.c_str());
  cJSON_AddNumberToObject(o, "started_ms", Num(walk_record, "started_ms"));
  cJSON_AddNumberToObject(o, "finished_ms", static_cast<double>(clock::UnixMs()));
  // The counts are the walk's (the link task adds none).
  const cJSON* r = Obj(walk_record, "result");
  for (const char* key : {"files_uploaded", "files_reused", "files_skipped", "directories_created",
                          "directories_reused", "directories_skipped"}) {
    cJSON_AddNumberToObject(o, key, Num(r, key));
  }
  cJSON_AddNumberToObject(o, "warnings", static_cast<double>(cJSON_GetArraySize(Obj(r, "warnings"))));
  if (!Str(r, "archive").empty()) cJSON_AddStringToObject(o, "archive", Str(r, "archive").c_str());
  std::string why = error;
  if (why.empty() && state != "succeeded") {
    why = Str(Obj(final_record, "error"), "message");
    if (why.empty()) why = state;
  }
  if (!why.empty()) cJSON_AddStringToObject(o, "error", why.c_str());
  e->last = std::move(last);
  Persist(*e, [target](Status st) {
    if (!st.ok()) CAIRN_LOG(Warn, "backup schedule %s: state not saved: %s", target.c_str(), st.ToString().c_str());
  });
  Arm(*e, e->every_s * 1000);
}

void BackupSchedules::Persist(const Entry& e, Callback<void(Status)> done) {
  Json row = Json::NewObject();
  cJSON_AddItemToObject(row.get(), "params", cJSON_Duplicate(e.params.get(), true));
  cJSON_AddNumberToObject(row.get(), "every_s", static_cast<double>(e.every_s));
  cJSON_AddNumberToObject(row.get(), "runs", static_cast<double>(e.runs));
  if (e.last.get()) cJSON_AddItemToObject(row.get(), "last", cJSON_Duplicate(e.last.get(), true));
  std::string key = e.target;
  std::string value = row.Print();
  MDB_dbi dbi = dbi_;
  store_->Transact(
      [dbi, key, value](MDB_txn* txn) -> Status {
        MDB_val kv = Val(key), v = Val(value);
        if (int rc = mdb_put(txn, dbi, &kv, &v, 0); rc != 0) {
          return Status::IoError(std::string("backup_schedule table: ") + mdb_strerror(rc));
        }
        return Status();
      },
      std::move(done));
}

void BackupSchedules::Add(const std::string& target, Json params, std::uint64_t every_s, Callback<void(Status)> done) {
  auto it = entries_.find(target);
  if (it == entries_.end()) {
    auto e = std::make_unique<Entry>();
    e->target = target;
    e->serial = next_serial_++;
    it = entries_.emplace(target, std::move(e)).first;
  }
  Entry& e = *it->second;
  e.params = std::move(params);
  e.every_s = every_s;
  auto alive = alive_;
  Persist(e, [this, alive, target, serial = e.serial, done = std::move(done)](Status st) mutable {
    if (*alive && st.ok()) {
      // A running backup arms the next run when it ends.
      if (Entry* now = Find(target, serial); now && !now->running) Arm(*now, now->every_s * 1000);
    }
    done(st);
  });
}

void BackupSchedules::Remove(const std::string& target, Callback<void(Status)> done) {
  auto it = entries_.find(target);
  if (it == entries_.end()) {
    return env_.loop->Post([done = std::move(done), target]() mutable {
      done(Status::NotFound("no backup schedule for " + target));
    });
  }
  entries_.erase(it);
  std::string key = target;
  MDB_dbi dbi = dbi_;
  store_->Transact(
      [dbi, key](MDB_txn* txn) -> Status {
        MDB_val kv = Val(key);
        int rc = mdb_del(txn, dbi, &kv, nullptr);
        if (rc != 0 && rc != MDB_NOTFOUND) {
          return Status::IoError(std::string("backup_schedule table: ") + mdb_strerror(rc));
        }
        return Status();
      },
      std::move(done));
}

Json BackupSchedules::StatusJson() const {
  Json out = Json::NewObject();
  cJSON* list = cJSON_AddArrayToObject(out.get(), "schedules");
  for (const auto& [target, e] : entries_) {
    cJSON* o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "target", target.c_str());
    cJSON_AddStringToObject(o, "from", Str(e->params.get(), "from").c_str());
    cJSON_AddStringToObject(o, "to", Str(e->params.get(), "to").c_str());
    cJSON_AddNumberToObject(o, "every_s", static_cast<double>(e->every_s));
    const cJSON* ex = Obj(e->params.get(), "exclude");
    cJSON_AddItemToObject(o, "exclude", ex ? cJSON_Duplicate(ex, true) : cJSON_CreateArray());
    cJSON_AddBoolToObject(o, "exclude_vcs", cJSON_IsTrue(Obj(e->params.get(), "exclude_vcs")));
    cJSON_AddBoolToObject(o, "running", e->running);
    if (e->running_task) cJSON_AddNumberToObject(o, "running_task", static_cast<double>(e->running_task));
    cJSON_AddNumberToObject(o, "runs", static_cast<double>(e->runs));
    if (e->next_run_ms && !e->running) {
      cJSON_AddNumberToObject(o, "next_run_ms", static_cast<double>(e->next_run_ms));
    } else {
      cJSON_AddNullToObject(o, "next_run_ms");
    }
    if (e->last.get()) {
      cJSON_AddItemToObject(o, "last", cJSON_Duplicate(e->last.get(), true));
    } else {
      cJSON_AddNullToObject(o, "last");
    }
    cJSON_AddItemToArray(list, o);
  }
  return out;
}

// ---- control methods ---------------------------------------------------------

void BackupScheduleAdd(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string from, to;
  std::uint64_t every_s = 0;
  bool exclude_vcs = false;
  Status st = r->String("from", &from, true);
  if (st.ok()) st = r->String("to", &to, true);
  if (st.ok()) st = r->Uint("every_s", &every_s, true);
  if (st.ok()) st = r->Bool("exclude_vcs", &exclude_vcs);
  r->Accept("exclude");
  const cJSON* exclude = cJSON_GetObjectItemCaseSensitive(req.params.get(), "exclude");
  if (st.ok() && exclude) {
    bool strings = cJSON_IsArray(exclude);
    const cJSON* item;
    cJSON_ArrayForEach(item, exclude) strings = strings && cJSON_IsString(item);
    if (!strings) st = Status::InvalidArgument("params.exclude must be an array of strings");
  }
  if (st.ok()) st = r->Finish();
  if (st.ok() && (from.empty() || from[0] != '/')) st = Status::InvalidArgument("params.from must be an absolute path");
  if (st.ok() && (every_s < kBackupScheduleMinEverySeconds || every_s > kBackupScheduleMaxEverySeconds)) {
    st = Status::InvalidArgument("params.every_s: 1 second to 10 years");
  }
  auto target = st.ok() ? BackupTargetText(to) : Result<std::string>(st);
  if (!target.ok()) return reply.Error(target.status());
  if (!c.backup_schedules) return reply.Error(Status::Unavailable("the backup schedules are not open"));
  while (from.size() > 1 && from.back() == '/') from.pop_back();
  // Exactly the `backup` method's params, so that a run is a client's backup.
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "from", from.c_str());
  cJSON_AddStringToObject(params.get(), "to", to.c_str());
  if (exclude) cJSON_AddItemToObject(params.get(), "exclude", cJSON_Duplicate(exclude, true));
  if (exclude_vcs) cJSON_AddBoolToObject(params.get(), "exclude_vcs", true);
  auto shared = std::make_shared<Reply>(std::move(reply));
  BackupSchedules* s = c.backup_schedules;
  s->Add(*target, std::move(params), every_s, [shared, s](Status done) {
    if (!done.ok()) return shared->Error(done);
    shared->Result(s->StatusJson());
  });
}

void BackupScheduleList(CommandsState& c, Request& req, Reply& reply) {
  Status st = NoParams(req);
  if (!st.ok()) return reply.Error(st);
  if (!c.backup_schedules) return reply.Error(Status::Unavailable("the backup schedules are not open"));
  reply.Result(c.backup_schedules->StatusJson());
}

void BackupScheduleRemove(CommandsState& c, Request& req, Reply& reply) {
  std::string to;
  Status st = StringParams(req, {{"to", &to}});
  auto target = st.ok() ? BackupTargetText(to) : Result<std::string>(st);
  if (!target.ok()) return reply.Error(target.status());
  if (!c.backup_schedules) return reply.Error(Status::Unavailable("the backup schedules are not open"));
  auto shared = std::make_shared<Reply>(std::move(reply));
  BackupSchedules* s = c.backup_schedules;
  s->Remove(*target, [shared, s](Status done) {
    if (!done.ok()) return shared->Error(done);
    shared->Result(s->StatusJson());
  });
}

}  // namespace cairn::control
