// BoardWatch fed from a real share store over the fault platform, as cairnd
// feeds it: an fsync that fails, or one that takes longer than the stall
// limit, stops the petting.
#include <fstream>
#include <sstream>

#include "cairn/platform/board_io.h"
#include "unit/store/store_fixture.h"

namespace cairn::store {
namespace {

class BoardWatchStore : public StoreTest {
 protected:
  void TearDown() override {
    watch.reset();
    StoreTest::TearDown();
  }
  void StartWatch(std::uint64_t stall_ms) {
    platform::BoardWatchOptions o;
    o.watchdog = dir + "/watchdog";
    std::ofstream(o.watchdog).close();
    o.watchdog_interval_ms = 10;
    o.tick_ms = 10;
    o.stall_ms = stall_ms;
    watch = std::make_unique<platform::BoardWatch>(loop, std::move(o), [this] {
      StoreStats ss = store->stats();
      platform::HealthSample h;
      h.commits = ss.commits;
      h.pending = ss.queued_ops;
      h.store_error = ss.sticky_error;
      return h;
    });
    Status st = watch->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  std::size_t Pets() {
    std::ifstream f(dir + "/watchdog", std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str().size();
  }
  std::unique_ptr<platform::BoardWatch> watch;
};

TEST_F(BoardWatchStore, AFailedFsyncStopsThePetting) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  StartWatch(60000);
  ASSERT_TRUE(loop.RunUntil([&] { return watch->pets() >= 3; }, 10000));
  fault.FailSyncs(1);
  EXPECT_EQ(Write(Si(1), 0, 0, "abcd").status().code(), Code::kIoError);
  ASSERT_TRUE(loop.RunUntil([&] { return watch->state() == platform::BoardWatch::State::kFailed; }, 10000));
  EXPECT_NE(watch->problem().find("fdatasync"), std::string::npos) << watch->problem();
  std::size_t pets = Pets();
  loop.RunUntil([] { return false; }, 200);  // twenty pet intervals
  EXPECT_EQ(Pets(), pets);
}

TEST_F(BoardWatchStore, ACommitSlowerThanTheStallLimitStopsThePettingUntilItLands) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  StartWatch(100);
  ASSERT_TRUE(loop.RunUntil([&] { return watch->pets() >= 3; }, 10000));
  fault.SetSyncDelayMs(1500);  // a disk that hangs for 1.5 s
  bool done = false;
  store->WriteChunk(Si(1), 0, "upload-secret", 0, "abcd", [&](Result<WriteResult> r) {
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    done = true;
  });
  ASSERT_TRUE(loop.RunUntil([&] { return watch->state() == platform::BoardWatch::State::kFailed || done; }, 10000));
  ASSERT_FALSE(done) << "the commit finished before the stall limit";
  EXPECT_NE(watch->problem().find("stalled"), std::string::npos) << watch->problem();
  std::size_t pets = Pets();
  // Fifty pet intervals, well inside the 1.5 s the fsync hangs.
  EXPECT_FALSE(loop.RunUntil([&] { return done; }, 500));
  EXPECT_EQ(Pets(), pets) << "no pet while the commit hangs";
  ASSERT_TRUE(loop.RunUntil([&] { return done; }, 10000));
  fault.SetSyncDelayMs(0);
  ASSERT_TRUE(loop.RunUntil([&] { return Pets() > pets; }, 10000)) << "petting resumes once it lands";
  EXPECT_NE(watch->state(), platform::BoardWatch::State::kFailed);
}

}  // namespace
}  // namespace cairn::store
