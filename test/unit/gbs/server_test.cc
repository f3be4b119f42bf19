// StorageServer's dispatch through the endpoint table, over a socket: an
// in-process server (http::Server + StorageServer + ShareStore in a
// temporary directory) on 127.0.0.1 over pinned TLS, driven by raw HTTP
// requests. Every row reaches its handler and is counted under its name;
// refusals are counted as the table decided them; each CBOR row's body is
// bounded by its own limit (413 past it, the handler's 400 at it).
#include "cairn/gbs/server.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>

#include "cairn/core/base32.h"
#include "cairn/gbs/fields.h"
#include "cairn/gbs/messages.h"
#include "cairn/http/client.h"
#include "cairn/http/server.h"
#include "cairn/store/store.h"
#include "cairn/tls/identity.h"
#include "cairn/tls/server.h"
#include "cairn/tls/session.h"
#include "gbs/routes.h"

namespace cairn::gbs {
namespace {

const std::string kSwiss = "swiss-test-number";
const std::string kSi = Base32Encode(std::string(16, '\x09'));

class GbsServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-gbsserver-XXXXXX";
    dir = mkdtemp(tmpl);
    store::StoreOptions so;
    so.dir = dir;
    so.map_bytes = 4 << 20;
    so.map_max_bytes = 64 << 20;
    so.sweep_interval_ms = 3600000;
    auto st = store::ShareStore::Open(loop, so);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store = std::move(*st);
    auto id = tls::GenerateIdentity();
    ASSERT_TRUE(id.ok());
    tls::ServerOptions to;
    to.key_pem = id->key_pem;
    to.cert_pem = id->cert_pem;
    options.swissnum = kSwiss;
    options.application_version = "cairn/test";
    options.allocate_body_bytes = 64;
    options.corrupt_body_bytes = 96;
    options.rtw_body_bytes = 128;
    gbs = std::make_unique<StorageServer>(loop, *store, options);
    server = std::make_unique<http::Server>(loop, *tls::Context::NewServer(to));
    ASSERT_TRUE(server->Start({}, [this](std::shared_ptr<http::Exchange> ex) { gbs->Handle(std::move(ex)); }).ok());
    http::ClientOptions co;
    co.host = "127.0.0.1";
    co.port = server->port();
    co.spki_pin = *tls::SpkiHashOfCertPem(id->cert_pem);
    client = std::make_unique<http::Client>(loop, *tls::Context::NewClient(), co);
  }
  void TearDown() override {
    bool a = false, b = false, c = false;
    client->Close([&] { a = true; });
    server->Close([&] { b = true; });
    store->Close([&] { c = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return a && b && c; }, 20000));
    std::filesystem::remove_all(dir);
  }

  // The request a row accepts: its method, a path fitting its pattern,
  // the swissnum and exactly its secrets; the body is up to the test.
  http::ClientRequest RequestFor(const Route& r) {
    http::ClientRequest q;
    q.method = r.method;
    std::string path = r.pattern;
    for (auto [from, to] : {std::pair<std::string, std::string>{"{si}", kSi}, {"{shnum}", "2"}}) {
      std::size_t at = path.find(from);
      if (at != std::string::npos) path.replace(at, from.size(), to);
    }
    q.target = path;
    q.headers.push_back({"Authorization", AuthorizationValue(kSwiss)});
    for (int i = 0; i < kSecretKinds; ++i) {
      auto k = static_cast<SecretKind>(i);
      bool lease = k == SecretKind::kLeaseRenew || k == SecretKind::kLeaseCancel;
      if (r.secrets.contains(k)) {
        q.headers.push_back({"X-Tahoe-Authorization", SecretValue(k, std::string(lease ? 32 : 20, 's'))});
      }
    }
    return q;
  }

  http::ClientResponse Send(http::ClientRequest q) {
    std::optional<Result<http::ClientResponse>> out;
    client->Send(std::move(q), [&](Result<http::ClientResponse> r) { out.emplace(std::move(r)); });
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
    if (!out || !out->ok()) {
      ADD_FAILURE() << (out ? out->status().ToString() : "no answer");
      return {};
    }
    return std::move(**out);
  }

  std::uint64_t Count(const std::string& endpoint, int status) {
    auto& r = gbs->stats().requests;
    auto e = r.find(endpoint);
    if (e == r.end()) return 0;
    auto s = e->second.find(status);
    return s == e->second.end() ? 0 : s->second;
  }

  Loop loop;
  std::string dir;
  StorageServerOptions options;
  std::unique_ptr<store::ShareStore> store;
  std::unique_ptr<StorageServer> gbs;
  std::unique_ptr<http::Server> server;
  std::unique_ptr<http::Client> client;
};

TEST_F(GbsServerTest, EveryRowReachesItsHandler) {
  // What each handler answers for its request on an empty store: the
  // handler's own answers, none of the front door's (401, 404 for the
  // path, 405, 415, 406, 400 for secrets).
  RtwRequest rtw;
  const std::map<std::string, std::pair<std::string, int>> cases = {
      {"version", {"", 200}},
      {"lease", {"", 404}},  // no share of the storage index
      {"allocate", {EncodeAllocateRequest({{2}, 10}), 200}},
      {"write", {"0123456789", 201}},  // completes the share allocated above
      {"abort", {"", 405}},            // the share is complete
      {"list_immutable", {"", 200}},
      {"read_immutable", {"", 206}},
      {"corrupt_immutable", {EncodeCorruption("bad"), 200}},
      {"read_test_write", {EncodeRtwRequest(rtw), 200}},
      {"list_mutable", {"", 200}},
      {"read_mutable", {"", 404}},  // no such share
      {"corrupt_mutable", {EncodeCorruption("bad"), 404}},
  };
  for (const char* name : {"version", "lease", "allocate", "write", "abort", "list_immutable", "read_immutable",
                           "corrupt_immutable", "read_test_write", "list_mutable", "read_mutable", "corrupt_mutable"}) {
    const Route* row = nullptr;
    for (const Route& r : Route::All()) {
      if (std::string_view(r.name) == name) row = &r;
    }
    ASSERT_NE(row, nullptr) << name;
    http::ClientRequest q = RequestFor(*row);
    q.body = cases.at(name).first;
    if (row->body == BodyKind::kCbor) q.headers.push_back({"Content-Type", "application/cbor"});
    if (std::string_view(name) == "write") q.headers.push_back({"Content-Range", "bytes 0-9/10"});
    if (std::string_view(name).substr(0, 5) == "read_" && row->body == BodyKind::kNone) {
      q.headers.push_back({"Range", "bytes=0-3"});
    }
    http::ClientResponse a = Send(std::move(q));
    EXPECT_EQ(a.status, cases.at(name).second) << name << ": " << a.body;
    EXPECT_EQ(Count(name, a.status), 1u) << name << " is counted under its row's name";
  }
  EXPECT_EQ(Count("unmatched", 404) + Count("unmatched", 405) + Count("unmatched", 401), 0u);
}

TEST_F(GbsServerTest, RefusalsAreAnsweredAsTheTableDecides) {
  http::ClientRequest q;
  q.method = "GET";
  q.target = "/storage/v1/versions";
  q.headers.push_back({"Authorization", AuthorizationValue(kSwiss)});
  http::ClientResponse a = Send(q);
  EXPECT_EQ(a.status, 404);
  EXPECT_EQ(a.body, "not_found: no such resource\n");
  ASSERT_NE(a.Header("Content-Type"), nullptr);
  EXPECT_EQ(*a.Header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(Count("unmatched", 404), 1u);

  q.method = "DELETE";
  q.target = "/storage/v1/version";
  a = Send(q);
  EXPECT_EQ(a.status, 405);
  EXPECT_EQ(a.body, "unknown_method: method not allowed\n");
  EXPECT_EQ(Count("unmatched", 405), 1u);

  q.method = "GET";
  q.headers.clear();
  a = Send(q);
  EXPECT_EQ(a.status, 401);
  EXPECT_EQ(a.body, "unauthenticated: missing or wrong Authorization\n");
  EXPECT_EQ(Count("unmatched", 401), 1u);

  // Past the route, a refusal is counted under the endpoint.
  q.headers.push_back({"Authorization", AuthorizationValue(kSwiss)});
  q.headers.push_back({"X-Tahoe-Authorization", SecretValue(SecretKind::kUpload, "u")});
  a = Send(q);
  EXPECT_EQ(a.status, 400);
  EXPECT_EQ(a.body, "invalid_argument: secret upload-secret is not expected on this request\n");
  EXPECT_EQ(Count("version", 400), 1u);
}

TEST_F(GbsServerTest, CborBodiesAreBoundedByTheirRowsLimit) {
  int rows = 0;
  for (const Route& r : Route::All()) {
    if (r.body != BodyKind::kCbor) continue;
    ++rows;
    const std::uint64_t limit = options.*(r.limit);
    // One byte past the row's limit: refused by the HTTP layer before the
    // handler runs.
    http::ClientRequest over = RequestFor(r);
    over.body = std::string(limit + 1, '\xff');
    http::ClientResponse a = Send(std::move(over));
    EXPECT_EQ(a.status, 413) << r.name;
    // Exactly the limit: read whole and handed to the handler, whose
    // decoder refuses the bytes.
    http::ClientRequest at = RequestFor(r);
    at.body = std::string(limit, '\xff');
    a = Send(std::move(at));
    EXPECT_EQ(a.status, 400) << r.name << ": " << a.body;
    EXPECT_EQ(Count(r.name, 400), 1u) << r.name;
  }
  EXPECT_EQ(rows, 4);
  EXPECT_EQ(gbs->stats().bytes_in, 64u + 96u + 96u + 128u);
}

}  // namespace
}  // namespace cairn::gbs
