// libFuzzer target: one control-socket line through the request parser and
// through the data-frame head parser (the two ways cairnd reads a line).
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
  // A data frame's head: an accepted one is within the attachment limit.
  constexpr std::uint64_t kMaxBytes = 1 << 20;
  cairn::control::AttachmentHead head = cairn::control::ParseAttachmentHead(line, kMaxBytes);
  if (head.error.ok() && head.bytes > kMaxBytes) __builtin_trap();
  return 0;
}
