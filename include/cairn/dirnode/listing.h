// A directory as Tahoe-LAFS's web API shows it (GET /uri/$DIRCAP?t=json,
// tahoe-dirnodes.md A.10): ["dirnode", {"children": {NAME: [TYPE, PROPS]},
// "ro_uri", "rw_uri" (write caps only), "verify_uri" (not for LIT),
// "mutable"}]. No "format" for directories, "CHK" for LIT files, no "size"
// for mutable files, and a child's rw_uri only when the directory is
// writable. Pure functions: any thread.
#pragma once

#include "cairn/caps/cap.h"
#include "cairn/core/json.h"
#include "cairn/dirnode/dirnode.h"

namespace cairn::dirnode {

// The listing of the directory of `dircap` holding `children`.
Json ListingJson(const caps::Cap& dircap, const Children& children);
// The same, consuming `children`: each child's parsed entry is freed as its
// JSON is made, so a large directory is not held twice over (its parsed
// metadata and its listing) at once.
Json ListingJson(const caps::Cap& dircap, Children&& children);
// One child as [TYPE, PROPS].
Json ChildJson(const Child& child, bool dir_writable, bool dir_immutable);
// A node reached by a path that is not a directory: ["filenode", PROPS]
// (or "unknown"), as t=json on a file shows it.
Json NodeJson(const std::string& cap_text);

}  // namespace cairn::dirnode
