#include "support/grid_fixture.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "cairn/tls/identity.h"
#include "cairn/tls/server.h"
#include "cairn/tls/session.h"

namespace cairn::testing {

std::string Pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  return s;
}

namespace {

// The fixture's time limits, scaled by CAIRN_TEST_TIMEOUT_MULT: run_tests.py
// sets it from a board's BOARD_TIMEOUT_MULT, because under qemu-user an
// emulated TLS handshake to four in-process servers on one loop takes longer
// than the 2 s a native run allows. Unset: no scaling; not a number >= 1: the
// test fails.
std::uint64_t Scaled(std::uint64_t ms) {
  const char* env = std::getenv("CAIRN_TEST_TIMEOUT_MULT");
  if (env == nullptr) return ms;
  char* end = nullptr;
  const double mult = std::strtod(env, &end);
  if (end == env || *end != '\0' || !(mult >= 1.0)) {
    ADD_FAILURE() << "CAIRN_TEST_TIMEOUT_MULT=" << env << " is not a number >= 1";
    return ms;
  }
  return static_cast<std::uint64_t>(static_cast<double>(ms) * mult);
}

}  // namespace

void GridFixture::SetUp() {
  char tmpl[] = "/tmp/cairn-grid-XXXXXX";
  root = mkdtemp(tmpl);
  ctx = *tls::Context::NewClient();
}

void GridFixture::TearDown() {
  for (auto& s : servers) StopServer(*s, true);
  servers.clear();
  std::filesystem::remove_all(root);
}

void GridFixture::StartServers(std::size_t m) {
  for (std::size_t i = 0; i < m; ++i) {
    auto s = std::make_unique<TestServer>();
    const std::size_t index = servers.size();
    s->dir = root + "/s" + std::to_string(index);
    std::filesystem::create_directories(s->dir);
    store::StoreOptions so;
    so.dir = s->dir;
    so.map_bytes = 4 << 20;
    so.map_max_bytes = 256 << 20;
    so.sweep_interval_ms = 3600000;
    auto st = store::ShareStore::Open(loop, so);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    s->store = std::move(*st);
    auto id = tls::GenerateIdentity();
    ASSERT_TRUE(id.ok());
    tls::ServerOptions to;
    to.key_pem = id->key_pem;
    to.cert_pem = id->cert_pem;
    gbs::StorageServerOptions go;
    go.swissnum = "swiss-" + std::to_string(index);
    go.application_version = "cairn/test";
    s->gbs = std::make_unique<gbs::StorageServer>(loop, *s->store, go);
    s->http = std::make_unique<http::Server>(loop, *tls::Context::NewServer(to));
    http::ServerOptions ho;
    gbs::StorageServer* handler = s->gbs.get();
    ASSERT_TRUE(
        s->http->Start(ho, [handler](std::shared_ptr<http::Exchange> ex) { handler->Handle(std::move(ex)); }).ok());
    s->nurl.spki_hash = *tls::SpkiHashOfCertPem(id->cert_pem);
    s->nurl.host = "127.0.0.1";
    s->nurl.port = s->http->port();
    s->nurl.swissnum = go.swissnum;
    gbs::ClientOptions co;
    co.connect_ms = Scaled(2000);
    s->client = std::make_unique<gbs::Client>(loop, ctx, s->nurl, std::move(co));
    servers.push_back(std::move(s));
  }
}

void GridFixture::StopServer(TestServer& s, bool all) {
  if (s.http) {
    bool done = false;
    s.http->Close([&] { done = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return done; }, Scaled(20000)));
    s.http.reset();
    s.gbs.reset();
  }
  if (!all) return;
  if (s.client) {
    bool done = false;
    s.client->Close([&] { done = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return done; }, Scaled(20000)));
    s.client.reset();
  }
  if (s.store) {
    bool done = false;
    s.store->Close([&] { done = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return done; }, Scaled(20000)));
    s.store.reset();
  }
}

void GridFixture::ReplaceClient(std::size_t i, gbs::ClientOptions options) {
  bool closed = false;
  servers[i]->client->Close([&] { closed = true; });
  ASSERT_TRUE(loop.RunUntil([&] { return closed; }, Scaled(20000)));
  if (options.connect_ms == gbs::ClientOptions{}.connect_ms) options.connect_ms = Scaled(2000);
  servers[i]->client = std::make_unique<gbs::Client>(loop, ctx, servers[i]->nurl, std::move(options));
}

std::vector<grid::GridServer> GridFixture::Grid() {
  std::vector<grid::GridServer> g;
  for (std::size_t i = 0; i < servers.size(); ++i) {
    std::string seed = *gbs::ServerSeed(servers[i]->nurl);
    g.push_back(grid::GridServer{servers[i]->client.get(), seed, seed, "s" + std::to_string(i)});
  }
  return g;
}

}  // namespace cairn::testing
