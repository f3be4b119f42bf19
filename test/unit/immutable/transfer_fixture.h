// TransferFixture: the grid fixture (several in-process GBS servers on one
// loop) with what the uploader and downloader tests share: temporary input
// files, UploadFile and DownloadFile run to their completion (asserting it
// never runs inside the call), and upload options for tests. Loop thread
// only, like the loop it drives.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "cairn/immutable/downloader.h"
#include "cairn/immutable/uploader.h"
#include "support/grid_fixture.h"

namespace cairn::immutable {

class TransferFixture : public testing::GridFixture {
 protected:
  // Writes `data` to a new file under the test's root; returns its path.
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
  // Uploads `data` to the whole grid and waits (up to 60 s) for the one
  // completion.
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
  // Downloads `cap` from the whole grid to `path` and waits (up to 60 s).
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
  // Runs a few more loop iterations: a second completion would run in them.
  void RunSomeMoreTurns() {
    for (int i = 0; i < 50; ++i) loop.RunOnce();
  }

  // Starts an operation with `start(done)` and checks the eventual-send
  // contract: no completion inside the call; exactly one later (in the very
  // next turn when the failure was `found_in_call`), and no second one in
  // the turns after. Returns what it delivered.
  template <typename R, typename Start>
  Result<R> CompletesOnceOnALaterTurn(Start start, bool found_in_call) {
    int completions = 0;
    std::optional<Result<R>> out;
    start([&](Result<R> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    EXPECT_EQ(completions, 0) << "the completion ran inside the call";
    if (found_in_call) {
      loop.RunOnce();
      EXPECT_EQ(completions, 1) << "a failure found inside the call waited past the next turn";
    }
    if (!loop.RunUntil([&] { return completions > 0; }, 20000)) return Status::Timeout("no completion in 20 s");
    RunSomeMoreTurns();
    EXPECT_EQ(completions, 1);
    return std::move(*out);
  }

  int files = 0;
};

}  // namespace cairn::immutable
