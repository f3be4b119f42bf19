// The task table. Loop thread only.
#include "control/tasks.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "cairn/control/protocol.h"
#include "cairn/core/clock.h"
#include "cairn/core/completion.h"
#include "cairn/core/log.h"

namespace cairn::control {
namespace {

constexpr const char* kStateNames[] = {"queued", "running", "succeeded", "failed", "cancelled"};

bool StateFromName(const char* name, TaskState* out) {
  for (int i = 0; i < 5; ++i) {
    if (std::string_view(name) == kStateNames[i]) {
      *out = static_cast<TaskState>(i);
      return true;
    }
  }
  return false;
}

// A finished task's result larger than this (as JSON text, about) is
// delivered to the callers waiting for it when it ends, and the record
// keeps, in memory and in the task store, only a note of its size (docs/
// control.md, "Large results"). A listing of a 10,000-child directory is
// about 7 MB; kept in 500 records of history it would be gigabytes.
constexpr std::size_t kKeptResultBytes = 256 * 1024;

// About how many bytes `item` prints as: its strings and names, and a few
// bytes of syntax or number per node. Stops counting past `limit`.
std::size_t ApproxJsonBytes(const cJSON* item, std::size_t limit) {
  std::size_t n = 0;
  for (; item && n <= limit; item = item->next) {
    n += 8;
    if (item->string) n += std::strlen(item->string);
    if (cJSON_IsString(item) && item->valuestring) n += std::strlen(item->valuestring);
    if (item->child) n += ApproxJsonBytes(item->child, limit - std::min(n, limit));
  }
  return n;
}

double Num(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

}  // namespace

const char* TaskStateName(TaskState s) { return kStateNames[static_cast<int>(s)]; }
bool TaskStateTerminal(TaskState s) {
  return s == TaskState::kSucceeded || s == TaskState::kFailed || s == TaskState::kCancelled;
}

// --- TaskRun -----------------------------------------------------------------

const cJSON* TaskRun::params() const { return table_->records_.at(id_)->params.get(); }

void TaskRun::Progress(const std::string& phase, std::uint64_t done, std::uint64_t total) {
  auto& r = *table_->records_.at(id_);
  r.phase = phase;
  r.done = done;
  r.total = total;
  if (!r.progress_watchers.empty() && !r.progress_posted) {
    r.progress_posted = true;
    TaskTable* table = table_;
    TaskId id = id_;
    table->loop_.Post([table, id] { table->NotifyProgress(id); });
  }
}

bool TaskRun::cancel_requested() const { return table_->records_.at(id_)->cancel_requested; }

void TaskRun::RecordIntent(Json intent, Callback<void(Status)> durable) {
  durable = Guarded(table_->loop_, "TaskRun::RecordIntent", std::move(durable));
  auto& r = *table_->records_.at(id_);
  r.intent = std::move(intent);
  table_->Persist(r, std::move(durable));
}

void TaskRun::Succeed(Json result) { table_->Finish(id_, TaskState::kSucceeded, std::move(result), Status()); }

void TaskRun::Fail(const Status& error) {
  CAIRN_CHECK(!error.ok(), "TaskRun::Fail with an OK status");
  table_->Finish(id_, error.code() == Code::kCancelled ? TaskState::kCancelled : TaskState::kFailed, Json(), error);
}

// --- TaskTable ---------------------------------------------------------------

TaskTable::TaskTable(Loop& loop, TaskLimits limits)
    : loop_(loop), limits_(limits), locks_(loop, limits.max_active, limits.max_per_key), store_(loop) {}

TaskTable::~TaskTable() = default;

Status TaskTable::Open(const std::string& dir) {
  std::vector<std::pair<std::uint64_t, std::string>> rows;
  CAIRN_TRY(store_.Open(dir, &rows));
  for (auto& [id, text] : rows) {
    auto json = Json::Parse(text);
    if (!json.ok()) {
      CAIRN_LOG(Warn, "task record %llu is unreadable; dropping it", static_cast<unsigned long long>(id));
      store_.Delete(id);
      continue;
    }
    const cJSON* o = json->get();
    auto r = std::make_unique<Record>();
    r->id = id;
    const cJSON* kind = cJSON_GetObjectItemCaseSensitive(o, "kind");
    const cJSON* state = cJSON_GetObjectItemCaseSensitive(o, "state");
    r->kind = cJSON_IsString(kind) ? kind->valuestring : "?";
    if (!cJSON_IsString(state) || !StateFromName(state->valuestring, &r->state)) r->state = TaskState::kFailed;
    r->submitted_ms = static_cast<std::uint64_t>(Num(o, "submitted_ms"));
    r->started_ms = static_cast<std::uint64_t>(Num(o, "started_ms"));
    r->finished_ms = static_cast<std::uint64_t>(Num(o, "finished_ms"));
    r->uid = static_cast<uid_t>(Num(o, "uid"));
    const cJSON* params = cJSON_GetObjectItemCaseSensitive(o, "params");
    r->params = Json(params ? cJSON_Duplicate(params, true) : cJSON_CreateObject());
    const cJSON* keys = cJSON_GetObjectItemCaseSensitive(o, "keys");
    const cJSON* k;
    cJSON_ArrayForEach(k, keys) {
      const cJSON* name = cJSON_GetObjectItemCaseSensitive(k, "key");
      const cJSON* mode = cJSON_GetObjectItemCaseSensitive(k, "mode");
      if (cJSON_IsString(name)) {
        bool shared = cJSON_IsString(mode) && std::string_view(mode->valuestring) == "shared";
        r->keys.push_back(LockKey{name->valuestring, shared ? LockMode::kShared : LockMode::kExclusive});
      }
    }
    const cJSON* intent = cJSON_GetObjectItemCaseSensitive(o, "intent");
    if (intent) r->intent = Json(cJSON_Duplicate(intent, true));
    const cJSON* result = cJSON_GetObjectItemCaseSensitive(o, "result");
    if (result) r->result = Json(cJSON_Duplicate(result, true));
    const cJSON* error = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (error) r->error = ErrorFromJson(error);
    if (!TaskStateTerminal(r->state)) {
      // The daemon died while this task was queued or running.
      r->error = Status::Interrupted("cairnd stopped while the task was " + std::string(TaskStateName(r->state)));
      r->state = TaskState::kFailed;
      r->finished_ms = clock::UnixMs();
      Persist(*r);
    }
    if (id >= next_id_) next_id_ = id + 1;
    records_[id] = std::move(r);
  }
  return Status();
}

Json TaskTable::ToJson(const Record& r) const {
  Json out = Json::NewObject();
  cJSON* o = out.get();
  cJSON_AddNumberToObject(o, "id", static_cast<double>(r.id));
  cJSON_AddStringToObject(o, "kind", r.kind.c_str());
  cJSON_AddStringToObject(o, "state", TaskStateName(r.state));
  cJSON_AddItemToObject(o, "params", cJSON_Duplicate(r.params.get(), true));
  cJSON* keys = cJSON_AddArrayToObject(o, "keys");
  for (const LockKey& k : r.keys) {
    cJSON* e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "key", k.name.c_str());
    cJSON_AddStringToObject(e, "mode", k.mode == LockMode::kShared ? "shared" : "exclusive");
    cJSON_AddItemToArray(keys, e);
  }
  cJSON_AddNumberToObject(o, "uid", r.uid);
  cJSON_AddNumberToObject(o, "submitted_ms", static_cast<double>(r.submitted_ms));
  if (r.started_ms) cJSON_AddNumberToObject(o, "started_ms", static_cast<double>(r.started_ms));
  if (r.finished_ms) cJSON_AddNumberToObject(o, "finished_ms", static_cast<double>(r.finished_ms));
  if (!r.phase.empty()) {
    cJSON* p = cJSON_AddObjectToObject(o, "progress");
    cJSON_AddStringToObject(p, "phase", r.phase.c_str());
    cJSON_AddNumberToObject(p, "done", static_cast<double>(r.done));
    cJSON_AddNumberToObject(p, "total", static_cast<double>(r.total));
  }
  if (r.cancel_requested) cJSON_AddBoolToObject(o, "cancel_requested", true);
  if (r.state == TaskState::kQueued) {
    cJSON* w = cJSON_AddArrayToObject(o, "waiting_on");
    for (const LockWait& lw : locks_.WaitingOn(r.id)) {
      cJSON* e = cJSON_CreateObject();
      cJSON_AddStringToObject(e, "key", lw.key.c_str());
      cJSON_AddNumberToObject(e, "held_by", static_cast<double>(lw.held_by));
      cJSON_AddItemToArray(w, e);
    }
  }
  if (r.intent.get()) cJSON_AddItemToObject(o, "intent", cJSON_Duplicate(r.intent.get(), true));
  if (r.result.get()) cJSON_AddItemToObject(o, "result", cJSON_Duplicate(r.result.get(), true));
  if (!r.error.ok()) cJSON_AddItemToObject(o, "error", ErrorToJson(r.error).release());
  return out;
}

void TaskTable::Persist(Record& r, Callback<void(Status)> durable) {
  if (closed_) return;  // after Close(): abandoned, interrupted at the next start
  Json j = ToJson(r);
  cJSON_DeleteItemFromObjectCaseSensitive(j.get(), "waiting_on");  // live, not history
  store_.Put(r.id, j.Print(), std::move(durable));
}

std::size_t TaskTable::active() const {
  std::size_t n = 0;
  for (const auto& [id, r] : records_) n += !TaskStateTerminal(r->state);
  return n;
}

void TaskTable::Submit(TaskSpec spec, Callback<void(Result<TaskId>)> queued) {
  queued = Guarded(loop_, "TaskTable::Submit", std::move(queued));
  auto fail = [this](Callback<void(Result<TaskId>)> cb, Status st) {
    loop_.Post([cb = std::move(cb), st]() mutable { cb(st); });
  };
  if (closing_) return fail(std::move(queued), Status::ShuttingDown("cairnd is stopping"));
  if (active() >= limits_.max_active) {
    return fail(std::move(queued), Status::Busy("too many tasks queued or running (limit " +
                                                std::to_string(limits_.max_active) + "); retry later"));
  }
  TaskId id = next_id_++;
  auto r = std::make_unique<Record>();
  r->id = id;
  r->kind = std::move(spec.kind);
  r->params = spec.params.get() ? std::move(spec.params) : Json::NewObject();
  r->keys = std::move(spec.keys);
  r->uid = spec.requester_uid;
  r->submitted_ms = clock::UnixMs();
  r->body = std::move(spec.body);
  Record& rec = *r;
  records_[id] = std::move(r);
  // The record is durable before the task can run: a kill from here on
  // leaves a record that says what was asked.
  Persist(rec, [this, id, queued = std::move(queued)](Status st) mutable {
    Record& me = *records_.at(id);
    if (!st.ok()) {
      Finish(id, TaskState::kFailed, Json(), st);
      queued(st);
      return;
    }
    if (me.cancel_requested) {
      Finish(id, TaskState::kCancelled, Json(), Status::Cancelled("cancelled before it started"));
      queued(id);
      return;
    }
    Status locked = locks_.Submit(id, me.keys, [this, id] { Start(id); });
    if (!locked.ok()) {
      Finish(id, TaskState::kFailed, Json(), locked);
      queued(locked);
      return;
    }
    queued(id);
  });
}

void TaskTable::Start(TaskId id) {
  if (closing_) return;  // left queued: interrupted at the next start
  Record& r = *records_.at(id);
  if (r.cancel_requested) {
    Finish(id, TaskState::kCancelled, Json(), Status::Cancelled("cancelled before it started"));
    return;
  }
  r.state = TaskState::kRunning;
  r.started_ms = clock::UnixMs();
  Persist(r);
  r.run.reset(new TaskRun(this, id));
  r.body(*r.run);
}

void TaskTable::Finish(TaskId id, TaskState state, Json result, Status error) {
  Record& r = *records_.at(id);
  CAIRN_CHECK(!TaskStateTerminal(r.state), "task " + std::to_string(id) + " finished twice");
  r.state = state;
  r.finished_ms = clock::UnixMs();
  r.result = std::move(result);
  r.error = std::move(error);
  // A large result goes to the waiters only; the record keeps a note.
  auto full = std::make_shared<Json>();
  if (r.result.get()) {
    const std::size_t bytes = ApproxJsonBytes(r.result.get()->child, kKeptResultBytes);
    if (bytes > kKeptResultBytes) {
      *full = std::move(r.result);
      r.result = Json::NewObject();
      cJSON_AddBoolToObject(r.result.get(), "omitted", true);
      cJSON_AddStringToObject(r.result.get(), "why",
                              "larger than the 256 KiB a task record keeps: delivered to the callers waiting "
                              "when the task ended");
    }
  }
  // Durable before anyone hears of it, and before the next holder of its
  // resources starts (it must read what this task wrote).
  Persist(r, [this, id, full](Status st) {
    Record& me = *records_.at(id);
    if (!st.ok()) CAIRN_LOG(Error, "task %llu: its final record was not saved: %s",
                            static_cast<unsigned long long>(id), st.ToString().c_str());
    if (locks_.IsGranted(id)) locks_.Release(id);
    me.body = nullptr;
    me.run.reset();
    me.progress_watchers.clear();
    Json view = ToJson(me);
    if (full->get()) cJSON_ReplaceItemInObjectCaseSensitive(view.get(), "result", full->release());
    auto waiters = std::move(me.waiters);
    me.waiters.clear();
    for (std::size_t i = 0; i < waiters.size(); ++i) {
      // The last waiter takes the view itself: a large result is not copied.
      waiters[i](i + 1 == waiters.size() ? std::move(view) : Json(cJSON_Duplicate(view.get(), true)));
    }
    Prune();
  });
}

void TaskTable::Wait(TaskId id, Callback<void(Result<Json>)> done) {
  done = Guarded(loop_, "TaskTable::Wait", std::move(done));
  auto it = records_.find(id);
  if (it == records_.end()) {
    loop_.Post([done = std::move(done), id]() mutable { done(Status::NotFound("no task " + std::to_string(id))); });
    return;
  }
  Record& r = *it->second;
  if (TaskStateTerminal(r.state) && !r.run && !r.body) {
    loop_.Post([this, id, done = std::move(done)]() mutable {
      auto again = records_.find(id);
      if (again == records_.end()) return done(Status::NotFound("task " + std::to_string(id) + " was pruned"));
      done(ToJson(*again->second));
    });
    return;
  }
  r.waiters.push_back(std::move(done));
}

void TaskTable::WatchProgress(TaskId id, Callback<void(Json)> on_progress) {
  auto it = records_.find(id);
  if (it == records_.end() || TaskStateTerminal(it->second->state)) return;
  it->second->progress_watchers.push_back(std::move(on_progress));
}

void TaskTable::NotifyProgress(TaskId id) {
  auto it = records_.find(id);
  if (it == records_.end()) return;
  Record& r = *it->second;
  r.progress_posted = false;
  for (auto& watcher : r.progress_watchers) {
    Json event = Json::NewObject();
    cJSON_AddStringToObject(event.get(), "phase", r.phase.c_str());
    cJSON_AddNumberToObject(event.get(), "done", static_cast<double>(r.done));
    cJSON_AddNumberToObject(event.get(), "total", static_cast<double>(r.total));
    watcher(std::move(event));
  }
}

Result<TaskState> TaskTable::Cancel(TaskId id) {
  auto it = records_.find(id);
  if (it == records_.end()) return Status::NotFound("no task " + std::to_string(id));
  Record& r = *it->second;
  if (TaskStateTerminal(r.state)) return r.state;
  r.cancel_requested = true;
  if (r.state == TaskState::kQueued && locks_.Withdraw(id)) {
    Finish(id, TaskState::kCancelled, Json(), Status::Cancelled("cancelled while queued"));
    return TaskState::kCancelled;
  }
  return r.state;
}

Result<Json> TaskTable::Show(TaskId id) const {
  auto it = records_.find(id);
  if (it == records_.end()) return Status::NotFound("no task " + std::to_string(id));
  return ToJson(*it->second);
}

Json TaskTable::List() const {
  Json out = Json::NewArray();
  for (auto it = records_.rbegin(); it != records_.rend(); ++it) {
    cJSON_AddItemToArray(out.get(), ToJson(*it->second).release());
  }
  return out;
}

void TaskTable::Prune() {
  std::size_t terminal = 0;
  for (const auto& [id, r] : records_) terminal += TaskStateTerminal(r->state) && !r->run;
  for (auto it = records_.begin(); terminal > limits_.history && it != records_.end();) {
    Record& r = *it->second;
    if (TaskStateTerminal(r.state) && !r.run && r.waiters.empty()) {
      store_.Delete(it->first);
      it = records_.erase(it);
      --terminal;
    } else {
      ++it;
    }
  }
}

void TaskTable::Close(Task done) {
  closing_ = true;
  close_done_ = std::move(done);
  FinishClose();
}

void TaskTable::FinishClose() {
  store_.Flush([this] {
    // A running task may have written again since the flush was asked for.
    if (!store_.idle()) return FinishClose();
    closed_ = true;
    if (close_done_) loop_.Post(std::move(close_done_));
    close_done_ = nullptr;
  });
}

}  // namespace cairn::control
