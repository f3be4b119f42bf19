// The GBS endpoint table and the matching of a request against it (see
// routes.h). Constant data and pure functions: any thread.
#include "gbs/routes.h"

#include <algorithm>
#include <vector>

#include "cairn/core/base32.h"
#include "cairn/gbs/messages.h"

namespace cairn::gbs {
namespace {

using SK = SecretKind;
using Opt = StorageServerOptions;
using S = StorageServer;

constexpr SecretSet kLease = {SK::kLeaseRenew, SK::kLeaseCancel};
constexpr SecretSet kAllocate = {SK::kLeaseRenew, SK::kLeaseCancel, SK::kUpload};
constexpr SecretSet kUpload = {SK::kUpload};
constexpr SecretSet kRtw = {SK::kLeaseRenew, SK::kLeaseCancel, SK::kWriteEnabler};

// The segments of "/a/b/c": a, b, c. Stops at a segment not led by '/'.
std::vector<std::string_view> Split(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    if (path.front() != '/') break;
    path.remove_prefix(1);
    std::size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash);
  }
  return out;
}

// Exactly 26 characters of [a-z2-7], as the real server's route requires.
bool ParseSi(std::string_view s, store::StorageIndex* si) {
  if (s.size() != 26) return false;
  auto raw = Base32Decode(s);
  if (!raw.ok() || raw->size() != 16) return false;
  std::copy(raw->begin(), raw->end(), si->begin());
  return true;
}

bool ParseShnum(std::string_view s, store::ShareNum* n) {
  if (s.empty() || s.size() > 3) return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > kMaxShareNumber) return false;
  *n = v;
  return true;
}

// True if `path` (split) fits `pattern`; fills the variable parts.
bool Fits(const std::vector<std::string_view>& path, std::string_view pattern, RouteArgs* args) {
  std::vector<std::string_view> want = Split(pattern);
  if (want.size() != path.size()) return false;
  for (std::size_t i = 0; i < want.size(); ++i) {
    if (want[i] == "{si}") {
      if (!ParseSi(path[i], &args->si)) return false;
    } else if (want[i] == "{shnum}") {
      if (!ParseShnum(path[i], &args->shnum)) return false;
    } else if (want[i] != path[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::span<const Route> Route::All() {
  // One row per endpoint. A path that fits no row is 404; a path that fits
  // rows, none with the request's method, is 405.
  // clang-format off
  static const Route kRoutes[] = {
      // name                method   pattern                                        secrets    body                 limit                     handler
      {"version",           "GET",   "/storage/v1/version",                          {},        BodyKind::kNone,      nullptr,                  &S::Version},
      {"lease",             "PUT",   "/storage/v1/lease/{si}",                       kLease,    BodyKind::kNone,      nullptr,                  &S::AddLease},
      {"allocate",          "POST",  "/storage/v1/immutable/{si}",                   kAllocate, BodyKind::kCbor,      &Opt::allocate_body_bytes, &S::Allocate},
      {"write",             "PATCH", "/storage/v1/immutable/{si}/{shnum}",           kUpload,   BodyKind::kShareData, nullptr,                  &S::Write},
      {"abort",             "PUT",   "/storage/v1/immutable/{si}/{shnum}/abort",     kUpload,   BodyKind::kNone,      nullptr,                  &S::Abort},
      {"list_immutable",    "GET",   "/storage/v1/immutable/{si}/shares",            {},        BodyKind::kNone,      nullptr,                  &S::ListImmutable},
      {"read_immutable",    "GET",   "/storage/v1/immutable/{si}/{shnum}",           {},        BodyKind::kNone,      nullptr,                  &S::ReadImmutable},
      {"corrupt_immutable", "POST",  "/storage/v1/immutable/{si}/{shnum}/corrupt",   {},        BodyKind::kCbor,      &Opt::corrupt_body_bytes, &S::CorruptImmutable},
      {"read_test_write",   "POST",  "/storage/v1/mutable/{si}/read-test-write",     kRtw,      BodyKind::kCbor,      &Opt::rtw_body_bytes,     &S::ReadTestWrite},
      {"list_mutable",      "GET",   "/storage/v1/mutable/{si}/shares",              {},        BodyKind::kNone,      nullptr,                  &S::ListMutable},
      {"read_mutable",      "GET",   "/storage/v1/mutable/{si}/{shnum}",             {},        BodyKind::kNone,      nullptr,                  &S::ReadMutable},
      {"corrupt_mutable",   "POST",  "/storage/v1/mutable/{si}/{shnum}/corrupt",     {},        BodyKind::kCbor,      &Opt::corrupt_body_bytes, &S::CorruptMutable},
  };
  // clang-format on
  return kRoutes;
}

Result<RouteMatch> MatchRoute(std::string_view method, std::string_view path) {
  const std::vector<std::string_view> segments = Split(path);
  bool path_known = false;
  for (const Route& r : Route::All()) {
    RouteArgs args;
    if (!Fits(segments, r.pattern, &args)) continue;
    if (method == r.method) return RouteMatch{&r, args};
    path_known = true;
  }
  if (path_known) return Status::UnknownMethod("method not allowed");
  return Status::NotFound("no such resource");
}

int HttpStatusOf(const Status& st) {
  if (st.code() == Code::kUnknownMethod) return 405;
  return CodeHttpStatus(st.code());
}

}  // namespace cairn::gbs
