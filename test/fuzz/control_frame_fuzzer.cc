// libFuzzer target: one control-socket line through the request parser.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/control/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view line(reinterpret_cast<const char*>(data), size);
  cairn::control::ParsedRequest p = cairn::control::ParseRequest(line);
  // Invariants: an accepted request has an id and an object of params, and
  // its method name is in the line as written (no NUL-shortened keys).
  if (p.error.ok() && (!p.id.get() || !p.params.get())) __builtin_trap();
  if (p.error.ok() && line.find("\"method\"") == std::string_view::npos) __builtin_trap();
  return 0;
}
