// The `backup` control method (docs/dirs.md, "Backups"): `tahoe backup
// FROM ALIAS:TO` done by the node itself. cairnd walks the local tree FROM
// (it must be readable by cairnd), uploads what the backup database
// (control/backup_db.h) does not already know, makes an immutable snapshot
// directory per local directory (reusing one with the same children), and
// links the root's as TO/Archives/<UTC time> and TO/Latest — Tahoe-LAFS's
// layout and metadata (tahoe-dirnodes.md B), so `tahoe ls` and `tahoe cp -r`
// read it.
//
// Two tasks: "backup" holds the grid and the alias shared and
// "backup/<TO>" exclusive (two backups of one target never overlap); it
// lists directories, hashes and uploads on the thread pool (the upload jobs),
// shows its progress, and stops when cancelled. "backup.link" then holds the
// slots of the directories it changes and "backup/<TO>" again, and reads the
// target again before it links (control/dirs.h, SnapshotLinkSpec). Loop
// thread only.
#pragma once

#include "control/handlers.h"

namespace cairn::control {

void BackupRun(CommandsState& c, Request& req, Reply& reply);

}  // namespace cairn::control
