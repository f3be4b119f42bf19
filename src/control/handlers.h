// What the control method handlers share (src/control/commands.cc holds the
// method table; a group of related methods lives in a file of its own:
// servers.cc, files.cc, mutable.cc). A handler is a thin adapter: it reads
// and checks its JSON params, names its lock keys (LockKeys), and submits a
// task whose body calls a grid job (control/jobs.h) or a table; input and
// output travel through control/transfer.h. Loop thread only.
#pragma once

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cairn/control/commands.h"
#include "cairn/control/server.h"
#include "cairn/grid/grid.h"
#include "control/jobs.h"
#include "control/name_table.h"
#include "control/tasks.h"

namespace cairn::control {

class Maintenance;
class BackupSchedules;

struct CommandsState {
  Loop& loop;
  NodeView& node;
  CommandsOptions options;
  TaskTable& tasks;
  NameTable& aliases;
  NameTable& servers;
  std::map<TaskId, std::unique_ptr<Timer>>& holds;
  grid::Grid& grid;  // the client side: GBS connections and the node's secrets
  Maintenance* maintenance = nullptr;  // the maintenance schedule (maintenance.h); null before Open
  BackupSchedules* backup_schedules = nullptr;  // scheduled backups (backup_schedule.h); null before Open
};

// OK if the request has no params (or an empty object).
Status NoParams(const Request& req);
// Reads the named string parameters (all required) and nothing else.
Status StringParams(const Request& req, std::initializer_list<std::pair<const char*, std::string*>> fields);
// A task spec with an owned copy of the request's params.
TaskSpec NewTaskSpec(const char* kind, const Request& req, std::vector<LockKey> keys);
// Submits a task and answers the request (SubmitAndAnswer).
void RunTask(CommandsState& c, Request& req, Reply& reply, TaskSpec spec);

// The servers table now, as the grid opens it. For a task that holds
// "servers" (LockKeys::Servers): the table cannot change under it.
Result<std::vector<grid::ServerEntry>> GridSnapshot(const NameTable& servers);
// The hooks of a grid job run by `run`: its progress is the task's, and it
// stops when the task is cancelled.
JobHooks TaskHooks(TaskRun& run);

// The servers.* methods (servers.cc).
void ServersAdd(CommandsState& c, Request& req, Reply& reply);
void ServersRemove(CommandsState& c, Request& req, Reply& reply);
void ServersImport(CommandsState& c, Request& req, Reply& reply);
void ServersList(CommandsState& c, Request& req, Reply& reply);

// put and get: immutable files on the grid (files.cc).
void FilePut(CommandsState& c, Request& req, Reply& reply);
void FileGet(CommandsState& c, Request& req, Reply& reply);

// mutable.create, mutable.put and mutable.get: SDMF mutable files
// (mutable.cc).
void MutableCreate(CommandsState& c, Request& req, Reply& reply);
void MutablePut(CommandsState& c, Request& req, Reply& reply);
void MutableGet(CommandsState& c, Request& req, Reply& reply);

}  // namespace cairn::control
