// Opening the store: the LMDB environment and its databases, the format
// check, and recovery of what a crash interrupted. Loop thread, at start-up
// only (synchronous).
#pragma once

#include "store/commit.h"
#include "store/schema.h"

namespace cairn::store {

// Opens (creating if needed) the environment in s.paths.dir with s.options
// and s.platform: sets s.env and s.dbs, checks the format version
// (UnsupportedVersion if unknown), finishes interrupted deletions, removes
// orphaned upload files, loads the ranges files of uploads in progress into
// s.pending if they can be trusted, and reads the totals into `*totals`. On
// error s.env is closed again (nullptr) and the error names the directory.
Status OpenAndRecover(Shared& s, schema::Totals* totals);

}  // namespace cairn::store
