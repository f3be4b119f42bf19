// The unit test binary ignores SIGPIPE, as cairnd does (src/daemon/main.cc):
// a peer that closes its socket before a write gives the writer EPIPE
// instead of ending the process. Without it, one kirkwood run under
// qemu-arm died of SIGPIPE (exit -13) with no test failed. Runs before main.
#include <csignal>

namespace {

[[maybe_unused]] const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

}  // namespace
