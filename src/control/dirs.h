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

#include "control/handlers.h"

namespace cairn::control {

void AliasCreate(CommandsState& c, Request& req, Reply& reply);
void DirMkdir(CommandsState& c, Request& req, Reply& reply);
void DirLs(CommandsState& c, Request& req, Reply& reply);
void DirLn(CommandsState& c, Request& req, Reply& reply);
void DirMv(CommandsState& c, Request& req, Reply& reply);
void DirRm(CommandsState& c, Request& req, Reply& reply);
void DirPut(CommandsState& c, Request& req, Reply& reply);
void DirGet(CommandsState& c, Request& req, Reply& reply);

}  // namespace cairn::control
