// The deep-check walker (deep_check.h, docs/check.md): follows a root's path,
// then walks its tree depth-first in Tahoe's order (A.9: a directory is
// checked, then read; its files and unknown nodes in name order, then its
// subdirectories in name order, each walked before the next), checking
// each storage index once. Directories are read here from their backing
// files through the grid jobs (control/jobs.h) and src/dirnode's ParseBody;
// control/dirs.cc is not used. The totals follow Tahoe's deep-check JSON
// (C.9). Loop thread only.
#include "control/deep_check.h"

#include <cjson/cJSON.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <functional>
#include <memory>
#include <optional>
#include <set>

#include "cairn/caps/cap.h"
#include "cairn/control/protocol.h"
#include "cairn/core/base32.h"
#include "cairn/core/file.h"
#include "cairn/core/loop.h"
#include "cairn/dirnode/dirnode.h"
#include "cairn/dirnode/path.h"
#include "control/transfer.h"

namespace cairn::control {
namespace {

namespace mf = mutable_files;

// At most this many objects are listed one by one in the result, and at
// most kMaxListed entries in each of its other lists (unhealthy files,
// corrupt shares, errors); the totals count all of them. A task's record is
// kept in the node's LMDB, and the walker's memory must not grow with each
// object (docs/check.md, "Memory").
constexpr std::size_t kMaxObjectsListed = 10000;
constexpr std::size_t kMaxListed = 1000;
// Stream lines are written to the spool file in batches of about this many
// bytes (the last batch when the walk ends).
constexpr std::size_t kStreamBatch = 64 << 10;

const cJSON* Obj(const cJSON* o, const char* k) { return o ? cJSON_GetObjectItemCaseSensitive(o, k) : nullptr; }
bool IsTrue(const cJSON* o, const char* k) { return cJSON_IsTrue(Obj(o, k)); }

// A cap as a directory entry or a path's root holds it ("ro." and "imm."
// of unknown caps removed).
Result<caps::Cap> NodeCap(std::string_view text) {
  if (text.substr(0, 3) == "ro.") text.remove_prefix(3);
  if (text.substr(0, 4) == "imm.") text.remove_prefix(4);
  return caps::ParseCap(text);
}

std::string PathText(const std::string& root, const std::vector<std::string>& path) {
  std::string out = root.empty() ? std::string() : root + ":";
  if (path.empty()) return root.empty() ? "<root>" : out;
  for (std::size_t i = 0; i < path.size(); ++i) out += (i ? "/" : "") + path[i];
  return out;
}

// Reads the body of the directory of `cap` (LIT, CHK or mutable). `done`
// runs once, on a later turn.
void ReadBody(const CheckEnv& env, const caps::Cap& dircap, JobHooks hooks, Callback<void(Result<std::string>)> done) {
  auto finish = std::make_shared<Callback<void(Result<std::string>)>>(std::move(done));
  Loop* loop = env.loop;
  caps::Cap file = dircap;
  file.directory = false;
  if (file.kind == caps::CapKind::kLiteral) {
    return loop->Post([finish, body = file.literal]() mutable { (*finish)(std::move(body)); });
  }
  auto snapshot = GridSnapshot(*env.servers);
  if (!snapshot.ok()) return loop->Post([finish, st = snapshot.status()] { (*finish)(st); });
  const std::uint64_t max = env.max_body;
  if (file.is_mutable()) {
    return RetrieveMutableJob(
        *env.grid, std::move(*snapshot), file, std::move(hooks), [finish, max](Result<mf::RetrieveResult> got) {
          if (!got.ok()) return (*finish)(got.status());
          if (got->contents.size() > max) {
            return (*finish)(Status::ResourceExhausted("the directory is over limits.sdmf_max_bytes"));
          }
          (*finish)(std::move(got->contents));
        });
  }
  if (file.kind != caps::CapKind::kChk) {
    return loop->Post([finish] { (*finish)(Status::BadCap("a directory verify cap cannot be read")); });
  }
  if (file.size > max) {
    return loop->Post(
        [finish] { (*finish)(Status::ResourceExhausted("the directory is over limits.sdmf_max_bytes")); });
  }
  grid::Grid* grid = env.grid;
  MakeSpool(*loop, env.spool_dir, "deep",
            [loop, grid, finish, file, max, hooks = std::move(hooks),
             servers = std::move(*snapshot)](Result<std::shared_ptr<Spool>> spool) mutable {
              if (!spool.ok()) return (*finish)(spool.status());
              std::shared_ptr<Spool> s = *spool;
              GetJob(*grid, std::move(servers), file, s->path, std::move(hooks),
                     [loop, finish, s, max](Result<immutable::DownloadResult> got) {
                       if (!got.ok()) return (*finish)(got.status());
                       auto body = std::make_shared<std::string>();
                       loop->Offload(
                           [s, body, max]() -> Status {
                             CAIRN_TRY_ASSIGN(*body, ReadWholeFile(s->path, max));
                             return Status();
                           },
                           [finish, body, s](Status read) {
                             if (!read.ok()) return (*finish)(read);
                             (*finish)(std::move(*body));
                           });
                     });
            });
}

// What checking one node gave.
struct Outcome {
  Result<Json> check = Status::Internal("not checked");
  std::optional<Result<std::string>> body;  // a directory's body, when it was read
};

// Checks the node of `cap` and, for a directory when `read`, reads its body
// after the check (and repair). `done` runs once, on a later turn.
void CheckAndRead(const CheckEnv& env, CheckWanted wanted, caps::Cap cap, bool read, std::function<JobHooks()> hooks,
                  Callback<void(Outcome)> done) {
  auto snapshot = GridSnapshot(*env.servers);
  auto finish = std::make_shared<Callback<void(Outcome)>>(std::move(done));
  if (!snapshot.ok()) {
    return env.loop->Post([finish, st = snapshot.status()] {
      Outcome o;
      o.check = st;
      (*finish)(std::move(o));
    });
  }
  CheckEnv e = env;
  RunCheckJob(env, wanted, cap, std::move(*snapshot), hooks(), [e, cap, read, hooks, finish](Result<Json> check) {
    auto out = std::make_shared<Outcome>();
    out->check = std::move(check);
    if (!read || !cap.directory || !out->check.ok()) return (*finish)(std::move(*out));
    ReadBody(e, cap, hooks(), [out, finish](Result<std::string> body) {
      out->body = std::move(body);
      (*finish)(std::move(*out));
    });
  });
}

struct Item {
  std::string root;               // the root's name as shown ("" for a deep-check's target)
  std::vector<std::string> path;  // below the root
  std::string cap;
};

// One object being checked: dispatched in walk order, its outcome counted
// in that order once it and every object before it are done.
struct Slot {
  Item item;
  caps::Cap cap;
  bool read = false;  // a directory whose children are read after its check
  bool done = false;
  Outcome outcome;
  std::uint64_t verifying = 0;  // its last verify progress: bytes read so far
};

class Walker : public std::enable_shared_from_this<Walker> {
 public:
  Walker(CheckEnv env, CheckWanted wanted, std::vector<WalkRoot> roots, bool recurse, TaskRun* run,
         Callback<void(Result<std::pair<Json, WalkTotals>>)> done, std::function<bool()> pause,
         std::shared_ptr<Spool> stream)
      : pause_(std::move(pause)),
        stream_(std::move(stream)),
        env_(std::move(env)),
        wanted_(wanted),
        roots_(std::move(roots)),
        recurse_(recurse),
        run_(run),
        done_(std::move(done)),
        objects_(Json::NewArray()),
        corrupt_(Json::NewArray()),
        remaining_corrupt_(Json::NewArray()),
        unhealthy_files_(Json::NewArray()),
        errors_(Json::NewArray()) {}

  void Start() { Pump(); }

 private:
  bool Stopping() const { return ending_ || run_->cancel_requested(); }

  void Report() {
    std::uint64_t verifying = 0;
    for (const auto& slot : inflight_) verifying += slot->verifying;
    run_->Progress("deep-check (" + std::to_string(totals_.bytes_verified + verifying) + " bytes verified)",
                   totals_.objects + literal_files_, 0);
  }

  JobHooks Hooks(const std::shared_ptr<Slot>& slot) {
    auto self = shared_from_this();
    JobHooks h;
    h.progress = [self, slot](const std::string& phase, std::uint64_t done, std::uint64_t) {
      if (phase.find("verifying") != std::string::npos) {
        slot->verifying = done;
        self->Report();
      }
    };
    h.stop = [self] { return self->Stopping(); };
    return h;
  }

  // Drives the walk: counts the objects that are done in walk order, then
  // starts objects from the stack while fewer than kWalkInFlight
  // (kWalkVerifyInFlight with --verify) are
  // running and no directory's children are still to be read (they come
  // next in Tahoe's order), then the next root once all are done. A
  // completion that arrives while it runs is seen by its loop.
  void Pump() {
    if (pumping_) return;
    pumping_ = true;
    PumpLoop();
    pumping_ = false;
  }

  void PumpLoop() {
    for (;;) {
      if (ended_) return;
      if (ending_) {
        if (outstanding_ == 0) Finish();
        return;
      }
      while (!ending_ && !inflight_.empty() && inflight_.front()->done) {
        std::shared_ptr<Slot> slot = std::move(inflight_.front());
        inflight_.pop_front();
        Checked(*slot);
      }
      if (ending_) continue;
      if (Stopping()) {
        End(Status::Cancelled("deep-check cancelled"));
        continue;
      }
      const std::size_t window = wanted_.verify ? kWalkVerifyInFlight : kWalkInFlight;
      if (barrier_ || inflight_.size() >= window || resolving_ || pause_waiting_) return;
      if (stack_.empty()) {
        if (!inflight_.empty()) return;
        if (next_root_ >= roots_.size() || (!recurse_ && next_root_ > 0)) {
          End(Status());
          continue;
        }
        WalkRoot& r = roots_[next_root_++];
        Item item{r.name, {}, r.cap};
        resolving_ = true;
        Resolve(std::move(item), std::move(r.components), 0);
        continue;
      }
      if (pause_ && pause_()) {
        paused_ms_ += kPauseMs;
        run_->Progress("deep-check paused for client work", totals_.objects + literal_files_, 0);
        auto self = shared_from_this();
        pause_waiting_ = true;
        pause_timer_ = env_.loop->PostAfter(kPauseMs, [self] {
          self->pause_waiting_ = false;
          self->Pump();
        });
        return;
      }
      Item item = std::move(stack_.back());
      stack_.pop_back();
      auto cap = NodeCap(item.cap);
      if (!cap.ok()) {
        ++unknown_;
        if (!recurse_) End(cap.status());
        continue;
      }
      if (cap->kind != caps::CapKind::kLiteral) {
        auto si = caps::StorageIndexOf(*cap);
        if (si.ok() && !seen_.insert(*si).second) continue;  // reached before: checked once
      }
      Dispatch(std::move(item), *cap, recurse_ && cap->directory);
    }
  }

  // Follows `components` from `item` (one directory read a component),
  // then puts the node reached on the stack.
  void Resolve(Item item, std::vector<std::string> components, std::size_t at) {
    if (at == components.size()) {
      resolving_ = false;
      stack_.push_back(std::move(item));
      return Pump();
    }
    auto cap = NodeCap(item.cap);
    if (!cap.ok() || !cap->directory) {
      resolving_ = false;
      End(Status::InvalidArgument(PathText(item.root, item.path) + " is not a directory"));
      return Pump();
    }
    auto self = shared_from_this();
    ReadBody(env_, *cap, Hooks(std::make_shared<Slot>()),
             [self, item, cap = *cap, components = std::move(components), at](Result<std::string> body) mutable {
               auto fail = [self](Status st) {
                 self->resolving_ = false;
                 self->End(std::move(st));
                 self->Pump();
               };
               if (!body.ok()) return fail(body.status().WithContext("reading " + PathText(item.root, item.path)));
               auto access = dirnode::AccessOf(cap);
               if (!access.ok()) return fail(access.status());
               auto parsed = dirnode::ParseBody(*body, *access);
               if (!parsed.ok()) return fail(parsed.status());
               auto child = parsed->children.find(components[at]);
               item.path.push_back(components[at]);
               if (child == parsed->children.end()) {
                 return fail(Status::NotFound(PathText(item.root, item.path) + " does not exist"));
               }
               item.cap = child->second.rw_uri.empty() ? child->second.ro_uri : child->second.rw_uri;
               self->Resolve(std::move(item), std::move(components), at + 1);
             });
  }

  // Starts checking one object (and, with `read`, reading its children).
  void Dispatch(Item item, const caps::Cap& cap, bool read) {
    auto slot = std::make_shared<Slot>();
    slot->item = std::move(item);
    slot->cap = cap;
    slot->read = read;
    inflight_.push_back(slot);
    ++outstanding_;
    if (read) barrier_ = true;
    auto self = shared_from_this();
    Callback<void(Outcome)> done = [self, slot](Outcome o) {
      slot->outcome = std::move(o);
      slot->done = true;
      --self->outstanding_;
      self->Pump();
    };
    if (!cap.is_mutable()) {
      return CheckAndRead(
          env_, wanted_, cap, read, [self, slot] { return self->Hooks(slot); }, std::move(done));
    }
    SubmitObjectTask(slot, std::move(done));
  }

  // A mutable object is checked in a task of its own that holds its slot.
  void SubmitObjectTask(const std::shared_ptr<Slot>& slot, Callback<void(Outcome)> done) {
    auto finish = std::make_shared<Callback<void(Outcome)>>(std::move(done));
    const caps::Cap& cap = slot->cap;
    const bool read = slot->read;
    auto si = caps::StorageIndexOf(cap);
    if (!si.ok()) {
      return env_.loop->Post([finish, st = si.status()] {
        Outcome o;
        o.check = st;
        (*finish)(std::move(o));
      });
    }
    auto self = shared_from_this();
    auto outcome = std::make_shared<Outcome>();
    TaskSpec spec;
    spec.kind = "check";
    spec.params = Json::NewObject();
    cJSON_AddStringToObject(spec.params.get(), "path", PathText(slot->item.root, slot->item.path).c_str());
    cJSON_AddStringToObject(spec.params.get(), "storage_index", Base32Encode(*si).c_str());
    cJSON_AddNumberToObject(spec.params.get(), "deep_check_task", static_cast<double>(run_->id()));
    if (wanted_.verify) cJSON_AddBoolToObject(spec.params.get(), "verify", true);
    if (wanted_.repair) cJSON_AddBoolToObject(spec.params.get(), "repair", true);
    if (wanted_.add_lease) cJSON_AddBoolToObject(spec.params.get(), "add_lease", true);
    // A repair publishes: it holds the slot as a `mutable put` or a
    // directory change does, so they never interleave.
    spec.keys = {LockKeys::Slot(*si, wanted_.repair ? LockMode::kExclusive : LockMode::kShared)};
    spec.body = [self, slot, cap, read, outcome](TaskRun& run) {
      TaskRun* runp = &run;
      auto hooks = [self, slot, runp] {
        JobHooks h = self->Hooks(slot);
        h.stop = [self, runp] { return self->Stopping() || runp->cancel_requested(); };
        return h;
      };
      CheckAndRead(self->env_, self->wanted_, cap, read, hooks, [runp, outcome](Outcome o) {
        *outcome = std::move(o);
        if (!outcome->check.ok()) return runp->Fail(outcome->check.status());
        runp->Succeed(Json(cJSON_Duplicate(outcome->check->get(), true)));
      });
    };
    TaskTable* tasks = env_.tasks;
    tasks->Submit(std::move(spec), [tasks, outcome, finish](Result<TaskId> id) mutable {
      if (!id.ok()) {
        outcome->check = id.status();
        return (*finish)(std::move(*outcome));
      }
      tasks->Wait(*id, [outcome, finish](Result<Json> record) mutable {
        // The body fills `outcome` before it ends the task; a task
        // cancelled while queued never ran it and has only its error.
        if (!record.ok()) {
          outcome->check = record.status();
        } else if (const cJSON* error = Obj(record->get(), "error"); error && outcome->check.ok()) {
          outcome->check = ErrorFromJson(error);
        } else if (!Obj(record->get(), "error") && !outcome->check.ok() &&
                   outcome->check.status().code() == Code::kInternal) {
          outcome->check = Status::Cancelled("the object's task ended without a result");
        }
        (*finish)(std::move(*outcome));
      });
    });
  }

  void AddError(const Item& item, const Status& st) {
    if (stream_) {
      // cairn's own line: Tahoe's stream ends with "ERROR: ..." there; this
      // walk goes on with the rest.
      Json line = Json::NewObject();
      cJSON_AddStringToObject(line.get(), "type", "error");
      cJSON_AddItemToObject(line.get(), "path", PathJson(item));
      cJSON_AddStringToObject(line.get(), "error", st.ToString().c_str());
      StreamLine(line);
    }
    if (totals_.errors++ >= kMaxListed) return;
    std::string line = PathText(item.root, item.path) + ": " + st.ToString();
    cJSON_AddItemToArray(errors_.get(), cJSON_CreateString(line.c_str()));
  }

  static cJSON* PathJson(const Item& item) {
    cJSON* a = cJSON_CreateArray();
    if (!item.root.empty()) cJSON_AddItemToArray(a, cJSON_CreateString(item.root.c_str()));
    for (const std::string& p : item.path) cJSON_AddItemToArray(a, cJSON_CreateString(p.c_str()));
    return a;
  }

  // Counts one object's outcome, in walk order; a directory's children go
  // onto the stack.
  void Checked(Slot& slot) {
    if (slot.read) barrier_ = false;
    totals_.bytes_verified += slot.verifying;
    Outcome& o = slot.outcome;
    if (!o.check.ok()) {
      if (o.check.status().code() == Code::kCancelled || Stopping()) {
        return End(Status::Cancelled("deep-check cancelled"));
      }
      // The daemon is stopping: every further object would fail the same way.
      if (o.check.status().code() == Code::kShuttingDown) return End(o.check.status());
      if (!recurse_) return End(o.check.status());
      AddError(slot.item, o.check.status());
      return Report();
    }
    if (!recurse_) {
      single_ = std::move(*o.check);
      return End(Status());
    }
    Count(slot.item, slot.cap, o.check->get());
    if (o.body) {
      if (!o.body->ok()) {
        AddError(slot.item, o.body->status().WithContext("reading the directory"));
      } else {
        Push(slot.item, slot.cap, **o.body);
      }
    }
    Report();
  }

  void Count(const Item& item, const caps::Cap& cap, const cJSON* check) {
    const bool literal = cap.kind == caps::CapKind::kLiteral;
    if (!counted_any_) {
      counted_any_ = true;  // the first object counted is the walk's start
      const cJSON* si = Obj(check, "storage-index");
      if (cJSON_IsString(si)) root_si_ = si->valuestring;
    }
    const bool repaired_form = Obj(check, "pre-repair-results") != nullptr;
    const cJSON* pre = repaired_form ? Obj(check, "pre-repair-results") : check;
    const cJSON* post = repaired_form ? Obj(check, "post-repair-results") : check;
    const cJSON* pre_r = Obj(pre, "results");
    const cJSON* post_r = Obj(post, "results");
    const bool pre_healthy = IsTrue(pre_r, "healthy");
    const bool post_healthy = IsTrue(post_r, "healthy");
    // Stats (Tahoe's deep-stats keys).
    if (cap.directory) {
      ++stats_directories_;
    } else if (literal) {
      ++literal_files_;
      size_literal_ += cap.literal.size();
      ++histogram_[SizeBucket(cap.literal.size())];
    } else if (cap.is_mutable()) {
      ++mutable_files_;
    } else {
      ++immutable_files_;
      size_immutable_ += cap.size;
      largest_immutable_ = std::max(largest_immutable_, cap.size);
      ++histogram_[SizeBucket(cap.size)];
    }
    if (stream_) StreamObject(item, cap, check, repaired_form);
    if (literal) {
      if (cap.directory) ++literal_dirs_;
    } else {
      ++totals_.objects;
      if (pre_healthy)
        ++healthy_pre_;
      else
        ++totals_.unhealthy;
      if (post_healthy)
        ++healthy_post_;
      else
        ++unhealthy_post_;
      if (!IsTrue(post_r, "recoverable")) ++totals_.unrecoverable;
      if (IsTrue(check, "repair-attempted")) {
        ++repairs_attempted_;
        if (IsTrue(check, "repair-successful"))
          ++totals_.repaired;
        else
          ++repairs_failed_;
      }
      const cJSON* c;
      cJSON_ArrayForEach(c, Obj(pre_r, "list-corrupt-shares")) {
        if (corrupt_pre_++ < kMaxListed) cJSON_AddItemToArray(corrupt_.get(), cJSON_Duplicate(c, true));
      }
      if (repaired_form) {
        cJSON_ArrayForEach(c, Obj(post_r, "list-corrupt-shares")) {
          if (corrupt_post_++ < kMaxListed) {
            cJSON_AddItemToArray(remaining_corrupt_.get(), cJSON_Duplicate(c, true));
          }
        }
      }
      if (!pre_healthy && totals_.unhealthy <= kMaxListed) {
        cJSON* entry = cJSON_CreateArray();
        cJSON_AddItemToArray(entry, PathJson(item));
        cJSON_AddItemToArray(entry, cJSON_Duplicate(pre, true));
        cJSON_AddItemToArray(unhealthy_files_.get(), entry);
      }
      const cJSON* lease = Obj(check, "lease");
      if (lease) {
        totals_.leases_renewed += static_cast<std::uint64_t>(cJSON_GetArraySize(Obj(lease, "renewed")));
        leases_failed_ += static_cast<std::uint64_t>(cJSON_GetArraySize(Obj(lease, "failed")));
      }
    }
    if (listed_ < kMaxObjectsListed) {
      ++listed_;
      cJSON* o = cJSON_CreateObject();
      cJSON_AddItemToObject(o, "path", PathJson(item));
      cJSON_AddStringToObject(o, "type", cap.directory ? "directory" : "file");
      cJSON_AddStringToObject(o, "storage-index", literal ? "" : cJSON_GetStringValue(Obj(check, "storage-index")));
      cJSON_AddStringToObject(o, "summary", literal ? "Healthy (LIT)" : cJSON_GetStringValue(Obj(post, "summary")));
      cJSON_AddBoolToObject(o, "healthy", literal || post_healthy);
      cJSON_AddBoolToObject(o, "recoverable", literal || IsTrue(post_r, "recoverable"));
      if (repaired_form && !literal) {
        cJSON_AddBoolToObject(o, "pre-repair-healthy", pre_healthy);
        cJSON_AddBoolToObject(o, "repair-attempted", IsTrue(check, "repair-attempted"));
        cJSON_AddBoolToObject(o, "repair-successful", IsTrue(check, "repair-successful"));
      }
      cJSON_AddItemToArray(objects_.get(), o);
    }
  }

  // Tahoe's stream-deep-check line of one object (C.9): path, cap, type,
  // verifycap, repaircap (a mutable file's write cap, a CHK file's verify
  // cap, "" for directories of CHK and LIT), storage-index and its check
  // JSON.
  void StreamObject(const Item& item, const caps::Cap& cap, const cJSON* check, bool repaired_form) {
    Json line = Json::NewObject();
    cJSON* o = line.get();
    cJSON_AddItemToObject(o, "path", PathJson(item));
    cJSON_AddStringToObject(o, "cap", item.cap.c_str());
    cJSON_AddStringToObject(o, "type", cap.directory ? "directory" : "file");
    auto verify = caps::ToVerifyCap(cap);
    cJSON_AddStringToObject(o, "verifycap", verify.ok() ? caps::FormatCap(*verify).c_str() : "");
    std::string repair;
    if (cap.kind == caps::CapKind::kMutableWrite) {
      repair = caps::FormatCap(cap);
    } else if (cap.kind == caps::CapKind::kChk && !cap.directory && verify.ok()) {
      repair = caps::FormatCap(*verify);
    }
    cJSON_AddStringToObject(o, "repaircap", repair.c_str());
    const cJSON* si = Obj(check, "storage-index");
    cJSON_AddStringToObject(o, "storage-index", cJSON_IsString(si) ? si->valuestring : "");
    cJSON_AddItemToObject(o, repaired_form ? "check-and-repair-results" : "check-results",
                          cJSON_Duplicate(check, true));
    StreamLine(line);
  }

  void StreamLine(const Json& line) {
    char* text = cJSON_PrintUnformatted(line.get());
    if (!text) return;
    stream_buf_ += text;
    stream_buf_ += '\n';
    cJSON_free(text);
    if (stream_buf_.size() >= kStreamBatch) FlushStream();
  }

  // Writes what is buffered (one write at a time, on the thread pool);
  // once everything is written and the walk is ending, finishes it.
  void FlushStream() {
    if (stream_writing_) return;
    if (stream_buf_.empty()) {
      if (stream_finishing_) Finish();
      return;
    }
    auto data = std::make_shared<std::string>(std::move(stream_buf_));
    stream_buf_.clear();
    stream_writing_ = true;
    const std::uint64_t at = stream_bytes_;
    stream_bytes_ += data->size();
    auto self = shared_from_this();
    ToSpool(*env_.loop, stream_, nullptr)(data, at, false, [self](Status st) {
      self->stream_writing_ = false;
      if (!st.ok() && self->stream_error_.ok()) self->stream_error_ = st.WithContext("the stream's spool file");
      self->FlushStream();
    });
  }

  Json StatsJson() const {
    Json out = Json::NewObject();
    cJSON* stats = out.get();
    auto stat = [stats](const char* k, std::uint64_t v) { cJSON_AddNumberToObject(stats, k, static_cast<double>(v)); };
    stat("api-version", 1);
    stat("count-immutable-files", immutable_files_);
    stat("count-mutable-files", mutable_files_);
    stat("count-literal-files", literal_files_);
    stat("count-files", immutable_files_ + mutable_files_ + literal_files_);
    stat("count-directories", stats_directories_);
    stat("count-unknown", unknown_);
    stat("size-immutable-files", size_immutable_);
    stat("size-literal-files", size_literal_);
    stat("size-directories", size_dirs_);
    stat("largest-directory", largest_dir_);
    stat("largest-directory-children", largest_dir_children_);
    stat("largest-immutable-file", largest_immutable_);
    cJSON* histogram = cJSON_AddArrayToObject(stats, "size-files-histogram");
    for (const auto& [bucket, count] : histogram_) {
      cJSON* b = cJSON_CreateArray();
      cJSON_AddItemToArray(b, cJSON_CreateNumber(static_cast<double>(bucket.first)));
      cJSON_AddItemToArray(b, cJSON_CreateNumber(static_cast<double>(bucket.second)));
      cJSON_AddItemToArray(b, cJSON_CreateNumber(static_cast<double>(count)));
      cJSON_AddItemToArray(histogram, b);
    }
    return out;
  }

  // The directory's children onto the stack: files and unknown nodes in
  // name order, then subdirectories in name order (popped in that order).
  void Push(const Item& item, const caps::Cap& cap, const std::string& body) {
    auto access = dirnode::AccessOf(cap);
    if (!access.ok()) return AddError(item, access.status());
    auto parsed = dirnode::ParseBody(body, *access);
    if (!parsed.ok()) return AddError(item, parsed.status().WithContext("the directory's body"));
    if (body.size() > largest_dir_) largest_dir_ = body.size();
    size_dirs_ += body.size();
    largest_dir_children_ = std::max<std::uint64_t>(largest_dir_children_, parsed->children.size());
    std::vector<Item> files, dirs;
    for (const auto& [name, child] : parsed->children) {
      Item c{item.root, item.path, child.rw_uri.empty() ? child.ro_uri : child.rw_uri};
      c.path.push_back(name);
      if (dirnode::TypeOf(child) == dirnode::NodeType::kDirectory) {
        dirs.push_back(std::move(c));
      } else if (dirnode::TypeOf(child) == dirnode::NodeType::kFile) {
        files.push_back(std::move(c));
      } else {
        ++unknown_;
      }
    }
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) stack_.push_back(std::move(*it));
    for (auto it = files.rbegin(); it != files.rend(); ++it) stack_.push_back(std::move(*it));
  }

  Json ResultJson() {
    Json out = Json::NewObject();
    cJSON* o = out.get();
    cJSON_AddBoolToObject(o, "finished", true);
    cJSON_AddStringToObject(o, "root-storage-index", root_si_.c_str());
    auto num = [o](const char* k, std::uint64_t v) { cJSON_AddNumberToObject(o, k, static_cast<double>(v)); };
    num("count-objects-checked", totals_.objects);
    if (!wanted_.repair) {
      num("count-objects-healthy", healthy_pre_);
      num("count-objects-unhealthy", totals_.unhealthy);
      num("count-corrupt-shares", corrupt_pre_);
      cJSON_AddItemToObject(o, "list-corrupt-shares", corrupt_.release());
    } else {
      num("count-objects-healthy-pre-repair", healthy_pre_);
      num("count-objects-unhealthy-pre-repair", totals_.unhealthy);
      num("count-objects-healthy-post-repair", healthy_post_);
      num("count-objects-unhealthy-post-repair", unhealthy_post_);
      num("count-repairs-attempted", repairs_attempted_);
      num("count-repairs-successful", totals_.repaired);
      num("count-repairs-unsuccessful", repairs_failed_);
      num("count-corrupt-shares-pre-repair", corrupt_pre_);
      num("count-corrupt-shares-post-repair", corrupt_post_);
      cJSON_AddItemToObject(o, "list-corrupt-shares", corrupt_.release());
      cJSON_AddItemToObject(o, "list-remaining-corrupt-shares", remaining_corrupt_.release());
    }
    num("count-objects-unrecoverable", totals_.unrecoverable);
    cJSON_AddItemToObject(o, "list-unhealthy-files", unhealthy_files_.release());
    cJSON_AddItemToObject(o, "stats", StatsJson().release());
    // cairn's additions.
    num("count-literal-objects", literal_files_ + literal_dirs_);
    if (wanted_.add_lease) {
      cJSON* lease = cJSON_AddObjectToObject(o, "lease");
      cJSON_AddNumberToObject(lease, "renewed", static_cast<double>(totals_.leases_renewed));
      cJSON_AddNumberToObject(lease, "failed", static_cast<double>(leases_failed_));
    }
    if (wanted_.verify) num("bytes-verified", totals_.bytes_verified);
    if (pause_) num("paused-ms", paused_ms_);
    if (stream_) num("stream-bytes", stream_bytes_);
    cJSON_AddItemToObject(o, "list-errors", errors_.release());
    cJSON_AddItemToObject(o, "objects", objects_.release());
    if (listed_ < totals_.objects + literal_files_ + literal_dirs_) cJSON_AddBoolToObject(o, "objects-truncated", true);
    // The other lists hold at most kMaxListed entries each; their counts
    // are whole.
    if (totals_.unhealthy > kMaxListed || totals_.errors > kMaxListed || corrupt_pre_ > kMaxListed ||
        corrupt_post_ > kMaxListed) {
      cJSON_AddBoolToObject(o, "lists-truncated", true);
    }
    return out;
  }

  // Ends the walk with `st`: no further object starts; `done` runs once
  // the objects still running have come back (their hooks and tasks use
  // this walk and its task).
  void End(Status st) {
    if (ending_ || ended_) return;
    ending_ = true;
    end_status_ = std::move(st);
    pause_timer_.reset();  // (its task, if it fired, was moved out of it)
  }

  void Finish() {
    if (stream_ && !stream_finishing_) {
      // The stats line last, then every line written before the answer.
      stream_finishing_ = true;
      if (end_status_.ok() && recurse_) {
        Json line = Json::NewObject();
        cJSON_AddStringToObject(line.get(), "type", "stats");
        cJSON_AddItemToObject(line.get(), "stats", StatsJson().release());
        StreamLine(line);
      }
      return FlushStream();
    }
    if (stream_ && stream_writing_) return;
    if (ended_) return;
    ended_ = true;
    if (end_status_.ok() && !stream_error_.ok()) end_status_ = stream_error_;
    auto done = std::move(done_);
    if (!end_status_.ok()) return done(end_status_);
    if (!recurse_) return done(std::make_pair(std::move(single_), totals_));
    done(std::make_pair(ResultJson(), totals_));
  }

  std::function<bool()> pause_;
  std::shared_ptr<Spool> stream_;   // null: no stream
  std::string stream_buf_;          // lines not yet handed to a write
  std::uint64_t stream_bytes_ = 0;  // bytes handed to writes so far
  bool stream_writing_ = false, stream_finishing_ = false;
  Status stream_error_;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::uint64_t> histogram_;
  std::unique_ptr<Timer> pause_timer_;
  std::uint64_t paused_ms_ = 0;
  CheckEnv env_;
  CheckWanted wanted_;
  std::vector<WalkRoot> roots_;
  bool recurse_;
  TaskRun* run_;
  Callback<void(Result<std::pair<Json, WalkTotals>>)> done_;
  std::size_t next_root_ = 0;
  std::vector<Item> stack_;
  std::set<std::string> seen_;
  std::deque<std::shared_ptr<Slot>> inflight_;  // in walk order
  std::size_t outstanding_ = 0;                 // started and not yet come back
  bool barrier_ = false;                        // a directory in flight: its children come next
  bool resolving_ = false;                      // following a root's path
  bool pause_waiting_ = false;
  bool pumping_ = false;
  bool ending_ = false, ended_ = false;
  Status end_status_;
  Json single_;
  WalkTotals totals_;
  std::uint64_t healthy_pre_ = 0, healthy_post_ = 0, unhealthy_post_ = 0;
  std::uint64_t repairs_attempted_ = 0, repairs_failed_ = 0, leases_failed_ = 0;
  std::uint64_t corrupt_pre_ = 0, corrupt_post_ = 0;
  std::uint64_t immutable_files_ = 0, mutable_files_ = 0, literal_files_ = 0, literal_dirs_ = 0;
  std::uint64_t stats_directories_ = 0, unknown_ = 0;
  std::uint64_t size_immutable_ = 0, size_literal_ = 0, size_dirs_ = 0;
  std::uint64_t largest_dir_ = 0, largest_dir_children_ = 0, largest_immutable_ = 0;
  std::size_t listed_ = 0;
  bool counted_any_ = false;
  std::string root_si_;
  Json objects_, corrupt_, remaining_corrupt_, unhealthy_files_, errors_;
};

// The roots a target names: an alias name, ALIAS:path, a cap, or a cap
// with a path. The alias is read now (the task runs it; the walk reads
// directories without holding them, as Tahoe's does).
Result<WalkRoot> RootOf(const NameTable& aliases, const std::string& target) {
  if (target.rfind("URI:", 0) != 0 && NameTable::CheckName(target).ok()) {
    auto cap = aliases.Get(target);
    if (!cap.ok()) {
      if (cap.status().code() == Code::kNotFound) return Status::NotFound("unknown alias \"" + target + "\"");
      return cap.status();
    }
    return WalkRoot{"", *cap, {}};
  }
  if (target.rfind("URI:", 0) == 0 && caps::ParseCap(target).ok()) return WalkRoot{"", target, {}};
  CAIRN_TRY_ASSIGN(dirnode::DirPath path, dirnode::ParseDirPath(target));
  WalkRoot root{"", path.root_cap, path.components};
  if (root.cap.empty()) {
    auto cap = aliases.Get(path.alias);
    if (!cap.ok()) {
      if (cap.status().code() == Code::kNotFound) return Status::NotFound("unknown alias \"" + path.alias + "\"");
      return cap.status();
    }
    root.cap = *cap;
  }
  return root;
}

}  // namespace

std::pair<std::uint64_t, std::uint64_t> SizeBucket(std::uint64_t size) {
  if (size == 0) return {0, 0};
  if (size <= 3) return {1, 3};
  // Tahoe computes these in Python floats: log(n, k) is log(n) / log(k),
  // k ** x is pow(k, x), and int() truncates; so does this.
  const double root = std::sqrt(10.0);
  std::uint64_t lower = 4;
  for (;;) {
    const double n = static_cast<double>(lower);
    const int x = static_cast<int>(std::log(n) / std::log(root) + 0.5);
    double upper = std::pow(root, x);
    if (upper < n) upper = std::pow(root, x + 1);
    const std::uint64_t top = static_cast<std::uint64_t>(upper);
    if (size <= top) return {lower, top};
    lower = top + 1;
  }
}

void WalkAndCheck(CheckEnv env, CheckWanted wanted, std::vector<WalkRoot> roots, bool recurse, TaskRun* run,
                  Callback<void(Result<std::pair<Json, WalkTotals>>)> done, std::function<bool()> pause,
                  std::shared_ptr<Spool> stream) {
  Loop* loop = env.loop;
  auto w = std::make_shared<Walker>(std::move(env), wanted, std::move(roots), recurse, run, std::move(done),
                                    std::move(pause), std::move(stream));
  // Started on a later turn: the caller hears of the end only after it returned.
  loop->Post([w] { w->Start(); });
}

void SubmitDeepCheck(CommandsState& c, Request& req, Reply& reply, std::string target, CheckWanted wanted,
                     bool recurse, bool stream) {
  // The shared key no object task takes (deep_check.h): deep-checks run
  // side by side, and their object tasks queue on the slots alone.
  TaskSpec spec = NewTaskSpec(recurse ? "deep-check" : "check", req, {LockKeys::DeepCheck()});
  CheckEnv env = CheckEnvOf(c);
  // With `stream`, made before the task is submitted; the walk fills it,
  // then it goes back in data frames before the result (as a get's file).
  auto spool = std::make_shared<std::shared_ptr<Spool>>();
  spec.body = [env, wanted, target, recurse, spool](TaskRun& run) {
    auto root = RootOf(*env.aliases, target);
    if (!root.ok()) return run.Fail(root.status());
    TaskRun* runp = &run;
    WalkAndCheck(
        env, wanted, {std::move(*root)}, recurse, runp,
        [runp](Result<std::pair<Json, WalkTotals>> out) {
          if (!out.ok()) return runp->Fail(out.status());
          runp->Succeed(std::move(out->first));
        },
        nullptr, *spool);
  };
  if (!stream) return RunTask(c, req, reply, std::move(spec));
  Loop* loop = &c.loop;
  TaskTable* tasks = &c.tasks;
  auto pending = std::make_shared<std::pair<Reply, TaskSpec>>(std::move(reply), std::move(spec));
  MakeSpool(*loop, c.options.spool_dir, "get", [loop, tasks, pending, spool](Result<std::shared_ptr<Spool>> made) {
    if (!made.ok()) return pending->first.Error(made.status());
    *spool = *made;
    SubmitAndAnswer(*tasks, true, std::move(pending->first), std::move(pending->second),
                    [loop, spool](std::shared_ptr<Reply> out, Json result) {
                      const cJSON* size = cJSON_GetObjectItemCaseSensitive(result.get(), "stream-bytes");
                      std::uint64_t bytes = cJSON_IsNumber(size) ? static_cast<std::uint64_t>(size->valuedouble) : 0;
                      SendOutput(*loop, std::move(out), Output::Spooled(*spool, bytes), std::move(result));
                    });
  });
}

void DeepCheck(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string target;
  CheckWanted wanted;
  Status st = r->String("target", &target, true);
  if (st.ok()) st = r->Bool("verify", &wanted.verify);
  if (st.ok()) st = r->Bool("repair", &wanted.repair);
  if (st.ok()) st = r->Bool("add_lease", &wanted.add_lease);
  bool stream = false;
  if (st.ok()) st = r->Bool("stream", &stream);
  if (st.ok()) st = r->Finish();
  if (st.ok() && stream && !req.wait) {
    st = Status::InvalidArgument("a streamed deep-check sends its lines on this connection: it cannot answer "
                                 "before it ends");
  }
  if (!st.ok()) return reply.Error(st);
  SubmitDeepCheck(c, req, reply, std::move(target), wanted, true, stream);
}

}  // namespace cairn::control
