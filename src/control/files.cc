// put / get: immutable files on the node's grid (docs/put-get.md). Each
// runs as a task holding "servers" shared (the grid does not change under
// it; a get by alias also holds the alias shared); the task's body reads
// the grid from the servers table after the lock is held and runs a grid
// job (PutJob, GetJob). A put's input is spooled as it arrives, and hashed
// on the way for its convergent key; a get's output is spooled by the job
// and sent back after it. Loop thread only.
#include <cjson/cJSON.h>

#include <memory>
#include <optional>

#include "cairn/caps/cap.h"
#include "cairn/caps/keys.h"
#include "cairn/crypto/base64.h"
#include "cairn/immutable/downloader.h"
#include "cairn/immutable/uploader.h"
#include "control/handlers.h"
#include "control/transfer.h"

namespace cairn::control {
namespace {

// What a put's input teaches its task as it arrives: the convergent key
// of `size` bytes, hashed while the data frames are spooled (the upload
// then makes no first pass over the spool: one read of the file less, and
// the hashing overlaps the transfer).
struct PutInput {
  std::string convergence;  // raw; empty: the node's, read by the job
  std::string key;          // the convergent key of `size` bytes, or empty
  std::uint64_t size = 0;
  // Fed on the pool, one chunk at a time.
  std::optional<caps::ConvergentKeyHasher> hasher;
};

Json UploadJson(const immutable::UploadResult& up) {
  Json out = Json::NewObject();
  cJSON_AddStringToObject(out.get(), "cap", caps::FormatCap(up.cap).c_str());
  cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(up.size));
  cJSON_AddNumberToObject(out.get(), "happiness", static_cast<double>(up.happiness));
  cJSON_AddNumberToObject(out.get(), "shares_uploaded", static_cast<double>(up.shares_uploaded));
  cJSON_AddNumberToObject(out.get(), "shares_reused", static_cast<double>(up.shares_reused));
  cJSON_AddNumberToObject(out.get(), "max_segments_in_flight", static_cast<double>(up.max_segments_in_flight));
  cJSON* placement = cJSON_AddObjectToObject(out.get(), "placement");
  for (const auto& [sh, names] : up.placement) {
    cJSON* list = cJSON_AddArrayToObject(placement, std::to_string(sh).c_str());
    for (const std::string& n : names) cJSON_AddItemToArray(list, cJSON_CreateString(n.c_str()));
  }
  return out;
}

Json DownloadJson(const immutable::DownloadResult& down) {
  Json out = Json::NewObject();
  cJSON_AddNumberToObject(out.get(), "size", static_cast<double>(down.size));
  cJSON_AddNumberToObject(out.get(), "corrupt_shares", static_cast<double>(down.corrupt_shares));
  cJSON* used = cJSON_AddObjectToObject(out.get(), "shares_used");
  for (const auto& [sh, name] : down.shares_used) cJSON_AddStringToObject(used, std::to_string(sh).c_str(), name.c_str());
  return out;
}

// Ends `run` with a job's outcome, as JSON.
template <typename R>
Callback<void(Result<R>)> EndTask(TaskRun& run, Json (*to_json)(const R&)) {
  TaskRun* runp = &run;
  return [runp, to_json](Result<R> outcome) {
    if (!outcome.ok()) return runp->Fail(outcome.status());
    runp->Succeed(to_json(*outcome));
  };
}

// The immutable read cap in `text`, or why it is not one.
Result<caps::Cap> ImmutableReadCap(const std::string& text) {
  auto cap = caps::ParseCap(text);
  if (!cap.ok()) return cap.status();
  if (cap->kind != caps::CapKind::kLiteral && cap->kind != caps::CapKind::kChk) {
    return Status::BadCap("get takes an immutable read cap (URI:CHK: or URI:LIT:)");
  }
  if (cap->directory) {
    return Status::BadCap("that is a directory cap: list it with `cairn ls`, copy it out with `cairn cp -r`");
  }
  return cap;
}

// A put's input on its way in (see FilePut).
struct PutTransfer {
  Loop* loop;
  grid::Grid* grid;
  TaskTable* tasks;
  bool wait;
  Reply reply;
  InputStream in;
  TaskSpec spec;
  std::shared_ptr<PutInput> input;
  std::shared_ptr<std::shared_ptr<Spool>> spool;
  immutable::ChkParams params;
  ReceiveLimits limits;

  // Receives with a hasher of the key for the announced size (or a whole
  // segment's worth).
  static void Hash(const std::shared_ptr<PutTransfer>& put) {
    const immutable::ChkParams& p = put->params;
    const std::uint64_t size_for_key = put->limits.announced ? *put->limits.announced : p.max_segment_size;
    put->input->hasher.emplace(put->input->convergence, p.k, p.n,
                               caps::ChkSegmentSize(size_for_key, p.max_segment_size, p.k));
    Receive(put);
  }

  static void Receive(const std::shared_ptr<PutTransfer>& put) {
    std::shared_ptr<PutInput> input = put->input;
    std::function<void(const std::string&)> hash;
    if (input->hasher) hash = [input](const std::string& data) { input->hasher->Update(data); };
    grid::Grid* grid = put->grid;
    ReceiveInput(*put->loop, std::move(put->in), put->limits, [grid] { return grid->stopping(); },
                 ToSpool(*put->loop, *put->spool, std::move(hash)), [put](Result<std::uint64_t> received) {
                   if (!received.ok()) return put->reply.Error(received.status());
                   Learn(*put, *received);
                   SubmitAndAnswer(*put->tasks, put->wait, std::move(put->reply), std::move(put->spec));
                 });
  }

  // The key, if the input was hashed for its real segment size: an unsized
  // input whose segment size is not a whole segment's is hashed again by
  // the upload.
  static void Learn(PutTransfer& put, std::uint64_t received) {
    PutInput& in = *put.input;
    const immutable::ChkParams& p = put.params;
    if (in.hasher && (put.limits.announced || caps::ChkSegmentSize(received, p.max_segment_size, p.k) ==
                                                   caps::ChkSegmentSize(p.max_segment_size, p.max_segment_size, p.k))) {
      in.key = in.hasher->Finish();
      in.size = received;
    }
    in.hasher.reset();
  }
};

}  // namespace

void FilePut(CommandsState& c, Request& req, Reply& reply) {
  auto r = JsonObjectReader::Open(req.params.get(), "params.");
  if (!r.ok()) return reply.Error(r.status());
  std::string convergence_b64;
  std::uint64_t size = 0;
  bool size_given = cJSON_GetObjectItemCaseSensitive(req.params.get(), "size") != nullptr;
  Status st = r->Uint("size", &size);
  if (st.ok()) st = r->String("convergence", &convergence_b64);
  if (st.ok()) st = r->Finish();
  auto input = std::make_shared<PutInput>();
  if (st.ok() && !convergence_b64.empty()) {
    auto decoded = crypto::Base64Decode(convergence_b64);
    if (!decoded.ok())
      st = Status::InvalidArgument("params.convergence must be base64");
    else
      input->convergence = *decoded;
  }
  if (!st.ok()) return reply.Error(st);
  immutable::UploadOptions options;
  options.params.k = c.options.shares_needed;
  options.params.n = c.options.shares_total;
  options.params.max_segment_size = c.options.max_segment_size;
  options.happy = c.options.shares_happy;
  const immutable::ChkParams params = options.params;

  TaskSpec spec = NewTaskSpec("put", req, {LockKeys::Servers(LockMode::kShared)});
  NameTable* servers = &c.servers;
  grid::Grid* grid = &c.grid;
  // Filled before the task is submitted (the input arrives first); the task
  // holds the spool, and so the file, until it ends.
  auto spool = std::make_shared<std::shared_ptr<Spool>>();
  spec.body = [servers, grid, spool, input, options](TaskRun& run) mutable {
    auto snapshot = GridSnapshot(*servers);
    if (!snapshot.ok()) return run.Fail(snapshot.status());
    options.convergence = input->convergence;
    options.convergent_key = input->key;
    options.prehashed_size = input->size;
    PutJob(*grid, std::move(*snapshot), (*spool)->path, std::move(options), TaskHooks(run),
           EndTask<immutable::UploadResult>(run, UploadJson));
  };

  // The spool; then the secret for the key (not for a LIT-sized input; an
  // unsized one is hashed on the guess that it fills a whole segment, as
  // any input of at least max_segment_size bytes does); then the input;
  // then the task. Nothing here touches `c` later: it is this call's own.
  auto put = std::make_shared<PutTransfer>(PutTransfer{&c.loop, grid, &c.tasks, req.wait, std::move(reply),
                                                       std::move(req.input), std::move(spec), input, spool, params,
                                                       ReceiveLimits{}});
  if (size_given) put->limits.announced = size;
  MakeSpool(c.loop, c.options.spool_dir, "put", [put](Result<std::shared_ptr<Spool>> made) {
    if (!made.ok()) return put->reply.Error(made.status());
    *put->spool = *made;
    if (put->limits.announced && *put->limits.announced <= caps::kLiteralMaxSize) return PutTransfer::Receive(put);
    if (!put->input->convergence.empty()) return PutTransfer::Hash(put);
    put->grid->ReadSecrets(true, false, [put](Result<grid::NodeSecrets> secrets) {
      if (!secrets.ok()) return put->reply.Error(secrets.status());
      put->input->convergence = secrets->convergence;
      PutTransfer::Hash(put);
    });
  });
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
  if (!st.ok()) return reply.Error(st);
  std::vector<LockKey> keys{LockKeys::Servers(LockMode::kShared)};
  if (by_alias) keys.push_back(LockKeys::Alias(cap_text, LockMode::kShared));
  TaskSpec spec = NewTaskSpec("get", req, std::move(keys));
  NameTable* servers = &c.servers;
  NameTable* aliases = &c.aliases;
  grid::Grid* grid = &c.grid;
  // Made before the task is submitted; the task fills it, then it goes back.
  auto spool = std::make_shared<std::shared_ptr<Spool>>();
  spec.body = [servers, aliases, grid, given, alias = by_alias ? cap_text : "", spool](TaskRun& run) {
    caps::Cap cap;
    if (given) {
      cap = *given;
    } else {
      auto text = aliases->Get(alias);
      if (!text.ok()) return run.Fail(text.status());
      auto parsed = ImmutableReadCap(*text);
      if (!parsed.ok()) return run.Fail(parsed.status().WithContext("alias \"" + alias + "\""));
      cap = *parsed;
    }
    auto snapshot = GridSnapshot(*servers);
    if (!snapshot.ok()) return run.Fail(snapshot.status());
    GetJob(*grid, std::move(*snapshot), cap, (*spool)->path, TaskHooks(run),
           EndTask<immutable::DownloadResult>(run, DownloadJson));
  };
  // The spool first; then the task (which fills it); then the file goes
  // back in data frames and the task's result is the final frame.
  Loop* loop = &c.loop;
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
