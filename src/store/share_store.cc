// ShareStore, the facade: each call checks what it can at once, then
// becomes a read on the loop thread (the index, mutable data), a read on the
// thread pool (immutable bodies), or a write queued for the group commit
// (cairn/store/group_commit.h, with the store's Batch in store/commit.h).
// Every completion holds the call's ReentryGuard and runs on a later turn.
// Opening and recovery are in recovery.cc, the expiry sweep in sweep.cc.
// Loop thread only, except the offloaded body reads and free-space checks,
// which touch only what they are handed.
#include <lmdb.h>

#include <algorithm>
#include <map>
#include <optional>

#include "cairn/core/log.h"
#include "cairn/platform/platform.h"
#include "cairn/store/group_commit.h"
#include "cairn/store/store.h"
#include "store/commit.h"
#include "store/ops.h"
#include "store/recovery.h"
#include "store/schema.h"
#include "store/sweep.h"
#include "store/txn.h"

namespace cairn::store {

using schema::Kind;
using schema::ShareRecord;
using schema::State;

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
  o.test_skip_sync = l.test_store_skip_sync != 0;
  return o;
}

namespace {

// `done`, made to hold the ReentryGuard of the call named `name`: debug
// builds abort if it runs in the turn of the call (Tahoe-LAFS #877).
template <typename... A>
Callback<void(A...)> Guarded(const Scheduler& scheduler, const char* name, Callback<void(A...)> done) {
  return [guard = ReentryGuard(scheduler, name), done = std::move(done)](A... a) mutable {
    guard.Deliver();
    if (done) done(std::move(a)...);
  };
}

}  // namespace

struct ShareStore::Impl {
  explicit Impl(Loop& l) : loop(l) {}
  Loop& loop;
  // Shared with the commit worker and the offloaded reads.
  std::shared_ptr<Shared> shared = std::make_shared<Shared>();
  std::unique_ptr<GroupCommit> commit;
  std::unique_ptr<Sweeper> sweeper;
  bool closing = false;
  int reads_in_flight = 0;  // immutable body reads, from the call to the completion
  Callback<void()> closed;
  schema::Totals totals;  // as of the last commit
  // The "full" state (StoreStats::full_reason), loop thread only; shared
  // with a Space() reading in flight, which may outlive the store.
  struct Full {
    std::string reason;
    std::uint64_t since_ms = 0;
    std::uint64_t needed_bytes = 0;
    bool map_full = false;  // free disk space does not cure it
    std::uint64_t refusals = 0;
  };
  std::shared_ptr<Full> full = std::make_shared<Full>();

  // A write of `needed` bytes refused for want of space.
  void NoteFull(std::string_view reason, std::uint64_t needed, bool map_full) {
    full->refusals++;
    if (full->reason.empty()) {
      full->since_ms = shared->platform->WallSeconds() * 1000;
      CAIRN_LOG(Warn, "store: writes refused for want of space: %.*s", static_cast<int>(reason.size()), reason.data());
    }
    full->reason = std::string(reason);
    full->needed_bytes = std::max<std::uint64_t>(needed, 4096);
    full->map_full = map_full;
  }
  void NoteRoom() { full->reason.clear(); }
  // Follows one write's outcome: a NoSpace refusal sets the "full" state; a
  // write at least as large as the refused one that succeeds clears it.
  void NoteOutcome(const Status& st, std::uint64_t bytes) {
    if (st.code() == Code::kNoSpace) {
      if (st.message().find(kOverMaximumMutable) != std::string_view::npos) return;
      NoteFull(st.message(), bytes, st.message().find("MDB_MAP_FULL") != std::string_view::npos);
    } else if (st.ok() && !full->reason.empty() && bytes >= full->needed_bytes) {
      NoteRoom();
    }
  }

  // Queues a write; refused on a later turn while closing or read-only.
  template <typename R>
  void Write(const char* name, std::size_t bytes, Callback<R(Batch&)> apply, Callback<void(R)> done) {
    done = [this, bytes, done = std::move(done)](R r) mutable {
      if constexpr (std::is_same_v<R, Status>) {
        NoteOutcome(r, bytes);
      } else {
        NoteOutcome(r.status(), bytes);
      }
      done(std::move(r));
    };
    auto op = std::make_unique<WriteOp<R>>(loop, name, bytes, std::move(apply), std::move(done));
    if (closing) return commit->Refuse(std::move(op), Status::ShuttingDown("store: closing"));
    if (shared->options.read_only) {
      return commit->Refuse(std::move(op), Status::ReadOnly("store: read-only mode refuses writes"));
    }
    commit->Submit(std::move(op));
  }
  template <typename R>
  void Read(const char* name, Callback<Result<R>(const Txn&)> fn, Callback<void(Result<R>)> done);
  void MaybeClosed();
};

void ShareStore::Impl::MaybeClosed() {
  if (!closing || !commit->idle() || reads_in_flight > 0 || sweeper->running() || !closed) return;
  loop.Post(std::move(closed));
  closed = nullptr;
}

template <typename R>
void ShareStore::Impl::Read(const char* name, Callback<Result<R>(const Txn&)> fn, Callback<void(Result<R>)> done) {
  done = Guarded(loop, name, std::move(done));
  std::optional<Result<R>> out;
  if (closing) {
    out.emplace(Status::ShuttingDown("store: closing"));
  } else {
    // Reads of the index and of mutable data run on the loop thread: they
    // are memory-mapped lookups (docs/store.md has the measurements).
    const Dbs& dbs = shared->dbs;
    Status st = commit->Read([&](MDB_txn* txn) -> Status {
      Txn t(txn, dbs, nullptr);
      out.emplace(fn(t));
      return Status();
    });
    if (!out) out.emplace(st);
  }
  loop.Post([done = std::move(done), out = std::move(*out)]() mutable { done(std::move(out)); });
}

// --- open and close ------------------------------------------------------

ShareStore::ShareStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ShareStore::~ShareStore() {
  CAIRN_CHECK(impl_->commit->idle() && impl_->reads_in_flight == 0, "ShareStore destroyed with work in flight");
  impl_->sweeper.reset();
  impl_->commit.reset();
  if (impl_->shared->env) mdb_env_close(impl_->shared->env);
}

Result<std::unique_ptr<ShareStore>> ShareStore::Open(Loop& loop, StoreOptions options) {
  auto impl = std::make_unique<Impl>(loop);
  Impl* im = impl.get();
  Shared& s = *im->shared;
  s.platform = options.platform ? options.platform : platform::HostPlatform();
  s.options = std::move(options);
  s.paths.dir = s.options.dir;
  CAIRN_TRY(OpenAndRecover(s, &im->totals));
  GroupCommitOptions c;
  c.name = "store";
  c.env = s.env;
  c.map_max_bytes = s.options.map_max_bytes;
  c.batch_ops = s.options.batch_ops;
  c.batch_bytes = s.options.batch_bytes;
  c.queue_ops = s.options.queue_ops;
  c.queue_bytes = s.options.queue_bytes;
  c.sticky_errors = true;
  c.new_batch = [sp = im->shared]() -> std::unique_ptr<CommitBatch> {
    return std::make_unique<Batch>(*sp, sp->platform->WallSeconds());
  };
  // GroupCommit hands back the batch its factory made: a store Batch.
  c.committed = [im](CommitBatch& b) { im->totals = static_cast<Batch&>(b).totals; };
  im->commit = std::make_unique<GroupCommit>(loop, std::move(c));
  im->sweeper = std::make_unique<Sweeper>(loop, s, *im->commit, [im] { im->MaybeClosed(); });
  im->sweeper->Schedule();
  return std::unique_ptr<ShareStore>(new ShareStore(std::move(impl)));
}

void ShareStore::Close(Task done) {
  Impl& im = *impl_;
  im.closing = true;
  im.closed = Guarded(im.loop, "ShareStore::Close", std::move(done));
  im.sweeper->Stop();
  if (!im.commit->idle()) im.commit->WhenIdle([&im] { im.MaybeClosed(); });
  im.MaybeClosed();
}

// --- immutable -----------------------------------------------------------

void ShareStore::Allocate(const StorageIndex& si, std::vector<ShareNum> shnums, std::uint64_t allocated_size,
                          std::string upload_secret, LeaseSecrets lease, Callback<void(Result<AllocateResult>)> done) {
  impl_->Write<Result<AllocateResult>>(
      "ShareStore::Allocate", 0,
      [si, shnums = std::move(shnums), allocated_size, upload_secret = std::move(upload_secret),
       lease = std::move(lease)](Batch& b) { return ApplyAllocate(b, si, shnums, allocated_size, upload_secret, lease); },
      [im = impl_.get(), allocated_size, done = std::move(done)](Result<AllocateResult> r) mutable {
        if (r.ok() && r->out_of_space) {
          im->NoteFull("allocations of " + std::to_string(allocated_size) +
                           " bytes do not fit in the free space less the reservation and the uploads in progress",
                       allocated_size, false);
        } else if (r.ok() && !r->allocated.empty()) {
          im->NoteRoom();
        }
        done(std::move(r));
      });
}

void ShareStore::WriteChunk(const StorageIndex& si, ShareNum shnum, std::string upload_secret, std::uint64_t offset,
                            std::string data, Callback<void(Result<WriteResult>)> done) {
  std::size_t bytes = data.size();
  impl_->Write<Result<WriteResult>>(
      "ShareStore::WriteChunk", bytes,
      [si, shnum, upload_secret = std::move(upload_secret), offset, data = std::move(data)](Batch& b) {
        return ApplyWriteChunk(b, si, shnum, upload_secret, offset, data);
      },
      std::move(done));
}

void ShareStore::CloseBucket(const StorageIndex& si, ShareNum shnum, std::string upload_secret,
                             Callback<void(Status)> done) {
  impl_->Write<Status>(
      "ShareStore::CloseBucket", 0,
      [si, shnum, secret = std::move(upload_secret)](Batch& b) { return ApplyCloseBucket(b, si, shnum, secret); },
      std::move(done));
}

void ShareStore::Abort(const StorageIndex& si, ShareNum shnum, std::string upload_secret, Callback<void(Status)> done) {
  impl_->Write<Status>(
      "ShareStore::Abort", 0,
      [si, shnum, secret = std::move(upload_secret)](Batch& b) { return ApplyAbort(b, si, shnum, secret); },
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

void ShareStore::ListImmutable(const StorageIndex& si, Callback<void(Result<std::vector<ShareNum>>)> done) {
  impl_->Read<std::vector<ShareNum>>(
      "ShareStore::ListImmutable", [si](const Txn& t) { return ListShares(t, Kind::kImmutable, si); }, std::move(done));
}

void ShareStore::ImmutableSize(const StorageIndex& si, ShareNum shnum, Callback<void(Result<std::uint64_t>)> done) {
  impl_->Read<std::uint64_t>(
      "ShareStore::ImmutableSize",
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
  Impl& im = *impl_;
  // Counted from the call to the completion, so Close waits for both steps.
  im.reads_in_flight++;
  done = [&im, done = Guarded(im.loop, "ShareStore::ReadImmutable", std::move(done))](Result<std::string> r) mutable {
    im.reads_in_flight--;
    done(std::move(r));
    im.MaybeClosed();
  };
  // The index lookup on the loop; the body's bytes from the thread pool (a
  // cold read from a slow disk must not stall the loop).
  im.Read<Where>(
      "ShareStore::ReadImmutable index",
      [si, shnum, offset, length](const Txn& t) -> Result<Where> {
        CAIRN_TRY_ASSIGN(ShareRecord rec, CompleteImmutable(t, si, shnum));
        std::uint64_t end = length > rec.size - std::min(offset, rec.size) ? rec.size : offset + length;
        return Where{rec.file_id, std::min(offset, rec.size), end};
      },
      [&im, si, shnum, done = std::move(done)](Result<Where> w) mutable {
        if (!w.ok()) return done(w.status());
        if (w->begin >= w->end) return done(std::string());
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
            [buf, done = std::move(done)](Status st) mutable {
              if (!st.ok()) return done(st);
              done(std::move(*buf));
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
    done = Guarded(impl_->loop, "ShareStore::ReadTestWrite", std::move(done));
    impl_->loop.Post([done = std::move(done)]() mutable {
      done(Status::InvalidArgument("read-test-write names a share number twice"));
    });
    return;
  }
  impl_->Write<Result<RtwResult>>(
      "ShareStore::ReadTestWrite", bytes,
      [si, we = std::move(write_enabler), lease = std::move(lease), writes = std::move(writes),
       reads = std::move(reads)](Batch& b) { return ApplyReadTestWrite(b, si, we, lease, writes, reads); },
      std::move(done));
}

void ShareStore::ListMutable(const StorageIndex& si, Callback<void(Result<std::vector<ShareNum>>)> done) {
  impl_->Read<std::vector<ShareNum>>(
      "ShareStore::ListMutable", [si](const Txn& t) { return ListShares(t, Kind::kMutable, si); }, std::move(done));
}

void ShareStore::ReadMutable(const StorageIndex& si, ShareNum shnum, std::uint64_t offset, std::uint64_t length,
                             Callback<void(Result<std::string>)> done) {
  impl_->Read<std::string>(
      "ShareStore::ReadMutable",
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
  impl_->Write<Status>(
      "ShareStore::AdviseCorrupt", bytes,
      [kind, si, shnum, reason = std::move(reason)](Batch& b) { return ApplyAdviseCorrupt(b, kind, si, shnum, reason); },
      [what = std::move(what), done = std::move(done)](Status st) mutable {
        if (st.ok()) CAIRN_LOG(Warn, "corruption advisory for %s", what.c_str());
        done(std::move(st));
      });
}

void ShareStore::AddLease(const StorageIndex& si, LeaseSecrets lease, Callback<void(Status)> done) {
  impl_->Write<Status>(
      "ShareStore::AddLease", 0, [si, lease = std::move(lease)](Batch& b) { return ApplyAddLease(b, si, lease); },
      std::move(done));
}

void ShareStore::CancelLease(const StorageIndex& si, std::string cancel_secret, Callback<void(Status)> done) {
  impl_->Write<Status>(
      "ShareStore::CancelLease", 0, [si, c = std::move(cancel_secret)](Batch& b) { return ApplyCancelLease(b, si, c); },
      std::move(done));
}

// --- space and backpressure ----------------------------------------------

void ShareStore::Space(Callback<void(Result<SpaceInfo>)> done) {
  Impl& im = *impl_;
  done = Guarded(im.loop, "ShareStore::Space", std::move(done));
  auto info = std::make_shared<SpaceInfo>();
  info->used_bytes = im.totals.used_bytes;
  info->incoming_bytes = im.totals.incoming_bytes;
  info->map_bytes = im.commit->map_bytes();
  std::shared_ptr<Shared> s = im.shared;
  im.loop.Offload(
      [s, info]() -> Status {
        CAIRN_TRY_ASSIGN(platform::FsSpace fs, s->platform->Space(s->paths.dir));
        std::uint64_t taken = s->options.reserved_bytes + info->incoming_bytes;
        info->available_bytes = s->options.read_only || fs.avail_bytes <= taken ? 0 : fs.avail_bytes - taken;
        return Status();
      },
      [full = im.full, info, done = std::move(done)](Status st) mutable {
        if (!st.ok()) return done(st);
        // Space came back (not for a full map: needed is 0 there).
        if (!full->reason.empty() && !full->map_full && info->available_bytes >= full->needed_bytes) {
          CAIRN_LOG(Info, "store: %llu bytes available again; writes were refused for want of space since %llu: %s",
                    static_cast<unsigned long long>(info->available_bytes),
                    static_cast<unsigned long long>(full->since_ms / 1000), full->reason.c_str());
          full->reason.clear();
        }
        done(*info);
      });
}

bool ShareStore::queue_full() const { return impl_->commit->Full(0); }

bool ShareStore::has_room(std::size_t bytes) const { return !impl_->closing && !impl_->commit->Full(bytes); }

void ShareStore::WhenRoom(Task ready) {
  impl_->commit->WhenRoom(Guarded(impl_->loop, "ShareStore::WhenRoom", std::move(ready)));
}

StoreStats ShareStore::stats() const {
  const GroupCommit& c = *impl_->commit;
  StoreStats s;
  s.commits = c.stats().commits;
  s.ops_committed = c.stats().ops_committed;
  s.largest_batch = c.stats().largest_batch;
  s.map_grows = c.stats().map_grows;
  s.queued_ops = c.queued_ops();
  s.queued_bytes = c.queued_bytes();
  s.expired_shares = impl_->sweeper->expired_shares();
  s.shares = impl_->totals.shares;
  s.sticky_error = c.sticky_error();
  const Impl::Full& full = *impl_->full;
  s.full_reason = full.reason;
  s.full_since_ms = full.reason.empty() ? 0 : full.since_ms;
  s.full_needed_bytes = full.reason.empty() ? 0 : full.needed_bytes;
  s.no_space_refusals = full.refusals;
  return s;
}

const StoreOptions& ShareStore::options() const { return impl_->shared->options; }

void ShareStore::TEST_Sweep(Task done) {
  impl_->sweeper->Start(Guarded(impl_->loop, "ShareStore::TEST_Sweep", std::move(done)));
}

}  // namespace cairn::store
