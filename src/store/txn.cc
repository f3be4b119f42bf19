// Txn over LMDB. Whichever thread owns the transaction.
#include "store/txn.h"

#include "cairn/store/group_commit.h"

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

Status LmdbStatus(const char* what, int rc, bool* map_full) { return LmdbError("store", what, rc, map_full); }

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

Status LoadTotals(const Txn& t, schema::Totals* totals) {
  std::string_view v;
  CAIRN_TRY(t.Get(t.dbs().meta, "totals", &v));
  if (!schema::DecodeTotals(v, totals)) return Status::Integrity("store: malformed totals");
  return Status();
}

}  // namespace cairn::store
