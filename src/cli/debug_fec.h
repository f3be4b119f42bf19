// `cairn debug fec`: zfec-compatible erasure coding from the command line,
// with Tahoe's padding, so blocks can be checked against other tools
// (docs/formats/fec.md has the framing). Offline; single-threaded.
#pragma once

#include "cli/cli.h"

namespace cairn::cli {

extern const char kDebugFecUsage[];
extern const char kDebugFecSummary[];

// opts.args are the words after "debug fec": encode, decode or kernels and
// their options. Returns the exit code (docs/cli.md).
int DebugFecMain(const Options& opts);

}  // namespace cairn::cli
