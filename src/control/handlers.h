// What the control method handlers share (src/control/commands.cc holds the
// method table; a group of related methods may live in a file of its own,
// like servers.cc). Loop thread only.
#pragma once

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "cairn/control/commands.h"
#include "cairn/control/server.h"
#include "control/name_table.h"
#include "control/tasks.h"

namespace cairn::tls {
class Context;
}

namespace cairn::control {

// The put and get tasks running now. Shutdown asks them to stop and waits
// for them (their GBS clients and pool work must end before the loop does).
struct GridOps {
  std::size_t active = 0;
  bool stopping = false;
  Task on_idle;  // runs (posted) when `active` drops to 0 while stopping
};

struct CommandsState {
  Loop& loop;
  NodeView& node;
  CommandsOptions options;
  TaskTable& tasks;
  NameTable& aliases;
  NameTable& servers;
  std::map<TaskId, std::unique_ptr<Timer>>& holds;
  std::shared_ptr<tls::Context>& client_tls;  // for GBS clients; made on first use
  std::shared_ptr<GridOps> grid_ops;
};

// OK if the request has no params (or an empty object).
Status NoParams(const Request& req);
// Reads the named string parameters (all required) and nothing else.
Status StringParams(const Request& req, std::initializer_list<std::pair<const char*, std::string*>> fields);
// A task spec with an owned copy of the request's params.
TaskSpec NewTaskSpec(const char* kind, const Request& req, std::vector<LockKey> keys);
// Submits a task and answers the request: at once with {"task", "state"}
// when the client asked not to wait, else with progress events and then the
// task's result or error.
void RunTask(CommandsState& c, Request& req, Reply& reply, TaskSpec spec);
// The same, for a handler that submits later than the call that gave it
// the request (CommandsState is the call's own).
void RunTaskOn(TaskTable& tasks, bool wait, Reply reply, TaskSpec spec);
// Creates the spool directory and removes what an earlier run left in it.
Status OpenSpool(const std::string& dir);

// The servers.* methods (servers.cc).
void ServersAdd(CommandsState& c, Request& req, Reply& reply);
void ServersRemove(CommandsState& c, Request& req, Reply& reply);
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
