// The subset of YAML that Tahoe-LAFS's configuration files use
// (private/servers.yaml, the stanza `cairn tahoe-entry` prints), read into
// cJSON: block mappings and block sequences by indentation, plain,
// single- and double-quoted scalars, flow sequences of scalars ([a, b]),
// empty flow collections ({} and []), comments and a leading "---". Every
// scalar is a string. Anything else (anchors, tags, multi-line scalars,
// flow mappings with content, tabs for indentation) is refused with the line
// it is on, rather than read differently from a YAML library.
// Pure functions: any thread.
#pragma once

#include <string_view>

#include "cairn/core/json.h"
#include "cairn/core/status.h"

namespace cairn::cli {

// The document as JSON (a mapping or a sequence at the top; an empty
// document is an empty object). InvalidArgument "line N: why" on what it does not read.
Result<Json> ParseYamlSubset(std::string_view text);

}  // namespace cairn::cli
