// Every command's entry point, each defined in its own src/cli/<name>.cc and
// listed once in the table in src/cli/main.cc. Single-threaded.
#pragma once

#include "cli/cli.h"

namespace cairn::cli {

int InitMain(const Options& opts);
int StatusMain(const Options& opts);
int TasksMain(const Options& opts);

}  // namespace cairn::cli
