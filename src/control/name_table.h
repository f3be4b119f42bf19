// NameTable: a named LMDB table in the control plane's store, name -> value
// text. Aliases (the owner's names for caps: "photos" -> URI:CHK:...) and
// grid servers (server id -> its NURL and nickname) are NameTables.
//
// The guard against lost names is in LMDB itself, not only in the locks:
// Add writes with MDB_NOOVERWRITE, Rename puts the new name (no overwrite)
// and deletes the old one in one transaction, Remove deletes only what
// exists. Each check and its change run in one nested transaction of the
// control store's group commit (TaskStore::Transact), so a locking mistake
// can only ever show up as a `conflict`, never as an overwrite. Callbacks
// run on later turns, after the change is durable. Loop thread only.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/core/callback.h"
#include "cairn/core/status.h"
#include "control/task_store.h"

namespace cairn::control {

inline constexpr std::size_t kMaxAliasNameLength = 64;

class NameTable {
 public:
  // `table` names the LMDB table; `what` ("alias", "server") names an entry
  // in errors; at most `max_entries` entries.
  NameTable(TaskStore& store, std::string table, std::string what, std::size_t max_entries)
      : store_(store), table_(std::move(table)), what_(std::move(what)), max_entries_(max_entries) {}
  // Opens the table. At start-up, after the store is open.
  Status Open();

  // An alias name: 1..64 characters of [A-Za-z0-9._-], starting with a
  // letter or digit (names appear in lock keys, logs and shell scripts).
  static Status CheckName(std::string_view name);

  // Conflict if `name` exists; ResourceExhausted past max_entries.
  void Add(std::string name, std::string cap, Callback<void(Status)> done);
  // Adds every (name, value) in one transaction: all of them or none.
  // Conflict naming the first that exists; ResourceExhausted past max_entries.
  void AddAll(std::vector<std::pair<std::string, std::string>> entries, Callback<void(Status)> done);
  // NotFound if `from` does not exist, Conflict if `to` does.
  void Rename(std::string from, std::string to, Callback<void(Status)> done);
  // NotFound if `name` does not exist; the removed cap on success.
  void Remove(std::string name, Callback<void(Result<std::string>)> done);

  // Reads on the loop thread (bounded, LMDB reads do not block on writers).
  Result<std::string> Get(std::string_view name) const;
  Result<std::vector<std::pair<std::string, std::string>>> List() const;

 private:
  TaskStore& store_;
  std::string table_;
  std::string what_;
  std::size_t max_entries_;
  unsigned int dbi_ = 0;
};

}  // namespace cairn::control
