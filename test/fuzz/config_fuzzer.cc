// libFuzzer target: cairn.json text through the strict config parser, and a
// parsed config back through the printer and parser (it must round-trip).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/core/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto c = cairn::ParseConfig(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (c.ok()) {
    auto again = cairn::ParseConfig(cairn::ConfigToJson(*c), "again");
    if (!again.ok() || again->port != c->port || again->nickname != c->nickname) __builtin_trap();
  }
  return 0;
}
