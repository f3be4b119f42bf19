// BackupDb (see backup_db.h): two LMDB tables in DIR/backupdb. Thread pool
// only.
#include "control/backup_db.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "cairn/core/base32.h"
#include "cairn/core/file.h"
#include "cairn/crypto/hash.h"
#include "cairn/store/group_commit.h"

namespace cairn::control {
namespace {

constexpr const char* kWho = "backupdb";

Status DbError(const char* what, int rc) { return store::LmdbError(kWho, what, rc); }

MDB_val Val(const std::string& s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }

// A path's key: itself, or past LMDB's key size its SHA-256 ("#" and
// base32: no absolute path starts with '#').
std::string PathKey(const std::string& path) {
  if (path.size() <= 400) return path;
  return "#" + Base32Encode(crypto::Sha256(path));
}

std::string FileValue(const BackupFileRow& row) {
  return std::to_string(row.size) + " " + std::to_string(row.mtime) + " " + std::to_string(row.ctime) + " " + row.cap;
}

// Parses FileValue's text; false if it is not one.
bool ParseFileValue(std::string_view text, BackupFileRow* row) {
  std::string s(text);
  char* end = nullptr;
  const char* p = s.c_str();
  row->size = std::strtoull(p, &end, 10);
  if (*end != ' ') return false;
  row->mtime = std::strtoll(end + 1, &end, 10);
  if (*end != ' ') return false;
  row->ctime = std::strtoll(end + 1, &end, 10);
  if (*end != ' ') return false;
  row->cap = std::string(end + 1);
  return !row->cap.empty();
}

// The databases open in this process, by directory.
std::mutex g_open_mu;
std::map<std::string, std::weak_ptr<BackupDb>>& OpenDbs() {
  static auto* dbs = new std::map<std::string, std::weak_ptr<BackupDb>>();
  return *dbs;
}

}  // namespace

BackupDb::~BackupDb() {
  if (env_) mdb_env_close(env_);
}

Result<std::shared_ptr<BackupDb>> BackupDb::Open(const std::string& dir) {
  std::lock_guard<std::mutex> lock(g_open_mu);
  auto& dbs = OpenDbs();
  if (auto existing = dbs[dir].lock()) return existing;
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return Status::IoError(dir + ": " + std::strerror(errno));
  std::shared_ptr<BackupDb> db(new BackupDb());
  int rc = mdb_env_create(&db->env_);
  // Sparse: 100,000 files take some 20 MB.
  if (rc == 0) rc = mdb_env_set_mapsize(db->env_, 1ull << 30);
  if (rc == 0) rc = mdb_env_set_maxdbs(db->env_, 2);
  // MDB_NOTLS: read transactions on any pool thread.
  if (rc == 0) rc = mdb_env_open(db->env_, dir.c_str(), MDB_NOTLS, 0600);
  if (rc != 0) return DbError("open", rc);
  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(db->env_, nullptr, 0, &txn);
  if (rc == 0) rc = mdb_dbi_open(txn, "files", MDB_CREATE, &db->files_);
  if (rc == 0) rc = mdb_dbi_open(txn, "dirs", MDB_CREATE, &db->dirs_);
  if (rc == 0) {
    rc = mdb_txn_commit(txn);
  } else if (txn) {
    mdb_txn_abort(txn);
  }
  if (rc != 0) return DbError("create tables", rc);
  CAIRN_TRY(SyncDir(dir));
  CAIRN_TRY(SyncDir(ParentDir(dir)));
  dbs[dir] = db;
  return db;
}

Status BackupDb::LookupFiles(const std::vector<BackupFileRow>& rows, std::vector<std::optional<std::string>>* out) const {
  out->assign(rows.size(), std::nullopt);
  if (rows.empty()) return Status();
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return DbError("read", rc);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::string key = PathKey(rows[i].path);
    MDB_val k = Val(key), v;
    rc = mdb_get(txn, files_, &k, &v);
    if (rc == MDB_NOTFOUND) continue;
    if (rc != 0) {
      mdb_txn_abort(txn);
      return DbError("read", rc);
    }
    BackupFileRow have;
    // Tahoe's rule: size, mtime and ctime all equal, and a cap known.
    if (ParseFileValue(std::string_view(static_cast<const char*>(v.mv_data), v.mv_size), &have) &&
        have.size == rows[i].size && have.mtime == rows[i].mtime && have.ctime == rows[i].ctime) {
      (*out)[i] = have.cap;
    }
  }
  mdb_txn_abort(txn);
  return Status();
}

Result<std::optional<std::string>> BackupDb::LookupDir(const std::string& dirhash) const {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc != 0) return DbError("read", rc);
  MDB_val k = Val(dirhash), v;
  rc = mdb_get(txn, dirs_, &k, &v);
  std::optional<std::string> cap;
  if (rc == 0) cap = std::string(static_cast<const char*>(v.mv_data), v.mv_size);
  mdb_txn_abort(txn);
  if (rc != 0 && rc != MDB_NOTFOUND) return DbError("read", rc);
  return cap;
}

Status BackupDb::Record(const std::vector<BackupFileRow>& files,
                        const std::vector<std::pair<std::string, std::string>>& dirs) {
  if (files.empty() && dirs.empty()) return Status();
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn);
  if (rc != 0) return DbError("write", rc);
  for (const BackupFileRow& row : files) {
    std::string value = FileValue(row);
    const std::string key = PathKey(row.path);
    MDB_val k = Val(key), v = Val(value);
    rc = mdb_put(txn, files_, &k, &v, 0);
    if (rc != 0) break;
  }
  for (std::size_t i = 0; rc == 0 && i < dirs.size(); ++i) {
    MDB_val k = Val(dirs[i].first), v = Val(dirs[i].second);
    rc = mdb_put(txn, dirs_, &k, &v, 0);
  }
  if (rc != 0) {
    mdb_txn_abort(txn);
    return DbError("write", rc);
  }
  rc = mdb_txn_commit(txn);
  if (rc != 0) return DbError("commit", rc);
  return Status();
}

}  // namespace cairn::control
