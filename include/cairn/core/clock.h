// The clocks cairn reads outside the loop's cached NowMs(): one helper each,
// so every timing figure (task times, publish timing_ms, loop CPU) means the
// same thing wherever it is reported. Any thread.
#pragma once

#include <cstdint>

namespace cairn::clock {

// Milliseconds since the Unix epoch (wall clock; may jump). For records a
// person reads: task created/finished times.
std::uint64_t UnixMs();
// Milliseconds on the monotonic clock, fractional. For measuring intervals.
double MonotonicMs();
// CPU time of the calling thread, in nanoseconds.
std::uint64_t ThreadCpuNs();
// The same, in fractional milliseconds.
inline double ThreadCpuMs() { return static_cast<double>(ThreadCpuNs()) / 1e6; }

}  // namespace cairn::clock
