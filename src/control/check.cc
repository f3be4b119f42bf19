// `check` (control/check.h, docs/check.md): a thin adapter and one job.
// The handler reads the params, resolves the target once to name its locks
// (as mutable.cc does: an alias is read again inside the task, and must
// still name the file whose slot is locked), and submits a task. The task's
// job opens a grid session, reads the lease secret when it renews or
// repairs, checks (immutable/checker.h or control/check_mutable.h), renews
// leases (grid/lease.h), repairs (immutable/repairer.h or RepairMutable),
// closes the session and ends the task with the JSON. Its progress is the
// task's; `tasks cancel` stops it at its next step. Loop thread only.
#include "control/check.h"

#include <cjson/cJSON.h>

#include <memory>
#include <optional>

#include "cairn/caps/cap.h"
#include "cairn/core/base32.h"
#include "cairn/grid/check.h"
#include "cairn/grid/lease.h"
#include "cairn/grid/operation.h"
#include "cairn/immutable/checker.h"
#include "cairn/immutable/repairer.h"
#include "control/check_mutable.h"
#include "control/deep_check.h"
#include "control/transfer.h"

namespace cairn::control {
namespace {

using Wanted = CheckWanted;
using Env = CheckEnv;

Result<caps::Cap> CheckableCap(const std::string& text) {
  CAIRN_TRY_ASSIGN(caps::Cap cap, caps::ParseCap(text));
  return cap;
}

struct Target {
  std::string alias;             // empty when a cap was given
  std::optional<caps::Cap> cap;  // the cap given
  std::string locked_si;         // a mutable file's storage index whose slot is locked
                                 // ("" if none)
};

Result<Target> ResolveAtSubmit(const NameTable& aliases, const std::string& text) {
  Target t;
  if (text.rfind("URI:", 0) == 0) {
    CAIRN_TRY_ASSIGN(caps::Cap cap, CheckableCap(text));
    if (cap.is_mutable()) {
      CAIRN_TRY_ASSIGN(t.locked_si, caps::StorageIndexOf(cap));
    }
    t.cap = cap;
    return t;
  }
  if (!NameTable::CheckName(text).ok()) return Status::BadCap("\"" + text + "\" is neither a cap nor an alias name");
  t.alias = text;
  auto now = aliases.Get(text);
  if (now.ok()) {
    auto cap = CheckableCap(*now);
    if (cap.ok() && cap->is_mutable()) {
      auto si = caps::StorageIndexOf(*cap);
      if (si.ok()) t.locked_si = *si;
    }
  }
  return t;
}

// A target that names a node by a path (ALIAS:path, URI:DIR2:.../path):
// neither a cap nor an alias name.
bool IsPath(const std::string& text) {
  if (text.rfind("URI:", 0) == 0) return !caps::ParseCap(text).ok() && text.find('/') != std::string::npos;
  return !NameTable::CheckName(text).ok() && text.find(':') != std::string::npos;
}

Result<caps::Cap> ResolveInTask(const NameTable& aliases, const Target& t) {
  if (t.alias.empty()) return *t.cap;
  CAIRN_TRY_ASSIGN(std::string text, aliases.Get(t.alias));
  auto cap = CheckableCap(text);
  if (!cap.ok()) return cap.status().WithContext("alias \"" + t.alias + "\"");
  std::string si;
  if (cap->is_mutable()) {
    CAIRN_TRY_ASSIGN(si, caps::StorageIndexOf(*cap));
  }
  if (si != t.locked_si) {
    return Status::Conflict("alias \"" + t.alias + "\" was changed to another file while the task was queued; retry");
  }
  return *cap;
}

Json LeaseJson(const grid::LeaseReport& l) {
  Json out = Json::NewObject();
  auto list = [&out](const char* key, const std::vector<std::string>& names) {
    cJSON* a = cJSON_AddArrayToObject(out.get(), key);
    for (const std::string& n : names) cJSON_AddItemToArray(a, cJSON_CreateString(n.c_str()));
  };
  list("renewed", l.renewed);
  list("no-shares", l.no_shares);
  list("failed", l.failed);
  return out;
}

// One check task's job, from the session's opening to its closing.
struct CheckJob {
  CheckJob(Env e, Wanted w, caps::Cap c, JobHooks h, Callback<void(Result<Json>)> done)
      : env(std::move(e)), wanted(w), cap(std::move(c)), hooks(std::move(h)), op(*env.loop, "check", std::move(done)) {}
  Env env;
  Wanted wanted;
  caps::Cap cap;
  JobHooks hooks;
  grid::Operation<Json> op;
  std::shared_ptr<grid::Session> session;
  std::string lease_secret;
  grid::CheckResults pre;
  std::optional<grid::LeaseReport> lease;
  // Repair.
  bool attempted = false, successful = false;
  std::string repair_error;
  std::optional<grid::CheckResults> post;
  std::size_t shares_uploaded = 0;
  std::uint64_t seqnum = 0;
  std::optional<RebalanceResult> rebalance;
  std::shared_ptr<Spool> spool;

  grid::ProgressFn Progress(const std::shared_ptr<CheckJob>& self) {
    return [self](const std::string& phase, std::uint64_t done, std::uint64_t total) {
      if (self->hooks.progress) self->hooks.progress(phase, done, total);
    };
  }
  grid::StopFn Stop(const std::shared_ptr<CheckJob>& self) {
    return [self] { return self->session->stopping() || (self->hooks.stop && self->hooks.stop()); };
  }
};

Json ResultJson(const CheckJob& j) {
  if (!j.wanted.repair) {
    Json out = grid::CheckResultsJson(j.pre);
    if (j.lease) cJSON_AddItemToObject(out.get(), "lease", LeaseJson(*j.lease).release());
    return out;
  }
  const grid::CheckResults& after = j.post ? *j.post : j.pre;
  Json out = Json::NewObject();
  cJSON* o = out.get();
  cJSON_AddStringToObject(o, "storage-index", j.pre.literal ? "" : Base32Encode(j.pre.storage_index).c_str());
  cJSON_AddStringToObject(o, "summary", after.summary.c_str());
  cJSON_AddBoolToObject(o, "repair-attempted", j.attempted);
  cJSON_AddBoolToObject(o, "repair-successful", j.successful);
  if (!j.repair_error.empty()) cJSON_AddStringToObject(o, "repair-error", j.repair_error.c_str());
  if (j.attempted && !j.pre.is_mutable) {
    cJSON_AddNumberToObject(o, "shares-uploaded", static_cast<double>(j.shares_uploaded));
  }
  if (j.attempted && j.pre.is_mutable && j.seqnum) cJSON_AddNumberToObject(o, "seqnum", static_cast<double>(j.seqnum));
  if (j.rebalance) {
    cJSON* rb = cJSON_AddObjectToObject(o, "rebalance");
    cJSON_AddNumberToObject(rb, "happiness-before", static_cast<double>(j.rebalance->happiness_before));
    cJSON_AddNumberToObject(rb, "happiness-after", static_cast<double>(j.rebalance->happiness_after));
    cJSON_AddNumberToObject(rb, "shares-copied", static_cast<double>(j.rebalance->copied));
    cJSON_AddNumberToObject(rb, "copies-failed", static_cast<double>(j.rebalance->copy_failed));
    cJSON_AddNumberToObject(rb, "surplus-deleted", static_cast<double>(j.rebalance->deleted));
    cJSON_AddNumberToObject(rb, "surplus-kept", static_cast<double>(j.rebalance->kept));
  }
  cJSON_AddItemToObject(o, "pre-repair-results", grid::CheckResultsJson(j.pre).release());
  cJSON_AddItemToObject(o, "post-repair-results", grid::CheckResultsJson(after).release());
  if (j.lease) cJSON_AddItemToObject(o, "lease", LeaseJson(*j.lease).release());
  return out;
}

void Finish(const std::shared_ptr<CheckJob>& j, Result<Json> result) {
  j->spool.reset();  // the repair's scratch file goes now
  grid::Session::Close(j->session, [j, result = std::move(result)]() mutable { j->op.Finish(std::move(result)); });
}

void Repair(const std::shared_ptr<CheckJob>& j) {
  const bool needed = j->pre.recoverable && (!j->pre.healthy || j->pre.needs_rebalancing);
  if (!j->wanted.repair || j->pre.literal || !needed) {
    if (j->wanted.repair && !j->pre.recoverable) j->repair_error = "unrecoverable: fewer than k good shares";
    return Finish(j, ResultJson(*j));
  }
  if (j->cap.is_mutable()) {
    mutable_files::MutableOptions options;
    options.k = j->env.k;
    options.n = j->env.n;
    options.happy = j->env.happy;
    options.lease_secret = j->lease_secret;
    return RepairMutable(*j->env.loop, j->session->servers(), j->cap, j->pre, std::move(options), j->env.max_body,
                         j->wanted.verify, j->Progress(j), j->Stop(j), [j](Result<MutableRepairResult> r) {
                           if (!r.ok()) return Finish(j, r.status());
                           j->attempted = r->attempted;
                           j->successful = r->successful;
                           j->repair_error = r->error;
                           j->seqnum = r->seqnum;
                           if (r->rebalanced) j->rebalance = r->rebalance;
                           if (r->attempted) j->post = std::move(r->post);
                           Finish(j, ResultJson(*j));
                         });
  }
  if (j->cap.kind != caps::CapKind::kChk) {
    // Tahoe repairs from a verify cap (it re-encodes the ciphertext); cairn's
    // repairer decrypts and encrypts again, so it needs the read cap. The
    // check's results stand; the repair is reported not attempted.
    j->repair_error = "repairing an immutable file needs its read cap (URI:CHK:); a verify cap cannot re-encode";
    return Finish(j, ResultJson(*j));
  }
  MakeSpool(*j->env.loop, j->env.spool_dir, "repair", [j](Result<std::shared_ptr<Spool>> made) {
    if (!made.ok()) return Finish(j, made.status());
    j->spool = *made;
    immutable::RepairOptions options;
    options.spool_path = j->spool->path;
    options.happy = j->env.happy;
    options.lease_secret = j->lease_secret;
    options.verify = j->wanted.verify;
    immutable::RepairImmutable(*j->env.loop, j->session->servers(), j->cap, j->pre, std::move(options), j->Progress(j),
                               j->Stop(j), [j](Result<immutable::RepairResult> r) {
                                 if (!r.ok()) return Finish(j, r.status());
                                 j->attempted = r->attempted;
                                 j->successful = r->successful;
                                 j->repair_error = r->error;
                                 j->shares_uploaded = r->shares_uploaded;
                                 if (r->attempted) j->post = std::move(r->post);
                                 Finish(j, ResultJson(*j));
                               });
  });
}

void Lease(const std::shared_ptr<CheckJob>& j) {
  if (!j->wanted.add_lease || j->pre.literal) return Repair(j);
  grid::AddLeases(*j->env.loop, j->session->servers(), j->pre.storage_index, j->lease_secret,
                  [j](grid::LeaseReport report) {
                    j->lease = std::move(report);
                    Repair(j);
                  });
}

void Check(const std::shared_ptr<CheckJob>& j) {
  auto checked = [j](Result<grid::CheckResults> r) {
    if (!r.ok()) return Finish(j, r.status());
    j->pre = std::move(*r);
    Lease(j);
  };
  if (j->cap.is_mutable()) {
    return CheckMutable(*j->env.loop, j->session->servers(), j->cap, j->wanted.verify, j->env.happy, j->Progress(j),
                        j->Stop(j), std::move(checked));
  }
  immutable::CheckOptions options;
  options.verify = j->wanted.verify;
  options.happy = j->env.happy;
  immutable::CheckImmutable(*j->env.loop, j->session->servers(), j->cap, options, j->Progress(j), j->Stop(j),
                            std::move(checked));
}

}  // namespace

CheckEnv CheckEnvOf(CommandsState& c) {
  return CheckEnv{&c.loop,
                  &c.servers,
                  &c.aliases,
                  &c.tasks,
                  &c.grid,
                  c.options.spool_dir,
                  c.options.shares_needed,
                  c.options.shares_total,
                  c.options.shares_happy,
                  c.options.sdmf_max_bytes};
}

void RunCheckJob(Env env, Wanted wanted, caps::Cap cap, std::vector<grid::ServerEntry> servers, JobHooks hooks,
                 Callback<void(Result<Json>)> done) {
  cap.directory = false;  // a directory is checked as its backing file (C.7)
  auto j = std::make_shared<CheckJob>(env, wanted, std::move(cap), std::move(hooks), std::move(done));
  auto opened = env.grid->Open(servers);
  if (!opened.ok()) return j->op.FinishSoon(opened.status());
  j->session = std::move(*opened);
  if (!wanted.add_lease && !wanted.repair) return Check(j);
  env.grid->ReadSecrets(false, true, [j](Result<grid::NodeSecrets> secrets) {
    if (!secrets.ok()) return Finish(j, secrets.status());
    j->lease_secret = secrets->lease;
    Check(j);
  });
}

void FileCheck(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string target;
  Wanted wanted;
  Status st = r->String("target", &target, true);
  if (st.ok()) st = r->Bool("verify", &wanted.verify);
  if (st.ok()) st = r->Bool("repair", &wanted.repair);
  if (st.ok()) st = r->Bool("add_lease", &wanted.add_lease);
  if (st.ok()) st = r->Finish();
  if (!st.ok()) return reply.Error(st);
  if (IsPath(target)) return SubmitDeepCheck(c, req, reply, std::move(target), wanted, false);
  auto resolved = ResolveAtSubmit(c.aliases, target);
  if (!resolved.ok()) return reply.Error(resolved.status());
  Target t = std::move(*resolved);

  std::vector<LockKey> keys{LockKeys::Servers(LockMode::kShared)};
  if (!t.alias.empty()) keys.push_back(LockKeys::Alias(t.alias, LockMode::kShared));
  // A mutable repair publishes: it holds the slot as a `mutable put` does,
  // so the two never interleave.
  if (!t.locked_si.empty()) {
    keys.push_back(LockKeys::Slot(t.locked_si, wanted.repair ? LockMode::kExclusive : LockMode::kShared));
  }
  TaskSpec spec = NewTaskSpec("check", req, std::move(keys));
  Env env = CheckEnvOf(c);
  spec.body = [env, wanted, t](TaskRun& run) {
    auto cap = ResolveInTask(*env.aliases, t);
    if (!cap.ok()) return run.Fail(cap.status());
    auto snapshot = GridSnapshot(*env.servers);
    if (!snapshot.ok()) return run.Fail(snapshot.status());
    TaskRun* runp = &run;
    RunCheckJob(env, wanted, *cap, std::move(*snapshot), TaskHooks(run), [runp](Result<Json> out) {
      if (!out.ok()) return runp->Fail(out.status());
      runp->Succeed(std::move(*out));
    });
  };
  RunTask(c, req, reply, std::move(spec));
}

}  // namespace cairn::control
