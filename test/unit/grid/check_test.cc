// Check results (grid/check.h): Tahoe's verdicts and counts for immutable
// and mutable files, and the JSON field names; and AddLeases (grid/lease.h)
// against in-process GBS servers: the renew goes to every server, the ones
// without a share answer 404 (counted, not an error), the completion runs
// once on a later turn.
#include "cairn/grid/check.h"

#include <cjson/cJSON.h>
#include <gtest/gtest.h>

#include <cstring>
#include <optional>

#include "cairn/caps/keys.h"
#include "cairn/grid/lease.h"
#include "support/grid_fixture.h"

namespace cairn::grid {
namespace {

CheckResults Immutable(std::uint32_t k, std::uint32_t n, std::size_t responding) {
  CheckResults r;
  r.k = k;
  r.n = n;
  r.happy = 7;
  r.storage_index = std::string(16, 's');
  for (std::size_t i = 0; i < responding; ++i) r.servers_responding.push_back("s" + std::to_string(i));
  return r;
}

TEST(CheckResultsTest, ImmutableHealthIsDistinctSharesAgainstN) {
  CheckResults r = Immutable(3, 10, 10);
  for (std::uint32_t sh = 0; sh < 10; ++sh) r.good[sh].insert("s" + std::to_string(sh));
  r.FinishImmutable();
  EXPECT_TRUE(r.healthy);
  EXPECT_TRUE(r.recoverable);
  EXPECT_EQ(r.summary, "Healthy");
  EXPECT_EQ(r.happiness, 10u);
  EXPECT_FALSE(r.needs_rebalancing);

  CheckResults missing = Immutable(3, 10, 10);
  for (std::uint32_t sh = 0; sh < 6; ++sh) missing.good[sh].insert("s" + std::to_string(sh));
  missing.FinishImmutable();
  EXPECT_FALSE(missing.healthy);
  EXPECT_TRUE(missing.recoverable);
  EXPECT_EQ(missing.summary, "Not Healthy: 6 shares (enc 3-of-10)");
  EXPECT_EQ(missing.recoverable_versions, 1u);
  EXPECT_EQ(missing.unrecoverable_versions, 0u);

  CheckResults lost = Immutable(3, 10, 10);
  lost.good[0].insert("s0");
  lost.good[1].insert("s0");
  lost.FinishImmutable();
  EXPECT_FALSE(lost.recoverable);
  EXPECT_EQ(lost.unrecoverable_versions, 1u);
}

// Every share on two servers: healthy by Tahoe's rule, but happiness 2
// while seven servers answered: it needs rebalancing.
TEST(CheckResultsTest, CrowdedSharesNeedRebalancing) {
  CheckResults r = Immutable(3, 10, 7);
  for (std::uint32_t sh = 0; sh < 10; ++sh) r.good[sh].insert(sh < 5 ? "s0" : "s1");
  r.FinishImmutable();
  EXPECT_TRUE(r.healthy);
  EXPECT_EQ(r.happiness, 2u);
  EXPECT_EQ(r.good_share_hosts, 2u);
  EXPECT_TRUE(r.needs_rebalancing);
  // With only two servers reachable there is nothing better to do.
  CheckResults two = Immutable(3, 10, 2);
  two.good = r.good;
  two.FinishImmutable();
  EXPECT_FALSE(two.needs_rebalancing);
}

TEST(CheckResultsTest, MutableVerdictsAndSummary) {
  CheckResults r = Immutable(3, 10, 10);
  r.is_mutable = true;
  VersionSeen best{2, std::string(32, 'a'), 3, 10, {}};
  for (std::uint32_t sh = 0; sh < 9; ++sh) best.shares.insert(sh);
  VersionSeen old{1, std::string(32, 'b'), 3, 10, {9}};
  r.versions = {best, old};
  for (std::uint32_t sh : best.shares) r.good[sh].insert("s" + std::to_string(sh));
  r.FinishMutable();
  EXPECT_FALSE(r.healthy);
  EXPECT_TRUE(r.recoverable);
  EXPECT_EQ(r.recoverable_versions, 1u);
  EXPECT_EQ(r.unrecoverable_versions, 1u);
  EXPECT_EQ(r.summary, "Unhealthy: some versions are unrecoverable 9 shares (enc 3-of-10)");
  r.corrupt.push_back(CorruptShare{"s4", 4, "bad block"});
  r.FinishMutable();
  EXPECT_EQ(r.summary,
            "Unhealthy: some versions are unrecoverable 9 shares "
            "(enc 3-of-10) Corrupt Shares: s4-sh4");
}

TEST(CheckResultsTest, JsonHasTahoesFieldNames) {
  CheckResults r = Immutable(2, 4, 3);
  r.good[0].insert("s0");
  r.good[1].insert("s1");
  r.good[2].insert("s2");
  r.corrupt.push_back(CorruptShare{"s2", 3, "block 0: hash mismatch"});
  r.FinishImmutable();
  Json j = CheckResultsJson(r);
  const cJSON* res = cJSON_GetObjectItemCaseSensitive(j.get(), "results");
  ASSERT_NE(res, nullptr);
  for (const char* key : {"count-happiness", "count-shares-good", "count-shares-needed", "count-shares-expected",
                          "count-good-share-hosts", "count-corrupt-shares", "list-corrupt-shares", "servers-responding",
                          "sharemap", "count-wrong-shares", "count-recoverable-versions",
                          "count-unrecoverable-versions", "healthy", "recoverable", "needs-rebalancing"}) {
    EXPECT_NE(cJSON_GetObjectItemCaseSensitive(res, key), nullptr) << key;
  }
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(res, "count-shares-good")->valuedouble, 3);
  EXPECT_EQ(cJSON_GetObjectItemCaseSensitive(res, "count-corrupt-shares")->valuedouble, 1);
  const cJSON* first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "list-corrupt-shares"), 0);
  EXPECT_STREQ(cJSON_GetArrayItem(first, 0)->valuestring, "s2");
  EXPECT_EQ(cJSON_GetArrayItem(first, 2)->valuedouble, 3);
  EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(j.get(), "summary")->valuestring, "Not Healthy: 3 shares (enc 2-of-4)");
  const cJSON* sharemap = cJSON_GetObjectItemCaseSensitive(res, "sharemap");
  EXPECT_STREQ(cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(sharemap, "1"), 0)->valuestring, "s1");

  CheckResults lit;
  lit.FinishLiteral();
  Json lj = CheckResultsJson(lit);
  EXPECT_STREQ(cJSON_GetObjectItemCaseSensitive(lj.get(), "storage-index")->valuestring, "");
  EXPECT_TRUE(
      cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(lj.get(), "results"), "healthy")));
}

class AddLeasesTest : public testing::GridFixture {};

TEST_F(AddLeasesTest, RenewsWhereSharesAreAndCountsTheOthers) {
  StartServers(3);
  const std::string si(16, 'q');
  gbs::StorageIndex gsi{};
  std::memcpy(gsi.data(), si.data(), 16);
  // Server 1 holds one share (a one-byte bucket).
  std::optional<Status> written;
  servers[1]->client->Allocate(gsi, "upload-secret", {std::string(32, 'r'), std::string(32, 'c')}, {{0}, 1},
                               [&](Result<gbs::AllocateResponse> r) {
                                 if (!r.ok()) return written.emplace(r.status()), void();
                                 servers[1]->client->WriteChunk(gsi, 0, "upload-secret", 0, "x",
                                                                [&](Result<gbs::WriteResult> w) {
                                                                  written.emplace(w.ok() ? Status() : w.status());
                                                                });
                               });
  ASSERT_TRUE(loop.RunUntil([&] { return written.has_value(); }, 20000));
  ASSERT_TRUE(written->ok()) << written->ToString();
  std::optional<LeaseReport> report;
  int completions = 0;
  AddLeases(loop, Grid(), si, std::string(32, 'L'), [&](LeaseReport r) {
    ++completions;
    report = std::move(r);
  });
  EXPECT_EQ(completions, 0) << "the completion ran inside the call";
  ASSERT_TRUE(loop.RunUntil([&] { return report.has_value(); }, 20000));
  EXPECT_EQ(report->renewed, std::vector<std::string>{"s1"});
  EXPECT_EQ(report->no_shares.size(), 2u);
  EXPECT_TRUE(report->failed.empty());
  // The server now holds a lease under the secrets derived for it.
  bool renewed_at_server = false;
  for (const auto& [endpoint, by_status] : servers[1]->gbs->stats().requests) {
    if (endpoint.find("lease") != std::string::npos) renewed_at_server = true;
  }
  EXPECT_TRUE(renewed_at_server);

  // No servers: still one completion, on a later turn.
  std::optional<LeaseReport> none;
  AddLeases(loop, {}, si, std::string(32, 'L'), [&](LeaseReport r) { none = std::move(r); });
  EXPECT_FALSE(none.has_value());
  ASSERT_TRUE(loop.RunUntil([&] { return none.has_value(); }, 1000));
  EXPECT_TRUE(none->renewed.empty());
}

}  // namespace
}  // namespace cairn::grid
