// Txn: a thin, error-translating view of one LMDB transaction over the
// store's databases, for reads and for the ops of a batch (store/commit.h).
// Whichever thread owns the transaction.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"
#include "cairn/store/store.h"
#include "store/schema.h"

namespace cairn::store {

struct Dbs {
  MDB_dbi meta = 0, shares = 0, leases = 0, data = 0, lease_expiry = 0, upload_expiry = 0, doomed = 0,
          corrupt = 0;
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

// The totals record (meta "totals"); Integrity if malformed.
Status LoadTotals(const Txn& t, schema::Totals* totals);

}  // namespace cairn::store
