// Txn: a thin, error-translating view of one LMDB transaction over the
// store's databases; Batch: the context of one group-committed write
// transaction (worker thread) — totals, free space, open body files, files
// to unlink after the commit. Read transactions use Txn alone.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"
#include "cairn/platform/platform.h"
#include "cairn/store/store.h"
#include "store/schema.h"

namespace cairn::store {

struct Dbs {
  MDB_dbi meta = 0, shares = 0, leases = 0, data = 0, lease_expiry = 0, upload_expiry = 0, doomed = 0,
          corrupt = 0;
};

// Where body files live: DIR/incoming/<si>-<shnum>-<file id> while uploading,
// DIR/shares/<first two hex digits>/<si>-<shnum>-<file id> once complete.
struct BodyPaths {
  std::string dir;
  std::string Incoming() const { return dir + "/incoming"; }
  std::string Shares() const { return dir + "/shares"; }
  std::string Name(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const;
  std::string IncomingPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const;
  // The ranges written to an upload's body and not yet fsynced (store_sync
  // "complete"): beside the body, named <body>.ranges.
  std::string RangesPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const;
  std::string FinalDir(const StorageIndex& si) const;
  std::string FinalPath(const StorageIndex& si, ShareNum shnum, std::uint64_t file_id) const;
};

// Translates an LMDB return code. MDB_MAP_FULL becomes NoSpace and sets
// `*map_full` (the caller may grow the map and retry).
Status LmdbStatus(const char* what, int rc, bool* map_full = nullptr);

class Txn {
 public:
  Txn(MDB_txn* txn, const Dbs& dbs, bool* map_full) : txn_(txn), dbs_(dbs), map_full_(map_full) {}
  const Dbs& dbs() const { return dbs_; }
  MDB_txn* raw() const { return txn_; }
  void Reset(MDB_txn* txn) { txn_ = txn; }

  // NotFound if absent. `out` (if given) views LMDB's page until the txn ends.
  Status Get(MDB_dbi dbi, std::string_view key, std::string_view* out) const;
  Status Put(MDB_dbi dbi, std::string_view key, std::string_view value);
  // OK if absent.
  Status Del(MDB_dbi dbi, std::string_view key);
  // True once a Put or Del ran (even if its op was rolled back later): a
  // batch that changed nothing commits nothing, and syncs nothing.
  bool changed() const { return changed_; }
  // Calls fn(key, value) for each key starting with `prefix`, in order, from
  // `from` (>= prefix) on, until fn returns false.
  Status Scan(MDB_dbi dbi, std::string_view prefix, const std::function<bool(std::string_view, std::string_view)>& fn,
              std::string_view from = {}) const;

  // Share records.
  Status GetRecord(std::string_view share_key, schema::ShareRecord* rec) const;
  Status PutRecord(std::string_view share_key, const schema::ShareRecord& rec);

 private:
  MDB_txn* txn_;
  Dbs dbs_;
  bool* map_full_;
  bool changed_ = false;
};

// Ranges of uploads in progress written to their bodies (in the page cache)
// but not yet recorded in LMDB, by share key: the "complete" sync policy
// records an upload's ranges in LMDB only with the write that completes it.
// Each also lives in the upload's ranges file, so it survives a process
// crash; Open() trusts those files only if the machine has not rebooted.
using PendingRanges = std::map<std::string, std::vector<Range>>;

struct DoomedFile {
  std::uint64_t file_id;
  StorageIndex si;
  ShareNum shnum;
};

class Batch {
 public:
  Batch(platform::Platform* p, const StoreOptions& o, const BodyPaths& bp, std::uint64_t now_s)
      : platform(p), options(o), paths(bp), now(now_s) {}
  ~Batch();  // closes the body files it opened

  platform::Platform* platform;
  const StoreOptions& options;
  const BodyPaths& paths;
  std::uint64_t now;  // wall-clock seconds, one value for the whole batch
  schema::Totals totals;
  std::optional<Txn> txn;

  // Free space for new data: statvfs (once per batch) less the reservation
  // and the allocations of uploads in progress; 0 if negative.
  Result<std::uint64_t> Available();
  // A file, opened once per batch. Synced before the commit only if
  // MarkSync()ed: a body whose ranges this commit records.
  Result<int> Body(const std::string& path, bool create);
  void MarkSync(const std::string& path) { sync_[path] = true; }
  // The pending ranges of `share_key` as this batch sees them (nullptr if
  // none); PutPending stages a change (nullopt: drop them) for the op in
  // progress, applied to the store's map once the batch is done.
  const std::vector<Range>* Pending(const std::string& share_key) const;
  void PutPending(const std::string& share_key, std::optional<std::vector<Range>> ranges) {
    op_pending[share_key] = std::move(ranges);
  }
  const PendingRanges* committed_pending = nullptr;
  std::map<std::string, std::optional<std::vector<Range>>> op_pending;
  std::map<std::string, std::optional<std::vector<Range>>> pending;
  // Ranges files to unlink once the commit is durable (completed uploads).
  std::vector<std::string> op_unlink_after;
  std::vector<std::string> unlink_after;
  // Unlinks a body file after the commit (recorded in `doomed` in this txn).
  Status Doom(const DoomedFile& f);
  void MarkDirDirty(const std::string& dir) { dirty_dirs_[dir] = true; }
  // Makes every body write and directory change durable (before the commit).
  Status SyncFiles();
  // Files to unlink once the transaction is durable; kept per op so an op
  // rolled back drops its own.
  std::vector<DoomedFile> op_doomed;
  std::vector<DoomedFile> doomed;

 private:
  std::optional<platform::FsSpace> space_;
  std::map<std::string, int> fds_;
  std::map<std::string, bool> sync_;
  std::map<std::string, bool> dirty_dirs_;
};

}  // namespace cairn::store
