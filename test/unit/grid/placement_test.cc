// The permuted ring (against SHA-1 known answers) and servers of happiness.
#include <gtest/gtest.h>

#include "cairn/crypto/hash.h"
#include "cairn/grid/placement.h"
#include "support/vectors.h"

namespace cairn::grid {
namespace {

TEST(Permute, OrdersBySha1OfIndexAndSeed) {
  EXPECT_EQ(testing::Hex(crypto::Sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");  // FIPS 180-1
  std::vector<std::string> seeds = {"seed-a", "seed-b", "seed-c", "seed-d"};
  std::string si(16, '\x01');
  std::vector<std::size_t> order = PermutedOrder(si, seeds);
  ASSERT_EQ(order.size(), 4u);
  for (std::size_t i = 1; i < order.size(); ++i) {
    EXPECT_LT(crypto::Sha1(si + seeds[order[i - 1]]), crypto::Sha1(si + seeds[order[i]]));
  }
  // Another file, another order (with overwhelming probability for 4 servers and these two indexes).
  EXPECT_NE(PermutedOrder(std::string(16, '\x02'), seeds), order);
}

TEST(Happiness, IsAMaximumMatching) {
  EXPECT_EQ(Happiness({}), 0u);
  EXPECT_EQ(Happiness({{0, {0}}, {1, {0}}, {2, {0}}}), 1u);             // one server holds all
  EXPECT_EQ(Happiness({{0, {0, 1}}, {1, {0}}}), 2u);                    // needs an augmenting path
  EXPECT_EQ(Happiness({{0, {0, 1, 2}}, {1, {0, 1}}, {2, {0}}}), 3u);
}

TEST(Placement, SpreadsOverWritableServersAndKeepsExistingShares) {
  std::vector<ServerState> servers(10);
  PlacementPlan plan = PlanPlacement(servers, 10);
  EXPECT_EQ(plan.happiness, 10u);
  for (std::size_t s = 0; s < 10; ++s) EXPECT_EQ(plan.new_shares[s].size(), 1u);

  // Existing shares are kept and not uploaded again; a read-only server counts.
  std::vector<ServerState> mixed(4);
  mixed[0].writable = false;
  mixed[0].existing = {3};
  mixed[2].existing = {1};
  PlacementPlan p2 = PlanPlacement(mixed, 4);
  EXPECT_EQ(p2.existing.at(3), (std::set<std::size_t>{0}));
  EXPECT_EQ(p2.happiness, 4u);
  std::set<std::uint32_t> uploaded;
  for (const auto& [srv, shares] : p2.new_shares) {
    EXPECT_NE(srv, 0u);  // never to the read-only server
    uploaded.insert(shares.begin(), shares.end());
  }
  EXPECT_EQ(uploaded, (std::set<std::uint32_t>{0, 2}));

  // Fewer servers than shares: every share still placed, happiness = servers.
  std::vector<ServerState> three(3);
  PlacementPlan p3 = PlanPlacement(three, 10);
  std::size_t total = 0;
  for (const auto& [srv, shares] : p3.new_shares) total += shares.size();
  EXPECT_EQ(total, 10u);
  EXPECT_EQ(p3.happiness, 3u);

  // No writable server: nothing new, happiness from what exists.
  std::vector<ServerState> ro(2);
  ro[0].writable = ro[1].writable = false;
  ro[1].existing = {0};
  PlacementPlan p4 = PlanPlacement(ro, 3);
  EXPECT_TRUE(p4.new_shares.empty());
  EXPECT_EQ(p4.happiness, 1u);
}

}  // namespace
}  // namespace cairn::grid
