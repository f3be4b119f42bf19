// libFuzzer target: NURL text; whatever parses must print back identically.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/gbs/nurl.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto n = cairn::gbs::ParseNurl(text);
  if (n.ok()) {
    auto again = cairn::gbs::ParseNurl(cairn::gbs::FormatNurl(*n));
    if (!again.ok() || again->swissnum != n->swissnum || again->port != n->port || again->host != n->host) {
      __builtin_trap();
    }
  }
  return 0;
}
