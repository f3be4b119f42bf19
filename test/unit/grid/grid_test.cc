// grid::Grid: the client pool across sessions (reuse, retirement, close),
// its refusal once closing, and the node's secret files. Real Loop (the
// clients' Close runs on it); no server is ever reached: clients connect
// only on their first request, and none is made here.
#include "cairn/grid/grid.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "cairn/core/base32.h"
#include "cairn/gbs/nurl.h"
#include "support/fault_platform.h"

namespace cairn::grid {
namespace {

// A NURL for a server that is never reached: id `c` repeated.
std::string NurlOf(char c, std::uint16_t port) {
  gbs::Nurl n;
  n.spki_hash = std::string(42, c) + "A";  // the last character carries two zero bits
  n.host = "127.0.0.1";
  n.port = port;
  n.swissnum = "swissnum";
  return gbs::FormatNurl(n);
}

class GridTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-grid-XXXXXX";
    dir = mkdtemp(tmpl);
    Limits limits;
    limits.grid_connect_ms = 1234;
    grid = std::make_unique<Grid>(loop, GridOptions::FromLimits(limits, dir));
  }
  void TearDown() override {
    if (!closed) CloseGrid();
    loop.RunUntil([&] { return loop.pending() == 0; }, 1000);
    grid.reset();
    std::filesystem::remove_all(dir);
  }
  void CloseGrid() {
    grid->Close([&] { closed = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 10000));
  }
  void CloseSession(std::shared_ptr<Session> s) {
    bool done = false;
    Session::Close(std::move(s), [&] { done = true; });
    EXPECT_FALSE(done) << "Close ran its continuation inside the call";
    ASSERT_TRUE(loop.RunUntil([&] { return done; }, 10000));
  }

  Loop loop;
  std::string dir;
  std::unique_ptr<Grid> grid;
  bool closed = false;
};

TEST_F(GridTest, OptionsComeFromLimits) {
  Limits limits;
  EXPECT_EQ(limits.grid_connect_ms, 5000u);
  EXPECT_EQ(limits.grid_keep_idle_ms, 10000u);
  limits.grid_keep_idle_ms = 777;
  GridOptions o = GridOptions::FromLimits(limits, "/p");
  EXPECT_EQ(o.connect_ms, 5000u);
  EXPECT_EQ(o.keep_idle_ms, 777u);
  EXPECT_EQ(o.private_dir, "/p");
  std::uint64_t v = 0;
  ASSERT_TRUE(limits.Get("grid_connect_ms", &v));
  ASSERT_TRUE(limits.Set("grid_connect_ms", 42).ok());
  EXPECT_EQ(limits.grid_connect_ms, 42u);
}

TEST_F(GridTest, ASessionHasOneServerPerEntryNamedAndSeeded) {
  auto s = grid->Open({{"a", NurlOf('a', 1), "alpha", {}}, {"b", NurlOf('b', 2), "b", {}}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const auto& servers = (*s)->servers();
  ASSERT_EQ(servers.size(), 2u);
  EXPECT_EQ(servers[0].name, "alpha");
  EXPECT_EQ(servers[0].lease_seed.size(), 20u);
  EXPECT_EQ(servers[0].permutation_seed, servers[0].lease_seed);
  EXPECT_NE(servers[0].lease_seed, servers[1].lease_seed);
  EXPECT_NE(servers[0].client, servers[1].client);
  EXPECT_EQ(grid->active(), 1u);
  CloseSession(*s);
  EXPECT_EQ(grid->active(), 0u);
}

TEST_F(GridTest, AnAnnouncedIdentitySeedsItsServer) {
  ServerIdentity announced{IdentityKind::kAnnounced, std::string(20, 't'), std::string(32, 'p')};
  auto s = grid->Open({{"a", NurlOf('a', 1), "tahoe", announced}, {"b", NurlOf('b', 2), "cairn", {}}});
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  const auto& servers = (*s)->servers();
  EXPECT_EQ(servers[0].lease_seed, std::string(20, 't'));
  EXPECT_EQ(servers[0].permutation_seed, std::string(32, 'p'));
  EXPECT_EQ(servers[1].lease_seed, CairnIdentity(NurlOf('b', 2))->tub_id);
  CloseSession(*s);
  // An announced identity without a 20-byte tub id is refused, and nothing opens.
  ServerIdentity broken{IdentityKind::kAnnounced, std::string(19, 't'), std::string(32, 'p')};
  auto refused = grid->Open({{"a", NurlOf('a', 1), "tahoe", broken}});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(grid->active(), 0u);
}

TEST_F(GridTest, ClientsAreReusedAcrossSessionsWhileTheirNurlIsUnchanged) {
  auto first = grid->Open({{"a", NurlOf('a', 1), "a", {}}, {"b", NurlOf('b', 2), "b", {}}});
  ASSERT_TRUE(first.ok());
  gbs::Client* a = (*first)->servers()[0].client;
  gbs::Client* b = (*first)->servers()[1].client;
  CloseSession(*first);
  // b moved to another port: a new client; a is kept.
  auto second = grid->Open({{"a", NurlOf('a', 1), "a", {}}, {"b", NurlOf('b', 3), "b", {}}});
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)->servers()[0].client, a);
  EXPECT_NE((*second)->servers()[1].client, b);
  // Two sessions at once share the pool's clients.
  auto third = grid->Open({{"a", NurlOf('a', 1), "a", {}}});
  ASSERT_TRUE(third.ok());
  EXPECT_EQ((*third)->servers()[0].client, a);
  EXPECT_EQ(grid->active(), 2u);
  CloseSession(*second);
  CloseSession(*third);
}

TEST_F(GridTest, ABadNurlFailsTheOpenAndLeavesThePoolAlone) {
  auto first = grid->Open({{"a", NurlOf('a', 1), "a", {}}});
  ASSERT_TRUE(first.ok());
  gbs::Client* a = (*first)->servers()[0].client;
  CloseSession(*first);
  auto bad = grid->Open({{"b", "pb://nonsense", "b", {}}});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(grid->active(), 0u);
  auto again = grid->Open({{"a", NurlOf('a', 1), "a", {}}});
  ASSERT_TRUE(again.ok());
  EXPECT_EQ((*again)->servers()[0].client, a);
  CloseSession(*again);
}

TEST_F(GridTest, CloseWaitsForTheLastSessionThenRefusesNewOnes) {
  auto s = grid->Open({{"a", NurlOf('a', 1), "a", {}}});
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE((*s)->stopping());
  grid->Close([&] { closed = true; });
  EXPECT_TRUE(grid->stopping());
  EXPECT_TRUE((*s)->stopping());
  auto refused = grid->Open({});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), Code::kShuttingDown);
  loop.RunUntil([] { return false; }, 50);
  EXPECT_FALSE(closed) << "the grid closed while a session was open";
  CloseSession(*s);
  ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 10000));
}

TEST_F(GridTest, SecretsAreCreatedOnceThenReadBack) {
  std::optional<Result<NodeSecrets>> first, second;
  grid->ReadSecrets(true, true, [&](Result<NodeSecrets> s) { first = std::move(s); });
  EXPECT_FALSE(first.has_value());
  ASSERT_TRUE(loop.RunUntil([&] { return first.has_value(); }, 10000));
  ASSERT_TRUE(first->ok()) << first->status().ToString();
  EXPECT_EQ((*first)->convergence.size(), 32u);
  EXPECT_EQ((*first)->lease.size(), 32u);
  EXPECT_NE((*first)->convergence, (*first)->lease);
  struct stat st;
  ASSERT_EQ(::stat((dir + "/secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  grid->ReadSecrets(false, true, [&](Result<NodeSecrets> s) { second = std::move(s); });
  ASSERT_TRUE(loop.RunUntil([&] { return second.has_value(); }, 10000));
  ASSERT_TRUE(second->ok());
  EXPECT_EQ((*second)->lease, (*first)->lease);
  EXPECT_TRUE((*second)->convergence.empty());
  auto direct = grid->secret_files().Convergence();
  ASSERT_TRUE(direct.ok());
  EXPECT_EQ(*direct, (*first)->convergence);
}

TEST_F(GridTest, ASecretFileThatHoldsNoBase32IsAnError) {
  std::ofstream(dir + "/secret") << "not base32!\n";
  auto read = LoadOrCreateSecret(dir + "/secret");
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.status().code(), Code::kInvalidArgument);
  std::ofstream(dir + "/convergence") << Base32Encode(std::string(32, 'k')) << "\n";
  auto good = LoadOrCreateSecret(dir + "/convergence");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, std::string(32, 'k'));
}

// The secrets go through the platform layer: a new one is synced with its
// directory entry before it is used, and one that could not be made durable
// is reported and left behind nowhere.
class CountingPlatform : public testing::FaultPlatform {
 public:
  Status SyncDir(const std::string& d) override {
    synced_dirs.push_back(d);
    return FaultPlatform::SyncDir(d);
  }
  std::vector<std::string> synced_dirs;
};

TEST_F(GridTest, NewSecretsAreDurableThroughThePlatform) {
  CountingPlatform p;
  SecretFiles files(dir, &p);
  auto made = files.Lease();
  ASSERT_TRUE(made.ok()) << made.status().ToString();
  EXPECT_EQ(made->size(), 32u);
  EXPECT_EQ(p.syncs(), 1) << "the file's data was not synced";
  ASSERT_EQ(p.synced_dirs.size(), 1u) << "the new name's directory was not synced";
  EXPECT_EQ(p.synced_dirs[0], dir);
  auto again = files.Lease();  // read back, nothing written
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *made);
  EXPECT_EQ(p.synced_dirs.size(), 1u);

  p.FailSyncs(1);
  auto failed = files.Convergence();
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().code(), Code::kIoError) << failed.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(dir + "/convergence")) << "a secret that is not durable was left behind";
  auto retried = files.Convergence();
  ASSERT_TRUE(retried.ok()) << retried.status().ToString();
}

}  // namespace
}  // namespace cairn::grid
