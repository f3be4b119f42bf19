// The pure rules of `tahoe backup` (tahoe-dirnodes.md B): the metadata a
// snapshot stores for each child, the backup database's directory hash,
// the Archives entry's name, and the --exclude patterns. No I/O except
// that StatMetadata reads a struct stat the caller filled. Pure values and
// functions: any thread.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "cairn/dirnode/pyjson.h"

namespace cairn::dirnode {

// The metadata `tahoe backup` writes for a file or directory (B.3):
// {"ctime", "mtime" (floats, as Python's os.stat gives them), "st_mode",
// "st_ino", "st_dev", "st_uid", "st_gid"} in that order, no "tahoe" key.
PyJson StatMetadata(const struct stat& st);

// The backup database's key for a directory's contents (B.4): base32 of
// tagged_hash("allmydata_backupdb_dirhash_v1", concatenation over the
// children sorted by UTF-8 name of ns(name) ns(cap)), 52 characters.
// `children` are (NFC name, cap) pairs in any order.
std::string BackupDirHash(std::vector<std::pair<std::string, std::string>> children);

// The Archives entry of a snapshot taken at `unix_seconds`:
// "YYYY-MM-DD_HH:MM:SSZ" in UTC.
std::string ArchiveName(std::int64_t unix_seconds);

// The names --exclude-vcs excludes (B.6).
const std::vector<std::string>& VcsExcludes();

// True if `basename` matches one of `patterns`, as Python's
// fnmatch.translate + re.match do on POSIX (case-sensitive; '*', '?',
// '[seq]', '[!seq]'; '/' is an ordinary character).
bool Excluded(const std::string& basename, const std::vector<std::string>& patterns);
// One fnmatch pattern against a name, the whole name.
bool FnMatch(const std::string& pattern, const std::string& name);

}  // namespace cairn::dirnode
