// BackupDb: the backup database (tahoe-dirnodes.md B.4's backupdb.sqlite),
// an LMDB environment of its own in the node directory (DIR/backupdb/),
// shared by every backup target of the node, as Tahoe's is.
//
//   files:   absolute local path -> "size mtime ctime cap" (integer
//            seconds, as Tahoe compares them)
//   dirs:    directory hash (BackupDirHash) -> the immutable directory's cap
//   checked: a file's or directory's cap -> the Unix time (decimal seconds)
//            it was last uploaded or found healthy by a check (Tahoe's
//            last_checked, which it also keys by the cap)
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

// A cap the database knows, and when it was last uploaded or found healthy
// (nullopt: no "checked" row, as in a database written before they
// existed).
struct BackupKnown {
  std::string cap;
  std::optional<std::int64_t> checked_s;
};

// Tahoe's re-check rule (backupdb.py, tahoe-dirnodes.md B.4): a cap the
// database reuses is checked with probability
// clamp((age - 30 days) / (60 days - 30 days), 0, 1), where age is now minus
// its last check. A cap with no check time (a database from before they
// were kept) is due at once. Any thread.
inline constexpr std::int64_t kBackupNoCheckBeforeSeconds = 30 * 86400;
inline constexpr std::int64_t kBackupAlwaysCheckAfterSeconds = 60 * 86400;
double BackupCheckProbability(std::optional<std::int64_t> checked_s, std::int64_t now_s);
// Whether to check, given `uniform` drawn from [0, 1): Python's
// `random() < p`, so a probability of 0 never checks and 1 always does.
bool BackupShouldCheck(std::optional<std::int64_t> checked_s, std::int64_t now_s, double uniform);

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
  // given (Tahoe's check_file with timestamps), with its last check time;
  // nullopt if there is no row or it differs.
  // Several lookups in one read transaction: out[i] for rows[i] (whose cap
  // is ignored).
  Status LookupFiles(const std::vector<BackupFileRow>& rows, std::vector<std::optional<BackupKnown>>* out) const;
  // The directory recorded for `dirhash`, with its last check time.
  Result<std::optional<BackupKnown>> LookupDir(const std::string& dirhash) const;
  // Writes the rows (replacing older ones of the same keys) in one durable
  // transaction: file rows, directory rows (dirhash, cap), and "checked"
  // rows (cap, Unix seconds).
  Status Record(const std::vector<BackupFileRow>& files, const std::vector<std::pair<std::string, std::string>>& dirs,
                const std::vector<std::pair<std::string, std::int64_t>>& checked);

 private:
  BackupDb() = default;
  MDB_env* env_ = nullptr;
  MDB_dbi files_ = 0, dirs_ = 0, checked_ = 0;
};

}  // namespace cairn::control
