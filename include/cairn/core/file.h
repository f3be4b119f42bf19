// Reading small files whole (keys, certificates, the swissnum, configs), and
// making a directory's entries durable. Blocking: start-up, the cairn
// command and tests only, never the loop.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/core/status.h"

namespace cairn {

// The whole file; NotFound naming the path and the OS's reason if it cannot
// be opened, InvalidArgument if it is longer than `max_bytes`.
Result<std::string> ReadWholeFile(const std::string& path, std::uint64_t max_bytes = 16 << 20);

// fsyncs the directory `dir`, which makes its entries (names created,
// renamed or removed in it) durable: a file's own fsync does not make its
// name durable. IoError naming the directory and the OS's reason.
Status SyncDir(const std::string& dir);

// The directory holding `path`: "." for a bare name, "/" for a name at the
// root.
std::string ParentDir(const std::string& path);

}  // namespace cairn
