// The cairn command's shared pieces: parsed global options and the command
// table entry type. Each command lives in its own src/cli/<name>.cc and is
// listed once in the table in src/cli/main.cc. Single-threaded process.
#pragma once

#include <string>
#include <vector>

namespace cairn::cli {

struct Options {
  std::string node_dir;            // -d DIR (default: $CAIRN_NODE_DIR, else ./var/node)
  bool json = false;               // --json: machine-readable output on stdout
  bool quiet = false;              // -q: no progress on stderr
  int timeout_ms = 30000;          // --timeout S: how long to wait for cairnd
  std::vector<std::string> args;   // the words after the command's name
};

// A command returns the process exit code (see docs/cli.md); it prints its
// result to stdout and errors and progress to stderr.
using CommandFn = int (*)(const Options& opts);

struct Command {
  const char* name;     // "status", "debug fec" (words separated by one space)
  CommandFn fn;
  const char* usage;    // "status" / "debug fec encode -k K -n N"
  const char* summary;  // one line for `cairn --help`
};

}  // namespace cairn::cli
