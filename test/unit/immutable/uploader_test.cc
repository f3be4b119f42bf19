// UploadFile against several in-process GBS servers (http::Server +
// StorageServer + ShareStore each, on 127.0.0.1 over pinned TLS), all on
// one loop: round trips at the sizes that matter, caps equal to
// ChkCapOfBytes, batching, shares reused, servers refusing or failing,
// cancellation, and completions never inside the initiating call. The
// download's own cases are in downloader_test.cc.
#include "cairn/immutable/uploader.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "cairn/caps/keys.h"
#include "cairn/gbs/client.h"
#include "cairn/gbs/server.h"
#include "cairn/grid/placement.h"
#include "cairn/immutable/chk.h"
#include "cairn/immutable/downloader.h"
#include "unit/immutable/transfer_fixture.h"

namespace cairn::immutable {
namespace {

using testing::Pattern;

class UploaderTest : public TransferFixture {};

TEST_F(UploaderTest, RoundTripsAtTheSizesThatMatter) {
  StartServers(4);
  UploadOptions o = Options(2, 4, 3, 3000);
  for (std::size_t size : {0, 1, 55, 56, 2999, 3000, 3001, 6000, 6001, 20001}) {
    SCOPED_TRACE("size " + std::to_string(size));
    std::string data = Pattern(size, static_cast<unsigned>(size));
    auto up = Put(data, o);
    ASSERT_TRUE(up.ok()) << up.status().ToString();
    auto expected = ChkCapOfBytes(data, o.convergence, o.params);
    ASSERT_TRUE(expected.ok());
    EXPECT_EQ(caps::FormatCap(up->cap), caps::FormatCap(*expected));
    if (size > caps::kLiteralMaxSize) {
      EXPECT_GE(up->happiness, 3u);
      EXPECT_EQ(up->shares_uploaded, 4u);
      EXPECT_GE(up->max_segments_in_flight, 1u);
      EXPECT_LE(up->max_segments_in_flight, o.segments_in_flight);
    }
    std::string out = root + "/out";
    auto down = Get(up->cap, out);
    ASSERT_TRUE(down.ok()) << down.status().ToString();
    EXPECT_EQ(down->size, size);
    EXPECT_TRUE(ReadAll(out) == data);
  }
}

// Small blocks: consecutive segments travel in one PATCH per share (half
// the window of segments each), and the shares are still exact.
TEST_F(UploaderTest, ConsecutiveSegmentsAreBatchedIntoOnePatch) {
  StartServers(4);
  UploadOptions o = Options(2, 4, 4, 4096);
  ASSERT_EQ(o.segments_in_flight, 4u);
  std::string data = Pattern(20 * 4096, 41);  // 20 segments of 2 KiB blocks
  auto up = Put(data, o);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  ASSERT_EQ(up->shares_uploaded, 4u);
  EXPECT_LE(up->max_segments_in_flight, o.segments_in_flight);
  for (const auto& s : servers) {
    std::uint64_t writes = 0;
    const auto& requests = s->gbs->stats().requests;
    auto it = requests.find("write");
    ASSERT_NE(it, requests.end());
    for (const auto& [status, count] : it->second) writes += count;
    // 10 batches of 2 segments, the last with the trailer, not 20 PATCHes
    // and the trailer.
    EXPECT_EQ(writes, 10u);
  }
  auto down = Get(up->cap, root + "/out");
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_TRUE(ReadAll(root + "/out") == data);
}

TEST_F(UploaderTest, ImmediateFailuresStillCompleteOnALaterTurn) {
  StartServers(1);
  UploadOptions bad = Options(3, 2, 1, 4096);  // k > N
  auto up = Put(Pattern(1000, 1), bad);
  EXPECT_EQ(up.status().code(), Code::kInvalidArgument) << up.status().ToString();
  auto missing = [&] {
    std::optional<Result<UploadResult>> out;
    UploadFile(loop, Grid(), root + "/no-such-file", Options(1, 1, 1, 4096), nullptr, nullptr,
               [&](Result<UploadResult> r) { out.emplace(std::move(r)); });
    EXPECT_FALSE(out.has_value()) << "the completion ran inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
    return std::move(*out);
  }();
  EXPECT_EQ(missing.status().code(), Code::kNotFound) << missing.status().ToString();
  // No servers: a clear error, not a hang.
  std::vector<GridServer> none;
  std::optional<Result<UploadResult>> out;
  UploadFile(loop, none, WriteTemp(Pattern(1000, 2)), Options(1, 1, 1, 4096), nullptr, nullptr,
             [&](Result<UploadResult> r) { out.emplace(std::move(r)); });
  EXPECT_FALSE(out.has_value());
  ASSERT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
  EXPECT_EQ(out->status().code(), Code::kNotEnoughServers) << out->status().ToString();
}

// Failures found at once (bad parameters: inside the call itself; a file
// that does not exist, no servers: after the first pass) are delivered on
// a later turn, exactly once.
TEST_F(UploaderTest, FailuresAtOnceCompleteOnALaterTurnExactlyOnce) {
  struct Case {
    const char* name;
    std::vector<GridServer> servers;
    std::string path;
    UploadOptions options;
    Code code;
  };
  StartServers(1);
  std::vector<Case> cases;
  cases.push_back({"bad parameters", Grid(), WriteTemp(Pattern(1000, 1)), Options(3, 2, 1, 4096),
                   Code::kInvalidArgument});
  cases.push_back({"bad path", Grid(), root + "/no-such-file", Options(1, 1, 1, 4096), Code::kNotFound});
  cases.push_back({"no servers", {}, WriteTemp(Pattern(1000, 2)), Options(1, 1, 1, 4096), Code::kNotEnoughServers});
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto out = CompletesOnceOnALaterTurn<UploadResult>(
        [&](auto done) { UploadFile(loop, std::move(c.servers), c.path, c.options, nullptr, nullptr, std::move(done)); },
        c.code == Code::kInvalidArgument);
    EXPECT_EQ(out.status().code(), c.code) << out.status().ToString();
  }
}

TEST_F(UploaderTest, CancelStopsAndAbortsBuckets) {
  StartServers(4);
  UploadOptions o = Options(2, 4, 3, 4096);
  std::string path = WriteTemp(Pattern(400000, 3));
  std::optional<Result<UploadResult>> out;
  int segments = 0;
  UploadFile(
      loop, Grid(), path, o,
      [&](const std::string& phase, std::uint64_t done, std::uint64_t) {
        if (phase == "uploading" && done > 0) ++segments;
      },
      [&] { return segments >= 3; }, [&](Result<UploadResult> r) { out.emplace(std::move(r)); });
  ASSERT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 60000));
  EXPECT_EQ(out->status().code(), Code::kCancelled) << out->status().ToString();
  // The aborted buckets are gone: an upload of the same file allocates
  // every share again and completes.
  auto again = Put(Pattern(400000, 3), o);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->shares_uploaded, 4u);
}

TEST_F(UploaderTest, ExistingSharesAreReused) {
  StartServers(4);
  UploadOptions o = Options(2, 4, 3, 4096);
  std::string data = Pattern(10000, 7);
  auto first = Put(data, o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  auto second = Put(data, o);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(caps::FormatCap(second->cap), caps::FormatCap(first->cap));
  EXPECT_EQ(second->shares_uploaded, 0u);
  EXPECT_EQ(second->shares_reused, 4u);
}

// Without the list of existing shares (a backup's uploads), the second
// upload of a file learns them from the allocations and writes nothing.
TEST_F(UploaderTest, ExistingSharesAreReusedWithoutListingThem) {
  StartServers(4);
  UploadOptions o = Options(2, 4, 3, 4096);
  o.list_existing = false;
  std::string data = Pattern(10000, 8);
  auto first = Put(data, o);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_EQ(first->shares_uploaded, 4u);
  auto second = Put(data, o);
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(caps::FormatCap(second->cap), caps::FormatCap(first->cap));
  EXPECT_EQ(second->shares_uploaded, 0u);
  EXPECT_EQ(second->shares_reused, 4u);
  for (const auto& s : servers) {
    const auto& requests = s->gbs->stats().requests;
    EXPECT_EQ(requests.count("list_immutable"), 0u) << "a server was asked for its shares";
    auto allocations = requests.find("allocate");
    ASSERT_NE(allocations, requests.end());
    std::uint64_t n = 0;
    for (const auto& [status, count] : allocations->second) n += count;
    EXPECT_EQ(n, 2u);  // one per upload
  }
  auto down = Get(second->cap, root + "/out");
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_TRUE(ReadAll(root + "/out") == data);
}

TEST_F(UploaderTest, UnhappyUploadFails) {
  StartServers(4);
  UploadOptions o = Options(2, 4, 3, 4096);
  std::string data = Pattern(50000, 3);
  auto up = Put(data, o);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  StopServer(*servers[0], false);
  StopServer(*servers[1], false);
  // Two servers cannot give happiness 3.
  auto unhappy = Put(Pattern(50000, 4), o);
  EXPECT_EQ(unhappy.status().code(), Code::kNotEnoughServers) << unhappy.status().ToString();
}

TEST_F(UploaderTest, SharesARefusingServerDidNotTakeArePlacedInAnotherRound) {
  StartServers(5);
  UploadOptions o = Options(2, 4, 4, 4096);
  std::string data = Pattern(50000, 31);
  // The first server of this file's permuted order answers its version and
  // list but fails every allocate: the first round's plan gives it a share,
  // which a second round must place on the fifth server for happiness 4.
  auto cap = ChkCapOfBytes(data, o.convergence, o.params);
  ASSERT_TRUE(cap.ok());
  auto si = caps::StorageIndexOf(*cap);
  ASSERT_TRUE(si.ok());
  std::vector<std::string> seeds;
  for (const GridServer& g : Grid()) seeds.push_back(g.permutation_seed);
  const std::size_t refusing = grid::PermutedOrder(*si, seeds)[0];
  {
    gbs::ClientOptions co;
    co.TEST_fault = [](std::string_view endpoint) {
      return endpoint == "allocate" ? gbs::Fault::kFailAtOnce : gbs::Fault::kNone;
    };
    ReplaceClient(refusing, std::move(co));
  }
  auto up = Put(data, o);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_EQ(up->happiness, 4u);
  EXPECT_EQ(up->shares_uploaded, 4u);
  EXPECT_EQ(up->placement.size(), 4u);
  const std::string name = "s" + std::to_string(refusing);
  for (const auto& [sh, names] : up->placement) {
    for (const std::string& n : names) EXPECT_NE(n, name);
  }
  auto down = Get(up->cap, root + "/out");
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_TRUE(ReadAll(root + "/out") == data);
}

TEST_F(UploaderTest, ServerFailingMidUploadIsDropped) {
  StartServers(5);
  // Server 0's client drops the connection of its fifth PATCH and fails
  // every later call at once: its bucket is dropped (and aborted), and the
  // upload still reaches happiness 3 on the other four.
  {
    bool closed = false;
    servers[0]->client->Close([&] { closed = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
    gbs::ClientOptions co;
    auto writes = std::make_shared<int>(0);
    co.TEST_fault = [writes](std::string_view endpoint) {
      if (endpoint != "write") return gbs::Fault::kNone;
      ++*writes;
      return *writes == 5 ? gbs::Fault::kDropConnection : *writes > 5 ? gbs::Fault::kFailAtOnce : gbs::Fault::kNone;
    };
    servers[0]->client = std::make_unique<gbs::Client>(loop, ctx, servers[0]->nurl, std::move(co));
  }
  UploadOptions o = Options(2, 5, 3, 4096);
  std::string data = Pattern(200000, 9);
  auto up = Put(data, o);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  EXPECT_GE(up->happiness, 3u);
  EXPECT_EQ(up->shares_uploaded, 4u);
  for (const auto& [sh, names] : up->placement) {
    for (const std::string& name : names) EXPECT_NE(name, "s0");
  }
  auto down = Get(up->cap, root + "/out");
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_TRUE(ReadAll(root + "/out") == data);
}

}  // namespace
}  // namespace cairn::immutable
