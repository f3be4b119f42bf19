// `check`: check, verify, repair and renew the leases of one file
// (docs/check.md). Loop thread only.
#pragma once

#include "control/handlers.h"

namespace cairn::control {

// params {"target": CAP or alias name, "verify", "repair", "add_lease": bools}.
// Runs as a task ("servers" shared, the alias shared, a mutable file's slot
// shared, or exclusive to repair it); its result is Tahoe's check JSON
// (docs/check.md), with "repair-*" and "pre/post-repair-results" when a
// repair was asked and "lease" with --add-lease.
void FileCheck(CommandsState& c, Request& req, Reply& reply);

}  // namespace cairn::control
