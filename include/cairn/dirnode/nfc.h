// Unicode Normalization Form C of UTF-8 text, as Tahoe-LAFS applies it to
// every child name of a directory (tahoe-dirnodes.md A.3): canonical
// decomposition, canonical ordering, canonical composition (UAX #15). The
// tables come from Debian's Python unicodedata (src/dirnode/gen_nfc_tables.py),
// so no library is needed at run time. Pure functions: any thread.
#pragma once

#include <string>
#include <string_view>

#include "cairn/core/status.h"

namespace cairn::dirnode {

// The NFC form of `utf8`. InvalidArgument if it is not well-formed UTF-8
// (overlong forms, surrogates and values past U+10FFFF included).
Result<std::string> NormalizeNfc(std::string_view utf8);

// True if `text` is well-formed UTF-8 (no overlong forms, surrogates or
// values past U+10FFFF).
bool IsUtf8(std::string_view text);

// The Unicode version of the tables ("14.0.0").
const char* NfcUnicodeVersion();

}  // namespace cairn::dirnode
