// The GBS endpoint table (src/gbs/routes.cc) without a socket: which row a
// method and path select, the near misses that must be 404, a known path
// with another method (405), the variable parts, and what each row requires
// (secrets, body kind and limit). The paths and statuses are the real
// server's (tahoe-protocol.md 1.5).
#include "gbs/routes.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "cairn/core/base32.h"

namespace cairn::gbs {
namespace {

using SK = SecretKind;

std::string SiText(std::uint8_t fill) { return Base32Encode(std::string(16, static_cast<char>(fill))); }

const std::string kSi = SiText(0);  // "aaaaaaaaaaaaaaaaaaaaaaaaaa"
const std::string kImm = "/storage/v1/immutable/" + kSi;
const std::string kMut = "/storage/v1/mutable/" + kSi;

// The row's name, "404" or "405".
std::string Outcome(std::string_view method, std::string_view path) {
  auto m = MatchRoute(method, path);
  if (m.ok()) return m->route->name;
  return std::to_string(HttpStatusOf(m.status()));
}

const Route& Row(std::string_view name) {
  for (const Route& r : Route::All()) {
    if (name == r.name) return r;
  }
  ADD_FAILURE() << "no row " << name;
  return Route::All()[0];
}

TEST(GbsRoutes, EveryEndpointHasOneRow) {
  std::set<std::string> names, keys;
  for (const Route& r : Route::All()) {
    EXPECT_TRUE(names.insert(r.name).second) << r.name;
    EXPECT_TRUE(keys.insert(std::string(r.method) + " " + r.pattern).second) << r.pattern;
    EXPECT_TRUE(r.handler != nullptr) << r.name;
    EXPECT_EQ(r.body == BodyKind::kCbor, r.limit != nullptr) << r.name << ": a CBOR body, and only it, has a limit";
  }
  EXPECT_EQ(names, (std::set<std::string>{"version", "lease", "allocate", "write", "abort", "list_immutable",
                                          "read_immutable", "corrupt_immutable", "read_test_write", "list_mutable",
                                          "read_mutable", "corrupt_mutable"}));
}

TEST(GbsRoutes, EachEndpointsPathSelectsItsRow) {
  EXPECT_EQ(Outcome("GET", "/storage/v1/version"), "version");
  EXPECT_EQ(Outcome("PUT", "/storage/v1/lease/" + kSi), "lease");
  EXPECT_EQ(Outcome("POST", kImm), "allocate");
  EXPECT_EQ(Outcome("PATCH", kImm + "/7"), "write");
  EXPECT_EQ(Outcome("PUT", kImm + "/7/abort"), "abort");
  EXPECT_EQ(Outcome("GET", kImm + "/shares"), "list_immutable");
  EXPECT_EQ(Outcome("GET", kImm + "/7"), "read_immutable");
  EXPECT_EQ(Outcome("POST", kImm + "/7/corrupt"), "corrupt_immutable");
  EXPECT_EQ(Outcome("POST", kMut + "/read-test-write"), "read_test_write");
  EXPECT_EQ(Outcome("GET", kMut + "/shares"), "list_mutable");
  EXPECT_EQ(Outcome("GET", kMut + "/7"), "read_mutable");
  EXPECT_EQ(Outcome("POST", kMut + "/7/corrupt"), "corrupt_mutable");
}

TEST(GbsRoutes, TheVariablePartsAreParsed) {
  auto m = MatchRoute("PUT", "/storage/v1/immutable/" + SiText(0xab) + "/255/abort");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  store::StorageIndex want;
  want.fill(0xab);
  EXPECT_EQ(m->args.si, want);
  EXPECT_EQ(m->args.shnum, 255u);
  // Leading zeros are digits like any other, up to three of them.
  m = MatchRoute("GET", kMut + "/007");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->args.shnum, 7u);
  m = MatchRoute("GET", kImm + "/000");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->args.shnum, 0u);
}

TEST(GbsRoutes, NearMissesAreNotFound) {
  for (const std::string& path : {
           std::string(""), std::string("/"), std::string("/storage"), std::string("/storage/v1"),
           std::string("/storage/v1/"), std::string("/storage/v1/version/"), std::string("/storage/v1/versions"),
           std::string("/storage/v2/version"), std::string("/Storage/v1/version"), std::string("storage/v1/version"),
           std::string("/storage/v1//version"), std::string("/storage/v1/lease"), std::string("/storage/v1/lease/"),
           "/storage/v1/lease/" + kSi + "/0", "/storage/v1/lease/" + kSi + "/", "/storage/v1/immutables/" + kSi,
           kImm + "/", kImm + "/shares/", kImm + "/share", kImm + "/read-test-write", kImm + "/7/abort/",
           kImm + "/7/corrupt/x", kImm + "/7/remove", kImm + "/7/8", kMut, kMut + "/read-test-write/",
           kMut + "/7/abort", kMut + "/readtestwrite", "/storage/v1/other/" + kSi,
       }) {
    EXPECT_EQ(Outcome("GET", path), "404") << path;
    EXPECT_EQ(Outcome("POST", path), "404") << path;
  }
}

TEST(GbsRoutes, BadStorageIndexesAreNotFound) {
  std::string last_bit_set = kSi;
  last_bit_set.back() = 'b';  // a non-zero unused low bit: not the canonical spelling
  for (const std::string& si : {
           kSi.substr(0, 25), kSi + "a", std::string(26, 'A'), std::string(26, '1'), std::string(26, '8'),
           std::string(25, 'a') + "=", last_bit_set, std::string(""), Base32Encode(std::string(20, 'x')),
       }) {
    EXPECT_EQ(Outcome("PUT", "/storage/v1/lease/" + si), "404") << si;
    EXPECT_EQ(Outcome("POST", "/storage/v1/immutable/" + si), "404") << si;
    EXPECT_EQ(Outcome("GET", "/storage/v1/mutable/" + si + "/shares"), "404") << si;
    EXPECT_EQ(Outcome("GET", "/storage/v1/immutable/" + si + "/0"), "404") << si;
  }
}

TEST(GbsRoutes, BadShareNumbersAreNotFound) {
  for (const char* n : {"256", "999", "1000", "0255", "-1", "+1", " 1", "1 ", "0x1", "1a", "a", ""}) {
    EXPECT_EQ(Outcome("GET", kImm + "/" + n), "404") << n;
    EXPECT_EQ(Outcome("PATCH", kImm + "/" + n), "404") << n;
    EXPECT_EQ(Outcome("PUT", kImm + "/" + n + "/abort"), "404") << n;
    EXPECT_EQ(Outcome("GET", kMut + "/" + n), "404") << n;
    EXPECT_EQ(Outcome("POST", kMut + "/" + n + "/corrupt"), "404") << n;
  }
}

TEST(GbsRoutes, AKnownPathWithAnotherMethodIsMethodNotAllowed) {
  EXPECT_EQ(Outcome("POST", "/storage/v1/version"), "405");
  EXPECT_EQ(Outcome("HEAD", "/storage/v1/version"), "405");
  EXPECT_EQ(Outcome("get", "/storage/v1/version"), "405");  // methods are case-sensitive
  EXPECT_EQ(Outcome("GET", "/storage/v1/lease/" + kSi), "405");
  EXPECT_EQ(Outcome("PUT", kImm), "405");
  EXPECT_EQ(Outcome("GET", kImm), "405");
  EXPECT_EQ(Outcome("PUT", kImm + "/7"), "405");
  EXPECT_EQ(Outcome("POST", kImm + "/7"), "405");
  EXPECT_EQ(Outcome("DELETE", kImm + "/7"), "405");
  EXPECT_EQ(Outcome("POST", kImm + "/7/abort"), "405");
  EXPECT_EQ(Outcome("GET", kImm + "/7/corrupt"), "405");
  EXPECT_EQ(Outcome("POST", kImm + "/shares"), "405");
  EXPECT_EQ(Outcome("GET", kMut + "/read-test-write"), "405");
  EXPECT_EQ(Outcome("PUT", kMut + "/shares"), "405");
  // Mutable shares are never written by PATCH: the path is known (a read).
  EXPECT_EQ(Outcome("PATCH", kMut + "/7"), "405");
  EXPECT_EQ(Outcome("PUT", kMut + "/7"), "405");
  EXPECT_EQ(Outcome("PUT", kMut + "/7/corrupt"), "405");
  // The error each gives, word for word: it is the body a client shows.
  EXPECT_EQ(MatchRoute("POST", "/storage/v1/version").status().ToString(), "unknown_method: method not allowed");
  EXPECT_EQ(MatchRoute("GET", "/nothing").status().ToString(), "not_found: no such resource");
}

TEST(GbsRoutes, EachRowRequiresExactlyItsSecrets) {
  const SecretSet none{};
  EXPECT_EQ(Row("version").secrets, none);
  EXPECT_EQ(Row("lease").secrets, (SecretSet{SK::kLeaseRenew, SK::kLeaseCancel}));
  EXPECT_EQ(Row("allocate").secrets, (SecretSet{SK::kLeaseRenew, SK::kLeaseCancel, SK::kUpload}));
  EXPECT_EQ(Row("write").secrets, SecretSet{SK::kUpload});
  EXPECT_EQ(Row("abort").secrets, SecretSet{SK::kUpload});
  EXPECT_EQ(Row("read_test_write").secrets, (SecretSet{SK::kLeaseRenew, SK::kLeaseCancel, SK::kWriteEnabler}));
  for (const char* name :
       {"list_immutable", "read_immutable", "corrupt_immutable", "list_mutable", "read_mutable", "corrupt_mutable"}) {
    EXPECT_EQ(Row(name).secrets, none) << name;
  }
}

TEST(GbsRoutes, EachRowSaysWhatItsBodyIsAndItsLimit) {
  StorageServerOptions o;
  o.allocate_body_bytes = 11;
  o.corrupt_body_bytes = 22;
  o.rtw_body_bytes = 33;
  auto limit = [&](const char* name) { return o.*(Row(name).limit); };
  EXPECT_EQ(Row("allocate").body, BodyKind::kCbor);
  EXPECT_EQ(limit("allocate"), 11u);
  EXPECT_EQ(Row("corrupt_immutable").body, BodyKind::kCbor);
  EXPECT_EQ(limit("corrupt_immutable"), 22u);
  EXPECT_EQ(Row("corrupt_mutable").body, BodyKind::kCbor);
  EXPECT_EQ(limit("corrupt_mutable"), 22u);
  EXPECT_EQ(Row("read_test_write").body, BodyKind::kCbor);
  EXPECT_EQ(limit("read_test_write"), 33u);
  EXPECT_EQ(Row("write").body, BodyKind::kShareData);
  for (const char* name :
       {"version", "lease", "abort", "list_immutable", "read_immutable", "list_mutable", "read_mutable"}) {
    EXPECT_EQ(Row(name).body, BodyKind::kNone) << name;
  }
}

}  // namespace
}  // namespace cairn::gbs
