// DownloadFile against several in-process GBS servers (http::Server +
// StorageServer + ShareStore each, on 127.0.0.1 over pinned TLS), all on
// one loop, reading files UploadFile stored (or shares written by hand):
// N - k servers down, a slow server not waited for, overdue reads served by
// another share, a corrupt share detected and advised, and completions never
// inside the initiating call.
#include "cairn/immutable/downloader.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <vector>

#include "cairn/caps/keys.h"
#include "cairn/gbs/client.h"
#include "cairn/gbs/server.h"
#include "cairn/immutable/chk.h"
#include "cairn/immutable/uploader.h"
#include "unit/immutable/transfer_fixture.h"

namespace cairn::immutable {
namespace {

using testing::Pattern;

class DownloaderTest : public TransferFixture {
 protected:
  void OverdueCase(int prompt_reads);
};

TEST_F(DownloaderTest, ImmediateFailuresStillCompleteOnALaterTurn) {
  StartServers(1);
  caps::Cap mutable_cap;
  mutable_cap.kind = caps::CapKind::kMutableRead;
  auto down = Get(mutable_cap, root + "/x");
  EXPECT_EQ(down.status().code(), Code::kBadCap) << down.status().ToString();
}

// Failures found at once (a cap that is not LIT or CHK: inside the call
// itself; no servers, an output path that cannot be created, a cap whose
// shares no server holds: after the first pool job or the share lists) are
// delivered on a later turn, exactly once, and leave no output behind.
TEST_F(DownloaderTest, FailuresAtOnceCompleteOnALaterTurnExactlyOnce) {
  struct Case {
    const char* name;
    std::vector<GridServer> servers;
    caps::Cap cap;
    std::string path;
    Code code;
  };
  StartServers(2);
  UploadOptions o = Options(2, 4, 3, 4096);
  auto absent = ChkCapOfBytes(Pattern(10000, 11), o.convergence, o.params);  // never uploaded
  ASSERT_TRUE(absent.ok());
  caps::Cap mutable_cap;
  mutable_cap.kind = caps::CapKind::kMutableRead;
  std::vector<Case> cases;
  cases.push_back({"bad cap", Grid(), mutable_cap, root + "/out-badcap", Code::kBadCap});
  cases.push_back({"no servers", {}, *absent, root + "/out-none", Code::kNotEnoughServers});
  cases.push_back({"bad path", Grid(), *absent, root + "/no-such-dir/out", Code::kNotFound});
  cases.push_back({"no shares", Grid(), *absent, root + "/out-noshares", Code::kNotEnoughServers});
  for (Case& c : cases) {
    SCOPED_TRACE(c.name);
    auto out = CompletesOnceOnALaterTurn<DownloadResult>(
        [&](auto done) { DownloadFile(loop, std::move(c.servers), c.cap, c.path, nullptr, nullptr, std::move(done)); },
        c.code == Code::kBadCap);
    EXPECT_EQ(out.status().code(), c.code) << out.status().ToString();
    // The output is removed before the completion runs.
    EXPECT_FALSE(std::filesystem::exists(c.path));
  }
}

TEST_F(DownloaderTest, DownloadSurvivesNMinusKDown) {
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
  // Three down: not enough shares, and no output file is left behind.
  StopServer(*servers[2], false);
  auto lost = Get(up->cap, root + "/lost");
  EXPECT_EQ(lost.status().code(), Code::kNotEnoughServers) << lost.status().ToString();
  EXPECT_FALSE(std::filesystem::exists(root + "/lost"));
}

TEST_F(DownloaderTest, DownloadDoesNotWaitForASlowServer) {
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
void DownloaderTest::OverdueCase(int prompt_reads) {
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
TEST_F(DownloaderTest, OverdueHeaderReadIsServedByAnotherShare) { OverdueCase(0); }

// The share is verified and in use (header and hash reads in time), then
// its block reads are overdue while segments are in the fetch window.
TEST_F(DownloaderTest, OverdueBlockReadsAreServedByAnotherShare) { OverdueCase(4); }

TEST_F(DownloaderTest, CorruptShareIsDetectedAdvisedAndReplaced) {
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
