// cairn: the owner's command. Parses global options and dispatches to one
// command from the table below. Single-threaded process.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cli/cli.h"

namespace cairn::cli {
namespace {

// THE command table: one line per command (longest names first where one is
// a prefix of another).
const Command kCommands[] = {
    {nullptr, nullptr, nullptr, nullptr},
};

}  // namespace
}  // namespace cairn::cli

int main(int argc, char** argv) {
  (void)argc;
  (void)argv;
  return 0;
}
