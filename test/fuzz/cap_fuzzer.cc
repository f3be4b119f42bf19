// libFuzzer target: any bytes as a capability string (every kind: LIT, CHK,
// CHK-Verifier, SSK, SSK-RO, SSK-Verifier, the MDMF forms and the URI:DIR2*
// directory forms) and as Tahoe base32. Whatever parses must print to a
// cap that parses to the same value and prints the same again (for caps
// without numbers or extension fields,
// print back exactly as written); its read cap, verify cap and storage index
// must be consistent with its kind. Base32 that decodes must encode back to
// the same text. Single-threaded.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/caps/cap.h"
#include "cairn/core/base32.h"

namespace {

using cairn::caps::Cap;
using cairn::caps::CapKind;

bool Same(const Cap& a, const Cap& b) {
  return a.kind == b.kind && a.format == b.format && a.key == b.key && a.digest == b.digest && a.k == b.k &&
         a.n == b.n && a.size == b.size && a.literal == b.literal && a.directory == b.directory;
}

// A cap's printed form parses back to it and prints the same again.
void CheckRoundTrip(const Cap& cap) {
  std::string once = cairn::caps::FormatCap(cap);
  cairn::Result<Cap> again = cairn::caps::ParseCap(once);
  if (!again.ok() || !Same(cap, *again)) __builtin_trap();
  if (cairn::caps::FormatCap(*again) != once) __builtin_trap();
}

void CheckCap(std::string_view text, const Cap& cap) {
  // Field sizes are what the kind promises.
  if (cap.kind == CapKind::kLiteral) {
    if (!cap.key.empty() || !cap.digest.empty()) __builtin_trap();
  } else {
    if (cap.key.size() != cairn::caps::kKeySize || cap.digest.size() != cairn::caps::kDigestSize) __builtin_trap();
  }
  if ((cap.kind == CapKind::kChk || cap.kind == CapKind::kChkVerifier) &&
      (cap.k < 1 || cap.n < cap.k || cap.n > 256)) {
    __builtin_trap();
  }
  CheckRoundTrip(cap);
  // Without decimal fields or MDMF extensions there is one spelling only.
  const bool numbers = cap.kind == CapKind::kChk || cap.kind == CapKind::kChkVerifier;
  const bool extensible = cap.is_mutable() && cap.format == cairn::caps::MutableFormat::kMdmf;
  if (!numbers && !extensible && cairn::caps::FormatCap(cap) != text) __builtin_trap();
  if (cairn::caps::CapKindName(cap) == "unknown") __builtin_trap();

  cairn::Result<Cap> read = cairn::caps::ToReadCap(cap);
  const bool verifier = cap.kind == CapKind::kChkVerifier || cap.kind == CapKind::kMutableVerifier;
  if (read.ok() == verifier) __builtin_trap();
  if (read.ok()) {
    if (!read->is_read_only()) __builtin_trap();
    CheckRoundTrip(*read);
  }
  cairn::Result<Cap> verify = cairn::caps::ToVerifyCap(cap);
  cairn::Result<std::string> si = cairn::caps::StorageIndexOf(cap);
  if (verify.ok() != (cap.kind != CapKind::kLiteral) || si.ok() != verify.ok()) __builtin_trap();
  if (verify.ok()) {
    if (verify->kind != CapKind::kChkVerifier && verify->kind != CapKind::kMutableVerifier) __builtin_trap();
    if (verify->key != *si || si->size() != cairn::caps::kKeySize) __builtin_trap();
    CheckRoundTrip(*verify);
    // The read cap leads to the same storage index.
    if (read.ok()) {
      cairn::Result<std::string> read_si = cairn::caps::StorageIndexOf(*read);
      if (!read_si.ok() || *read_si != *si) __builtin_trap();
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  cairn::Result<Cap> cap = cairn::caps::ParseCap(text);
  if (cap.ok()) CheckCap(text, *cap);
  // The same bytes as bare base32 (every field of a cap is).
  cairn::Result<std::string> raw = cairn::Base32Decode(text);
  if (raw.ok() && cairn::Base32Encode(*raw) != text) __builtin_trap();
  return 0;
}
