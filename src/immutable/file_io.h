// Blocking file access for uploads and downloads: called only from work
// items on the thread pool (Loop::Offload), never on the loop thread, except
// CloseFile (closing a regular file does not block). Any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "cairn/core/status.h"

namespace cairn::immutable {

// Opens `path` for reading and sets *size. NotFound or IoError naming it.
Result<int> OpenForRead(const std::string& path, std::uint64_t* size);
// Creates or truncates `path` (mode 0644 less the umask).
Result<int> OpenForWrite(const std::string& path);
// Exactly `len` bytes at `offset`; IoError on a short read (the file shrank).
Status ReadAt(int fd, std::uint64_t offset, char* buf, std::size_t len, const std::string& path);
Status WriteAt(int fd, std::uint64_t offset, const char* buf, std::size_t len, const std::string& path);
// fsync then close; IoError if either fails.
Status SyncAndClose(int fd, const std::string& path);
// Ignores fd < 0.
void CloseFile(int fd);

}  // namespace cairn::immutable
