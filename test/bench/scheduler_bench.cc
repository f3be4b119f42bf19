// Benchmark: the eventual-send queue. Prints JSON lines:
//   post+drain throughput (tasks posted from the loop thread, drained by turns),
//   chained posts (each task posts the next: one task per turn),
//   cross-thread posts (a worker thread posts, the loop drains),
//   Offload round trips (thread pool and back).
#include <chrono>
#include <cstdio>
#include <thread>

#include "cairn/core/loop.h"

namespace {

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void Report(const char* name, long long ops, double secs, const cairn::LoopStats& s) {
  std::printf(
      "{\"bench\":\"scheduler\",\"case\":\"%s\",\"ops\":%lld,\"seconds\":%.4f,\"ops_per_sec\":%.0f,"
      "\"ns_per_op\":%.1f,\"loop_max_busy_us\":%llu}\n",
      name, ops, secs, ops / secs, secs * 1e9 / ops, static_cast<unsigned long long>(s.max_busy_us));
  std::fflush(stdout);
}

}  // namespace

int main() {
  using cairn::Loop;
  {
    Loop loop;
    const long long kBatch = 1000, kBatches = 2000;
    long long ran = 0;
    auto start = std::chrono::steady_clock::now();
    for (long long b = 0; b < kBatches; ++b) {
      for (long long i = 0; i < kBatch; ++i) loop.Post([&ran] { ++ran; });
      loop.RunOnce();
    }
    Report("post_drain_batch1000", ran, Seconds(start), loop.stats());
  }
  {
    Loop loop;
    const long long kChain = 300000;
    long long ran = 0;
    cairn::Callback<void()> step;
    step = [&] {
      if (++ran < kChain) loop.Post([&] { step(); });
    };
    auto start = std::chrono::steady_clock::now();
    loop.Post([&] { step(); });
    loop.RunUntil([&] { return ran >= kChain; }, 60000);
    Report("chained_post_one_per_turn", ran, Seconds(start), loop.stats());
  }
  {
    Loop loop;
    const long long kPosts = 500000;
    long long ran = 0;
    auto start = std::chrono::steady_clock::now();
    std::thread worker([&] {
      for (long long i = 0; i < kPosts; ++i) loop.PostFromAnyThread([&ran] { ++ran; });
    });
    loop.RunUntil([&] { return ran >= kPosts; }, 60000);
    worker.join();
    Report("cross_thread_post", ran, Seconds(start), loop.stats());
  }
  {
    Loop loop;
    const long long kWork = 50000;
    long long done = 0, inflight = 0, issued = 0;
    auto start = std::chrono::steady_clock::now();
    cairn::Callback<void()> pump;
    pump = [&] {
      while (inflight < 64 && issued < kWork) {
        ++inflight;
        ++issued;
        loop.Offload([] { return cairn::Status(); },
                     [&](cairn::Status) {
                       --inflight;
                       ++done;
                       pump();
                     });
      }
    };
    pump();
    loop.RunUntil([&] { return done >= kWork; }, 60000);
    Report("offload_round_trip_64_inflight", done, Seconds(start), loop.stats());
  }
  return 0;
}
