// The directory commands of the cairn command (src/cli/dirs.cc): mkdir,
// ls, ln, mv, rm, alias create, put and get on ALIAS:path targets, and the
// offline `debug dirnode`. Listed in the table in src/cli/main.cc.
// Single-threaded.
#pragma once

#include "cli/cli.h"

namespace cairn::cli {

int DebugDirnodeMain(const Options& opts);
int MkdirMain(const Options& opts);
int LsMain(const Options& opts);
int LnMain(const Options& opts);
int MvMain(const Options& opts);
int RmMain(const Options& opts);
int CpMain(const Options& opts);
int AliasCreateMain(const Options& opts);
// `alias import FILE` / `alias export [FILE]`: Tahoe's private/aliases format.
int AliasImportMain(const Options& opts);
int AliasExportMain(const Options& opts);
// `put FILE ALIAS:path` links the upload into a directory; `put FILE` alone
// is the plain put (PutMain).
int PutPathMain(const Options& opts);
// `get ALIAS:path` (or a cap with a path) reads a file through
// directories; a bare cap or alias is the plain get (GetMain).
int GetPathMain(const Options& opts);
// `backup FROM ALIAS:TO` (src/cli/backup.cc).
int BackupMain(const Options& opts);

}  // namespace cairn::cli
