// The directory methods of the control plane (docs/dirs.md): alias.create,
// dir.mkdir, dir.ls, dir.ln, dir.mv, dir.rm, dir.put and dir.get, on
// Tahoe-LAFS directories (src/dirnode) stored as mutable (SDMF) or
// immutable files on the node's grid. Listed in src/control/commands.cc's
// table. Loop thread only.
//
// A change runs in two tasks. The first resolves the path (alias, then one
// directory read per component) and does what needs no lock (a new
// directory's key and first publish, an upload), holding "servers" and the
// alias shared. The second holds "slot/<SI>" of each directory it changes
// exclusively, so that changes to one directory on this node run one after
// another, and runs the read-modify-write: it reads the directory's newest
// version, applies the change, and publishes. When another writer changed
// the directory meanwhile (UncoordinatedWrite), it waits a bounded, growing,
// jittered time, reads the directory again and applies the change again; a
// change that no longer applies (the name exists now) fails `conflict`.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "control/handlers.h"

namespace cairn::control {

void AliasCreate(CommandsState& c, Request& req, Reply& reply);
// alias.import {"aliases": [{"name", "cap"}...]}: adds every alias in one
// transaction, or none (conflict naming the first that exists). Each cap
// must be a directory cap (as Tahoe's aliases are); names must be cairn's.
void AliasImport(CommandsState& c, Request& req, Reply& reply);
void DirMkdir(CommandsState& c, Request& req, Reply& reply);
void DirLs(CommandsState& c, Request& req, Reply& reply);
void DirLn(CommandsState& c, Request& req, Reply& reply);
void DirMv(CommandsState& c, Request& req, Reply& reply);
void DirRm(CommandsState& c, Request& req, Reply& reply);
void DirPut(CommandsState& c, Request& req, Reply& reply);
void DirGet(CommandsState& c, Request& req, Reply& reply);

// ---- for `backup` (control/backup.cc) ----------------------------------------
// The directory machinery above, for a backup's tasks. Loop thread only.

// What a directory task needs of the daemon (its grid, tables, options),
// copied when the task is submitted.
struct DirTools;
std::shared_ptr<const DirTools> DirToolsOf(CommandsState& c);

// The canonical text of a backup target path (ALIAS:path or a cap with a
// path), or why it is not one.
Result<std::string> BackupTargetText(const std::string& to_text);
// The lock keys of a task that reads the target's path (the grid and its
// alias, shared).
Result<std::vector<LockKey>> BackupResolveKeys(const std::string& to_text);

// Follows the target path, then "Archives" below it, as far as it exists
// (one directory read a step). `done` runs once, on a later turn:
// {"found": [the caps from the root down], "missing": [the names that do
// not exist, in path order]}, or why the path cannot be followed (an
// unknown alias, a component that is not a directory, a read failure).
void ResolveBackupTarget(std::shared_ptr<const DirTools> tools, TaskRun* run, const std::string& to_text,
                         Callback<void(Result<Json>)> done);

// The second task of a backup: links `snapshot` (an immutable directory's
// cap) as TO/Archives/`archive` and TO/Latest (replacing both if present),
// creating whatever of TO and TO/Archives is missing — each new directory
// made with its contents, then one read-modify-write of the deepest existing
// directory. Its keys: the slots of the directories `target`
// (ResolveBackupTarget's answer in the first task) says it changes, TO's
// alias shared and "backup/<TO>" exclusive; its body follows `to_text`
// again under them, so a TO or Archives another backup of the target made
// meanwhile is used, not made twice. Its result is `extra` with "snapshot"
// and "archive" added. PermissionDenied for a read-only or immutable
// directory on the way.
Result<TaskSpec> SnapshotLinkSpec(std::shared_ptr<const DirTools> tools, const cJSON* params, const cJSON* target,
                                  const std::string& to_text, const std::string& snapshot, const std::string& archive,
                                  Json extra);

// Runs `first`, then the task `then` makes of its result, and answers with
// the second's result (both waited for; the client sees each one's progress).
void ChainTasks(TaskTable* tasks, Reply reply, TaskSpec first,
                std::function<Result<TaskSpec>(const cJSON* first_result)> then);

}  // namespace cairn::control
