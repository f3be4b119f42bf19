// mutable.create / mutable.put / mutable.get: SDMF mutable files on the
// node's grid (docs/mutable.md). Thin adapters: params, lock keys, the
// input received into memory (control/transfer.h), then a task whose body
// runs a grid job (CreateMutableJob, PublishMutableJob, RetrieveMutableJob
// in control/jobs.h) and turns its result into JSON.
//
// Each is a task. Its locks: "servers" shared (the grid does not change
// under it), "slot/<SI>" for the file (exclusive to publish, shared to
// read: two aliases or a raw cap may name one slot), and "alias/<name>"
// when an alias names the file (shared to use it; exclusive to create it).
// A target given as an alias is resolved once at submission, only to name
// the slot's lock, and again inside the task after the locks are held: if
// it now names another file the task fails `conflict` (retry).
//
// create makes the key first and records the write cap durably in the task
// record ("intent") before the first share is sent, so no crash can lose
// the only copy of the key; with an alias, a name that exists fails
// `conflict` before anything is sent, and the alias is written with an
// MDB_NOOVERWRITE put. An SDMF file travels in memory (one segment),
// bounded by limits.sdmf_max_bytes, as does the input of an MDMF put (a
// whole replacement, or the bytes an in-place update writes). An MDMF
// create streams: its input is spooled as it arrives and the publish reads
// the spool a batch of segments at a time (MutableOptions::source). A read
// streams too: the retrieve hands each decoded batch to a spool file
// (RetrieveOptions::sink), which is sent back once the task succeeded; only
// a ranged read of at most kMemoryRead bytes is gathered in memory.
// Loop thread only.
#include <cjson/cJSON.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>

#include "cairn/caps/cap.h"
#include "cairn/core/base32.h"
#include "cairn/core/clock.h"
#include "cairn/mutable/mutable_file.h"
#include "control/handlers.h"
#include "control/transfer.h"

namespace cairn::control {
namespace {

namespace mf = mutable_files;

// A ranged read of at most this many bytes is gathered in memory; anything
// else (a whole file) goes through a spool file.
constexpr std::uint64_t kMemoryRead = 8u << 20;

// What a mutable task needs of the daemon, copied when it is submitted
// (every pointer outlives the tasks: the task table closes first).
struct Env {
  Loop* loop;
  NameTable* servers;
  NameTable* aliases;
  std::map<TaskId, std::unique_ptr<Timer>>* holds;
  grid::Grid* grid;
  mf::MutableOptions options;
};

Env EnvOf(CommandsState& c) {
  mf::MutableOptions options;
  options.k = c.options.shares_needed;
  options.n = c.options.shares_total;
  options.happy = c.options.shares_happy;
  return Env{&c.loop, &c.servers, &c.aliases, &c.holds, &c.grid, options};
}

// When a mutable.put reached each step (clock::MonotonicMs), for the
// "timing_ms" of its result: where an update's wall time goes.
struct PutClock {
  double request = 0;   // the request line was read
  double received = 0;  // the last data frame was read; the task is submitted
  double started = 0;   // the task's body runs (its locks are held)
  double grid = 0;      // the grid's session and the lease secret are ready (JobHooks::ready)
};

// A mutable file's cap (SDMF or MDMF) that can write (or, with `read_ok`,
// read) it.
Result<caps::Cap> MutableCap(const std::string& text, bool read_ok) {
  CAIRN_TRY_ASSIGN(caps::Cap cap, caps::ParseCap(text));
  bool write = cap.kind == caps::CapKind::kMutableWrite;
  bool read = cap.kind == caps::CapKind::kMutableRead;
  if (!(write || (read_ok && read))) {
    return Status::BadCap(read_ok ? "not a mutable file's write or read cap (URI:SSK:, URI:MDMF: or their -RO forms)"
                                  : "not a mutable file's write cap (URI:SSK: or URI:MDMF:)");
  }
  // A directory's body is not a file: written as one it would be lost.
  if (cap.directory) return Status::BadCap("that is a directory cap: use `cairn ls`, `put FILE DIR:path`, `ln`, `rm`");
  return cap;
}

// A target as given: a cap, or an alias name (its cap read at submission
// only to name the slot's lock).
struct Target {
  std::string alias;              // empty when a cap was given
  std::optional<caps::Cap> cap;   // the cap given
  std::string locked_si;          // the storage index whose slot is locked ("" if none)
};

Result<Target> ResolveAtSubmit(const NameTable& aliases, const std::string& text, bool read_ok) {
  Target t;
  if (text.rfind("URI:", 0) == 0) {
    CAIRN_TRY_ASSIGN(caps::Cap cap, MutableCap(text, read_ok));
    CAIRN_TRY_ASSIGN(t.locked_si, caps::StorageIndexOf(cap));
    t.cap = cap;
    return t;
  }
  if (!NameTable::CheckName(text).ok()) return Status::BadCap("\"" + text + "\" is neither a cap nor an alias name");
  t.alias = text;
  // Missing or of another kind now: the task says so once it holds the name.
  auto now = aliases.Get(text);
  if (now.ok()) {
    auto cap = MutableCap(*now, read_ok);
    auto si = cap.ok() ? caps::StorageIndexOf(*cap) : Result<std::string>(cap.status());
    if (si.ok()) t.locked_si = *si;
  }
  return t;
}

// The target's cap inside the task, after the locks: an alias is read
// fresh and must still name the slot that is locked.
Result<caps::Cap> ResolveInTask(const NameTable& aliases, const Target& t, bool read_ok) {
  if (!t.alias.empty()) {
    auto text = aliases.Get(t.alias);
    if (!text.ok()) return text.status();
    auto cap = MutableCap(*text, read_ok);
    if (!cap.ok()) return cap.status().WithContext("alias \"" + t.alias + "\"");
    CAIRN_TRY_ASSIGN(std::string si, caps::StorageIndexOf(*cap));
    if (si != t.locked_si) {
      return Status::Conflict("alias \"" + t.alias + "\" was changed to another file while the task was queued; retry");
    }
    return *cap;
  }
  return *t.cap;
}

std::vector<LockKey> KeysOf(const Target& t, LockMode slot_mode) {
  std::vector<LockKey> keys{LockKeys::Servers(LockMode::kShared)};
  if (!t.alias.empty()) keys.push_back(LockKeys::Alias(t.alias, LockMode::kShared));
  if (!t.locked_si.empty()) keys.push_back(LockKeys::Slot(t.locked_si, slot_mode));
  return keys;
}

// Test hook (CAIRN_TEST_HOOKS=1 only): a create waits `ms` after its key is
// recorded, before the grid is touched, so that tests can hold it at a known
// point with its locks. Shutdown drops the wait (the task is then
// interrupted).
void Hold(const Env& env, TaskRun& run, std::uint64_t ms, Task then) {
  if (ms == 0) return then();
  TaskId id = run.id();
  TaskRun* runp = &run;
  auto* holds = env.holds;
  run.Progress("held", 0, ms);
  (*holds)[id] = env.loop->PostAfter(ms, [holds, id, runp, then = std::move(then)]() mutable {
    holds->erase(id);
    if (runp->cancel_requested()) return runp->Fail(Status::Cancelled("cancelled while held"));
    then();
  });
}

// Test hook (CAIRN_TEST_HOOKS=1 only): a publish waits `ms` after its
// servermap update, before its first write ("mid-push"). The wait always
// ends by itself (shutdown waits for it: the task holds the grid).
std::function<void(std::function<void()>)> HoldBeforeWrite(Loop* loop, TaskRun* run, std::uint64_t ms) {
  auto timer = std::make_shared<std::unique_ptr<Timer>>();
  return [loop, run, ms, timer](std::function<void()> resume) {
    run->Progress("held", 0, ms);
    *timer = loop->PostAfter(ms, [resume = std::move(resume)] { resume(); });
  };
}

// Ends `run` with a job's outcome: its result as JSON, or its error.
void End(TaskRun* run, Result<Json> outcome) {
  if (!outcome.ok()) return run->Fail(outcome.status());
  run->Succeed(std::move(*outcome));
}

double Round1(double ms) { return static_cast<double>(static_cast<long long>(ms * 10 + 0.5)) / 10; }

// The result's "timing_ms": the task's steps, then the publish's own.
void AddTiming(cJSON* o, const PutClock& clock, const mf::PublishTiming& t) {
  cJSON* timing = cJSON_AddObjectToObject(o, "timing_ms");
  auto add = [timing](const char* name, double ms) { cJSON_AddNumberToObject(timing, name, Round1(ms)); };
  add("receive", clock.received - clock.request);
  add("queue", clock.started - clock.received);
  add("grid", clock.grid - clock.started);
  add("map", t.map_ms);
  add("encode_wait", t.encode_wait_ms);
  add("encode", t.encode_ms);
  add("encode_cpu", t.encode_cpu_ms);
  add("send", t.send_ms);
  add("first_answer", t.first_answer_ms);
  add("last_answer", t.last_answer_ms);
  add("publish", t.total_ms);
  add("publish_loop_cpu", t.loop_cpu_ms);
  add("total", clock::MonotonicMs() - clock.request);
}

Json PublishJson(const mf::PublishResult& p) {
  Json out = Json::NewObject();
  cJSON* o = out.get();
  cJSON_AddStringToObject(o, "writecap", caps::FormatCap(p.writecap).c_str());
  auto read = caps::ToReadCap(p.writecap);
  if (read.ok()) cJSON_AddStringToObject(o, "readcap", caps::FormatCap(*read).c_str());
  auto si = caps::StorageIndexOf(p.writecap);
  if (si.ok()) cJSON_AddStringToObject(o, "storage_index", Base32Encode(*si).c_str());
  cJSON_AddNumberToObject(o, "seqnum", static_cast<double>(p.seqnum));
  cJSON_AddNumberToObject(o, "size", static_cast<double>(p.size));
  cJSON_AddNumberToObject(o, "happiness", static_cast<double>(p.happiness));
  cJSON_AddNumberToObject(o, "writes_sent", static_cast<double>(p.writes_sent));
  cJSON_AddNumberToObject(o, "servers_failed", static_cast<double>(p.servers_failed));
  cJSON_AddNumberToObject(o, "bytes_written", static_cast<double>(p.bytes_written));
  cJSON* placement = cJSON_AddObjectToObject(o, "placement");
  for (const auto& [sh, names] : p.placement) {
    cJSON* list = cJSON_AddArrayToObject(placement, std::to_string(sh).c_str());
    for (const std::string& n : names) cJSON_AddItemToArray(list, cJSON_CreateString(n.c_str()));
  }
  return out;
}

// The parameters every method that takes a file reads: "size" (checked
// against the input, and against the limit before anything is read) and,
// with test hooks, "hold_ms".
struct InputParams {
  std::optional<std::uint64_t> size;
  std::uint64_t hold_ms = 0;
};

Status ReadInputParams(CommandsState& c, JsonObjectReader& r, const Request& req, InputParams* out,
                       bool streamed = false) {
  std::uint64_t size = 0;
  CAIRN_TRY(r.Uint("size", &size));
  if (cJSON_GetObjectItemCaseSensitive(req.params.get(), "size")) out->size = size;
  if (c.options.test_hooks) CAIRN_TRY(r.Uint("hold_ms", &out->hold_ms, false, 600000));
  if (!streamed && out->size && *out->size > c.options.sdmf_max_bytes) {
    return Status::InvalidArgument("the file is " + std::to_string(*out->size) +
                                   " bytes; mutable (SDMF) files are limited to " +
                                   std::to_string(c.options.sdmf_max_bytes) + " bytes (limits.sdmf_max_bytes)");
  }
  return Status();
}

// Receives a request's data frames into `contents` (at most
// limits.sdmf_max_bytes, and exactly params.size if given), then submits
// `spec` and answers with its outcome; any error answers the request
// instead.
void ReceiveThenRun(CommandsState& c, Request& req, Reply& reply, const InputParams& in,
                    std::shared_ptr<std::string> contents, TaskSpec spec, std::shared_ptr<PutClock> clock = nullptr) {
  // params.size is checked against the limit already: one allocation
  // instead of a 1 MiB string grown by appends.
  if (in.size) contents->reserve(static_cast<std::size_t>(*in.size));
  ReceiveLimits limits;
  limits.announced = in.size;
  limits.max = c.options.sdmf_max_bytes;
  limits.over_max = "the file is over " + std::to_string(limits.max) +
                    " bytes: mutable (SDMF) files are limited to that (limits.sdmf_max_bytes)";
  grid::Grid* grid = &c.grid;
  TaskTable* tasks = &c.tasks;
  ReceiveInput(c.loop, std::move(req.input), std::move(limits), [grid] { return grid->stopping(); },
               ToMemory(std::move(contents)),
               [tasks, wait = req.wait, clock, reply = std::move(reply),
                spec = std::move(spec)](Result<std::uint64_t> received) mutable {
                 if (!received.ok()) return reply.Error(received.status());
                 if (clock) clock->received = clock::MonotonicMs();
                 SubmitAndAnswer(*tasks, wait, std::move(reply), std::move(spec));
               });
}

// An MDMF create's input on its way in: spooled as it arrives, then the
// task is submitted; the spool is held until the publish has read it.
struct SpooledInput {
  std::shared_ptr<Spool> spool;
  std::uint64_t size = 0;
};

struct SpoolTransfer {
  Loop* loop;
  grid::Grid* grid;
  TaskTable* tasks;
  bool wait;
  Reply reply;
  InputStream in;
  TaskSpec spec;
  ReceiveLimits limits;
  std::shared_ptr<SpooledInput> input;
};

// Receives a request's data frames into a new spool file (exactly
// params.size bytes if given; no other limit), then submits `spec` and
// answers with its outcome; any error answers the request instead.
void ReceiveToSpoolThenRun(CommandsState& c, Request& req, Reply& reply, const InputParams& in,
                           std::shared_ptr<SpooledInput> input, TaskSpec spec) {
  auto tx = std::make_shared<SpoolTransfer>(SpoolTransfer{&c.loop, &c.grid, &c.tasks, req.wait, std::move(reply),
                                                          std::move(req.input), std::move(spec), ReceiveLimits(),
                                                          std::move(input)});
  tx->limits.announced = in.size;
  MakeSpool(c.loop, c.options.spool_dir, "put", [tx](Result<std::shared_ptr<Spool>> made) {
    if (!made.ok()) return tx->reply.Error(made.status());
    tx->input->spool = *made;
    grid::Grid* grid = tx->grid;
    ReceiveInput(*tx->loop, std::move(tx->in), tx->limits, [grid] { return grid->stopping(); },
                 ToSpool(*tx->loop, *made, nullptr), [tx](Result<std::uint64_t> received) {
                   if (!received.ok()) return tx->reply.Error(received.status());
                   tx->input->size = *received;
                   SubmitAndAnswer(*tx->tasks, tx->wait, std::move(tx->reply), std::move(tx->spec));
                 });
  });
}

// Writes `bytes` at the end of what `spool` holds so far (`*written`
// bytes). Blocking: thread pool only.
Status AppendToSpool(Spool& spool, std::uint64_t* written, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(spool.fd, bytes.data(), bytes.size(), static_cast<off_t>(*written));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ENOSPC) return Status::NoSpace("spool file " + spool.path + ": " + std::strerror(errno));
    if (n <= 0) return Status::IoError("cannot write spool file " + spool.path + ": " + std::strerror(errno));
    bytes.remove_prefix(static_cast<std::size_t>(n));
    *written += static_cast<std::uint64_t>(n);
  }
  return Status();
}

// mutable.create: a new key, its write cap recorded, seqnum 1 published,
// and the alias (if any) written. The contents are `contents`, or (MDMF)
// the spooled `input`.
void Create(const Env& env, TaskRun& run, std::string alias, caps::MutableFormat format,
            std::shared_ptr<std::string> contents, std::shared_ptr<SpooledInput> input, std::uint64_t hold_ms) {
  TaskRun* runp = &run;
  // The name first, before a key is made or anything sent.
  auto taken = [aliases = env.aliases, alias]() -> Status {
    if (alias.empty()) return Status();
    auto existing = aliases->Get(alias);
    if (existing.ok()) return Status::Conflict("alias \"" + alias + "\" already exists");
    if (existing.status().code() != Code::kNotFound) return existing.status();
    return Status();
  };
  Status free = taken();
  if (!free.ok()) return run.Fail(free);
  run.Progress("generating key", 0, 1);
  mf::NewMutableKey(*env.loop, format, [env, runp, alias, contents, input, hold_ms, taken](Result<mf::NewKey> key) mutable {
    if (!key.ok()) return runp->Fail(key.status());
    Json intent = Json::NewObject();
    cJSON_AddStringToObject(intent.get(), "writecap", caps::FormatCap(key->writecap).c_str());
    auto shared_key = std::make_shared<mf::NewKey>(std::move(*key));
    // Durable before the first share is sent: a crash cannot lose the key.
    runp->RecordIntent(std::move(intent), [env, runp, alias, contents, input, hold_ms, taken, shared_key](Status saved) {
      if (!saved.ok()) return runp->Fail(saved);
      Hold(env, *runp, hold_ms, [env, runp, alias, contents, input, taken, shared_key] {
        Status still_free = taken();  // again, after the last wait before the push
        if (!still_free.ok()) return runp->Fail(still_free);
        auto snapshot = GridSnapshot(*env.servers);
        if (!snapshot.ok()) return runp->Fail(snapshot.status());
        mf::MutableOptions options = env.options;
        if (input) {
          options.source = std::make_shared<mf::MutableSource>();
          options.source->size = input->size;
          options.source->read_at = Output::Spooled(input->spool, input->size).read_at;
        }
        CreateMutableJob(
            *env.grid, std::move(*snapshot), std::move(*shared_key), std::move(*contents), std::move(options),
            TaskHooks(*runp), [runp, alias, input, aliases = env.aliases](Result<mf::PublishResult> made) {
              if (!made.ok()) return End(runp, made.status());
              auto out = std::make_shared<Json>(PublishJson(*made));
              if (alias.empty()) return End(runp, std::move(*out));
              cJSON_AddStringToObject(out->get(), "alias", alias.c_str());
              // MDB_NOOVERWRITE: a name that appeared anyway is `conflict`
              // (the file exists; its write cap is in this task's record).
              aliases->Add(alias, caps::FormatCap(made->writecap), [runp, out](Status added) {
                if (!added.ok()) return End(runp, added);
                End(runp, std::move(*out));
              });
            });
      });
    });
  });
}

Json RetrieveJson(const mf::RetrieveResult& got) {
  Json out = Json::NewObject();
  cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(got.length));
  cJSON_AddNumberToObject(out.get(), "seqnum", static_cast<double>(got.seqnum));
  cJSON_AddNumberToObject(out.get(), "offset", static_cast<double>(got.offset));
  cJSON_AddNumberToObject(out.get(), "file_size", static_cast<double>(got.file_size));
  cJSON_AddNumberToObject(out.get(), "bytes_fetched", static_cast<double>(got.bytes_fetched));
  cJSON_AddNumberToObject(out.get(), "corrupt_shares", static_cast<double>(got.corrupt_shares));
  cJSON* used = cJSON_AddObjectToObject(out.get(), "shares_used");
  for (const auto& [sh, name] : got.shares_used) cJSON_AddStringToObject(used, std::to_string(sh).c_str(), name.c_str());
  return out;
}

}  // namespace

void MutableCreate(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string alias, format_name = "sdmf";
  InputParams in;
  Status st = r->String("alias", &alias);
  if (st.ok()) st = r->String("format", &format_name);
  if (st.ok() && format_name != "sdmf" && format_name != "mdmf") {
    st = Status::InvalidArgument("params.format must be \"sdmf\" or \"mdmf\"");
  }
  const caps::MutableFormat format = format_name == "mdmf" ? caps::MutableFormat::kMdmf : caps::MutableFormat::kSdmf;
  if (st.ok()) st = ReadInputParams(c, *r, req, &in, format == caps::MutableFormat::kMdmf);
  if (st.ok()) st = r->Finish();
  if (st.ok() && !alias.empty()) st = NameTable::CheckName(alias);
  if (!st.ok()) return reply.Error(st);
  std::vector<LockKey> keys{LockKeys::Servers(LockMode::kShared)};
  if (!alias.empty()) keys.push_back(LockKeys::Alias(alias, LockMode::kExclusive));
  TaskSpec spec = NewTaskSpec("mutable.create", req, std::move(keys));
  auto contents = std::make_shared<std::string>();
  std::shared_ptr<SpooledInput> input;
  if (format == caps::MutableFormat::kMdmf) input = std::make_shared<SpooledInput>();
  spec.body = [env = EnvOf(c), alias, format, contents, input, hold = in.hold_ms](TaskRun& run) {
    Create(env, run, alias, format, contents, input, hold);
  };
  if (input) return ReceiveToSpoolThenRun(c, req, reply, in, input, std::move(spec));
  ReceiveThenRun(c, req, reply, in, contents, std::move(spec));
}

void MutablePut(CommandsState& c, Request& req, Reply& reply) {
  auto clock = std::make_shared<PutClock>();
  clock->request = clock::MonotonicMs();
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string target_text;
  InputParams in;
  std::uint64_t offset = 0;
  Status st = r->String("target", &target_text, true);
  if (st.ok()) st = r->Uint("offset", &offset);
  // With "offset": the input is written there in place (MDMF only).
  const bool in_place = cJSON_GetObjectItemCaseSensitive(req.params.get(), "offset") != nullptr;
  if (st.ok()) st = ReadInputParams(c, *r, req, &in);
  if (st.ok()) st = r->Finish();
  Result<Target> target = st.ok() ? ResolveAtSubmit(c.aliases, target_text, false) : Result<Target>(st);
  if (!target.ok()) return reply.Error(target.status());
  TaskSpec spec = NewTaskSpec("mutable.put", req, KeysOf(*target, LockMode::kExclusive));
  auto contents = std::make_shared<std::string>();
  spec.body = [env = EnvOf(c), t = *target, contents, hold_ms = in.hold_ms, clock, in_place, offset](TaskRun& run) {
    clock->started = clock::MonotonicMs();
    auto cap = ResolveInTask(*env.aliases, t, false);
    if (!cap.ok()) return run.Fail(cap.status());
    auto snapshot = GridSnapshot(*env.servers);
    if (!snapshot.ok()) return run.Fail(snapshot.status());
    TaskRun* runp = &run;
    mf::MutableOptions options = env.options;
    if (hold_ms) options.TEST_before_write = HoldBeforeWrite(env.loop, runp, hold_ms);
    JobHooks hooks = TaskHooks(run);
    hooks.ready = [clock] { clock->grid = clock::MonotonicMs(); };
    auto answer = [runp, clock](Result<mf::PublishResult> published) {
      if (!published.ok()) return End(runp, published.status());
      Json out = PublishJson(*published);
      AddTiming(out.get(), *clock, published->timing);
      End(runp, std::move(out));
    };
    if (in_place) {
      UpdateMutableJob(*env.grid, std::move(*snapshot), *cap, offset, std::move(*contents), std::move(options),
                       std::move(hooks), std::move(answer));
      return;
    }
    PublishMutableJob(*env.grid, std::move(*snapshot), *cap, std::move(*contents), std::move(options),
                      std::move(hooks), std::move(answer));
  };
  ReceiveThenRun(c, req, reply, in, contents, std::move(spec), clock);
}

void MutableGet(CommandsState& c, Request& req, Reply& reply) {
  std::string target_text;
  mf::RetrieveOptions range;
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  Status st = r->String("target", &target_text, true);
  if (st.ok()) st = r->Uint("offset", &range.offset);
  if (st.ok()) st = r->Uint("size", &range.size);
  if (st.ok()) st = r->Finish();
  if (st.ok() && !req.wait) {
    st = Status::InvalidArgument("mutable.get sends the file back on this connection: it cannot answer before it ends");
  }
  Result<Target> target = st.ok() ? ResolveAtSubmit(c.aliases, target_text, true) : Result<Target>(st);
  if (!target.ok()) return reply.Error(target.status());
  TaskSpec spec = NewTaskSpec("mutable.get", req, KeysOf(*target, LockMode::kShared));
  auto contents = std::make_shared<std::string>();
  // Made before the task is submitted when the read goes through a spool.
  auto spool = std::make_shared<std::shared_ptr<Spool>>();
  spec.body = [env = EnvOf(c), t = *target, contents, range, spool](TaskRun& run) mutable {
    auto cap = ResolveInTask(*env.aliases, t, true);
    if (!cap.ok()) return run.Fail(cap.status());
    auto snapshot = GridSnapshot(*env.servers);
    if (!snapshot.ok()) return run.Fail(snapshot.status());
    TaskRun* runp = &run;
    if (*spool) {
      // Each decoded batch is appended on the pool, in order.
      auto written = std::make_shared<std::uint64_t>(0);
      std::shared_ptr<Spool> file = *spool;
      range.sink = [file, written](std::string_view bytes) { return AppendToSpool(*file, written.get(), bytes); };
    }
    RetrieveMutableJob(*env.grid, std::move(*snapshot), *cap, range, TaskHooks(run),
                       [runp, contents](Result<mf::RetrieveResult> got) {
                         if (!got.ok()) return End(runp, got.status());
                         Json out = RetrieveJson(*got);
                         *contents = std::move(got->contents);
                         End(runp, std::move(out));
                       });
  };
  // The task first; once it has succeeded the file goes back in data
  // frames and the task's result is the final frame.
  Loop* loop = &c.loop;
  if (range.size <= kMemoryRead) {
    SubmitAndAnswer(c.tasks, true, std::move(reply), std::move(spec),
                    [loop, contents](std::shared_ptr<Reply> out, Json result) {
                      SendOutput(*loop, std::move(out), Output::Memory(contents), std::move(result));
                    });
    return;
  }
  grid::Grid* grid = &c.grid;
  TaskTable* tasks = &c.tasks;
  auto pending = std::make_shared<std::pair<Reply, TaskSpec>>(std::move(reply), std::move(spec));
  MakeSpool(*loop, c.options.spool_dir, "get", [loop, grid, tasks, pending, spool](Result<std::shared_ptr<Spool>> made) {
    Reply& answer = pending->first;
    if (!made.ok()) return answer.Error(made.status());
    if (grid->stopping()) return answer.Error(Status::ShuttingDown("the daemon is stopping"));
    *spool = *made;
    SubmitAndAnswer(*tasks, true, std::move(answer), std::move(pending->second),
                    [loop, spool](std::shared_ptr<Reply> out, Json result) {
                      const cJSON* size = cJSON_GetObjectItemCaseSensitive(result.get(), "size");
                      std::uint64_t bytes = cJSON_IsNumber(size) ? static_cast<std::uint64_t>(size->valuedouble) : 0;
                      SendOutput(*loop, std::move(out), Output::Spooled(*spool, bytes), std::move(result));
                    });
  });
}

}  // namespace cairn::control
