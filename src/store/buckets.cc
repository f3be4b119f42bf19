// Immutable buckets: allocate, write chunks (written once; overlaps must
// match), implicit completion, close, abort. Bodies are files; LMDB records
// which ranges are written, and LMDB records only durable ranges (the file
// is synced before the commit that records them). Under the "complete" sync
// policy an intermediate write is recorded only in the batch's pending
// ranges and the upload's ranges file (docs/store.md, "Durability");
// the write that completes a share records them all. Commit worker thread
// only.
#include <algorithm>
#include <cstring>

#include "cairn/core/log.h"
#include "store/ops.h"

namespace cairn::store {

using schema::Kind;
using schema::ShareRecord;
using schema::State;

std::vector<Range> Missing(const std::vector<Range>& written, std::uint64_t size) {
  std::vector<Range> out;
  std::uint64_t at = 0;
  for (const Range& g : written) {
    if (g.begin > at) out.push_back({at, g.begin});
    at = std::max(at, g.end);
  }
  if (at < size) out.push_back({at, size});
  return out;
}

namespace {

void AddRange(std::vector<Range>* ranges, Range r) {
  if (r.begin == r.end) return;
  std::vector<Range> out;
  bool placed = false;
  for (const Range& g : *ranges) {
    if (g.end < r.begin) {
      out.push_back(g);
    } else if (r.end < g.begin) {
      if (!placed) out.push_back(r), placed = true;
      out.push_back(g);
    } else {
      r.begin = std::min(r.begin, g.begin);
      r.end = std::max(r.end, g.end);
    }
  }
  if (!placed) out.push_back(r);
  *ranges = std::move(out);
}

std::string Where(const StorageIndex& si, ShareNum shnum) {
  return "immutable share " + std::to_string(shnum) + " of " + SiHex(si);
}

// Finds an upload in progress and checks its secret.
Status GetUpload(Batch& b, const std::string& key, const StorageIndex& si, ShareNum shnum, const std::string& secret,
                 ShareRecord* rec) {
  Status st = b.txn->GetRecord(key, rec);
  if (st.code() == Code::kNotFound) return Status::NotFound(Where(si, shnum) + ": no upload in progress");
  CAIRN_TRY(st);
  if (rec->state == State::kComplete) {
    return Status::FailedPrecondition(Where(si, shnum) + ": already complete");
  }
  if (!schema::SecretEquals(schema::HashSecret(secret), rec->secret)) {
    return Status::Unauthenticated(Where(si, shnum) + ": wrong upload secret");
  }
  return Status();
}

// The body of an upload in progress: in incoming/, or already renamed to its
// final place by a completion whose commit did not happen (a crash or a
// retried batch), in which case that copy is used and the rename, which
// nothing may have synced, is synced with this batch. *created: neither
// existed, so the body is a new, empty file.
Result<int> UploadBody(Batch& b, const StorageIndex& si, ShareNum shnum, std::uint64_t file_id, std::string* path,
                       bool* created) {
  *path = b.paths.IncomingPath(si, shnum, file_id);
  *created = false;
  if (!b.platform->Exists(*path).ok()) {
    std::string final_path = b.paths.FinalPath(si, shnum, file_id);
    if (b.platform->Exists(final_path).ok()) {
      *path = final_path;
      b.MarkDirDirty(b.paths.Shares(), Batch::DirChange::kGained);
      b.MarkDirDirty(b.paths.FinalDir(si), Batch::DirChange::kGained);
      b.MarkDirDirty(b.paths.Incoming(), Batch::DirChange::kLost);
    } else {
      *created = true;
      b.MarkDirDirty(b.paths.Incoming(), Batch::DirChange::kGained);
    }
  }
  return b.Body(*path, true);
}

constexpr char kRangesMagic[4] = {'C', 'R', 'N', 'G'};

std::uint64_t Fnv64(std::string_view s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

std::string EncodeRangesFile(const std::vector<Range>& ranges) {
  std::string out(kRangesMagic, sizeof kRangesMagic);
  schema::PutBe32(&out, static_cast<std::uint32_t>(ranges.size()));
  for (const Range& r : ranges) {
    schema::PutBe64(&out, r.begin);
    schema::PutBe64(&out, r.end);
  }
  schema::PutBe64(&out, Fnv64(out));
  return out;
}

bool DecodeRangesFile(std::string_view in, std::vector<Range>* ranges) {
  if (in.size() < 8 || in.substr(0, 4) != std::string_view(kRangesMagic, 4)) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  std::uint32_t n = schema::GetBe32(p + 4);
  if (n > schema::kMaxRanges) return false;
  std::size_t len = 8 + 16 * static_cast<std::size_t>(n);
  if (in.size() < len + 8 || schema::GetBe64(p + len) != Fnv64(in.substr(0, len))) return false;
  ranges->clear();
  for (std::uint32_t i = 0; i < n; ++i) {
    Range r{schema::GetBe64(p + 8 + 16 * i), schema::GetBe64(p + 16 + 16 * i)};
    if (r.begin >= r.end) return false;
    AddRange(ranges, r);
  }
  return true;
}

Result<AllocateResult> ApplyAllocate(Batch& b, const StorageIndex& si, const std::vector<ShareNum>& shnums,
                                     std::uint64_t allocated_size, const std::string& upload_secret,
                                     const LeaseSecrets& lease) {
  AllocateResult out;
  std::map<ShareNum, ShareRecord> existing;
  CAIRN_TRY(b.txn->Scan(b.txn->dbs().shares, schema::SiPrefix(Kind::kImmutable, si),
                        [&](std::string_view k, std::string_view v) {
                          Kind kind;
                          StorageIndex s;
                          ShareNum n;
                          ShareRecord r;
                          if (schema::ParseShareKey(k, &kind, &s, &n) && schema::DecodeRecord(v, &r)) existing[n] = r;
                          return true;
                        }));
  // Lease first on what is complete already (Tahoe renews these too).
  for (auto& [n, rec] : existing) {
    if (rec.state != State::kComplete) continue;
    std::string key = schema::ShareKey(Kind::kImmutable, si, n);
    CAIRN_TRY(RenewLease(b, key, &rec, lease));
    CAIRN_TRY(b.txn->PutRecord(key, rec));
    out.already_have.push_back(n);
  }
  CAIRN_TRY_ASSIGN(std::uint64_t remaining, b.Available());
  bool fits_size = allocated_size <= b.options.max_immutable_share_bytes;
  for (ShareNum n : shnums) {
    if (existing.count(n)) continue;  // complete (already_have) or in progress: neither set
    if (!fits_size) continue;
    if (remaining < allocated_size) {
      out.out_of_space = true;
      continue;
    }
    remaining -= allocated_size;
    ShareRecord rec;
    rec.state = State::kIncoming;
    rec.size = allocated_size;
    rec.file_id = b.totals.next_file_id++;
    rec.secret = schema::HashSecret(upload_secret);
    rec.expiry_time = b.now + b.options.upload_idle_seconds;
    std::string key = schema::ShareKey(Kind::kImmutable, si, n);
    CAIRN_TRY(b.txn->Put(b.txn->dbs().upload_expiry, schema::TimeKey(rec.expiry_time, key), ""));
    CAIRN_TRY(RenewLease(b, key, &rec, lease));
    CAIRN_TRY(b.txn->PutRecord(key, rec));
    b.totals.incoming_bytes += allocated_size;
    existing[n] = rec;
    out.allocated.push_back(n);
  }
  return out;
}

namespace {

// Writes `data` at `offset` of the body. Written bytes are immutable: an
// overlap with `written` must carry the same bytes (Conflict, nothing
// written, otherwise).
Status WriteOnce(Batch& b, int fd, const std::string& path, const std::vector<Range>& written,
                 const StorageIndex& si, ShareNum shnum, std::uint64_t offset, const std::string& data) {
  std::uint64_t end = offset + data.size();
  for (const Range& g : written) {
    std::uint64_t lo = std::max(g.begin, offset), hi = std::min(g.end, end);
    if (lo >= hi) continue;
    std::string have(static_cast<std::size_t>(hi - lo), '\0');
    CAIRN_TRY_ASSIGN(std::size_t got, b.platform->PRead(fd, have.data(), have.size(), lo));
    if (got != have.size() || std::memcmp(have.data(), data.data() + (lo - offset), have.size()) != 0) {
      return Status::Conflict(Where(si, shnum) + ": bytes at [" + std::to_string(lo) + ", " + std::to_string(hi) +
                              ") differ from those already written");
    }
  }
  if (!data.empty()) CAIRN_TRY(b.platform->PWrite(fd, data.data(), data.size(), offset).WithContext(path));
  return Status();
}

// An intermediate write under the "complete" policy, acknowledged once in
// the page cache: the ranges go to the ranges file (a process crash keeps
// it) and the batch's pending map, not to LMDB.
Status RecordUnsynced(Batch& b, const std::string& key, ShareRecord& rec, const std::string& ranges_path,
                      std::vector<Range> written) {
  CAIRN_TRY_ASSIGN(int rfd, b.Body(ranges_path, true));
  std::string file = EncodeRangesFile(written);
  CAIRN_TRY(b.platform->PWrite(rfd, file.data(), file.size(), 0).WithContext(ranges_path));
  // The idle expiry moves in LMDB only now and then (a synced commit).
  std::uint64_t idle = b.options.upload_idle_seconds;
  if (rec.expiry_time < b.now + idle - idle / 4) {
    CAIRN_TRY(b.txn->Del(b.txn->dbs().upload_expiry, schema::TimeKey(rec.expiry_time, key)));
    rec.expiry_time = b.now + idle;
    CAIRN_TRY(b.txn->Put(b.txn->dbs().upload_expiry, schema::TimeKey(rec.expiry_time, key), ""));
    CAIRN_TRY(b.txn->PutRecord(key, rec));
  }
  b.PutPending(key, std::move(written));
  return Status();
}

// The write completed the share: the body moves to its final place before
// the commit that makes the share visible (both directories are synced
// first), and the record becomes a complete share's. The caller writes it.
Status CompleteUpload(Batch& b, const StorageIndex& si, ShareNum shnum, const std::string& key,
                      const std::string& path, const std::string& ranges_path, ShareRecord* rec) {
  std::string final_path = b.paths.FinalPath(si, shnum, rec->file_id);
  if (path != final_path) {
    std::string final_dir = b.paths.FinalDir(si);
    if (!b.platform->Exists(final_dir).ok()) {
      CAIRN_TRY(b.platform->MakeDir(final_dir));
      b.MarkDirDirty(b.paths.Shares(), Batch::DirChange::kGained);
    }
    CAIRN_TRY(b.platform->Rename(path, final_path));
    b.MarkDirDirty(final_dir, Batch::DirChange::kGained);
    b.MarkDirDirty(b.paths.Incoming(), Batch::DirChange::kLost);
  }
  rec->state = State::kComplete;
  rec->written.clear();
  rec->secret.clear();
  rec->expiry_time = 0;
  CAIRN_TRY_ASSIGN(std::uint64_t max_expiry, MaxLeaseExpiry(*b.txn, key));
  CAIRN_TRY(SetLeaseIndex(b, key, rec, max_expiry));
  b.totals.incoming_bytes -= rec->size;
  b.totals.used_bytes += rec->size;
  b.totals.shares++;
  if (b.Pending(key)) {
    b.PutPending(key, std::nullopt);
    b.UnlinkAfter(ranges_path);
  }
  return Status();
}

}  // namespace

Result<WriteResult> ApplyWriteChunk(Batch& b, const StorageIndex& si, ShareNum shnum, const std::string& upload_secret,
                                    std::uint64_t offset, const std::string& data) {
  std::string key = schema::ShareKey(Kind::kImmutable, si, shnum);
  ShareRecord rec;
  Status st = GetUpload(b, key, si, shnum, upload_secret, &rec);
  // After completion there is no upload in progress: the same NotFound as
  // for an unknown share (GBS answers 404 there).
  if (st.code() == Code::kFailedPrecondition) return Status::NotFound(std::string(st.message()));
  CAIRN_TRY(st);
  std::uint64_t end = offset + data.size();
  if (end < offset || end > rec.size) {
    return Status::InvalidArgument(Where(si, shnum) + ": write [" + std::to_string(offset) + ", " +
                                   std::to_string(end) + ") past the allocated size " + std::to_string(rec.size));
  }
  std::string path;
  bool created = false;
  CAIRN_TRY_ASSIGN(int fd, UploadBody(b, si, shnum, rec.file_id, &path, &created));
  if (created && (!rec.written.empty() || b.Pending(key))) {
    // The body is gone although ranges of it were recorded (a file system
    // that lost it, or someone's hands): those ranges are asked for again,
    // never completed as the zeros of a new file.
    CAIRN_LOG(Error, "store: %s: the body file of the upload is missing; its written ranges are asked for again",
              Where(si, shnum).c_str());
    rec.written.clear();
    CAIRN_TRY(b.txn->PutRecord(key, rec));
    b.PutPending(key, std::nullopt);
  }
  // What is written: the durable ranges (LMDB) and those not yet synced.
  std::vector<Range> written = rec.written;
  if (const std::vector<Range>* pending = b.Pending(key)) {
    for (const Range& g : *pending) AddRange(&written, g);
  }
  CAIRN_TRY(WriteOnce(b, fd, path, written, si, shnum, offset, data));
  AddRange(&written, {offset, end});
  if (written.size() > schema::kMaxRanges) {
    return Status::ResourceExhausted(Where(si, shnum) + ": too many separate written ranges");
  }
  WriteResult out;
  out.required = Missing(written, rec.size);
  std::string ranges_path = b.paths.RangesPath(si, shnum, rec.file_id);
  if (!out.required.empty() && !b.options.sync_every_write) {
    CAIRN_TRY(RecordUnsynced(b, key, rec, ranges_path, std::move(written)));
    return out;
  }
  // Recorded in LMDB: the body is synced before the commit.
  b.MarkSync(path);
  CAIRN_TRY(b.txn->Del(b.txn->dbs().upload_expiry, schema::TimeKey(rec.expiry_time, key)));
  if (out.required.empty()) {
    CAIRN_TRY(CompleteUpload(b, si, shnum, key, path, ranges_path, &rec));
    out.complete = true;
  } else {
    rec.written = std::move(written);
    rec.expiry_time = b.now + b.options.upload_idle_seconds;
    CAIRN_TRY(b.txn->Put(b.txn->dbs().upload_expiry, schema::TimeKey(rec.expiry_time, key), ""));
  }
  CAIRN_TRY(b.txn->PutRecord(key, rec));
  return out;
}

Status ApplyCloseBucket(Batch& b, const StorageIndex& si, ShareNum shnum, const std::string& upload_secret) {
  std::string key = schema::ShareKey(Kind::kImmutable, si, shnum);
  ShareRecord rec;
  Status st = GetUpload(b, key, si, shnum, upload_secret, &rec);
  if (st.code() == Code::kFailedPrecondition) return Status();  // complete: closed
  CAIRN_TRY(st);
  std::vector<Range> written = rec.written;
  if (const std::vector<Range>* pending = b.Pending(key)) {
    for (const Range& g : *pending) AddRange(&written, g);
  }
  std::string missing;
  for (const Range& g : Missing(written, rec.size)) {
    missing += (missing.empty() ? "" : ", ") + std::string("[") + std::to_string(g.begin) + ", " +
               std::to_string(g.end) + ")";
  }
  return Status::FailedPrecondition(Where(si, shnum) + ": incomplete, missing " + missing);
}

Status ApplyAbort(Batch& b, const StorageIndex& si, ShareNum shnum, const std::string& upload_secret) {
  std::string key = schema::ShareKey(Kind::kImmutable, si, shnum);
  ShareRecord rec;
  CAIRN_TRY(GetUpload(b, key, si, shnum, upload_secret, &rec));
  return DeleteShare(b, Kind::kImmutable, si, shnum, rec);
}

}  // namespace cairn::store
