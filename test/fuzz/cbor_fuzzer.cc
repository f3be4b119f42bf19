// libFuzzer target: any bytes through the CBOR reader (item by item and with
// Skip), under small limits so deep and large inputs hit them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "cairn/cbor/cbor.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  cairn::cbor::Reader skipper(in, {8, 4096, 1 << 16});
  for (int i = 0; i < 10000 && !skipper.AtEnd(); ++i) {
    if (!skipper.Skip().ok()) break;
  }
  cairn::cbor::Reader r(in, {8, 4096, 1 << 16});
  cairn::cbor::Item item;
  std::size_t last = 0;
  for (int i = 0; i < 10000 && !r.AtEnd(); ++i) {
    if (!r.Next(&item).ok()) break;
    if (r.offset() <= last && i > 0) __builtin_trap();  // every item consumes input
    last = r.offset();
    if ((item.type == cairn::cbor::Type::kBytes || item.type == cairn::cbor::Type::kText) &&
        (item.str.data() < in.data() || item.str.data() + item.str.size() > in.data() + in.size())) {
      __builtin_trap();  // views stay inside the input
    }
  }
  return 0;
}
