// Capability strings: parse and print (see the header for the forms).
#include "cairn/caps/cap.h"

#include <vector>

#include "cairn/caps/keys.h"
#include "cairn/core/base32.h"

namespace cairn::caps {
namespace {

struct Prefix {
  std::string_view text;
  CapKind kind;
  MutableFormat format;
  bool directory = false;
};

// Longest first where one prefix begins another ("URI:SSK-RO:" vs "URI:SSK:"
// cannot collide because of the colon, but keep the table obvious).
constexpr Prefix kPrefixes[] = {
    {"URI:LIT:", CapKind::kLiteral, MutableFormat::kSdmf, false},
    {"URI:CHK:", CapKind::kChk, MutableFormat::kSdmf, false},
    {"URI:CHK-Verifier:", CapKind::kChkVerifier, MutableFormat::kSdmf, false},
    {"URI:SSK:", CapKind::kMutableWrite, MutableFormat::kSdmf, false},
    {"URI:SSK-RO:", CapKind::kMutableRead, MutableFormat::kSdmf, false},
    {"URI:SSK-Verifier:", CapKind::kMutableVerifier, MutableFormat::kSdmf, false},
    {"URI:MDMF:", CapKind::kMutableWrite, MutableFormat::kMdmf, false},
    {"URI:MDMF-RO:", CapKind::kMutableRead, MutableFormat::kMdmf, false},
    {"URI:MDMF-Verifier:", CapKind::kMutableVerifier, MutableFormat::kMdmf, false},
    {"URI:DIR2:", CapKind::kMutableWrite, MutableFormat::kSdmf, true},
    {"URI:DIR2-RO:", CapKind::kMutableRead, MutableFormat::kSdmf, true},
    {"URI:DIR2-Verifier:", CapKind::kMutableVerifier, MutableFormat::kSdmf, true},
    {"URI:DIR2-MDMF:", CapKind::kMutableWrite, MutableFormat::kMdmf, true},
    {"URI:DIR2-MDMF-RO:", CapKind::kMutableRead, MutableFormat::kMdmf, true},
    {"URI:DIR2-MDMF-Verifier:", CapKind::kMutableVerifier, MutableFormat::kMdmf, true},
    {"URI:DIR2-CHK:", CapKind::kChk, MutableFormat::kSdmf, true},
    {"URI:DIR2-CHK-Verifier:", CapKind::kChkVerifier, MutableFormat::kSdmf, true},
    {"URI:DIR2-LIT:", CapKind::kLiteral, MutableFormat::kSdmf, true},
};

std::vector<std::string_view> SplitColons(std::string_view s) {
  std::vector<std::string_view> out;
  for (;;) {
    std::size_t c = s.find(':');
    out.push_back(s.substr(0, c));
    if (c == std::string_view::npos) return out;
    s.remove_prefix(c + 1);
  }
}

Result<std::string> Field(std::string_view text, std::size_t bytes, const char* what) {
  if (text.size() != Base32Length(bytes)) {
    return Status::BadCap(std::string(what) + " must be " + std::to_string(Base32Length(bytes)) +
                          " base32 characters, not " + std::to_string(text.size()));
  }
  auto raw = Base32Decode(text);
  if (!raw.ok()) return Status::BadCap(std::string(what) + ": " + std::string(raw.status().message()));
  return std::move(raw).value();
}

Result<std::uint64_t> Decimal(std::string_view text, std::uint64_t max, const char* what) {
  if (text.empty() || text.size() > 20) return Status::BadCap(std::string(what) + " is not a decimal number");
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return Status::BadCap(std::string(what) + " is not a decimal number");
    std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (max - d) / 10) return Status::BadCap(std::string(what) + " is out of range");
    v = v * 10 + d;
  }
  return v;
}

Status ParseChkFields(const std::vector<std::string_view>& f, Cap* cap) {
  if (f.size() != 5) {
    return Status::BadCap("a CHK cap has 5 fields after its prefix (key:hash:k:N:size), not " +
                          std::to_string(f.size()));
  }
  CAIRN_TRY_ASSIGN(cap->key, Field(f[0], kKeySize, cap->kind == CapKind::kChk ? "the key" : "the storage index"));
  CAIRN_TRY_ASSIGN(cap->digest, Field(f[1], kDigestSize, "the URI extension hash"));
  CAIRN_TRY_ASSIGN(std::uint64_t k, Decimal(f[2], 256, "k"));
  CAIRN_TRY_ASSIGN(std::uint64_t n, Decimal(f[3], 256, "N"));
  if (k < 1 || n < k) return Status::BadCap("k and N must satisfy 1 <= k <= N <= 256");
  cap->k = static_cast<std::uint32_t>(k);
  cap->n = static_cast<std::uint32_t>(n);
  CAIRN_TRY_ASSIGN(cap->size, Decimal(f[4], UINT64_MAX, "the size"));
  return Status::Ok();
}

Status ParseMutableFields(const std::vector<std::string_view>& f, Cap* cap) {
  // MDMF caps may carry extension fields after the fingerprint; Tahoe ignores them.
  bool exact = cap->format == MutableFormat::kSdmf;
  if (f.size() < 2 || (exact && f.size() != 2)) {
    return Status::BadCap("an SDMF cap has 2 fields after its prefix (key:fingerprint), not " +
                          std::to_string(f.size()));
  }
  const char* what = cap->kind == CapKind::kMutableWrite  ? "the writekey"
                     : cap->kind == CapKind::kMutableRead ? "the readkey"
                                                          : "the storage index";
  CAIRN_TRY_ASSIGN(cap->key, Field(f[0], kKeySize, what));
  CAIRN_TRY_ASSIGN(cap->digest, Field(f[1], kDigestSize, "the fingerprint"));
  return Status::Ok();
}

}  // namespace

bool Cap::is_mutable() const {
  return kind == CapKind::kMutableWrite || kind == CapKind::kMutableRead || kind == CapKind::kMutableVerifier;
}

bool Cap::is_read_only() const { return kind != CapKind::kMutableWrite; }

Result<Cap> ParseCap(std::string_view text) {
  for (const Prefix& p : kPrefixes) {
    if (text.substr(0, p.text.size()) != p.text) continue;
    Cap cap;
    cap.kind = p.kind;
    cap.format = p.format;
    cap.directory = p.directory;
    std::string_view rest = text.substr(p.text.size());
    Status st;
    if (p.kind == CapKind::kLiteral) {
      auto data = Base32Decode(rest);
      if (!data.ok()) return Status::BadCap("the literal data: " + std::string(data.status().message()));
      cap.literal = std::move(data).value();
    } else if (p.kind == CapKind::kChk || p.kind == CapKind::kChkVerifier) {
      st = ParseChkFields(SplitColons(rest), &cap);
    } else {
      st = ParseMutableFields(SplitColons(rest), &cap);
    }
    if (!st.ok()) return st;
    return cap;
  }
  std::size_t shown = text.size() < 24 ? text.size() : 24;
  return Status::BadCap("not a capability this node knows: \"" + std::string(text.substr(0, shown)) +
                        (shown < text.size() ? "...\"" : "\"") +
                        " (expected URI:LIT:, URI:CHK:, URI:SSK:, URI:MDMF:, URI:DIR2...: or their -RO/-Verifier forms)");
}

std::string FormatCap(const Cap& cap) {
  const bool mdmf = cap.format == MutableFormat::kMdmf;
  if (cap.directory) {
    Cap file = cap;
    file.directory = false;
    std::string inner = FormatCap(file);
    // "URI:SSK:x" -> "URI:DIR2:x": the prefix is the one of the table row
    // with the same kind and format.
    for (const Prefix& p : kPrefixes) {
      if (!p.directory || p.kind != cap.kind || (cap.is_mutable() && p.format != cap.format)) continue;
      for (const Prefix& f : kPrefixes) {
        if (!f.directory && f.kind == p.kind && f.format == p.format) return std::string(p.text) + inner.substr(f.text.size());
      }
    }
    return inner;
  }
  switch (cap.kind) {
    case CapKind::kLiteral:
      return "URI:LIT:" + Base32Encode(cap.literal);
    case CapKind::kChk:
    case CapKind::kChkVerifier:
      return std::string(cap.kind == CapKind::kChk ? "URI:CHK:" : "URI:CHK-Verifier:") + Base32Encode(cap.key) +
             ":" + Base32Encode(cap.digest) + ":" + std::to_string(cap.k) + ":" + std::to_string(cap.n) + ":" +
             std::to_string(cap.size);
    case CapKind::kMutableWrite:
      return (mdmf ? "URI:MDMF:" : "URI:SSK:") + Base32Encode(cap.key) + ":" + Base32Encode(cap.digest);
    case CapKind::kMutableRead:
      return (mdmf ? "URI:MDMF-RO:" : "URI:SSK-RO:") + Base32Encode(cap.key) + ":" + Base32Encode(cap.digest);
    case CapKind::kMutableVerifier:
      return (mdmf ? "URI:MDMF-Verifier:" : "URI:SSK-Verifier:") + Base32Encode(cap.key) + ":" +
             Base32Encode(cap.digest);
  }
  return {};
}

std::string CapKindName(const Cap& cap) {
  if (cap.directory) {
    Cap file = cap;
    file.directory = false;
    return "dir-" + CapKindName(file);
  }
  std::string fmt = cap.format == MutableFormat::kMdmf ? "mdmf" : "sdmf";
  switch (cap.kind) {
    case CapKind::kLiteral: return "literal";
    case CapKind::kChk: return "chk";
    case CapKind::kChkVerifier: return "chk-verifier";
    case CapKind::kMutableWrite: return fmt + "-write";
    case CapKind::kMutableRead: return fmt + "-read";
    case CapKind::kMutableVerifier: return fmt + "-verifier";
  }
  return "unknown";
}

Result<Cap> ToReadCap(const Cap& cap) {
  switch (cap.kind) {
    case CapKind::kMutableWrite: {
      Cap out = cap;
      out.kind = CapKind::kMutableRead;
      out.key = ReadKeyOf(cap.key);
      return out;
    }
    case CapKind::kChkVerifier:
    case CapKind::kMutableVerifier:
      return Status::BadCap("a verify cap cannot read");
    default:
      return cap;
  }
}

Result<Cap> ToVerifyCap(const Cap& cap) {
  if (cap.kind == CapKind::kLiteral) return Status::BadCap("a literal cap has no shares to verify");
  if (cap.kind == CapKind::kChkVerifier || cap.kind == CapKind::kMutableVerifier) return cap;
  Cap out = cap;
  CAIRN_TRY_ASSIGN(out.key, StorageIndexOf(cap));
  out.kind = cap.kind == CapKind::kChk ? CapKind::kChkVerifier : CapKind::kMutableVerifier;
  return out;
}

Result<std::string> StorageIndexOf(const Cap& cap) {
  switch (cap.kind) {
    case CapKind::kLiteral: return Status::BadCap("a literal cap has no storage index");
    case CapKind::kChk: return ChkStorageIndexOf(cap.key);
    case CapKind::kMutableWrite: return MutableStorageIndexOf(ReadKeyOf(cap.key));
    case CapKind::kMutableRead: return MutableStorageIndexOf(cap.key);
    case CapKind::kChkVerifier:
    case CapKind::kMutableVerifier: return cap.key;
  }
  return Status::Internal("unknown cap kind");
}

}  // namespace cairn::caps
