// Txn and Batch. Txn: whichever thread owns the transaction. Batch: the
// commit's worker thread.
#include "store/txn.h"

#include <cstdio>

namespace cairn::store {

std::string SiHex(const StorageIndex& si) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::uint8_t b : si) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

std::string BodyPaths::Name(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const {
  return SiHex(si) + "-" + std::to_string(shnum) + "-" + std::to_string(file_id);
}
std::string BodyPaths::IncomingPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const {
  return Incoming() + "/" + Name(si, shnum, file_id);
}
std::string BodyPaths::RangesPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const {
  return IncomingPath(si, shnum, file_id) + ".ranges";
}
std::string BodyPaths::FinalDir(const StorageIndex& si) const { return Shares() + "/" + SiHex(si).substr(0, 2); }
std::string BodyPaths::FinalPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const {
  return FinalDir(si) + "/" + Name(si, shnum, file_id);
}

Status LmdbStatus(const char* what, int rc, bool* map_full) {
  if (rc == 0) return Status();
  std::string msg = std::string("store: ") + what + ": " + mdb_strerror(rc);
  if (rc == MDB_NOTFOUND) return Status::NotFound(msg);
  if (rc == MDB_MAP_FULL) {
    if (map_full) *map_full = true;
    return Status::NoSpace(msg);
  }
  if (rc == ENOSPC) return Status::NoSpace(msg);
  if (rc == MDB_TXN_FULL) return Status::ResourceExhausted(msg);
  return Status::IoError(msg);
}

namespace {
MDB_val Val(std::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }
}  // namespace

Status Txn::Get(MDB_dbi dbi, std::string_view key, std::string_view* out) const {
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn_, dbi, &k, &v);
  if (rc == 0 && out) *out = View(v);
  return LmdbStatus("get", rc, map_full_);
}

Status Txn::Put(MDB_dbi dbi, std::string_view key, std::string_view value) {
  changed_ = true;
  MDB_val k = Val(key), v = Val(value);
  return LmdbStatus("put", mdb_put(txn_, dbi, &k, &v, 0), map_full_);
}

Status Txn::Del(MDB_dbi dbi, std::string_view key) {
  changed_ = true;
  MDB_val k = Val(key);
  int rc = mdb_del(txn_, dbi, &k, nullptr);
  if (rc == MDB_NOTFOUND) return Status();
  return LmdbStatus("del", rc, map_full_);
}

Status Txn::Scan(MDB_dbi dbi, std::string_view prefix,
                 const std::function<bool(std::string_view, std::string_view)>& fn, std::string_view from) const {
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn_, dbi, &cur);
  if (rc != 0) return LmdbStatus("cursor", rc, map_full_);
  std::string_view start = from.empty() ? prefix : from;
  MDB_val k = Val(start), v;
  rc = start.empty() ? mdb_cursor_get(cur, &k, &v, MDB_FIRST) : mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  while (rc == 0) {
    std::string_view key = View(k);
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!fn(key, View(v))) break;
    rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
  }
  mdb_cursor_close(cur);
  if (rc != 0 && rc != MDB_NOTFOUND) return LmdbStatus("scan", rc, map_full_);
  return Status();
}

Status Txn::GetRecord(std::string_view share_key, schema::ShareRecord* rec) const {
  std::string_view v;
  CAIRN_TRY(Get(dbs_.shares, share_key, &v));
  if (!schema::DecodeRecord(v, rec)) return Status::Integrity("store: malformed share record");
  return Status();
}

Status Txn::PutRecord(std::string_view share_key, const schema::ShareRecord& rec) {
  return Put(dbs_.shares, share_key, schema::EncodeRecord(rec));
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
  op_doomed.push_back(f);
  return Status();
}

const std::vector<Range>* Batch::Pending(const std::string& share_key) const {
  for (const auto* staged : {&op_pending, &pending}) {
    auto it = staged->find(share_key);
    if (it != staged->end()) return it->second ? &*it->second : nullptr;
  }
  if (!committed_pending) return nullptr;
  auto it = committed_pending->find(share_key);
  return it == committed_pending->end() ? nullptr : &it->second;
}

Status Batch::SyncFiles() {
  for (auto& [path, fd] : fds_) {
    if (sync_.count(path)) CAIRN_TRY(platform->SyncData(fd).WithContext(path));
  }
  for (auto& [dir, dirty] : dirty_dirs_) CAIRN_TRY(platform->SyncDir(dir));
  return Status();
}

}  // namespace cairn::store
