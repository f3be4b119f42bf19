// Tahoe-LAFS capability strings (tahoe-protocol.md 3.5), parsed into one
// value type and printed back exactly:
//   URI:LIT:<data>                             a file of at most 55 bytes, inline
//   URI:CHK:<key>:<ueb hash>:<k>:<N>:<size>    an immutable file
//   URI:CHK-Verifier:<si>:<ueb hash>:<k>:<N>:<size>
//   URI:SSK:<writekey>:<fingerprint>           an SDMF mutable file (write)
//   URI:SSK-RO:<readkey>:<fingerprint>         (read)
//   URI:SSK-Verifier:<si>:<fingerprint>        (verify)
//   URI:MDMF:…, URI:MDMF-RO:…, URI:MDMF-Verifier:…  the same fields for MDMF
// and the directory caps (tahoe-dirnodes.md A.1), each the cap of the file
// that holds the directory's body under another prefix, every other
// character the same:
//   URI:DIR2:  URI:DIR2-RO:  URI:DIR2-Verifier:            (SSK)
//   URI:DIR2-MDMF:  URI:DIR2-MDMF-RO:  URI:DIR2-MDMF-Verifier:  (MDMF)
//   URI:DIR2-CHK:  URI:DIR2-CHK-Verifier:                  (CHK, immutable)
//   URI:DIR2-LIT:                                          (LIT, immutable)
// Every field is Tahoe base32. Pure functions: any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "cairn/core/status.h"

namespace cairn::caps {

// The largest file Tahoe-LAFS stores inline in a URI:LIT: cap.
inline constexpr std::size_t kLiteralMaxSize = 55;
inline constexpr std::size_t kKeySize = 16;      // CHK key, writekey, readkey, storage index
inline constexpr std::size_t kDigestSize = 32;   // UEB hash, public-key fingerprint

enum class CapKind {
  kLiteral,
  kChk,
  kChkVerifier,
  kMutableWrite,
  kMutableRead,
  kMutableVerifier,
};

enum class MutableFormat { kSdmf, kMdmf };

struct Cap {
  CapKind kind = CapKind::kLiteral;
  MutableFormat format = MutableFormat::kSdmf;  // mutable kinds only
  std::string key;      // 16 bytes: CHK key, writekey, readkey or storage index (verifiers)
  std::string digest;   // 32 bytes: UEB hash (CHK) or public-key fingerprint (mutable)
  std::uint32_t k = 0;  // CHK: shares needed (1..256)
  std::uint32_t n = 0;  // CHK: shares in total (k..256)
  std::uint64_t size = 0;  // CHK: file size in bytes
  std::string literal;  // LIT: the file itself
  // A directory cap: the same fields, printed with the URI:DIR2 prefix of
  // its kind. The file cap of its body is the same Cap with this false.
  bool directory = false;

  bool is_mutable() const;
  // A cap that cannot write (read and verify caps, CHK, LIT).
  bool is_read_only() const;
};

// BadCap with the reason on anything malformed: an unknown prefix, a field
// of the wrong length or outside base32, k/N out of range, a size that does
// not fit 64 bits.
Result<Cap> ParseCap(std::string_view text);
std::string FormatCap(const Cap& cap);

// "literal", "chk", "chk-verifier", "sdmf-write", "mdmf-read", ...; a
// directory's kind begins with "dir-" ("dir-sdmf-write", "dir-chk").
std::string CapKindName(const Cap& cap);

// The read cap of a write cap (writekey -> readkey); any other cap that can
// read is its own read cap. BadCap for verify caps.
Result<Cap> ToReadCap(const Cap& cap);
// The verify cap (storage index and digest). BadCap for LIT caps, which have
// nothing stored to verify.
Result<Cap> ToVerifyCap(const Cap& cap);
// The 16-byte storage index the cap's shares are stored under. BadCap for LIT.
Result<std::string> StorageIndexOf(const Cap& cap);

}  // namespace cairn::caps
