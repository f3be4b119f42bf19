// The clock helpers of include/cairn/core/clock.h. Any thread.
#include "cairn/core/clock.h"

#include <time.h>

namespace cairn::clock {
namespace {

std::uint64_t Ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000u + static_cast<std::uint64_t>(ts.tv_nsec);
}

}  // namespace

std::uint64_t UnixMs() { return Ns(CLOCK_REALTIME) / 1000000u; }
double MonotonicMs() { return static_cast<double>(Ns(CLOCK_MONOTONIC)) / 1e6; }
std::uint64_t ThreadCpuNs() { return Ns(CLOCK_THREAD_CPUTIME_ID); }

}  // namespace cairn::clock
