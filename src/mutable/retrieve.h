// A retrieve that starts from a servermap already made (by a publish's
// write-mode update) instead of making its own: an in-place update reads
// the old segments around its write this way. Loop thread only.
#pragma once

#include "cairn/caps/cap.h"
#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/mutable/mutable_file.h"
#include "mutable/servermap.h"

namespace cairn::mutable_files {

// As RetrieveMutable, with `map` as its first servermap (its corruption
// advisories are not counted again). `done` runs once, on a later turn.
void RetrieveFromMap(Loop& loop, Servermap map, caps::Cap cap, RetrieveOptions options,
                     Callback<void(Result<RetrieveResult>)> done);

}  // namespace cairn::mutable_files
