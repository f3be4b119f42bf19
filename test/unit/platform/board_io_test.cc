// BoardWatch against files laid out like the real ones: the watchdog is a
// regular file or a FIFO (what was written to it is what a driver would have
// seen), the LED a directory like /sys/class/leds/<name>.
#include "cairn/platform/board_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "cairn/core/config.h"
#include "cairn/core/loop.h"

namespace cairn::platform {
namespace {

std::string Slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void Spit(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

class BoardWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-boardio-XXXXXX";
    dir = mkdtemp(tmpl);
    led = dir + "/leds/status";
    std::filesystem::create_directories(led);
    Spit(led + "/trigger", "none [heartbeat] timer mmc0");
    Spit(led + "/brightness", "0");
    Spit(led + "/max_brightness", "255\n");
    watchdog = dir + "/watchdog";
    Spit(watchdog, "");
  }
  void TearDown() override {
    watch.reset();
    std::filesystem::remove_all(dir);
  }

  BoardWatchOptions Options() {
    BoardWatchOptions o;
    o.watchdog = watchdog;
    o.watchdog_interval_ms = 20;
    o.led = "status";
    o.led_root = dir + "/leds";
    o.tick_ms = 10;
    o.stall_ms = 60;
    return o;
  }
  void StartWatch(BoardWatchOptions o) {
    watch = std::make_unique<BoardWatch>(loop, std::move(o), [this] {
      ++samples;
      return health;
    });
    Status st = watch->Start();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  // Runs the loop until `n` more health samples (ticks) have been taken.
  void RunTicks(int n) {
    int until = samples + n;
    ASSERT_TRUE(loop.RunUntil([&] { return samples >= until; }, 10000));
  }
  std::string Brightness() { return Slurp(led + "/brightness"); }

  Loop loop;
  std::string dir, led, watchdog;
  HealthSample health;
  int samples = 0;
  std::unique_ptr<BoardWatch> watch;
};

TEST_F(BoardWatchTest, PetsWhileHealthyAndMagicClosesOnStop) {
  StartWatch(Options());
  RunTicks(12);
  EXPECT_GE(watch->pets(), 3u);
  EXPECT_EQ(watch->state(), BoardWatch::State::kHealthy);
  std::string written = Slurp(watchdog);
  EXPECT_EQ(written, std::string(watch->pets(), '.'));
  watch->Stop();
  written = Slurp(watchdog);
  ASSERT_FALSE(written.empty());
  EXPECT_EQ(written.back(), 'V') << "clean shutdown ends with the magic close";
  EXPECT_EQ(written.find('V'), written.size() - 1) << "no pet byte may be 'V'";
}

TEST_F(BoardWatchTest, PetsThroughAFifoLikeADevice) {
  std::string fifo = dir + "/fifo";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  ASSERT_GE(reader, 0);
  BoardWatchOptions o = Options();
  o.watchdog = fifo;
  StartWatch(std::move(o));
  RunTicks(8);
  char buf[256];
  ssize_t n = read(reader, buf, sizeof buf);
  ASSERT_GT(n, 0);
  EXPECT_EQ(std::string(buf, static_cast<std::size_t>(n)), std::string(static_cast<std::size_t>(n), '.'));
  watch->Stop();
  n = read(reader, buf, sizeof buf);
  std::string rest = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
  ASSERT_FALSE(rest.empty());
  EXPECT_EQ(rest.back(), 'V');
  EXPECT_EQ(read(reader, buf, sizeof buf), 0) << "the device is closed after the magic close";
  close(reader);
}

TEST_F(BoardWatchTest, StopsPettingWhenAStoreCommitFails) {
  StartWatch(Options());
  RunTicks(6);
  ASSERT_GE(watch->pets(), 2u);
  health.store_error = "fdatasync: Input/output error";
  RunTicks(1);
  EXPECT_EQ(watch->state(), BoardWatch::State::kFailed);
  EXPECT_NE(watch->problem().find("Input/output error"), std::string::npos) << watch->problem();
  std::uint64_t pets = watch->pets();
  std::string written = Slurp(watchdog);
  RunTicks(10);  // five pet intervals
  EXPECT_EQ(watch->pets(), pets);
  EXPECT_EQ(Slurp(watchdog), written) << "nothing is written once unhealthy";
  EXPECT_EQ(Brightness(), "0") << "LED off when unhealthy";
  // An unclean end (the daemon dies): no magic close, the hardware resets.
  watch.reset();
  EXPECT_EQ(Slurp(watchdog).find('V'), std::string::npos);
}

TEST_F(BoardWatchTest, StalledCommitsStopPettingUntilTheyMoveAgain) {
  StartWatch(Options());
  health.pending = 5;
  health.commits = 7;
  ASSERT_TRUE(loop.RunUntil([&] { return watch->state() == BoardWatch::State::kFailed; }, 10000));
  EXPECT_NE(watch->problem().find("stalled"), std::string::npos) << watch->problem();
  std::uint64_t pets = watch->pets();
  RunTicks(10);
  EXPECT_EQ(watch->pets(), pets) << "a stalled store is not petted";
  health.commits = 8;  // the slow disk answered
  RunTicks(4);
  EXPECT_NE(watch->state(), BoardWatch::State::kFailed);
  EXPECT_GT(watch->pets(), pets);
}

TEST_F(BoardWatchTest, AStalledLoopDoesNotPet) {
  StartWatch(Options());
  RunTicks(3);
  // A callback that blocks the loop thread for ten pet intervals: no tick
  // can run meanwhile, so the watchdog hears nothing.
  std::size_t before = 0, after = 0;
  bool ran = false;
  loop.Post([&] {
    before = Slurp(watchdog).size();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    after = Slurp(watchdog).size();
    ran = true;
  });
  ASSERT_TRUE(loop.RunUntil([&] { return ran; }, 10000));
  EXPECT_EQ(before, after);
  RunTicks(2);
  EXPECT_GT(Slurp(watchdog).size(), after) << "petting resumes once the loop turns again";
}

TEST_F(BoardWatchTest, LedFollowsTheStateAndGetsItsTriggerBack) {
  StartWatch(Options());
  EXPECT_EQ(Slurp(led + "/trigger"), "none");
  EXPECT_EQ(Brightness(), "255") << "healthy: on at max_brightness";
  health.busy = true;
  std::set<std::string> seen;
  for (int i = 0; i < 6; ++i) {
    RunTicks(1);
    seen.insert(Brightness());
  }
  EXPECT_EQ(watch->state(), BoardWatch::State::kBusy);
  EXPECT_EQ(seen, (std::set<std::string>{"0", "255"})) << "busy: blinking";
  health.busy = false;
  RunTicks(1);
  EXPECT_EQ(Brightness(), "255");
  health.store_error = "commit failed";
  RunTicks(1);
  EXPECT_EQ(Brightness(), "0");
  watch->Stop();
  EXPECT_EQ(Brightness(), "0");
  EXPECT_EQ(Slurp(led + "/trigger"), "heartbeat");
}

TEST_F(BoardWatchTest, NothingConfiguredTouchesNothing) {
  BoardWatchOptions o;
  o.tick_ms = 10;
  StartWatch(std::move(o));
  RunTicks(3);
  EXPECT_EQ(watch->pets(), 0u);
  watch->Stop();
  EXPECT_EQ(Slurp(watchdog), "");
  EXPECT_EQ(Brightness(), "0");
}

TEST_F(BoardWatchTest, AMissingDeviceIsAnErrorNamingIt) {
  BoardWatchOptions o = Options();
  o.watchdog = dir + "/no-such-watchdog";
  BoardWatch w(loop, std::move(o), [] { return HealthSample(); });
  Status st = w.Start();
  EXPECT_EQ(st.code(), Code::kNotFound);
  EXPECT_NE(st.ToString().find("no-such-watchdog"), std::string::npos) << st.ToString();
}

TEST_F(BoardWatchTest, AWrongLedNameDoesNotCostTheWatchdog) {
  BoardWatchOptions o = Options();
  o.led = "no-such-led";
  StartWatch(std::move(o));
  RunTicks(6);
  EXPECT_GE(watch->pets(), 2u);
  watch->Stop();
  EXPECT_EQ(Slurp(watchdog).back(), 'V');
}

TEST(BoardHardware, ComesFromTheBoardFilesAndTheConfigOverridesIt) {
  BoardHardware rpi4 = BoardHardwareOf("rpi4");
  EXPECT_EQ(rpi4.watchdog, "/dev/watchdog");
  EXPECT_EQ(rpi4.led, "ACT");
  EXPECT_EQ(rpi4.watchdog_interval_ms, 5000u);
  BoardHardware host = BoardHardwareOf("host");
  EXPECT_EQ(host.watchdog, "");
  EXPECT_EQ(host.led, "");

  auto c = ParseConfig(R"({"format": 1, "board": "rpi4",
                          "hardware": {"watchdog": "", "led": "led1", "watchdog_interval_ms": 2000}})", "t");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->watchdog, std::optional<std::string>(""));
  EXPECT_EQ(c->led, std::optional<std::string>("led1"));
  EXPECT_EQ(c->watchdog_interval_ms, std::optional<std::uint64_t>(2000));
  auto again = ParseConfig(ConfigToJson(*c), "t2");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->led, c->led);
  EXPECT_EQ(again->watchdog, c->watchdog);
  auto none = ParseConfig(R"({"format": 1})", "t");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->watchdog.has_value());
  auto bad = ParseConfig(R"({"format": 1, "hardware": {"wachdog": "/dev/watchdog"}})", "t");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().ToString().find("hardware.wachdog"), std::string::npos) << bad.status().ToString();
}

}  // namespace
}  // namespace cairn::platform
