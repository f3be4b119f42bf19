// Named tables over the control store. Loop thread only; the transaction
// bodies run on a pool thread and touch only their own copies.
#include "control/name_table.h"

#include <lmdb.h>

#include <memory>

namespace cairn::control {
namespace {

MDB_val Val(const std::string& s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
std::string Str(const MDB_val& v) { return std::string(static_cast<const char*>(v.mv_data), v.mv_size); }

Status LmdbError(const std::string& what, int rc) {
  std::string msg = what + ": " + mdb_strerror(rc);
  if (rc == MDB_MAP_FULL) return Status::NoSpace(msg);
  return Status::IoError(msg);
}

}  // namespace

Status NameTable::Open() {
  CAIRN_TRY_ASSIGN(dbi_, store_.OpenTable(table_.c_str()));
  return Status::Ok();
}

Status NameTable::CheckName(std::string_view name) {
  if (name.empty() || name.size() > kMaxAliasNameLength) {
    return Status::InvalidArgument("an alias name is 1 to " + std::to_string(kMaxAliasNameLength) + " characters");
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (!alnum(name[0])) return Status::InvalidArgument("an alias name starts with a letter or a digit");
  for (char c : name) {
    if (!alnum(c) && c != '.' && c != '_' && c != '-') {
      return Status::InvalidArgument("an alias name holds only letters, digits, '.', '_' and '-'");
    }
  }
  return Status::Ok();
}

void NameTable::Add(std::string name, std::string cap, Callback<void(Status)> done) {
  MDB_dbi dbi = dbi_;
  store_.Transact(
      [dbi, what = what_, max = max_entries_, name = std::move(name), cap = std::move(cap)](MDB_txn* txn) -> Status {
        MDB_stat st;
        if (int rc = mdb_stat(txn, dbi, &st); rc != 0) return LmdbError(what + " table stat", rc);
        if (st.ms_entries >= max) {
          return Status::ResourceExhausted("the node holds the maximum of " + std::to_string(max) + " " + what + "s");
        }
        MDB_val k = Val(name), v = Val(cap);
        int rc = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) return Status::Conflict(what + " \"" + name + "\" already exists");
        if (rc != 0) return LmdbError("adding " + what + " " + name, rc);
        return Status::Ok();
      },
      std::move(done));
}

void NameTable::AddAll(std::vector<std::pair<std::string, std::string>> entries, Callback<void(Status)> done) {
  MDB_dbi dbi = dbi_;
  store_.Transact(
      [dbi, what = what_, max = max_entries_, entries = std::move(entries)](MDB_txn* txn) -> Status {
        MDB_stat st;
        if (int rc = mdb_stat(txn, dbi, &st); rc != 0) return LmdbError(what + " table stat", rc);
        if (st.ms_entries + entries.size() > max) {
          return Status::ResourceExhausted("the node holds at most " + std::to_string(max) + " " + what + "s");
        }
        // A failure returns before the nested transaction commits: nothing is added.
        for (const auto& [name, value] : entries) {
          MDB_val k = Val(name), v = Val(value);
          int rc = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE);
          if (rc == MDB_KEYEXIST) return Status::Conflict(what + " \"" + name + "\" already exists");
          if (rc != 0) return LmdbError("adding " + what + " " + name, rc);
        }
        return Status::Ok();
      },
      std::move(done));
}

void NameTable::Rename(std::string from, std::string to, Callback<void(Status)> done) {
  MDB_dbi dbi = dbi_;
  store_.Transact(
      [dbi, what = what_, from = std::move(from), to = std::move(to)](MDB_txn* txn) -> Status {
        MDB_val k = Val(from), v;
        int rc = mdb_get(txn, dbi, &k, &v);
        if (rc == MDB_NOTFOUND) return Status::NotFound(what + " \"" + from + "\" does not exist");
        if (rc != 0) return LmdbError("renaming " + what + " " + from, rc);
        if (from == to) return Status::Ok();
        std::string cap = Str(v);  // v points into the map; copy before writing
        MDB_val nk = Val(to), nv = Val(cap);
        rc = mdb_put(txn, dbi, &nk, &nv, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) return Status::Conflict(what + " \"" + to + "\" already exists");
        if (rc == 0) rc = mdb_del(txn, dbi, &k, nullptr);
        if (rc != 0) return LmdbError("renaming " + what + " " + from, rc);
        return Status::Ok();
      },
      std::move(done));
}

void NameTable::Remove(std::string name, Callback<void(Result<std::string>)> done) {
  MDB_dbi dbi = dbi_;
  auto removed = std::make_shared<std::string>();
  store_.Transact(
      [dbi, what = what_, name = std::move(name), removed](MDB_txn* txn) -> Status {
        MDB_val k = Val(name), v;
        int rc = mdb_get(txn, dbi, &k, &v);
        if (rc == MDB_NOTFOUND) return Status::NotFound(what + " \"" + name + "\" does not exist");
        if (rc == 0) {
          *removed = Str(v);
          rc = mdb_del(txn, dbi, &k, nullptr);
        }
        if (rc != 0) return LmdbError("removing " + what + " " + name, rc);
        return Status::Ok();
      },
      [removed, done = std::move(done)](Status st) mutable {
        if (!st.ok()) return done(std::move(st));
        done(std::move(*removed));
      });
}

Result<std::string> NameTable::Get(std::string_view name) const {
  std::string cap;
  MDB_dbi dbi = dbi_;
  std::string key(name);
  CAIRN_TRY(store_.Read([&](MDB_txn* txn) -> Status {
    MDB_val k = Val(key), v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND) return Status::NotFound(what_ + " \"" + key + "\" does not exist");
    if (rc != 0) return LmdbError("reading " + what_ + " " + key, rc);
    cap = Str(v);
    return Status::Ok();
  }));
  return cap;
}

Result<std::vector<std::pair<std::string, std::string>>> NameTable::List() const {
  std::vector<std::pair<std::string, std::string>> out;
  MDB_dbi dbi = dbi_;
  CAIRN_TRY(store_.Read([&](MDB_txn* txn) -> Status {
    MDB_cursor* cur = nullptr;
    if (int rc = mdb_cursor_open(txn, dbi, &cur); rc != 0) return LmdbError("listing " + what_ + "s", rc);
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
      out.emplace_back(Str(k), Str(v));
    }
    mdb_cursor_close(cur);
    return Status::Ok();
  }));
  return out;
}

}  // namespace cairn::control
