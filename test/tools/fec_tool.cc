// Test tool: runs the code of `cairn debug fec` (src/cli/debug_fec.cc) so
// tests in Python can check our blocks against python3-zfec (which we did
// not write), whether or not the cairn command's table lists it.
//
//   fec_tool [--json] [-q] encode|decode|kernels ARGS...
//
// The arguments are those of `cairn debug fec`; $CAIRN_FEC_KERNEL picks the
// kernel as it does there.
#include <cstring>

#include "cli/debug_fec.h"

int main(int argc, char** argv) {
  cairn::cli::Options opts;
  int i = 1;
  for (; i < argc; ++i) {
    if (std::strcmp(argv[i], "--json") == 0) {
      opts.json = true;
    } else if (std::strcmp(argv[i], "-q") == 0) {
      opts.quiet = true;
    } else {
      break;
    }
  }
  opts.args.assign(argv + i, argv + argc);
  return cairn::cli::DebugFecMain(opts);
}
