// Random bytes for salts, IVs, upload secrets and keys, from the kernel's
// CSPRNG (getrandom). Any thread; may block only before the kernel's pool is
// first initialised at boot.
#pragma once

#include <cstddef>
#include <string>

#include "cairn/core/status.h"

namespace cairn::crypto {

Result<std::string> RandomBytes(std::size_t n);

}  // namespace cairn::crypto
