// ShareStore: the write queue and group commit, the read paths, the expiry
// sweep. Loop thread only, except RunBatch and the offloaded reads, which run
// on the thread pool and touch only what they are handed (the environment
// handle, the options, the platform) and the resize lock.
#include <lmdb.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <limits>
#include <mutex>
#include <shared_mutex>

#include "cairn/core/log.h"
#include "cairn/platform/platform.h"
#include "cairn/store/store.h"
#include "store/ops.h"
#include "store/schema.h"
#include "store/txn.h"

namespace cairn::store {

using schema::Kind;
using schema::ShareRecord;
using schema::State;

namespace {

// One queued write: applied on the worker inside its own child transaction,
// delivered on the loop after the batch's commit.
struct Op {
  virtual ~Op() = default;
  virtual Status Apply(Batch& b) = 0;
  virtual void Deliver(Status batch) = 0;
  std::size_t bytes = 0;
};

template <typename R>
struct ResultOp final : Op {
  Callback<Result<R>(Batch&)> fn;
  Callback<void(Result<R>)> done;
  std::optional<Result<R>> out;
  Status Apply(Batch& b) override {
    out.emplace(fn(b));
    return out->status();
  }
  void Deliver(Status batch) override {
    if (!batch.ok() || !out) {
      done(batch.ok() ? Status::Internal("store: operation never applied") : batch);
    } else {
      done(std::move(*out));
    }
  }
};

struct StatusOp final : Op {
  Callback<Status(Batch&)> fn;
  Callback<void(Status)> done;
  Status out = Status::Internal("store: operation never applied");
  Status Apply(Batch& b) override {
    out = fn(b);
    return out;
  }
  void Deliver(Status batch) override { done(batch.ok() ? std::move(out) : batch); }
};

// LMDB's map size is a size_t: a 32-bit board maps at most ~2 GiB.
std::size_t ClampMap(std::uint64_t bytes) {
  constexpr std::uint64_t kMax = sizeof(std::size_t) == 4 ? 0x7ff00000ull : (1ull << 46);
  return static_cast<std::size_t>(bytes < kMax ? bytes : kMax);
}

}  // namespace

StoreOptions StoreOptions::FromLimits(const Limits& l, std::string dir) {
  StoreOptions o;
  o.dir = std::move(dir);
  o.map_bytes = l.lmdb_map_bytes;
  o.map_max_bytes = l.lmdb_map_max_bytes;
  o.reserved_bytes = l.store_reserved_bytes;
  o.max_immutable_share_bytes = l.store_max_immutable_share_bytes;
  o.max_mutable_share_bytes = l.store_max_mutable_share_bytes;
  o.lease_seconds = l.store_lease_ms / 1000;
  o.upload_idle_seconds = l.store_upload_idle_ms / 1000;
  o.sweep_interval_ms = l.store_sweep_interval_ms;
  o.queue_ops = l.store_queue_ops;
  o.queue_bytes = l.store_queue_bytes;
  o.batch_ops = l.store_batch_ops;
  o.batch_bytes = l.store_batch_bytes;
  o.sync_every_write = l.store_sync_every_write != 0;
  return o;
}

// What the worker threads share with the loop: fixed after Open, except the
// map size (guarded by resize_mu) and the sticky error (set by the loop).
struct Shared {
  MDB_env* env = nullptr;
  Dbs dbs;
  StoreOptions options;
  BodyPaths paths;
  platform::Platform* platform = nullptr;
  std::shared_mutex resize_mu;  // shared: any transaction; exclusive: mdb_env_set_mapsize
  std::uint64_t map_bytes = 0;  // guarded by resize_mu
  // Written, not yet synced upload ranges: Open(), then the commit worker
  // (one batch at a time).
  PendingRanges pending;
};

struct BatchOutcome {
  Status status;
  bool sticky = false;
  schema::Totals totals;
  std::vector<std::uint64_t> unlinked;  // doomed file ids unlinked after this commit
  std::uint64_t grows = 0;
  std::uint64_t expired = 0;
};

namespace {

// Grows the map by half (at least to fit), up to the limit. False at the limit.
bool GrowMap(Shared& s) {
  std::unique_lock<std::shared_mutex> lock(s.resize_mu);
  std::uint64_t max = ClampMap(s.options.map_max_bytes);
  if (s.map_bytes >= max) return false;
  std::uint64_t next = s.map_bytes + s.map_bytes / 2;
  if (next > max) next = max;
  if (mdb_env_set_mapsize(s.env, ClampMap(next)) != 0) return false;
  MDB_envinfo info;
  mdb_env_info(s.env, &info);
  s.map_bytes = info.me_mapsize;
  CAIRN_LOG(Info, "store: LMDB map grown to %llu bytes", static_cast<unsigned long long>(s.map_bytes));
  return true;
}

Status LoadTotals(const Txn& t, schema::Totals* totals) {
  std::string_view v;
  CAIRN_TRY(t.Get(t.dbs().meta, "totals", &v));
  if (!schema::DecodeTotals(v, totals)) return Status::Integrity("store: malformed totals");
  return Status();
}

void UnlinkBody(Shared& s, const DoomedFile& f) {
  for (const std::string& p : {s.paths.IncomingPath(f.si, f.shnum, f.file_id), s.paths.RangesPath(f.si, f.shnum, f.file_id),
                               s.paths.FinalPath(f.si, f.shnum, f.file_id)}) {
    Status st = s.platform->Unlink(p);
    if (!st.ok() && st.code() != Code::kNotFound) CAIRN_LOG(Warn, "store: %s", st.ToString().c_str());
  }
}

enum class Next { kDone, kGrow };

// One attempt at a group commit: every op in its own child transaction of
// one write transaction, so an op that fails (a conflict, a full map) is
// rolled back alone; then the body files are synced; then the commit (LMDB
// syncs it). kGrow: the map was full and `may_grow`; nothing was committed.
Next Attempt(Shared& s, std::vector<std::unique_ptr<Op>>& ops, const std::vector<std::uint64_t>& unlinked,
             bool may_grow, BatchOutcome& out) {
  std::shared_lock<std::shared_mutex> lock(s.resize_mu);
  Batch b(s.platform, s.options, s.paths, s.platform->WallSeconds());
  b.committed_pending = &s.pending;
  bool map_full = false;
  MDB_txn* parent = nullptr;
  int rc = mdb_txn_begin(s.env, nullptr, 0, &parent);
  if (rc != 0) {
    out.status = LmdbStatus("begin", rc);
    return Next::kDone;
  }
  b.txn.emplace(parent, s.dbs, &map_full);
  Status st = LoadTotals(*b.txn, &b.totals);
  // Files unlinked after the previous commit: their doomed entries go now.
  for (std::uint64_t id : unlinked) {
    if (!st.ok()) break;
    std::string key;
    schema::PutBe64(&key, id);
    st = b.txn->Del(s.dbs.doomed, key);
  }
  bool any_map_full = false;
  for (auto& op : ops) {
    if (!st.ok()) break;
    MDB_txn* child = nullptr;
    rc = mdb_txn_begin(s.env, parent, 0, &child);
    if (rc != 0) {
      st = LmdbStatus("begin nested", rc);
      break;
    }
    b.txn->Reset(child);
    schema::Totals saved = b.totals;
    b.op_doomed.clear();
    b.op_pending.clear();
    b.op_unlink_after.clear();
    map_full = false;
    Status r = op->Apply(b);
    if (r.ok()) {
      rc = mdb_txn_commit(child);
      if (rc != 0) r = LmdbStatus("commit nested", rc, &map_full);
    } else {
      mdb_txn_abort(child);
    }
    if (r.ok()) {
      b.doomed.insert(b.doomed.end(), b.op_doomed.begin(), b.op_doomed.end());
      for (auto& [key, ranges] : b.op_pending) b.pending[key] = std::move(ranges);
      b.unlink_after.insert(b.unlink_after.end(), b.op_unlink_after.begin(), b.op_unlink_after.end());
    } else {
      b.totals = saved;
      any_map_full = any_map_full || map_full;
    }
    b.txn->Reset(parent);
  }
  map_full = false;
  // Only intermediate upload writes under the "complete" policy: nothing to
  // commit or sync; they are acknowledged with their bytes in the page cache.
  bool commit = b.txn->changed();
  if (st.ok() && commit) st = b.txn->Put(s.dbs.meta, "totals", schema::EncodeTotals(b.totals));
  if ((any_map_full || map_full) && may_grow) {
    mdb_txn_abort(parent);
    return Next::kGrow;
  }
  auto apply_pending = [&] {
    for (auto& [key, ranges] : b.pending) {
      if (ranges) {
        s.pending[key] = std::move(*ranges);
      } else {
        s.pending.erase(key);
      }
    }
  };
  if (st.ok() && !commit) {
    mdb_txn_abort(parent);
    out.totals = b.totals;
    apply_pending();
    return Next::kDone;
  }
  // Bodies first: a commit must never record bytes that are not durable.
  if (st.ok()) st = b.SyncFiles();
  if (!st.ok()) {
    mdb_txn_abort(parent);
    out.status = st;
    // A failed fsync leaves the files' state unknown: stop writing.
    out.sticky = st.code() == Code::kIoError;
    return Next::kDone;
  }
  rc = mdb_txn_commit(parent);
  if (rc == MDB_MAP_FULL && may_grow) return Next::kGrow;
  if (rc != 0) {
    out.status = LmdbStatus("commit", rc);
    out.sticky = rc != MDB_MAP_FULL;
    return Next::kDone;
  }
  out.totals = b.totals;
  apply_pending();
  // Durable: now the bodies of deleted shares may go. A crash before this
  // leaves `doomed` entries that Open() finishes.
  for (const DoomedFile& f : b.doomed) {
    UnlinkBody(s, f);
    out.unlinked.push_back(f.file_id);
  }
  // Ranges files of completed uploads (Open() removes any a crash left).
  for (const std::string& p : b.unlink_after) {
    Status u = s.platform->Unlink(p);
    if (!u.ok() && u.code() != Code::kNotFound) CAIRN_LOG(Warn, "store: %s", u.ToString().c_str());
  }
  return Next::kDone;
}

// Runs on the thread pool. A full map is grown and the batch redone; at the
// map's limit the ops that do not fit fail alone with NoSpace.
BatchOutcome RunBatch(Shared& s, std::vector<std::unique_ptr<Op>>& ops, const std::vector<std::uint64_t>& unlinked) {
  BatchOutcome out;
  bool may_grow = true;
  while (Attempt(s, ops, unlinked, may_grow, out) == Next::kGrow) {
    if (GrowMap(s)) {
      out.grows++;
    } else {
      may_grow = false;
    }
  }
  return out;
}

}  // namespace

struct ShareStore::Impl {
  Impl(Loop& l) : loop(l) {}
  Loop& loop;
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  std::deque<std::unique_ptr<Op>> queue;
  std::uint64_t queued_ops = 0;    // queued + in flight
  std::uint64_t queued_bytes = 0;  // queued + in flight
  bool in_flight = false;
  bool closing = false;
  int reads_in_flight = 0;
  Task closed;
  std::string sticky_error;
  std::vector<std::uint64_t> unlinked;
  std::vector<Task> room_waiters;
  schema::Totals totals;
  StoreStats stats;
  // Sweep state.
  bool sweeping = false;
  std::vector<Task> sweep_waiters;
  std::unique_ptr<Timer> sweep_timer;

  void Enqueue(std::unique_ptr<Op> op, bool internal = false);
  void MaybeCommit();
  void CommitDone(std::vector<std::unique_ptr<Op>> ops, std::shared_ptr<BatchOutcome> outcome);
  void FailSoon(std::unique_ptr<Op> op, Status st);
  bool Full(std::size_t extra_bytes) const;
  void MaybeClosed();
  void ScheduleSweep();
  void StartSweep(Task done);
  void SweepSlice();
  void SweepFinished();

  template <typename R>
  void Read(Callback<Result<R>(const Txn&)> fn, Callback<void(Result<R>)> done);
  template <typename R>
  void Write(std::size_t bytes, Callback<Result<R>(Batch&)> fn, Callback<void(Result<R>)> done) {
    auto op = std::make_unique<ResultOp<R>>();
    op->bytes = bytes;
    op->fn = std::move(fn);
    op->done = std::move(done);
    Enqueue(std::move(op));
  }
  void WriteStatus(std::size_t bytes, Callback<Status(Batch&)> fn, Callback<void(Status)> done, bool internal = false) {
    auto op = std::make_unique<StatusOp>();
    op->bytes = bytes;
    op->fn = std::move(fn);
    op->done = std::move(done);
    Enqueue(std::move(op), internal);
  }
};

void ShareStore::Impl::FailSoon(std::unique_ptr<Op> op, Status st) {
  // Even an immediate refusal completes on a later turn (Tahoe-LAFS #877).
  loop.Post([op = std::move(op), st = std::move(st)]() mutable { op->Deliver(std::move(st)); });
}

bool ShareStore::Impl::Full(std::size_t extra_bytes) const {
  const StoreOptions& o = shared->options;
  if (queued_ops >= o.queue_ops) return true;
  return queued_ops > 0 && queued_bytes + extra_bytes > o.queue_bytes;
}

void ShareStore::Impl::Enqueue(std::unique_ptr<Op> op, bool internal) {
  if (closing) return FailSoon(std::move(op), Status::ShuttingDown("store: closing"));
  if (!sticky_error.empty()) {
    return FailSoon(std::move(op), Status::IoError("store: writes stopped after an earlier failure: " + sticky_error));
  }
  if (shared->options.read_only && !internal) {
    return FailSoon(std::move(op), Status::ReadOnly("store: read-only mode refuses writes"));
  }
  if (!internal && Full(op->bytes)) {
    return FailSoon(std::move(op), Status::ResourceExhausted("store: write queue full"));
  }
  queued_ops++;
  queued_bytes += op->bytes;
  queue.push_back(std::move(op));
  MaybeCommit();
}

void ShareStore::Impl::MaybeCommit() {
  if (in_flight || queue.empty()) return;
  const StoreOptions& o = shared->options;
  auto ops = std::make_shared<std::vector<std::unique_ptr<Op>>>();
  std::uint64_t bytes = 0;
  // Everything that arrived while the last commit ran goes into this one, in
  // arrival order, up to the batch bounds.
  while (!queue.empty() && ops->size() < o.batch_ops &&
         (ops->empty() || bytes + queue.front()->bytes <= o.batch_bytes)) {
    bytes += queue.front()->bytes;
    ops->push_back(std::move(queue.front()));
    queue.pop_front();
  }
  in_flight = true;
  auto outcome = std::make_shared<BatchOutcome>();
  std::shared_ptr<Shared> s = shared;
  std::vector<std::uint64_t> unlinked_now = unlinked;
  loop.Offload(
      [s, ops, outcome, unlinked_now]() -> Status {
        *outcome = RunBatch(*s, *ops, unlinked_now);
        return Status();
      },
      [this, ops, outcome](Status st) {
        if (!st.ok()) outcome->status = st;  // the work never ran
        CommitDone(std::move(*ops), outcome);
      });
}

void ShareStore::Impl::CommitDone(std::vector<std::unique_ptr<Op>> ops, std::shared_ptr<BatchOutcome> outcome) {
  in_flight = false;
  stats.map_grows += outcome->grows;
  if (outcome->status.ok()) {
    stats.commits++;
    stats.ops_committed += ops.size();
    if (ops.size() > stats.largest_batch) stats.largest_batch = ops.size();
    totals = outcome->totals;
    unlinked = std::move(outcome->unlinked);
  } else {
    CAIRN_LOG(Error, "store: commit failed: %s", outcome->status.ToString().c_str());
    if (outcome->sticky && sticky_error.empty()) sticky_error = outcome->status.ToString();
  }
  // Reply only from the commit's completion: durable before acknowledged.
  for (auto& op : ops) {
    queued_ops--;
    queued_bytes -= op->bytes;
    op->Deliver(outcome->status);
  }
  if (!room_waiters.empty() && !Full(0) && queued_ops <= shared->options.queue_ops / 2) {
    for (Task& t : room_waiters) loop.Post(std::move(t));
    room_waiters.clear();
  }
  MaybeCommit();
  MaybeClosed();
}

void ShareStore::Impl::MaybeClosed() {
  if (!closing || in_flight || !queue.empty() || reads_in_flight > 0 || sweeping || !closed) return;
  loop.Post(std::move(closed));
  closed = nullptr;
}

template <typename R>
void ShareStore::Impl::Read(Callback<Result<R>(const Txn&)> fn, Callback<void(Result<R>)> done) {
  if (closing) {
    loop.Post([done = std::move(done)]() mutable { done(Status::ShuttingDown("store: closing")); });
    return;
  }
  // Reads of the index and of mutable data run on the loop thread: they are
  // memory-mapped lookups (docs/store.md has the measurements).
  std::shared_lock<std::shared_mutex> lock(shared->resize_mu);
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(shared->env, nullptr, MDB_RDONLY, &txn);
  std::optional<Result<R>> out;
  if (rc != 0) {
    out.emplace(LmdbStatus("begin read", rc));
  } else {
    Txn t(txn, shared->dbs, nullptr);
    out.emplace(fn(t));
    mdb_txn_abort(txn);
  }
  loop.Post([done = std::move(done), out = std::move(*out)]() mutable { done(std::move(out)); });
}

// --- expiry sweep --------------------------------------------------------

void ShareStore::Impl::ScheduleSweep() {
  if (shared->options.read_only || closing) return;
  sweep_timer = loop.PostAfter(shared->options.sweep_interval_ms, [this] { StartSweep(nullptr); });
}

void ShareStore::Impl::StartSweep(Task done) {
  if (done) sweep_waiters.push_back(std::move(done));
  if (sweeping) return;
  if (closing || shared->options.read_only) return SweepFinished();
  sweeping = true;
  SweepSlice();
}

void ShareStore::Impl::SweepFinished() {
  sweeping = false;
  for (Task& t : sweep_waiters) loop.Post(std::move(t));
  sweep_waiters.clear();
  ScheduleSweep();
  MaybeClosed();
}

// One slice: at most 5 ms and 128 expired entries read on the loop thread;
// their deletions go through the write queue (checked again there on fresh
// state); the next slice starts on a later loop iteration once they commit.
void ShareStore::Impl::SweepSlice() {
  if (closing) return SweepFinished();
  constexpr int kMaxEntries = 128;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(5);
  std::uint64_t now = shared->platform->WallSeconds();
  std::vector<std::pair<bool, std::string>> found;
  {
    std::shared_lock<std::shared_mutex> lock(shared->resize_mu);
    MDB_txn* txn = nullptr;
    if (mdb_txn_begin(shared->env, nullptr, MDB_RDONLY, &txn) == 0) {
      Txn t(txn, shared->dbs, nullptr);
      bool ages = shared->options.expiry == LeaseExpiry::kAge;
      for (bool upload : {true, false}) {
        if (!upload && !ages) continue;
        t.Scan(upload ? shared->dbs.upload_expiry : shared->dbs.lease_expiry, "",
               [&](std::string_view k, std::string_view) {
                 if (schema::TimeOf(k) > now) return false;
                 found.emplace_back(upload, std::string(k));
                 return found.size() < kMaxEntries && std::chrono::steady_clock::now() < deadline;
               })
            .IgnoreError();  // a failed scan only delays the sweep to its next run
      }
      mdb_txn_abort(txn);
    }
  }
  if (found.empty()) return SweepFinished();
  auto left = std::make_shared<std::size_t>(found.size());
  for (auto& [upload, key] : found) {
    auto deleted = std::make_shared<bool>(false);
    WriteStatus(
        0, [upload = upload, key = key, deleted](Batch& b) { return ApplyExpire(b, upload, key, deleted.get()); },
        [this, left, deleted](Status st) {
          if (st.ok() && *deleted) stats.expired_shares++;
          if (--*left == 0) {
            if (!st.ok() && st.code() != Code::kNotFound) return SweepFinished();
            loop.Post([this] { SweepSlice(); });
          }
        },
        true);
  }
}

// --- open and close ------------------------------------------------------

ShareStore::ShareStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ShareStore::~ShareStore() {
  CAIRN_CHECK(!impl_->in_flight && impl_->reads_in_flight == 0, "ShareStore destroyed with work in flight");
  impl_->sweep_timer.reset();
  if (impl_->shared->env) mdb_env_close(impl_->shared->env);
}

namespace {

Status OpenDbs(MDB_txn* txn, Dbs* d) {
  struct {
    const char* name;
    MDB_dbi* dbi;
  } all[] = {{schema::kMetaDb, &d->meta},           {schema::kSharesDb, &d->shares},
             {schema::kLeasesDb, &d->leases},       {schema::kDataDb, &d->data},
             {schema::kLeaseExpiryDb, &d->lease_expiry}, {schema::kUploadExpiryDb, &d->upload_expiry},
             {schema::kDoomedDb, &d->doomed},       {schema::kCorruptDb, &d->corrupt}};
  for (auto& x : all) CAIRN_TRY(LmdbStatus(x.name, mdb_dbi_open(txn, x.name, MDB_CREATE, x.dbi)));
  return Status();
}

// Reads an upload's ranges file: its ranges within the allocated size, with
// the durable ones of the record merged in.
Status LoadRangesFile(Shared& s, const std::string& path, const ShareRecord& rec, std::vector<Range>* out) {
  CAIRN_TRY_ASSIGN(int fd, s.platform->OpenRead(path));
  std::string buf(8 + 16 * schema::kMaxRanges + 8, '\0');
  Result<std::size_t> got = s.platform->PRead(fd, buf.data(), buf.size(), 0);
  s.platform->Close(fd);
  if (!got.ok()) return got.status();
  buf.resize(*got);
  std::vector<Range> ranges;
  if (!DecodeRangesFile(buf, &ranges)) return Status::Integrity("malformed ranges file");
  for (const Range& r : ranges) {
    if (r.end > rec.size) return Status::Integrity("ranges file past the allocated size");
  }
  ranges.insert(ranges.end(), rec.written.begin(), rec.written.end());
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  // Merge overlapping and adjacent ranges.
  out->clear();
  for (const Range& r : ranges) {
    if (!out->empty() && r.begin <= out->back().end) {
      out->back().end = std::max(out->back().end, r.end);
    } else {
      out->push_back(r);
    }
  }
  return Status();
}

// Finishes what a crash interrupted: bodies of deleted shares (the doomed
// list) and bodies of uploads whose allocation never committed (files in
// incoming/ without a matching upload record). Both sets are bounded by the
// work in flight at the crash, never by the number of shares. The ranges
// files of uploads in progress are loaded if `trust_ranges` (no reboot since
// they were written, so the page cache kept their bytes and the bodies'),
// else removed: those uploads restart from their durable ranges.
Status Recover(Shared& s, Txn& t, bool trust_ranges) {
  std::vector<std::string> keys;
  std::vector<DoomedFile> files;
  CAIRN_TRY(t.Scan(s.dbs.doomed, "", [&](std::string_view k, std::string_view v) {
    DoomedFile f;
    Kind kind;
    if (k.size() == 8 && schema::ParseShareKey(v, &kind, &f.si, &f.shnum)) {
      f.file_id = schema::GetBe64(reinterpret_cast<const unsigned char*>(k.data()));
      files.push_back(f);
    }
    keys.emplace_back(k);
    return true;
  }));
  for (const DoomedFile& f : files) UnlinkBody(s, f);
  for (const std::string& k : keys) CAIRN_TRY(t.Del(s.dbs.doomed, k));

  std::vector<std::string> names;
  CAIRN_TRY(s.platform->ListDir(s.paths.Incoming(), &names));
  for (const std::string& full : names) {
    // <32 hex>-<shnum>-<file id>, and its ranges file (".ranges" after it)
    constexpr std::string_view kRanges = ".ranges";
    bool ranges_file = full.size() > kRanges.size() && full.substr(full.size() - kRanges.size()) == kRanges;
    std::string name = ranges_file ? full.substr(0, full.size() - kRanges.size()) : full;
    StorageIndex si{};
    unsigned long shnum = 0;
    unsigned long long file_id = 0;
    bool parsed = name.size() > 34 && name[32] == '-';
    for (std::size_t i = 0; parsed && i < 16; ++i) {
      unsigned int byte;
      parsed = std::sscanf(name.c_str() + 2 * i, "%2x", &byte) == 1;
      si[i] = static_cast<std::uint8_t>(byte);
    }
    parsed = parsed && std::sscanf(name.c_str() + 33, "%lu-%llu", &shnum, &file_id) == 2;
    ShareRecord rec;
    std::string key = schema::ShareKey(Kind::kImmutable, si, static_cast<ShareNum>(shnum));
    bool live = parsed && t.GetRecord(key, &rec).ok() && rec.state == State::kIncoming && rec.file_id == file_id &&
                std::to_string(shnum) + "-" + std::to_string(file_id) == name.substr(33);
    std::string path = s.paths.Incoming() + "/" + full;
    if (live && ranges_file) {
      std::vector<Range> ranges;
      Status loaded = trust_ranges ? LoadRangesFile(s, path, rec, &ranges) : Status::Cancelled("");
      if (loaded.ok()) {
        s.pending[key] = std::move(ranges);
        continue;
      }
      CAIRN_LOG(Info, "store: upload %s restarts from its synced ranges (%s)", name.c_str(),
                trust_ranges ? loaded.ToString().c_str() : "the machine rebooted since its last writes");
      live = false;
    }
    if (!live) {
      CAIRN_LOG(Info, "store: removing orphaned upload file %s", full.c_str());
      CAIRN_TRY(s.platform->Unlink(path));
    }
  }
  return Status();
}

}  // namespace

Result<std::unique_ptr<ShareStore>> ShareStore::Open(Loop& loop, StoreOptions options) {
  auto impl = std::make_unique<Impl>(loop);
  Shared& s = *impl->shared;
  s.platform = options.platform ? options.platform : platform::HostPlatform();
  s.options = std::move(options);
  s.paths.dir = s.options.dir;
  if (s.options.batch_ops == 0) s.options.batch_ops = 1;
  // The directory itself is made by `cairn init`: a missing one is an error,
  // not an invitation to start an empty store somewhere else.
  CAIRN_TRY(s.platform->Exists(s.paths.dir).WithContext("store"));
  CAIRN_TRY(s.platform->MakeDir(s.paths.Incoming()));
  CAIRN_TRY(s.platform->MakeDir(s.paths.Shares()));
  int rc = mdb_env_create(&s.env);
  if (rc == 0) rc = mdb_env_set_maxdbs(s.env, 16);
  if (rc == 0) rc = mdb_env_set_mapsize(s.env, ClampMap(s.options.map_bytes));
  // MDB_NOTLS: read transactions run on the loop thread and on the pool.
  if (rc == 0) rc = mdb_env_open(s.env, s.paths.dir.c_str(), MDB_NOTLS, 0600);
  auto fail = [&](Status st) -> Status {
    if (s.env) mdb_env_close(s.env);
    s.env = nullptr;
    return st.WithContext("store " + s.paths.dir);
  };
  if (rc != 0) return fail(LmdbStatus("open", rc));
  MDB_envinfo info;
  mdb_env_info(s.env, &info);  // a map grown by an earlier run keeps its size
  s.map_bytes = info.me_mapsize;
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(s.env, nullptr, 0, &txn);
  if (rc != 0) return fail(LmdbStatus("begin", rc));
  Status st = OpenDbs(txn, &s.dbs);
  Txn t(txn, s.dbs, nullptr);
  if (st.ok()) {
    std::string_view v;
    Status got = t.Get(s.dbs.meta, "format", &v);
    if (got.code() == Code::kNotFound) {
      std::string f;
      schema::PutBe32(&f, schema::kFormat);
      st = t.Put(s.dbs.meta, "format", f);
      if (st.ok()) st = t.Put(s.dbs.meta, "totals", schema::EncodeTotals(schema::Totals{}));
    } else if (!got.ok()) {
      st = got;
    } else {
      std::uint32_t format = v.size() == 4 ? schema::GetBe32(reinterpret_cast<const unsigned char*>(v.data())) : 0;
      if (format != schema::kFormat) {
        st = Status::UnsupportedVersion("store format " + std::to_string(format) + "; this cairn reads format " +
                                        std::to_string(schema::kFormat) + " (refusing to open)");
      }
    }
  }
  // Unsynced records are trusted only within the boot that wrote them.
  bool trust_ranges = false;
  if (st.ok()) {
    std::string boot = s.platform->BootId();
    std::string_view was;
    trust_ranges = !boot.empty() && t.Get(s.dbs.meta, "boot", &was).ok() && was == boot;
    if (!trust_ranges) st = t.Put(s.dbs.meta, "boot", boot);
  }
  if (st.ok()) st = LoadTotals(t, &impl->totals);
  if (st.ok()) st = Recover(s, t, trust_ranges);
  if (!st.ok()) {
    mdb_txn_abort(txn);
    return fail(st);
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) return fail(LmdbStatus("commit", rc));
  impl->ScheduleSweep();
  return std::unique_ptr<ShareStore>(new ShareStore(std::move(impl)));
}

void ShareStore::Close(Task done) {
  Impl& im = *impl_;
  im.closing = true;
  im.closed = std::move(done);
  im.sweep_timer.reset();
  im.MaybeClosed();
}

// --- immutable -----------------------------------------------------------

void ShareStore::Allocate(const StorageIndex& si, std::vector<ShareNum> shnums, std::uint64_t allocated_size,
                          std::string upload_secret, LeaseSecrets lease, Callback<void(Result<AllocateResult>)> done) {
  impl_->Write<AllocateResult>(
      0,
      [si, shnums = std::move(shnums), allocated_size, upload_secret = std::move(upload_secret),
       lease = std::move(lease)](Batch& b) { return ApplyAllocate(b, si, shnums, allocated_size, upload_secret, lease); },
      std::move(done));
}

void ShareStore::WriteChunk(const StorageIndex& si, ShareNum shnum, std::string upload_secret, std::uint64_t offset,
                            std::string data, Callback<void(Result<WriteResult>)> done) {
  std::size_t bytes = data.size();
  impl_->Write<WriteResult>(
      bytes,
      [si, shnum, upload_secret = std::move(upload_secret), offset, data = std::move(data)](Batch& b) {
        return ApplyWriteChunk(b, si, shnum, upload_secret, offset, data);
      },
      std::move(done));
}

void ShareStore::CloseBucket(const StorageIndex& si, ShareNum shnum, std::string upload_secret,
                             Callback<void(Status)> done) {
  impl_->WriteStatus(
      0, [si, shnum, secret = std::move(upload_secret)](Batch& b) { return ApplyCloseBucket(b, si, shnum, secret); },
      std::move(done));
}

void ShareStore::Abort(const StorageIndex& si, ShareNum shnum, std::string upload_secret, Callback<void(Status)> done) {
  impl_->WriteStatus(
      0, [si, shnum, secret = std::move(upload_secret)](Batch& b) { return ApplyAbort(b, si, shnum, secret); },
      std::move(done));
}

namespace {

Result<std::vector<ShareNum>> ListShares(const Txn& t, Kind kind, const StorageIndex& si) {
  std::vector<ShareNum> out;
  CAIRN_TRY(t.Scan(t.dbs().shares, schema::SiPrefix(kind, si), [&](std::string_view k, std::string_view v) {
    Kind kd;
    StorageIndex s;
    ShareNum n;
    ShareRecord r;
    if (schema::ParseShareKey(k, &kd, &s, &n) && schema::DecodeRecord(v, &r) && r.state != State::kIncoming) {
      out.push_back(n);
    }
    return true;
  }));
  return out;
}

}  // namespace

void ShareStore::ListImmutable(const StorageIndex& si, Callback<void(Result<std::vector<ShareNum>>)> done) {
  impl_->Read<std::vector<ShareNum>>([si](const Txn& t) { return ListShares(t, Kind::kImmutable, si); },
                                     std::move(done));
}

namespace {

// The complete share's record, or NotFound naming it.
Result<ShareRecord> CompleteImmutable(const Txn& t, const StorageIndex& si, ShareNum shnum) {
  ShareRecord rec;
  Status st = t.GetRecord(schema::ShareKey(Kind::kImmutable, si, shnum), &rec);
  if (st.ok() && rec.state != State::kComplete) st = Status::NotFound("");
  if (st.code() == Code::kNotFound) {
    return Status::NotFound("immutable share " + std::to_string(shnum) + " of " + SiHex(si) + " is not here");
  }
  CAIRN_TRY(st);
  return rec;
}

}  // namespace

void ShareStore::ImmutableSize(const StorageIndex& si, ShareNum shnum, Callback<void(Result<std::uint64_t>)> done) {
  impl_->Read<std::uint64_t>(
      [si, shnum](const Txn& t) -> Result<std::uint64_t> {
        CAIRN_TRY_ASSIGN(ShareRecord rec, CompleteImmutable(t, si, shnum));
        return rec.size;
      },
      std::move(done));
}

void ShareStore::ReadImmutable(const StorageIndex& si, ShareNum shnum, std::uint64_t offset, std::uint64_t length,
                               Callback<void(Result<std::string>)> done) {
  struct Where {
    std::uint64_t file_id, begin, end;
  };
  // The index lookup on the loop; the body's bytes from the thread pool (a
  // cold read from a slow disk must not stall the loop).
  impl_->Read<Where>(
      [si, shnum, offset, length](const Txn& t) -> Result<Where> {
        CAIRN_TRY_ASSIGN(ShareRecord rec, CompleteImmutable(t, si, shnum));
        std::uint64_t end = length > rec.size - std::min(offset, rec.size) ? rec.size : offset + length;
        return Where{rec.file_id, std::min(offset, rec.size), end};
      },
      [this, si, shnum, done = std::move(done)](Result<Where> w) mutable {
        if (!w.ok() || w->begin >= w->end) {
          if (w.ok()) return done(std::string());
          return done(w.status());
        }
        Impl& im = *impl_;
        im.reads_in_flight++;
        auto buf = std::make_shared<std::string>();
        std::shared_ptr<Shared> s = im.shared;
        std::string path = s->paths.FinalPath(si, shnum, w->file_id);
        Where where = *w;
        im.loop.Offload(
            [s, path, where, buf]() -> Status {
              CAIRN_TRY_ASSIGN(int fd, s->platform->OpenRead(path));
              buf->resize(static_cast<std::size_t>(where.end - where.begin));
              Result<std::size_t> got = s->platform->PRead(fd, buf->data(), buf->size(), where.begin);
              s->platform->Close(fd);
              if (!got.ok()) return got.status();
              if (*got != buf->size()) return Status::Integrity(path + ": body shorter than its recorded size");
              return Status();
            },
            [this, buf, done = std::move(done)](Status st) mutable {
              impl_->reads_in_flight--;
              if (st.ok()) {
                done(std::move(*buf));
              } else {
                done(st);
              }
              impl_->MaybeClosed();
            });
      });
}

// --- mutable -------------------------------------------------------------

void ShareStore::ReadTestWrite(const StorageIndex& si, std::string write_enabler, LeaseSecrets lease,
                               std::vector<ShareTestWrite> writes, std::vector<ReadVector> reads,
                               Callback<void(Result<RtwResult>)> done) {
  std::size_t bytes = 0;
  std::map<ShareNum, bool> seen;
  bool duplicate = false;
  for (const ShareTestWrite& tw : writes) {
    for (const WriteVector& w : tw.writes) bytes += w.data.size();
    for (const TestVector& t : tw.tests) bytes += t.specimen.size();
    duplicate = duplicate || !seen.emplace(tw.shnum, true).second;
  }
  if (duplicate) {
    impl_->loop.Post([done = std::move(done)]() mutable {
      done(Status::InvalidArgument("read-test-write names a share number twice"));
    });
    return;
  }
  impl_->Write<RtwResult>(
      bytes,
      [si, we = std::move(write_enabler), lease = std::move(lease), writes = std::move(writes),
       reads = std::move(reads)](Batch& b) { return ApplyReadTestWrite(b, si, we, lease, writes, reads); },
      std::move(done));
}

void ShareStore::ListMutable(const StorageIndex& si, Callback<void(Result<std::vector<ShareNum>>)> done) {
  impl_->Read<std::vector<ShareNum>>([si](const Txn& t) { return ListShares(t, Kind::kMutable, si); },
                                     std::move(done));
}

void ShareStore::ReadMutable(const StorageIndex& si, ShareNum shnum, std::uint64_t offset, std::uint64_t length,
                             Callback<void(Result<std::string>)> done) {
  impl_->Read<std::string>(
      [si, shnum, offset, length](const Txn& t) -> Result<std::string> {
        ShareRecord rec;
        Status st = t.GetRecord(schema::ShareKey(Kind::kMutable, si, shnum), &rec);
        if (st.code() == Code::kNotFound) {
          return Status::NotFound("mutable share " + std::to_string(shnum) + " of " + SiHex(si) + " is not here");
        }
        CAIRN_TRY(st);
        return ReadSlot(t, si, shnum, rec.size, offset, length);
      },
      std::move(done));
}

// --- both ----------------------------------------------------------------

void ShareStore::AdviseCorrupt(bool is_mutable, const StorageIndex& si, ShareNum shnum, std::string reason,
                               Callback<void(Status)> done) {
  Kind kind = is_mutable ? Kind::kMutable : Kind::kImmutable;
  std::string what = std::string(is_mutable ? "mutable" : "immutable") + " share " + std::to_string(shnum) + " of " +
                     SiHex(si) + ": " + reason.substr(0, 200);
  std::size_t bytes = reason.size();
  impl_->WriteStatus(
      bytes, [kind, si, shnum, reason = std::move(reason)](Batch& b) { return ApplyAdviseCorrupt(b, kind, si, shnum, reason); },
      [what = std::move(what), done = std::move(done)](Status st) mutable {
        if (st.ok()) CAIRN_LOG(Warn, "corruption advisory for %s", what.c_str());
        done(std::move(st));
      });
}

void ShareStore::AddLease(const StorageIndex& si, LeaseSecrets lease, Callback<void(Status)> done) {
  impl_->WriteStatus(
      0, [si, lease = std::move(lease)](Batch& b) { return ApplyAddLease(b, si, lease); }, std::move(done));
}

void ShareStore::CancelLease(const StorageIndex& si, std::string cancel_secret, Callback<void(Status)> done) {
  impl_->WriteStatus(
      0, [si, c = std::move(cancel_secret)](Batch& b) { return ApplyCancelLease(b, si, c); }, std::move(done));
}

// --- space and backpressure ----------------------------------------------

void ShareStore::Space(Callback<void(Result<SpaceInfo>)> done) {
  Impl& im = *impl_;
  auto info = std::make_shared<SpaceInfo>();
  info->used_bytes = im.totals.used_bytes;
  info->incoming_bytes = im.totals.incoming_bytes;
  {
    std::shared_lock<std::shared_mutex> lock(im.shared->resize_mu);
    info->map_bytes = im.shared->map_bytes;
  }
  std::shared_ptr<Shared> s = im.shared;
  im.loop.Offload(
      [s, info]() -> Status {
        CAIRN_TRY_ASSIGN(platform::FsSpace fs, s->platform->Space(s->paths.dir));
        std::uint64_t taken = s->options.reserved_bytes + info->incoming_bytes;
        info->available_bytes = s->options.read_only || fs.avail_bytes <= taken ? 0 : fs.avail_bytes - taken;
        return Status();
      },
      [info, done = std::move(done)](Status st) mutable {
        if (st.ok()) {
          done(*info);
        } else {
          done(st);
        }
      });
}

bool ShareStore::queue_full() const { return impl_->Full(0); }

bool ShareStore::has_room(std::size_t bytes) const { return !impl_->closing && !impl_->Full(bytes); }

void ShareStore::WhenRoom(Task ready) {
  if (!queue_full()) return impl_->loop.Post(std::move(ready));
  impl_->room_waiters.push_back(std::move(ready));
}

StoreStats ShareStore::stats() const {
  StoreStats s = impl_->stats;
  s.queued_ops = impl_->queued_ops;
  s.queued_bytes = impl_->queued_bytes;
  s.shares = impl_->totals.shares;
  s.sticky_error = impl_->sticky_error;
  return s;
}

const StoreOptions& ShareStore::options() const { return impl_->shared->options; }

void ShareStore::TEST_Sweep(Task done) { impl_->StartSweep(std::move(done)); }

}  // namespace cairn::store
