// The share store's Batch: one group commit's context and per-op staging.
// The commit's worker thread only (UnlinkBody: any thread).
#include "store/commit.h"

#include "cairn/core/log.h"

namespace cairn::store {

void UnlinkBody(const Shared& s, const DoomedFile& f) {
  for (const std::string& p : {s.paths.IncomingPath(f.si, f.shnum, f.file_id), s.paths.RangesPath(f.si, f.shnum, f.file_id),
                               s.paths.FinalPath(f.si, f.shnum, f.file_id)}) {
    Status st = s.platform->Unlink(p);
    if (!st.ok() && st.code() != Code::kNotFound) CAIRN_LOG(Warn, "store: %s", st.ToString().c_str());
  }
}

Batch::~Batch() {
  for (auto& [path, fd] : fds_) platform->Close(fd);
}

Result<std::uint64_t> Batch::Available() {
  if (!space_) {
    CAIRN_TRY_ASSIGN(platform::FsSpace s, platform->Space(paths.dir));
    space_ = s;
  }
  std::uint64_t taken = options.reserved_bytes + totals.incoming_bytes;
  return space_->avail_bytes > taken ? space_->avail_bytes - taken : 0;
}

Result<int> Batch::Body(const std::string& path, bool create) {
  auto it = fds_.find(path);
  if (it != fds_.end()) return it->second;
  CAIRN_TRY_ASSIGN(int fd, platform->OpenFile(path, create));
  fds_[path] = fd;
  return fd;
}

Status Batch::Doom(const DoomedFile& f) {
  std::string key, value = schema::ShareKey(schema::Kind::kImmutable, f.si, f.shnum);
  schema::PutBe64(&key, f.file_id);
  CAIRN_TRY(txn->Put(txn->dbs().doomed, key, value));
  op_.doomed.push_back(f);
  return Status();
}

const std::vector<Range>* Batch::Pending(const std::string& share_key) const {
  for (const auto* staged : {&op_.pending, &kept_.pending}) {
    auto it = staged->find(share_key);
    if (it != staged->end()) return it->second ? &*it->second : nullptr;
  }
  auto it = shared_.pending.find(share_key);
  return it == shared_.pending.end() ? nullptr : &it->second;
}

Status Batch::Begin() {
  txn.emplace(CommitBatch::txn(), shared_.dbs, map_full_flag());
  CAIRN_TRY(LoadTotals(*txn, &totals));
  // Files unlinked after the previous commit: their doomed entries go now,
  // and the unlinks are made durable before the commit that forgets them (a
  // power cut would otherwise bring a body back that nothing names, and no
  // walker would ever find it).
  for (const DoomedFile& f : shared_.unlinked) {
    std::string key;
    schema::PutBe64(&key, f.file_id);
    CAIRN_TRY(txn->Del(shared_.dbs.doomed, key));
    MarkDirDirty(paths.Incoming(), DirChange::kLost);
    std::string final_dir = paths.FinalDir(f.si);
    if (platform->Exists(final_dir).ok()) MarkDirDirty(final_dir, DirChange::kLost);
  }
  return Status();
}

void Batch::OpBegin() {
  txn->Reset(CommitBatch::txn());
  op_start_totals_ = totals;
  op_ = Staged{};
}

void Batch::OpEnd(bool kept) {
  if (kept) {
    kept_.doomed.insert(kept_.doomed.end(), op_.doomed.begin(), op_.doomed.end());
    for (auto& [key, ranges] : op_.pending) kept_.pending[key] = std::move(ranges);
    kept_.unlink_after.insert(kept_.unlink_after.end(), op_.unlink_after.begin(), op_.unlink_after.end());
  } else {
    totals = op_start_totals_;
  }
  op_ = Staged{};
  txn->Reset(CommitBatch::txn());
}

Status Batch::End() {
  if (!txn->changed()) return Status();
  return txn->Put(shared_.dbs.meta, "totals", schema::EncodeTotals(totals));
}

Status Batch::BeforeCommit() {
  // Bodies first: a commit must never record bytes that are not durable.
  if (options.test_skip_sync) return Status();
  for (auto& [path, fd] : fds_) {
    if (sync_.count(path)) CAIRN_TRY(platform->SyncData(fd).WithContext(path));
  }
  // New names before removed ones (MarkDirDirty).
  for (bool lost : {false, true}) {
    for (auto& [dir, lost_entry] : dirty_dirs_) {
      if (lost_entry == lost) CAIRN_TRY(platform->SyncDir(dir));
    }
  }
  return Status();
}

void Batch::Durable() {
  for (auto& [key, ranges] : kept_.pending) {
    if (ranges) {
      shared_.pending[key] = std::move(*ranges);
    } else {
      shared_.pending.erase(key);
    }
  }
  // Now the bodies of deleted shares may go. A crash before this leaves
  // `doomed` entries that Open() finishes.
  shared_.unlinked.clear();
  for (const DoomedFile& f : kept_.doomed) {
    UnlinkBody(shared_, f);
    shared_.unlinked.push_back(f);
  }
  // Ranges files of completed uploads (Open() removes any a crash left).
  for (const std::string& p : kept_.unlink_after) {
    Status u = platform->Unlink(p);
    if (!u.ok() && u.code() != Code::kNotFound) CAIRN_LOG(Warn, "store: %s", u.ToString().c_str());
  }
}

}  // namespace cairn::store
