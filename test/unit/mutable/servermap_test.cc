// The servermap update (servermap.h), seen through a retrieve against
// several in-process GBS servers on one loop (mutable_fixture.h): the
// read-mode map's bound on servers asked at once, in permuted order.
#include "mutable/servermap.h"

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <vector>

#include "cairn/grid/placement.h"
#include "unit/mutable/mutable_fixture.h"

namespace cairn::mutable_files {
namespace {

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
