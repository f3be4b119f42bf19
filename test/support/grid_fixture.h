// GridFixture: several in-process GBS storage servers on one loop, for the
// tests of grid operations (immutable upload/download, mutable publish and
// retrieve). Each server is an http::Server + gbs::StorageServer +
// store::ShareStore of its own, on 127.0.0.1 over TLS with a pinned
// certificate, and has a gbs::Client that reaches it. Everything is closed
// and removed in TearDown.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "cairn/core/loop.h"
#include "cairn/gbs/client.h"
#include "cairn/gbs/server.h"
#include "cairn/grid/server.h"
#include "cairn/http/server.h"
#include "cairn/store/store.h"

namespace cairn::testing {

// `n` pseudo-random bytes, the same for the same seed.
std::string Pattern(std::size_t n, unsigned seed);

struct TestServer {
  std::string dir;
  std::unique_ptr<store::ShareStore> store;
  std::unique_ptr<gbs::StorageServer> gbs;
  std::unique_ptr<http::Server> http;
  gbs::Nurl nurl;
  std::unique_ptr<gbs::Client> client;
};

class GridFixture : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;
  // Starts `m` more servers (named s0, s1, ... in Grid()).
  void StartServers(std::size_t m);
  // Stops a server's listener (its client then gets refused connections);
  // `all` also closes the client and the store.
  void StopServer(TestServer& s, bool all);
  // Replaces server i's client by one with `options` (e.g. a fault hook).
  void ReplaceClient(std::size_t i, gbs::ClientOptions options);
  std::vector<grid::GridServer> Grid();

  Loop loop;
  std::string root;
  std::shared_ptr<tls::Context> ctx;
  std::vector<std::unique_ptr<TestServer>> servers;
};

}  // namespace cairn::testing
