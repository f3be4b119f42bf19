// The mutable rebalance (control/check_rebalance.h) on in-process GBS
// servers: a file whose ten shares sit on two of seven servers is spread
// to happiness 7 with the same version, the surplus copies deleted after
// the new ones were acknowledged; a copy a server fails leaves its source in
// place; a version another writer published between the copies and the
// deletions is never deleted. The completion runs once, never inside the
// call. Loop thread only.
#include "control/check_rebalance.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <set>
#include <vector>

#include "unit/mutable/mutable_fixture.h"

namespace cairn::mutable_files {
namespace {

class RebalanceTest : public MutableFormatTest {
 protected:
  // A file of `data`, 3-of-10, created while only two servers ran (five
  // shares each); then five more servers start.
  NewKey Crowded(const std::string& data) {
    StartServers(2);
    NewKey key = Key();
    auto created = Create(key, data, Options(3, 10, 2));
    EXPECT_TRUE(created.ok()) << created.status().ToString();
    StartServers(5);
    return key;
  }

  Result<control::RebalanceResult> Run(const NewKey& key, control::RebalanceOptions o) {
    std::optional<Result<control::RebalanceResult>> out;
    int completions = 0;
    control::RebalanceMutable(loop, Servers(), key.writecap, std::move(o), Progress(), nullptr,
                              [&](Result<control::RebalanceResult> r) {
                                ++completions;
                                out.emplace(std::move(r));
                              });
    return Await(out, completions);
  }

  control::RebalanceOptions Options7() {
    control::RebalanceOptions o;
    o.happy = 7;
    o.lease_secret = std::string(32, 'L');
    return o;
  }

  // Server index -> the share numbers it holds.
  std::map<std::size_t, std::set<std::uint32_t>> Held(const NewKey& key) {
    std::map<std::size_t, std::set<std::uint32_t>> held;
    gbs::StorageIndex sidx = ToStorageIndex(*caps::StorageIndexOf(key.writecap));
    for (std::size_t i = 0; i < servers.size(); ++i) {
      std::optional<Result<gbs::ShareNumbers>> out;
      servers[i]->client->ListMutable(sidx, [&](Result<gbs::ShareNumbers> r) { out.emplace(std::move(r)); });
      EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
      if (out && out->ok()) {
        for (std::uint32_t sh : **out) held[i].insert(sh);
      }
    }
    return held;
  }

  static std::size_t HappinessOf(const std::map<std::size_t, std::set<std::uint32_t>>& held) {
    grid::SharePlacement p;
    for (const auto& [s, shares] : held) {
      for (std::uint32_t sh : shares) p[sh].insert(s);
    }
    return grid::Happiness(p);
  }

  static std::size_t Copies(const std::map<std::size_t, std::set<std::uint32_t>>& held) {
    std::size_t n = 0;
    for (const auto& [s, shares] : held) n += shares.size();
    return n;
  }
};

TEST_P(RebalanceTest, SpreadsTheSameVersionThenDeletesTheSurplus) {
  const std::string data = Pattern(format == caps::MutableFormat::kMdmf ? 300000 : 20000, 41);
  NewKey key = Crowded(data);
  ASSERT_EQ(HappinessOf(Held(key)), 2u);
  auto r = Run(key, Options7());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->error, "");
  EXPECT_EQ(r->happiness_before, 2u);
  EXPECT_EQ(r->happiness_after, 7u);
  EXPECT_EQ(r->copied, 5u);
  EXPECT_EQ(r->deleted, 5u);
  EXPECT_EQ(r->seqnum, 1u);
  auto held = Held(key);
  EXPECT_EQ(HappinessOf(held), 7u);
  EXPECT_EQ(Copies(held), 10u);  // each share once
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->seqnum, 1u);
  EXPECT_TRUE(got->contents == data);
  // Balanced now: a second pass copies and deletes nothing.
  auto again = Run(key, Options7());
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->copied + again->deleted, 0u);
}

TEST_P(RebalanceTest, AFailedCopyKeepsItsSource) {
  const std::string data = Pattern(20000, 42);
  NewKey key = Crowded(data);
  // The last server answers listings and reads but fails every write.
  gbs::ClientOptions co;
  co.TEST_fault = [](std::string_view endpoint) {
    return endpoint == "read-test-write" ? gbs::Fault::kFailAtOnce : gbs::Fault::kNone;
  };
  ReplaceClient(6, std::move(co));
  auto r = Run(key, Options7());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->copy_failed, 1u);
  EXPECT_EQ(r->copied, 4u);
  EXPECT_EQ(r->deleted, 4u);
  EXPECT_EQ(r->happiness_after, 6u);
  EXPECT_NE(r->error.find("happiness 6 of 7"), std::string::npos) << r->error;
  auto held = Held(key);
  EXPECT_EQ(Copies(held), 10u);  // the share that could not move is still held
  std::set<std::uint32_t> all;
  for (const auto& [s, shares] : held) all.insert(shares.begin(), shares.end());
  EXPECT_EQ(all.size(), 10u);
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == data);
}

TEST_P(RebalanceTest, AnotherWritersVersionIsNeverDeleted) {
  const std::string v1 = Pattern(20000, 43), v2 = Pattern(21000, 44);
  NewKey key = Crowded(v1);
  control::RebalanceOptions o = Options7();
  std::optional<Result<PublishResult>> put;
  // Between the copies and the deletions, another publish rewrites every
  // share (the copies included) as seqnum 2.
  o.TEST_before_delete = [&](std::function<void()> resume) {
    PublishMutable(loop, Servers(), key.writecap, v2, Options(3, 10, 7), nullptr, nullptr,
                   [&put, resume](Result<PublishResult> p) {
                     put.emplace(std::move(p));
                     resume();
                   });
  };
  auto r = Run(key, std::move(o));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_TRUE(put && put->ok()) << (put ? put->status().ToString() : "no publish");
  EXPECT_EQ((*put)->seqnum, 2u);
  EXPECT_EQ(r->copied, 5u);
  EXPECT_EQ(r->deleted, 0u);
  EXPECT_EQ(r->kept, 5u);
  EXPECT_EQ(Copies(Held(key)), 15u);
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->seqnum, 2u);
  EXPECT_TRUE(got->contents == v2);
}

TEST_P(RebalanceTest, NeedsTheWriteCap) {
  StartServers(2);
  NewKey key = Key();
  auto created = Create(key, Pattern(5000, 45), Options(1, 2, 2));
  ASSERT_TRUE(created.ok());
  auto readcap = caps::ToReadCap(key.writecap);
  ASSERT_TRUE(readcap.ok());
  std::optional<Result<control::RebalanceResult>> out;
  int completions = 0;
  control::RebalanceMutable(loop, Servers(), *readcap, Options7(), nullptr, nullptr,
                            [&](Result<control::RebalanceResult> r) {
                              ++completions;
                              out.emplace(std::move(r));
                            });
  auto r = Await(out, completions);
  EXPECT_EQ(r.status().code(), Code::kBadCap);
}

INSTANTIATE_TEST_SUITE_P(Formats, RebalanceTest,
                         ::testing::Values(caps::MutableFormat::kSdmf, caps::MutableFormat::kMdmf), FormatName);

}  // namespace
}  // namespace cairn::mutable_files
