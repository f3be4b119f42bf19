// Open and recovery: one write transaction at start-up that checks the
// format, finishes what a crash interrupted and loads the unsynced ranges of
// uploads in progress. Loop thread, at start-up only.
#include "store/recovery.h"

#include <lmdb.h>

#include <algorithm>
#include <set>

#include "cairn/core/log.h"
#include "store/ops.h"

namespace cairn::store {

using schema::Kind;
using schema::ShareRecord;
using schema::State;

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

// A new store gets format and empty totals; another store's format must be
// ours.
Status CheckFormat(Txn& t) {
  std::string_view v;
  Status got = t.Get(t.dbs().meta, "format", &v);
  if (got.code() == Code::kNotFound) {
    std::string f;
    schema::PutBe32(&f, schema::kFormat);
    CAIRN_TRY(t.Put(t.dbs().meta, "format", f));
    return t.Put(t.dbs().meta, "totals", schema::EncodeTotals(schema::Totals{}));
  }
  CAIRN_TRY(got);
  std::uint32_t format = v.size() == 4 ? schema::GetBe32(reinterpret_cast<const unsigned char*>(v.data())) : 0;
  if (format != schema::kFormat) {
    return Status::UnsupportedVersion("store format " + std::to_string(format) + "; this cairn reads format " +
                                      std::to_string(schema::kFormat) + " (refusing to open)");
  }
  return Status();
}

// Unsynced records are trusted only within the boot that wrote them: true if
// the boot id is the one kept in meta "boot" (else it is recorded now).
Result<bool> SameBoot(Shared& s, Txn& t) {
  std::string boot = s.platform->BootId();
  std::string_view was;
  if (!boot.empty() && t.Get(s.dbs.meta, "boot", &was).ok() && was == boot) return true;
  CAIRN_TRY(t.Put(s.dbs.meta, "boot", boot));
  return false;
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

// Bodies of deleted shares whose unlink a crash interrupted (the doomed
// list): unlinked now, their entries removed.
Status FinishDeletions(Shared& s, Txn& t) {
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
  // The unlinks are durable before the commit that forgets them.
  if (!files.empty() && !s.options.test_skip_sync) {
    std::set<std::string> dirs = {s.paths.Incoming()};
    for (const DoomedFile& f : files) {
      if (s.platform->Exists(s.paths.FinalDir(f.si)).ok()) dirs.insert(s.paths.FinalDir(f.si));
    }
    for (const std::string& d : dirs) CAIRN_TRY(s.platform->SyncDir(d));
  }
  for (const std::string& k : keys) CAIRN_TRY(t.Del(s.dbs.doomed, k));
  return Status();
}

// Files in incoming/: a body or ranges file that no upload record names (a
// body created in a batch whose commit never happened) is removed. The
// ranges files of uploads in progress are loaded if `trust_ranges` (no
// reboot since they were written, so the page cache kept their bytes and the
// bodies'), else removed: those uploads restart from their durable ranges.
Status CheckIncoming(Shared& s, Txn& t, bool trust_ranges) {
  std::vector<std::string> names;
  CAIRN_TRY(s.platform->ListDir(s.paths.Incoming(), &names));
  for (const std::string& full : names) {
    BodyName name;
    bool parsed = ParseBodyName(full, &name);
    ShareRecord rec;
    std::string key = schema::ShareKey(Kind::kImmutable, name.si, name.shnum);
    bool live = parsed && t.GetRecord(key, &rec).ok() && rec.state == State::kIncoming && rec.file_id == name.file_id;
    std::string path = s.paths.Incoming() + "/" + full;
    if (live && name.ranges_file) {
      std::vector<Range> ranges;
      Status loaded = trust_ranges ? LoadRangesFile(s, path, rec, &ranges) : Status::Cancelled("");
      if (loaded.ok()) {
        s.pending[key] = std::move(ranges);
        continue;
      }
      CAIRN_LOG(Info, "store: upload %s restarts from its synced ranges (%s)", full.c_str(),
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

// Everything Open does inside its one write transaction.
Status Recover(Shared& s, Txn& t, schema::Totals* totals) {
  CAIRN_TRY(CheckFormat(t));
  CAIRN_TRY_ASSIGN(bool trust_ranges, SameBoot(s, t));
  CAIRN_TRY(LoadTotals(t, totals));
  // Both sets below are bounded by the work in flight at a crash, never by
  // the number of shares: no walkers.
  CAIRN_TRY(FinishDeletions(s, t));
  return CheckIncoming(s, t, trust_ranges);
}

}  // namespace

Status OpenAndRecover(Shared& s, schema::Totals* totals) {
  // The directory itself is made by `cairn init`: a missing one is an error,
  // not an invitation to start an empty store somewhere else.
  CAIRN_TRY(s.platform->Exists(s.paths.dir).WithContext("store"));
  CAIRN_TRY(s.platform->MakeDir(s.paths.Incoming()));
  CAIRN_TRY(s.platform->MakeDir(s.paths.Shares()));
  int rc = mdb_env_create(&s.env);
  if (rc == 0) rc = mdb_env_set_maxdbs(s.env, 16);
  if (rc == 0) rc = mdb_env_set_mapsize(s.env, ClampMapBytes(s.options.map_bytes));
  // MDB_NOTLS: read transactions run on the loop thread and on the pool.
  // MDB_NOSYNC only for the power-cut test's negative run (test_skip_sync).
  const unsigned flags = MDB_NOTLS | (s.options.test_skip_sync ? MDB_NOSYNC : 0);
  if (rc == 0) rc = mdb_env_open(s.env, s.paths.dir.c_str(), flags, 0600);
  auto fail = [&](Status st) -> Status {
    if (s.env) mdb_env_close(s.env);
    s.env = nullptr;
    return st.WithContext("store " + s.paths.dir);
  };
  if (rc != 0) return fail(LmdbStatus("open", rc));
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(s.env, nullptr, 0, &txn);
  if (rc != 0) return fail(LmdbStatus("begin", rc));
  Status st = OpenDbs(txn, &s.dbs);
  Txn t(txn, s.dbs, nullptr);
  if (st.ok()) st = Recover(s, t, totals);
  if (!st.ok()) {
    mdb_txn_abort(txn);
    return fail(st);
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) return fail(LmdbStatus("commit", rc));
  // The entries of incoming/, shares/ and LMDB's data.mdb are durable only
  // once the store directory is synced: without this, a power cut soon
  // after a node's first start lost incoming/ and shares/ (and every share
  // body in them) while the synced LMDB still listed the shares (issue 24).
  // Before any write is acknowledged, so before Open returns.
  if (!s.options.test_skip_sync) {
    Status synced = s.platform->SyncDir(s.paths.dir);
    if (!synced.ok()) return fail(synced);
  }
  return Status();
}

}  // namespace cairn::store
