// Tahoe-LAFS server entries as an operator hands them out: the `ann`
// stanza of a private/servers.yaml entry, the entry with its server id as
// `cairn tahoe-entry` prints it (YAML, or JSON with --json), or a whole
// servers.yaml (`storage:` and its entries). Read here, on the CLI's side;
// cairnd gets JSON (servers.add's params.announcement, servers.import's
// params.servers). Pure functions: any thread.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cairn/core/json.h"
#include "cairn/core/status.h"

namespace cairn::cli {

struct TahoeServerEntry {
  std::string server_id;  // the entry's key in servers.yaml ("" when only the ann was given)
  Json ann;               // the announcement object
};

// JSON if the text starts with '{', else the YAML subset (cli/yaml.h).
Result<Json> ParseJsonOrYaml(std::string_view text);

// The one server in `text`: a bare ann stanza, {"ann": ...} (optionally with
// "server_id"), {SERVER_ID: {"ann": ...}}, or a servers.yaml with exactly
// one entry under "storage". InvalidArgument saying what was expected.
Result<TahoeServerEntry> OneServerEntry(std::string_view text);

// A whole private/servers.yaml: the entries with a NURL to import, and
// those without one, each with why it is skipped. InvalidArgument (naming
// the entry) for a malformed file or entry: then nothing is to be imported.
struct ServersYaml {
  std::vector<TahoeServerEntry> entries;
  std::vector<std::pair<std::string, std::string>> skipped;  // server id, why
};
Result<ServersYaml> ReadServersYaml(std::string_view text);

}  // namespace cairn::cli
