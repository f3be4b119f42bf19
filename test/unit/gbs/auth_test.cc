// The GBS server's front door (src/gbs/auth.cc) without a socket: a request
// head goes in, the decision comes out. The order of the checks (401, then
// 404/405, then 415, 406, then 400) and, for every row of the endpoint
// table, that exactly its secrets are accepted: one missing, one extra, or
// a malformed one is a 400.
#include "gbs/auth.h"

#include <gtest/gtest.h>

#include <string>

#include "cairn/core/base32.h"

namespace cairn::gbs {
namespace {

const std::string kSwiss = "swiss-test-number";
const std::string kSi = Base32Encode(std::string(16, '\x05'));

std::string SecretOf(SecretKind k) {
  // Lease secrets are 32 bytes; the others any non-empty length.
  if (k == SecretKind::kLeaseRenew || k == SecretKind::kLeaseCancel) return std::string(32, 'L');
  return "some-secret";
}

// A request the row accepts: its method, a path fitting its pattern, the
// swissnum and exactly its secrets.
http::Request RequestFor(const Route& r) {
  http::Request q;
  q.method = r.method;
  std::string path = r.pattern;
  for (auto [from, to] : {std::pair<std::string, std::string>{"{si}", kSi}, {"{shnum}", "3"}}) {
    std::size_t at = path.find(from);
    if (at != std::string::npos) path.replace(at, from.size(), to);
  }
  q.target = path;
  q.headers.push_back({"Authorization", AuthorizationValue(kSwiss)});
  for (int i = 0; i < kSecretKinds; ++i) {
    auto k = static_cast<SecretKind>(i);
    if (r.secrets.contains(k)) q.headers.push_back({"X-Tahoe-Authorization", SecretValue(k, SecretOf(k))});
  }
  return q;
}

http::Request Get(std::string target) {
  http::Request q;
  q.method = "GET";
  q.target = std::move(target);
  q.headers.push_back({"Authorization", AuthorizationValue(kSwiss)});
  return q;
}

const Route& Row(std::string_view name) {
  for (const Route& r : Route::All()) {
    if (name == r.name) return r;
  }
  ADD_FAILURE() << "no row " << name;
  return Route::All()[0];
}

void RemoveHeader(http::Request& q, std::string_view name, std::string_view value_prefix = "") {
  for (auto it = q.headers.begin(); it != q.headers.end(); ++it) {
    if (it->name == name && it->value.rfind(value_prefix, 0) == 0) {
      q.headers.erase(it);
      return;
    }
  }
  ADD_FAILURE() << "no header " << name;
}

TEST(GbsAuth, EveryRowAdmitsItsOwnRequest) {
  for (const Route& r : Route::All()) {
    Admission a = Admit(RequestFor(r), kSwiss);
    EXPECT_EQ(a.http_status, 0) << r.name << ": " << a.refusal.ToString();
    EXPECT_EQ(a.route, &r) << r.name;
    for (int i = 0; i < kSecretKinds; ++i) {
      auto k = static_cast<SecretKind>(i);
      EXPECT_EQ(a.secrets[k].has_value(), r.secrets.contains(k)) << r.name << " " << SecretKindName(k);
      if (a.secrets[k]) {
        EXPECT_EQ(*a.secrets[k], SecretOf(k));
      }
    }
  }
  Admission a = Admit(RequestFor(Row("abort")), kSwiss);
  store::StorageIndex fives;
  fives.fill(5);
  EXPECT_EQ(a.args.si, fives);
  EXPECT_EQ(a.args.shnum, 3u);
}

TEST(GbsAuth, EachRowRefusesAMissingSecret) {
  for (const Route& r : Route::All()) {
    for (int i = 0; i < kSecretKinds; ++i) {
      auto k = static_cast<SecretKind>(i);
      if (!r.secrets.contains(k)) continue;
      http::Request q = RequestFor(r);
      RemoveHeader(q, "X-Tahoe-Authorization", SecretKindName(k));
      Admission a = Admit(q, kSwiss);
      EXPECT_EQ(a.http_status, 400) << r.name << " without " << SecretKindName(k);
      EXPECT_EQ(a.refusal.ToString(), std::string("invalid_argument: missing secret ") + SecretKindName(k));
      EXPECT_EQ(a.route, &r) << "a refused request is still counted under its endpoint";
    }
  }
}

TEST(GbsAuth, EachRowRefusesASecretItDoesNotTake) {
  for (const Route& r : Route::All()) {
    for (int i = 0; i < kSecretKinds; ++i) {
      auto k = static_cast<SecretKind>(i);
      if (r.secrets.contains(k)) continue;
      http::Request q = RequestFor(r);
      q.headers.push_back({"X-Tahoe-Authorization", SecretValue(k, SecretOf(k))});
      Admission a = Admit(q, kSwiss);
      EXPECT_EQ(a.http_status, 400) << r.name << " with " << SecretKindName(k);
      EXPECT_EQ(a.refusal.ToString(),
                std::string("invalid_argument: secret ") + SecretKindName(k) + " is not expected on this request");
    }
  }
}

TEST(GbsAuth, MalformedSecretsAreBadRequests) {
  const Route& lease = Row("lease");
  for (const char* bad : {"lease-renew-secret", "lease-renew-secret !!!", "lease-renew-secret YWJj",
                          "magic-secret YWJj", "upload-secret "}) {
    http::Request q = RequestFor(lease);
    q.headers.push_back({"X-Tahoe-Authorization", bad});
    EXPECT_EQ(Admit(q, kSwiss).http_status, 400) << bad;
  }
}

TEST(GbsAuth, TheSwissnumComesFirst) {
  for (const char* target : {"/storage/v1/version", "/nothing/here", "/storage/v1/immutable/x"}) {
    http::Request q = Get(target);
    q.headers.clear();
    Admission a = Admit(q, kSwiss);
    EXPECT_EQ(a.http_status, 401) << target;
    EXPECT_EQ(a.route, nullptr);
    EXPECT_EQ(a.refusal.ToString(), "unauthenticated: missing or wrong Authorization");
    q.headers.push_back({"Authorization", AuthorizationValue("another-swissnum")});
    EXPECT_EQ(Admit(q, kSwiss).http_status, 401) << target;
  }
  // A stranger learns nothing else, not even that a body type is wrong.
  http::Request q = RequestFor(Row("allocate"));
  q.headers[0].value += "x";
  q.headers.push_back({"Content-Type", "text/plain"});
  EXPECT_EQ(Admit(q, kSwiss).http_status, 401);
}

TEST(GbsAuth, RoutesAreDecidedAfterTheSwissnum) {
  Admission a = Admit(Get("/storage/v1/nothing"), kSwiss);
  EXPECT_EQ(a.http_status, 404);
  EXPECT_EQ(a.route, nullptr);
  a = Admit(Get("/storage/v1/lease/" + kSi), kSwiss);
  EXPECT_EQ(a.http_status, 405);
  EXPECT_EQ(a.route, nullptr);
  // The query is not part of the path.
  a = Admit(Get("/storage/v1/version?x=1"), kSwiss);
  EXPECT_EQ(a.http_status, 0);
}

TEST(GbsAuth, OnlyCborBodiesHaveTheirContentTypeChecked) {
  for (const Route& r : Route::All()) {
    http::Request q = RequestFor(r);
    q.headers.push_back({"Content-Type", "text/plain"});
    Admission a = Admit(q, kSwiss);
    if (r.body == BodyKind::kCbor) {
      EXPECT_EQ(a.http_status, 415) << r.name;
      EXPECT_EQ(a.refusal.ToString(), "invalid_argument: request bodies are application/cbor");
    } else {
      EXPECT_EQ(a.http_status, 0) << r.name;
    }
  }
  for (const char* fine : {"application/cbor", "Application/CBOR", " application/cbor ; charset=binary"}) {
    http::Request q = RequestFor(Row("read_test_write"));
    q.headers.push_back({"Content-Type", fine});
    EXPECT_EQ(Admit(q, kSwiss).http_status, 0) << fine;
  }
}

TEST(GbsAuth, AcceptMustAllowCbor) {
  for (const char* fine : {"application/cbor", "*/*", "application/*", "text/html, application/cbor;q=0.5"}) {
    http::Request q = Get("/storage/v1/version");
    q.headers.push_back({"Accept", fine});
    EXPECT_EQ(Admit(q, kSwiss).http_status, 0) << fine;
  }
  for (const char* bad : {"text/html", "application/json, text/*", ""}) {
    http::Request q = Get("/storage/v1/version");
    q.headers.push_back({"Accept", bad});
    Admission a = Admit(q, kSwiss);
    EXPECT_EQ(a.http_status, 406) << bad;
    EXPECT_EQ(a.refusal.ToString(), "invalid_argument: responses are application/cbor");
  }
}

TEST(GbsAuth, MediaTypesAreCheckedBeforeSecrets) {
  http::Request q = RequestFor(Row("allocate"));
  RemoveHeader(q, "X-Tahoe-Authorization", "upload-secret");
  q.headers.push_back({"Accept", "text/html"});
  EXPECT_EQ(Admit(q, kSwiss).http_status, 406);
  q.headers.push_back({"Content-Type", "text/plain"});
  EXPECT_EQ(Admit(q, kSwiss).http_status, 415);
}

}  // namespace
}  // namespace cairn::gbs
