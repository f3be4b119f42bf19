// The servermap update (servermap.h) against several in-process GBS
// servers on one loop (mutable_fixture.h): a write-mode map finds every
// share, its header and the private key; shares of another format than the
// cap's are bad and advised; no servers still completes on a later turn;
// and, through a retrieve, the read-mode map's bound on servers asked at
// once, in permuted order.
#include "mutable/servermap.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include "cairn/grid/placement.h"
#include "unit/mutable/mutable_fixture.h"

namespace cairn::mutable_files {
namespace {

TEST_F(MutableTest, WriteModeMapsEveryShareItsHeaderAndThePrivateKey) {
  StartServers(5);
  NewKey key = Key();
  auto created = Create(key, Pattern(9000, 3), Options(3, 5, 4));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto map = MapOnce(Grid(), key.writecap, MapMode::kWrite, caps::MutableFormat::kSdmf);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->shares.size(), 5u);
  EXPECT_EQ(map->advisories, 0u);
  EXPECT_EQ(map->privkey, key.privkey_pkcs8);
  EXPECT_EQ(map->pubkey, key.pubkey_spki);
  EXPECT_EQ(map->HighestSeqnum(), 1u);
  std::optional<std::string> best = map->BestRecoverable();
  ASSERT_TRUE(best.has_value());
  const ShareHeader* header = map->HeaderOf(*best);
  ASSERT_NE(header, nullptr);
  EXPECT_EQ(header->k, 3u);
  EXPECT_EQ(header->n, 5u);
  EXPECT_EQ(header->data_length, 9000u);
  EXPECT_EQ(map->HeaderOf("no such version"), nullptr);
  for (const SeenShare& s : map->shares) {
    EXPECT_FALSE(s.bad);
    EXPECT_EQ(s.header.signed_prefix, *best);
    EXPECT_EQ(s.old_checkstring, s.head.substr(0, 57));  // SDMF's checkstring
  }
  for (std::size_t i = 0; i < map->servers.size(); ++i) EXPECT_TRUE(map->answered[i]) << i;
}

// The map reads shares through the format the cap names: SDMF shares seen
// for an MDMF cap are bad (their first 75 bytes kept for a publish's test
// vector) and advised, as a share of another format was before.
TEST_F(MutableTest, SharesOfAnotherFormatThanTheCapsAreBad) {
  StartServers(4);
  NewKey key = Key();
  ASSERT_TRUE(Create(key, Pattern(1000, 4), Options(2, 4, 3)).ok());
  auto map = MapOnce(Grid(), key.writecap, MapMode::kCheck, caps::MutableFormat::kMdmf);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_EQ(map->shares.size(), 4u);
  EXPECT_EQ(map->advisories, 4u);
  EXPECT_FALSE(map->BestRecoverable().has_value());
  EXPECT_EQ(map->HighestSeqnum(), 0u);
  for (const SeenShare& s : map->shares) {
    EXPECT_TRUE(s.bad);
    EXPECT_EQ(s.old_checkstring, s.head.substr(0, kBadShareCheckstringSize));
  }
  std::uint64_t advised = 0;
  for (std::size_t i = 0; i < servers.size(); ++i) advised += Requests(i, "corrupt_mutable");
  EXPECT_EQ(advised, 4u);  // answered before the map was delivered
}

TEST_F(MutableTest, AMapOfNoServersCompletesOnALaterTurn) {
  StartServers(1);
  NewKey key = Key();
  auto map = MapOnce({}, key.writecap, MapMode::kRead, caps::MutableFormat::kSdmf);
  ASSERT_TRUE(map.ok()) << map.status().ToString();
  EXPECT_TRUE(map->servers.empty());
  EXPECT_TRUE(map->shares.empty());
}

// A read-mode servermap asks at most kReadQueriesInFlight servers at once,
// in permuted order. Every share list answers late (the first server in
// permuted order 30 s late), so queries overlap; in flight = lists sent
// (counted by the fault hook) minus servers done (the "mapping" progress).
TEST_F(MutableTest, ReadModeBoundsTheServersAskedAtOnce) {
  StartServers(10);
  NewKey key = Key();
  std::string data = Pattern(20000, 31);
  ASSERT_TRUE(Create(key, data, Options(3, 10, 7)).ok());
  std::vector<std::string> seeds;
  for (const auto& s : servers) seeds.push_back(*gbs::ServerSeed(s->nurl));
  const std::vector<std::size_t> order = grid::PermutedOrder(*caps::StorageIndexOf(key.writecap), seeds);
  auto asked = std::make_shared<std::vector<std::size_t>>();
  auto done = std::make_shared<std::uint64_t>(0);
  auto peak = std::make_shared<std::size_t>(0);
  for (std::size_t i = 0; i < servers.size(); ++i) {
    gbs::ClientOptions co;
    co.TEST_late_ms = i == order[0] ? 30000 : 20 + 10 * i;
    co.TEST_fault = [asked, done, peak, i](std::string_view endpoint) {
      if (endpoint != "list") return gbs::Fault::kNone;
      asked->push_back(i);
      *peak = std::max(*peak, asked->size() - static_cast<std::size_t>(*done));
      return gbs::Fault::kAnswerLate;
    };
    ReplaceClient(i, std::move(co));
  }
  std::optional<Result<RetrieveResult>> out;
  int completions = 0;
  auto progress = [done](const std::string& phase, std::uint64_t at, std::uint64_t) {
    if (phase == "mapping") *done = at;
  };
  RetrieveMutable(loop, Grid(), key.writecap, std::move(progress), nullptr, [&](Result<RetrieveResult> r) {
    ++completions;
    out.emplace(std::move(r));
  });
  auto got = Await(out, completions);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == data);
  EXPECT_EQ(*peak, kReadQueriesInFlight);  // the window was used, never exceeded
  ASSERT_LE(asked->size(), order.size());
  for (std::size_t j = 0; j < asked->size(); ++j) EXPECT_EQ((*asked)[j], order[j]) << "query " << j;
  for (const auto& [sh, name] : got->shares_used) EXPECT_NE(ServerIndex(name), order[0]);
}

}  // namespace
}  // namespace cairn::mutable_files
