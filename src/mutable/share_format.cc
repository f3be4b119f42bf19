// Choosing a mutable share format (see share_format.h); SDMF and MDMF
// implement the interface in sdmf.cc and mdmf.cc, beside their layouts.
#include "cairn/mutable/share_format.h"

#include <algorithm>

#include "cairn/core/endian.h"
#include "cairn/mutable/mdmf.h"
#include "cairn/mutable/sdmf.h"

namespace cairn::mutable_files {

const ShareFormat& FormatFor(caps::MutableFormat format) {
  return format == caps::MutableFormat::kMdmf ? MdmfFormat() : SdmfFormat();
}

Result<const ShareFormat*> FormatOfShare(std::string_view bytes) {
  if (bytes.empty()) return Status::InvalidArgument("an empty share has no version byte");
  switch (static_cast<std::uint8_t>(bytes[0])) {
    case 0:
      return &SdmfFormat();
    case 1:
      return &MdmfFormat();
    default:
      return Status::InvalidArgument("not a mutable share (version byte " +
                                     std::to_string(+static_cast<std::uint8_t>(bytes[0])) + ")");
  }
}

// Both formats begin with the version byte and the 8-byte seqnum; a short
// checkstring gives the bytes it has.
std::uint64_t SeqnumOfCheckstring(std::string_view checkstring) {
  if (checkstring.size() <= 1) return 0;
  return GetBe(checkstring, 1, std::min<std::size_t>(checkstring.size(), 9) - 1);
}

}  // namespace cairn::mutable_files
