// The version of cairn. Any thread.
#pragma once

namespace cairn {
inline constexpr char kVersion[] = "0.1.0";
}  // namespace cairn
