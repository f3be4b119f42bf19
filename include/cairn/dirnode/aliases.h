// Tahoe-LAFS's alias file, NODEDIR/private/aliases (tahoe-dirnodes.md D),
// read and written as Tahoe does: one "NAME: CAP" a line; each line
// stripped, empty lines and lines starting with '#' skipped; the name is
// everything before the first ':' (not stripped again), the cap what
// follows, stripped. Pure functions: any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::dirnode {

// The (name, cap) pairs of an alias file, in the order of their first
// appearance; a name given again takes the later cap (Tahoe reads the file
// into a dict). InvalidArgument naming the line for a line with no ':' or
// that is not UTF-8.
Result<std::vector<std::pair<std::string, std::string>>> ParseAliasesFile(std::string_view text);

// The file Tahoe's add-alias writes for `aliases`: "NAME: CAP\n" each.
std::string FormatAliasesFile(const std::vector<std::pair<std::string, std::string>>& aliases);

}  // namespace cairn::dirnode
