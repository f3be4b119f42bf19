// BackupDb: the backup database (tahoe-dirnodes.md B.4's backupdb.sqlite),
// an LMDB environment of its own in the node directory (DIR/backupdb/),
// shared by every backup target of the node, as Tahoe's is.
//
//   files: absolute local path -> "size mtime ctime cap" (integer seconds,
//          as Tahoe compares them)
//   dirs:  directory hash (BackupDirHash) -> the immutable directory's cap
//
// A row is written only after the upload it names has finished, in write
// transactions that LMDB makes durable at commit; a kill -9 at any moment
// leaves a database whose every row names a finished upload (a missing row
// costs only an upload again). Every function blocks (file system, fsync):
// thread pool only; one object may be used from several threads at once.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::control {

struct BackupFileRow {
  std::string path;
  std::uint64_t size = 0;
  std::int64_t mtime = 0;
  std::int64_t ctime = 0;
  std::string cap;
};

class BackupDb {
 public:
  ~BackupDb();
  BackupDb(const BackupDb&) = delete;
  BackupDb& operator=(const BackupDb&) = delete;

  // The database in `dir`, created if missing; one object per directory in
  // the process (LMDB forbids opening an environment twice), kept open while
  // anyone holds it.
  static Result<std::shared_ptr<BackupDb>> Open(const std::string& dir);

  // The cap recorded for `path` if its size, mtime and ctime are the ones
  // given (Tahoe's check_file with timestamps); nullopt if there is no row
  // or it differs.
  // Several lookups in one read transaction: out[i] for rows[i] (whose cap
  // is ignored).
  Status LookupFiles(const std::vector<BackupFileRow>& rows, std::vector<std::optional<std::string>>* out) const;
  Result<std::optional<std::string>> LookupDir(const std::string& dirhash) const;
  // Writes the rows (replacing older ones of the same keys) in one durable
  // transaction.
  Status Record(const std::vector<BackupFileRow>& files, const std::vector<std::pair<std::string, std::string>>& dirs);

 private:
  BackupDb() = default;
  MDB_env* env_ = nullptr;
  MDB_dbi files_ = 0, dirs_ = 0;
};

}  // namespace cairn::control
