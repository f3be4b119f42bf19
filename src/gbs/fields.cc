// GBS header fields (see the header).
#include "cairn/gbs/fields.h"

#include <vector>

#include "cairn/crypto/base64.h"

namespace cairn::gbs {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A decimal without sign or spaces, up to 2^63 (offsets and sizes).
bool ParseDecimal(std::string_view s, std::uint64_t* out) {
  if (s.empty() || s.size() > 19) return false;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

// "<first>-<last>" with first <= last.
bool ParseSpan(std::string_view s, ContentRange* out) {
  std::size_t dash = s.find('-');
  if (dash == std::string_view::npos) return false;
  if (!ParseDecimal(s.substr(0, dash), &out->first) || !ParseDecimal(s.substr(dash + 1), &out->last)) return false;
  return out->first <= out->last;
}

constexpr const char* kKindNames[kSecretKinds] = {"lease-renew-secret", "lease-cancel-secret", "upload-secret",
                                                  "write-enabler"};

}  // namespace

std::string AuthorizationValue(std::string_view swissnum) { return "Tahoe-LAFS " + crypto::Base64Encode(swissnum); }

bool AuthorizationMatches(std::string_view header_value, std::string_view swissnum) {
  std::string expected = AuthorizationValue(swissnum);
  // Constant time in the length of the expected value; a length mismatch
  // still walks the whole expected value.
  unsigned char diff = header_value.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < expected.size(); ++i) {
    unsigned char got = i < header_value.size() ? static_cast<unsigned char>(header_value[i]) : 0;
    diff |= static_cast<unsigned char>(got ^ static_cast<unsigned char>(expected[i]));
  }
  return diff == 0;
}

const char* SecretKindName(SecretKind k) { return kKindNames[static_cast<int>(k)]; }

std::string SecretValue(SecretKind kind, std::string_view secret) {
  return std::string(SecretKindName(kind)) + " " + crypto::Base64Encode(secret);
}

Result<Secrets> ParseSecrets(const std::vector<std::string_view>& values, SecretSet required) {
  Secrets out;
  for (std::string_view raw : values) {
    std::string_view v = Trim(raw);
    std::size_t sp = v.find(' ');
    if (sp == std::string_view::npos) {
      return Status::InvalidArgument("X-Tahoe-Authorization must be \"<kind> <base64>\"");
    }
    std::string_view kind = v.substr(0, sp);
    int idx = -1;
    for (int i = 0; i < kSecretKinds; ++i) {
      if (kind == kKindNames[i]) idx = i;
    }
    if (idx < 0) return Status::InvalidArgument("unknown secret kind \"" + std::string(kind) + "\"");
    auto secret = crypto::Base64Decode(Trim(v.substr(sp + 1)));
    if (!secret.ok()) return Status::InvalidArgument(std::string(kind) + " is not valid base64");
    if (secret->empty()) return Status::InvalidArgument(std::string(kind) + " is empty");
    bool lease = idx == static_cast<int>(SecretKind::kLeaseRenew) || idx == static_cast<int>(SecretKind::kLeaseCancel);
    if (lease && secret->size() != 32) {
      return Status::InvalidArgument(std::string(kind) + " must be 32 bytes, not " + std::to_string(secret->size()));
    }
    out.value[idx] = std::move(secret).value();
  }
  for (int i = 0; i < kSecretKinds; ++i) {
    const bool want = required.contains(static_cast<SecretKind>(i));
    if (want && !out.value[i]) return Status::InvalidArgument(std::string("missing secret ") + kKindNames[i]);
    if (!want && out.value[i]) {
      return Status::InvalidArgument(std::string("secret ") + kKindNames[i] + " is not expected on this request");
    }
  }
  return out;
}

Result<ContentRange> ParseContentRange(std::string_view value) {
  std::string_view v = Trim(value);
  constexpr std::string_view kUnit = "bytes ";
  if (v.substr(0, kUnit.size()) != kUnit) return Status::InvalidArgument("Content-Range must be in bytes");
  v.remove_prefix(kUnit.size());
  std::size_t slash = v.find('/');
  if (slash == std::string_view::npos) return Status::InvalidArgument("Content-Range lacks \"/total\"");
  ContentRange r;
  if (!ParseSpan(v.substr(0, slash), &r)) return Status::InvalidArgument("Content-Range is not \"first-last\"");
  std::string_view total = v.substr(slash + 1);
  std::uint64_t t = 0;
  if (total != "*" && (!ParseDecimal(total, &t) || t <= r.last)) {
    return Status::InvalidArgument("Content-Range total is neither \"*\" nor past the range");
  }
  return r;
}

std::string FormatContentRange(std::uint64_t first, std::uint64_t last) {
  return "bytes " + std::to_string(first) + "-" + std::to_string(last) + "/*";
}

Result<ContentRange> ParseRange(std::string_view value) {
  std::string_view v = Trim(value);
  constexpr std::string_view kUnit = "bytes=";
  if (v.substr(0, kUnit.size()) != kUnit) return Status::InvalidArgument("Range must be in bytes");
  v.remove_prefix(kUnit.size());
  if (v.find(',') != std::string_view::npos) return Status::InvalidArgument("only one range is supported");
  ContentRange r;
  if (!ParseSpan(v, &r)) return Status::InvalidArgument("Range must be \"bytes=first-last\" with first <= last");
  return r;
}

}  // namespace cairn::gbs
