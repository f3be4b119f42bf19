// UploadFile and DownloadFile against several in-process GBS servers
// (http::Server + StorageServer + ShareStore each, on 127.0.0.1 over pinned
// TLS), all on one loop: round trips at the sizes that matter, caps equal to
// ChkCapOfBytes, shares reused, servers down, a corrupt share detected and
// advised, and completions never inside the initiating call.
#include "cairn/immutable/uploader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "cairn/caps/keys.h"
#include "cairn/gbs/client.h"
#include "cairn/gbs/server.h"
#include "cairn/grid/placement.h"
#include "cairn/http/server.h"
#include "cairn/immutable/chk.h"
#include "cairn/immutable/downloader.h"
#include "cairn/store/store.h"
#include "cairn/tls/identity.h"
#include "cairn/tls/server.h"
#include "cairn/tls/session.h"
#include "support/grid_fixture.h"

namespace cairn::immutable {
namespace {

using testing::Pattern;

class UploaderTest : public testing::GridFixture {
 protected:
  void OverdueCase(int prompt_reads);
  std::string WriteTemp(const std::string& data) {
    std::string path = root + "/in-" + std::to_string(++files);
    std::ofstream(path, std::ios::binary) << data;
    return path;
  }
  static std::string ReadAll(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }
  Result<UploadResult> Put(const std::string& data, const UploadOptions& o) {
    std::string path = WriteTemp(data);
    std::optional<Result<UploadResult>> out;
    int completions = 0;
    UploadFile(loop, Grid(), path, o, nullptr, nullptr, [&](Result<UploadResult> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    EXPECT_FALSE(out.has_value()) << "the completion ran inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 60000));
    EXPECT_EQ(completions, 1);
    return std::move(*out);
  }
  Result<DownloadResult> Get(const caps::Cap& cap, const std::string& path) {
    std::optional<Result<DownloadResult>> out;
    DownloadFile(loop, Grid(), cap, path, nullptr, nullptr,
                 [&](Result<DownloadResult> r) { out.emplace(std::move(r)); });
    EXPECT_FALSE(out.has_value()) << "the completion ran inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 60000));
    return std::move(*out);
  }
  UploadOptions Options(std::uint32_t k, std::uint32_t n, std::uint32_t happy, std::uint64_t segsize) {
    UploadOptions o;
    o.params.k = k;
    o.params.n = n;
    o.params.max_segment_size = segsize;
    o.happy = happy;
    o.convergence = "convergence-secret-for-tests-32b";
    o.lease_secret = std::string(32, 'L');
    return o;
  }

  int files = 0;
};

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
    // 10 batches of 2 segments and the trailer, not 20 PATCHes and the trailer.
    EXPECT_EQ(writes, 11u);
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
  caps::Cap mutable_cap;
  mutable_cap.kind = caps::CapKind::kMutableRead;
  auto down = Get(mutable_cap, root + "/x");
  EXPECT_EQ(down.status().code(), Code::kBadCap) << down.status().ToString();
  // No servers: a clear error, not a hang.
  std::vector<GridServer> none;
  std::optional<Result<UploadResult>> out;
  UploadFile(loop, none, WriteTemp(Pattern(1000, 2)), Options(1, 1, 1, 4096), nullptr, nullptr,
             [&](Result<UploadResult> r) { out.emplace(std::move(r)); });
  EXPECT_FALSE(out.has_value());
  ASSERT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
  EXPECT_EQ(out->status().code(), Code::kNotEnoughServers) << out->status().ToString();
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

TEST_F(UploaderTest, UnhappyUploadFailsAndDownloadSurvivesNMinusKDown) {
  StartServers(4);
  UploadOptions o = Options(2, 4, 3, 4096);
  std::string data = Pattern(50000, 3);
  auto up = Put(data, o);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  // N - k = 2 servers down: the file still reads.
  StopServer(*servers[0], false);
  StopServer(*servers[1], false);
  auto down = Get(up->cap, root + "/out");
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_TRUE(ReadAll(root + "/out") == data);
  // Two servers cannot give happiness 3.
  auto unhappy = Put(Pattern(50000, 4), o);
  EXPECT_EQ(unhappy.status().code(), Code::kNotEnoughServers) << unhappy.status().ToString();
  // Three down: not enough shares, and no output file is left behind.
  StopServer(*servers[2], false);
  auto lost = Get(up->cap, root + "/lost");
  EXPECT_EQ(lost.status().code(), Code::kNotEnoughServers) << lost.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(root + "/lost"));
}

TEST_F(UploaderTest, DownloadDoesNotWaitForASlowServer) {
  StartServers(4);
  UploadOptions o = Options(2, 4, 3, 4096);
  std::string data = Pattern(30000, 21);
  auto up = Put(data, o);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  // Server 0 answers its share list 30 s late: the other three have enough.
  {
    bool closed = false;
    servers[0]->client->Close([&] { closed = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
    gbs::ClientOptions co;
    co.TEST_late_ms = 30000;
    co.TEST_fault = [](std::string_view endpoint) {
      return endpoint == "list" ? gbs::Fault::kAnswerLate : gbs::Fault::kNone;
    };
    servers[0]->client = std::make_unique<gbs::Client>(loop, ctx, servers[0]->nurl, std::move(co));
  }
  std::uint64_t start = loop.NowMs();
  auto down = Get(up->cap, root + "/out");
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_LT(loop.NowMs() - start, 10000u);
  EXPECT_TRUE(ReadAll(root + "/out") == data);
  for (const auto& [sh, name] : down->shares_used) EXPECT_NE(name, "s0");
}

// Server 0 answers its share list at once and its first `prompt_reads`
// reads in time, every later read 8 s late; the others answer their lists
// 300 ms late, so server 0's share is the first candidate and is activated:
// its reads become overdue and a spare share takes its place.
void UploaderTest::OverdueCase(int prompt_reads) {
  StartServers(4);
  UploadOptions o = Options(2, 4, 3, 4096);
  std::string data = Pattern(60000, 23);
  auto up = Put(data, o);
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  ASSERT_EQ(up->shares_uploaded, 4u);
  constexpr std::uint64_t kLateMs = 8000;
  {
    gbs::ClientOptions co;
    co.TEST_late_ms = kLateMs;
    auto reads = std::make_shared<int>(0);
    co.TEST_fault = [reads, prompt_reads](std::string_view endpoint) {
      if (endpoint != "read") return gbs::Fault::kNone;
      return ++*reads > prompt_reads ? gbs::Fault::kAnswerLate : gbs::Fault::kNone;
    };
    ReplaceClient(0, std::move(co));
  }
  for (std::size_t i = 1; i < 4; ++i) {
    gbs::ClientOptions co;
    co.TEST_late_ms = 300;
    co.TEST_fault = [](std::string_view endpoint) {
      return endpoint == "list" ? gbs::Fault::kAnswerLate : gbs::Fault::kNone;
    };
    ReplaceClient(i, std::move(co));
  }
  const std::uint64_t start = loop.NowMs();
  std::optional<Result<DownloadResult>> down;
  int completions = 0;
  DownloadFile(loop, Grid(), up->cap, root + "/out", nullptr, nullptr, [&](Result<DownloadResult> r) {
    ++completions;
    down.emplace(std::move(r));
  });
  ASSERT_TRUE(loop.RunUntil([&] { return down.has_value(); }, 30000));
  const std::uint64_t took = loop.NowMs() - start;
  ASSERT_TRUE(down->ok()) << down->status().ToString();
  // Waiting for the late server would take kLateMs at least; the margin is
  // wide so that an emulated board (4.2 s under qemu-arm) passes too.
  EXPECT_LT(took, kLateMs) << "the download waited for the late server";
  EXPECT_GE((*down)->overdue_shares, 1u);
  for (const auto& [sh, name] : (*down)->shares_used) EXPECT_NE(name, "s0");
  EXPECT_TRUE(ReadAll(root + "/out") == data);
  // The late answers arrive after the end: they are dropped, the completion
  // does not run again and the output is untouched.
  loop.RunUntil([] { return false; }, kLateMs + 1000 - std::min(took, kLateMs));
  EXPECT_EQ(completions, 1);
  EXPECT_TRUE(ReadAll(root + "/out") == data);
}

// The header read of the first share chosen is overdue.
TEST_F(UploaderTest, OverdueHeaderReadIsServedByAnotherShare) { OverdueCase(0); }

// The share is verified and in use (header and hash reads in time), then
// its block reads are overdue while segments are in the fetch window.
TEST_F(UploaderTest, OverdueBlockReadsAreServedByAnotherShare) { OverdueCase(4); }

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
  for (const GridServer& g : Grid()) seeds.push_back(g.seed);
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

TEST_F(UploaderTest, CorruptShareIsDetectedAdvisedAndReplaced) {
  StartServers(3);
  ChkParams p{2, 3, 4096};
  std::string data = Pattern(12000, 5);
  auto key = std::string(16, 'K');
  auto enc = ChkEncoder::Create(key, p, data.size());
  ASSERT_TRUE(enc.ok());
  std::vector<std::string> shares(3, enc->ShareHeader());
  for (std::uint64_t off = 0; off < data.size(); off += enc->layout().segment_size) {
    auto blocks = enc->EncodeSegment(data.substr(off, enc->layout().segment_size));
    ASSERT_TRUE(blocks.ok());
    for (int i = 0; i < 3; ++i) shares[i] += (*blocks)[i];
  }
  ASSERT_TRUE(enc->Finish().ok());
  for (int i = 0; i < 3; ++i) shares[i] += enc->ShareTrailer(i);
  // Share 0 has a flipped byte in its second block.
  shares[0][enc->layout().header_size + enc->layout().block_size + 3] ^= 1;
  gbs::StorageIndex si{};
  std::memcpy(si.data(), enc->storage_index().data(), 16);
  for (int i = 0; i < 3; ++i) {
    std::optional<Status> done;
    servers[i]->client->Allocate(
        si, "upload-secret", {std::string(32, 'r'), std::string(32, 'c')},
        {{static_cast<std::uint32_t>(i)}, shares[i].size()}, [&, i](Result<gbs::AllocateResponse> r) {
          if (!r.ok()) return done.emplace(r.status()), void();
          servers[i]->client->WriteChunk(si, i, "upload-secret", 0, shares[i], [&](Result<gbs::WriteResult> w) {
            done.emplace(w.ok() ? Status() : w.status());
          });
        });
    ASSERT_TRUE(loop.RunUntil([&] { return done.has_value(); }, 20000));
    ASSERT_TRUE(done->ok()) << done->ToString();
  }
  // Whichever shares the reader tries first, the file comes back whole.
  auto down = Get(enc->Cap(), root + "/out");
  ASSERT_TRUE(down.ok()) << down.status().ToString();
  EXPECT_TRUE(ReadAll(root + "/out") == data);
  // With only shares 0 and 1 reachable the corrupt block must be caught.
  StopServer(*servers[2], false);
  auto lost = Get(enc->Cap(), root + "/lost");
  EXPECT_EQ(lost.status().code(), Code::kNotEnoughServers) << lost.status().ToString();
  bool advised = false;
  for (const auto& [endpoint, by_status] : servers[0]->gbs->stats().requests) {
    if (endpoint.find("corrupt") != std::string::npos) advised = true;
  }
  EXPECT_TRUE(advised);
}

}  // namespace
}  // namespace cairn::immutable
