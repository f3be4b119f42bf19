// Share store benchmark (JSON lines): durable 1 KiB mutable test-and-writes
// per second at 1, 16 and 256 concurrent writers, group commit against one
// transaction per write; 64 MiB immutable share write and read; start-up
// time with 100,000 shares against 1,000; the loop's longest iteration
// during the write storm; the cost of a read on the loop thread; RSS.
// Runs in a temporary directory under /tmp. Loop thread only.
#include <stdlib.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "cairn/core/loop.h"
#include "cairn/store/store.h"

namespace {

using namespace cairn;
using namespace cairn::store;
using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

StorageIndex Si(std::uint32_t n) {
  StorageIndex si{};
  for (int i = 0; i < 4; ++i) si[i] = static_cast<std::uint8_t>(n >> (8 * i));
  si[15] = 0x5a;
  return si;
}

std::string TempDir() {
  char tmpl[] = "/tmp/cairn-store-bench-XXXXXX";
  return mkdtemp(tmpl);
}

StoreOptions Options(const std::string& dir) {
  StoreOptions o;
  o.dir = dir;
  o.reserved_bytes = 0;
  o.map_bytes = 64ull << 20;
  o.map_max_bytes = 4ull << 30;
  return o;
}

std::unique_ptr<ShareStore> Open(Loop& loop, StoreOptions o) {
  auto r = ShareStore::Open(loop, std::move(o));
  if (!r.ok()) {
    std::fprintf(stderr, "open: %s\n", r.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(r).value();
}

void Close(Loop& loop, std::unique_ptr<ShareStore>& store) {
  bool closed = false;
  store->Close([&] { closed = true; });
  loop.RunUntil([&] { return closed; }, 600000);
  store.reset();
}

const LeaseSecrets kLease{std::string(32, 'r'), std::string(32, 'c')};
const std::string kWe(32, 'w');

// `writers` slots each rewritten back to back for `seconds`.
void MutableStorm(int writers, bool group, double seconds) {
  std::string dir = TempDir();
  Loop loop;
  StoreOptions o = Options(dir);
  if (!group) o.batch_ops = 1;
  auto store = Open(loop, o);
  std::uint64_t done = 0, failed = 0;
  bool stop = false;
  std::string data(1024, 'x');
  std::function<void(int)> next = [&](int w) {
    if (stop) return;
    ShareTestWrite tw;
    tw.shnum = 0;
    tw.writes.push_back({0, data});
    store->ReadTestWrite(Si(static_cast<std::uint32_t>(w)), kWe, kLease, {tw}, {}, [&, w](Result<RtwResult> r) {
      if (r.ok() && r->success) {
        ++done;
      } else {
        ++failed;
      }
      next(w);
    });
  };
  // Warm-up: create the slots first, outside the measurement.
  for (int w = 0; w < writers; ++w) next(w);
  loop.RunUntil([&] { return done >= static_cast<std::uint64_t>(writers); }, 600000);
  std::uint64_t base = done, commits0 = store->stats().commits;
  LoopStats ls0 = loop.stats();
  auto t0 = Clock::now();
  loop.RunUntil([&] { return Seconds(t0, Clock::now()) >= seconds; }, 600000);
  stop = true;
  auto t1 = Clock::now();
  std::uint64_t n = done - base;
  std::uint64_t commits = store->stats().commits - commits0;
  LoopStats ls1 = loop.stats();
  loop.RunUntil([&] { return store->stats().queued_ops == 0; }, 600000);
  std::printf(
      "{\"bench\": \"store_mutable_tw_1k\", \"writers\": %d, \"mode\": \"%s\", \"writes_per_s\": %.0f, "
      "\"commits_per_s\": %.0f, \"writes_per_commit\": %.1f, \"failed\": %llu, \"loop_max_busy_us\": %llu, "
      "\"loop_iterations\": %llu}\n",
      writers, group ? "group_commit" : "one_txn_per_write", n / Seconds(t0, t1), commits / Seconds(t0, t1),
      commits ? static_cast<double>(n) / commits : 0.0, static_cast<unsigned long long>(failed),
      static_cast<unsigned long long>(ls1.max_busy_us), static_cast<unsigned long long>(ls1.iterations - ls0.iterations));
  std::fflush(stdout);
  Close(loop, store);
  std::filesystem::remove_all(dir);
}

void ImmutableLarge() {
  std::string dir = TempDir();
  Loop loop;
  auto store = Open(loop, Options(dir));
  const std::uint64_t kSize = 64ull << 20, kChunk = 1 << 20;
  std::optional<Result<AllocateResult>> a;
  store->Allocate(Si(1), {0}, kSize, "upload", kLease, [&](Result<AllocateResult> r) { a.emplace(std::move(r)); });
  loop.RunUntil([&] { return a.has_value(); }, 600000);
  std::string chunk(kChunk, 'i');
  auto t0 = Clock::now();
  // One chunk in flight at a time, as a GBS client sends them.
  std::uint64_t off = 0;
  bool complete = false;
  std::function<void()> next = [&] {
    store->WriteChunk(Si(1), 0, "upload", off, chunk, [&](Result<WriteResult> r) {
      if (!r.ok()) {
        std::fprintf(stderr, "write: %s\n", r.status().ToString().c_str());
        std::exit(1);
      }
      off += kChunk;
      if (r->complete) {
        complete = true;
      } else {
        next();
      }
    });
  };
  next();
  loop.RunUntil([&] { return complete; }, 600000);
  auto t1 = Clock::now();
  std::uint64_t got = 0;
  bool read_done = false;
  std::function<void(std::uint64_t)> read_at = [&](std::uint64_t at) {
    store->ReadImmutable(Si(1), 0, at, kChunk, [&, at](Result<std::string> r) {
      got += r.ok() ? r->size() : 0;
      if (at + kChunk < kSize) {
        read_at(at + kChunk);
      } else {
        read_done = true;
      }
    });
  };
  read_at(0);
  loop.RunUntil([&] { return read_done; }, 600000);
  auto t2 = Clock::now();
  std::printf(
      "{\"bench\": \"store_immutable_64mib\", \"write_mb_per_s\": %.1f, \"read_mb_per_s\": %.1f, \"chunk_bytes\": %llu, "
      "\"read_bytes\": %llu, \"loop_max_busy_us\": %llu}\n",
      kSize / 1e6 / Seconds(t0, t1), kSize / 1e6 / Seconds(t1, t2), static_cast<unsigned long long>(kChunk),
      static_cast<unsigned long long>(got), static_cast<unsigned long long>(loop.stats().max_busy_us));
  std::fflush(stdout);
  Close(loop, store);
  std::filesystem::remove_all(dir);
}

// Fills a store with `shares` small mutable shares, then times Open().
void StartUp(std::uint32_t shares) {
  std::string dir = TempDir();
  {
    Loop loop;
    auto store = Open(loop, Options(dir));
    std::uint32_t issued = 0, done = 0;
    std::function<void()> next = [&] {
      if (issued >= shares) return;
      std::uint32_t i = issued++;
      ShareTestWrite tw;
      tw.shnum = i % 10;
      tw.writes.push_back({0, std::string(64, 's')});
      store->ReadTestWrite(Si(i / 10), kWe, kLease, {tw}, {}, [&](Result<RtwResult>) {
        ++done;
        next();
      });
    };
    for (int k = 0; k < 512; ++k) next();
    loop.RunUntil([&] { return done == shares; }, 600000);
    Close(loop, store);
  }
  Loop loop;
  auto t0 = Clock::now();
  auto store = Open(loop, Options(dir));
  std::optional<Result<std::string>> first;
  store->ReadMutable(Si(0), 0, 0, 64, [&](Result<std::string> r) { first.emplace(std::move(r)); });
  loop.RunUntil([&] { return first.has_value(); }, 600000);
  auto t1 = Clock::now();
  std::printf("{\"bench\": \"store_startup\", \"shares\": %u, \"open_and_first_read_ms\": %.2f, \"shares_indexed\": %llu}\n",
              shares, Seconds(t0, t1) * 1000, static_cast<unsigned long long>(store->stats().shares));
  std::fflush(stdout);
  // The read-path decision (docs/store.md): time spent inside one
  // ReadMutable call, i.e. on the loop thread, for a 1 KiB-class read.
  const int kReads = 20000;
  int answered = 0;
  auto r0 = Clock::now();
  for (int i = 0; i < kReads; ++i) {
    store->ReadMutable(Si(static_cast<std::uint32_t>(i % (shares / 10))), static_cast<ShareNum>(i % 10), 0, 64,
                       [&](Result<std::string>) { ++answered; });
  }
  auto r1 = Clock::now();
  loop.RunUntil([&] { return answered == kReads; }, 600000);
  if (shares >= 100000) {
    std::printf("{\"bench\": \"store_read_on_loop\", \"reads\": %d, \"us_per_read_in_call\": %.2f}\n", kReads,
                Seconds(r0, r1) * 1e6 / kReads);
  }
  Close(loop, store);
  std::filesystem::remove_all(dir);
}

void Rss() {
  unsigned long long anon = 0, file = 0;
  FILE* f = std::fopen("/proc/self/status", "r");
  char line[256];
  while (f && std::fgets(line, sizeof line, f)) {
    std::sscanf(line, "RssAnon: %llu kB", &anon);
    std::sscanf(line, "RssFile: %llu kB", &file);
  }
  if (f) std::fclose(f);
  std::printf("{\"bench\": \"store_rss\", \"anon_bytes\": %llu, \"file_bytes\": %llu}\n", anon * 1024, file * 1024);
}

}  // namespace

int main() {
  for (int writers : {1, 16, 256}) {
    MutableStorm(writers, true, 2.0);
    MutableStorm(writers, false, 2.0);
  }
  ImmutableLarge();
  StartUp(1000);
  StartUp(100000);
  Rss();
  return 0;
}
