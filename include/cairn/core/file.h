// Reading small files whole (keys, certificates, the swissnum, configs).
// Blocking: start-up, the cairn command and tests only, never the loop.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/core/status.h"

namespace cairn {

// The whole file; NotFound naming the path and the OS's reason if it cannot
// be opened, InvalidArgument if it is longer than `max_bytes`.
Result<std::string> ReadWholeFile(const std::string& path, std::uint64_t max_bytes = 16 << 20);

}  // namespace cairn
