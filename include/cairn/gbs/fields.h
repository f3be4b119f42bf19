// The HTTP header fields of Great Black Swamp (tahoe-protocol.md 1.4, 1.5.4,
// 1.5.7): Authorization, X-Tahoe-Authorization secrets, Content-Range on
// uploads and Range on reads. Parsers are strict where the real server is
// strict, and every refusal says why. Pure functions: any thread.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/status.h"

namespace cairn::gbs {

// "Tahoe-LAFS <standard base64 of the swissnum's ASCII>".
std::string AuthorizationValue(std::string_view swissnum);
// Constant-time comparison of a whole Authorization header value.
bool AuthorizationMatches(std::string_view header_value, std::string_view swissnum);

enum class SecretKind { kLeaseRenew, kLeaseCancel, kUpload, kWriteEnabler };
inline constexpr int kSecretKinds = 4;
const char* SecretKindName(SecretKind k);  // "lease-renew-secret", ...

// A set of secret kinds, as an endpoint requires them.
class SecretSet {
 public:
  constexpr SecretSet() = default;
  constexpr SecretSet(std::initializer_list<SecretKind> kinds) {  // NOLINT: a set is written as a list
    for (SecretKind k : kinds) bits_ |= Bit(k);
  }
  constexpr bool contains(SecretKind k) const { return (bits_ & Bit(k)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr bool operator==(const SecretSet&) const = default;

 private:
  static constexpr unsigned Bit(SecretKind k) { return 1u << static_cast<unsigned>(k); }
  unsigned bits_ = 0;
};

struct Secrets {
  std::optional<std::string> value[kSecretKinds];
  const std::optional<std::string>& operator[](SecretKind k) const { return value[static_cast<int>(k)]; }
};

// Parses every X-Tahoe-Authorization header value. The kinds presented must
// be exactly `required` (a missing or an extra kind is InvalidArgument, a
// 400, as the real server answers); a repeated kind keeps the last value;
// values are standard base64, non-empty, and lease secrets exactly 32 bytes.
Result<Secrets> ParseSecrets(const std::vector<std::string_view>& values, SecretSet required);
// One header value: "<kind> <base64(secret)>".
std::string SecretValue(SecretKind kind, std::string_view secret);

// Content-Range of a PATCH: "bytes <first>-<last>/<total or *>", inclusive.
struct ContentRange {
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
  std::uint64_t length() const { return last - first + 1; }
};
Result<ContentRange> ParseContentRange(std::string_view value);
// "bytes <first>-<last>/*": what Tahoe sends and answers.
std::string FormatContentRange(std::uint64_t first, std::uint64_t last);

// Range of a read: exactly one "bytes=<first>-<last>" with an explicit end
// (anything else is refused: the real server answers 416).
Result<ContentRange> ParseRange(std::string_view value);

}  // namespace cairn::gbs
