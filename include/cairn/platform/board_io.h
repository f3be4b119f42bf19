// The board's hardware status outputs: a watchdog device that resets the
// board unless it is written to regularly, and a status LED.
//
// BoardWatch pets the watchdog ONLY while the daemon is healthy: its loop
// iterates (the pet runs from a loop timer, so a stalled loop stops it) and
// its store commits (a failed commit, or queued writes that commit nothing
// for `stall_ms`, stop it too). The hardware then resets the board, which is
// the point: a wedged NAS comes back by itself.
//
// The LED says the same to someone looking at the box:
//   on, steady        healthy and idle
//   blinking (1 Hz)   healthy and busy (requests or queued writes)
//   off               unhealthy (the watchdog is no longer petted), or stopped
// On a clean stop the LED gets back the kernel trigger it had before.
//
// Cost on the loop thread: one timer every `tick_ms`; a tick reads a few
// counters and makes at most one write(2) of one byte to the watchdog and
// one open/write/close of a sysfs attribute, only when the LED changes. Both
// files are opened O_NONBLOCK: a device write never waits.
//
// Board values come from boards/<name>.mk (HW_ lines) and may be overridden
// by the node's cairn.json ("hardware" keys). Loop thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "cairn/core/callback.h"
#include "cairn/core/loop.h"
#include "cairn/core/status.h"

namespace cairn::platform {

// One board's hardware, from the HW_ lines of boards/<name>.mk.
struct BoardHardware {
  std::string watchdog;                    // device path ("" = none)
  std::uint64_t watchdog_interval_ms = 5000;  // how often it is petted
  std::string led;                         // name under /sys/class/leds ("" = none)
};

// The hardware of a board compiled into this binary (every boards/*.mk);
// a board without HW_ lines (or unknown) has none.
BoardHardware BoardHardwareOf(std::string_view board);

// What the daemon reports to BoardWatch every tick.
struct HealthSample {
  std::uint64_t commits = 0;   // store transactions committed so far
  std::uint64_t pending = 0;   // store writes queued or committing
  std::string store_error;     // a failed commit ("" = none)
  bool busy = false;           // requests in progress
};

struct BoardWatchOptions {
  std::string watchdog;                     // device path ("" = none)
  std::uint64_t watchdog_interval_ms = 5000;
  std::string led;                          // LED name under led_root, or a directory path ("" = none)
  std::string led_root = "/sys/class/leds";  // tests point it at a directory laid out the same
  std::uint64_t tick_ms = 500;              // health check and LED blink period (at most the pet interval)
  std::uint64_t stall_ms = 60000;           // pending writes with no commit this long = stalled
};

class BoardWatch {
 public:
  enum class State { kHealthy, kBusy, kFailed };

  BoardWatch(Loop& loop, BoardWatchOptions options, Callback<HealthSample()> sample);
  ~BoardWatch();  // without Stop(): closes the device WITHOUT the magic 'V'
  BoardWatch(const BoardWatch&) = delete;
  BoardWatch& operator=(const BoardWatch&) = delete;

  // Opens the watchdog (which starts it) and takes over the LED; pets once
  // and starts the timer. An error names the watchdog device if it cannot be
  // opened; an LED that cannot be used is only logged (the watchdog matters).
  Status Start();
  // Clean shutdown: writes the magic 'V' so the watchdog stops counting,
  // turns the LED off and gives it back its previous trigger. Idempotent.
  void Stop();

  State state() const { return state_; }
  // "healthy", "busy" or "failed", for status output.
  static const char* StateName(State s);
  std::uint64_t pets() const { return pets_; }
  // Why the state is kFailed ("" otherwise).
  const std::string& problem() const { return problem_; }

 private:
  void Tick();
  void Check();
  void SetLed(bool on);
  Status OpenLed();

  Loop& loop_;
  BoardWatchOptions opts_;
  Callback<HealthSample()> sample_;
  std::unique_ptr<Timer> timer_;
  int watchdog_fd_ = -1;
  std::string led_dir_;          // "" = no LED
  std::string led_on_value_ = "1";
  std::string led_old_trigger_;  // restored by Stop()
  int led_value_ = -1;           // last written: 0, 1, or -1 unknown
  State state_ = State::kHealthy;
  std::string problem_;
  std::uint64_t pets_ = 0;
  std::uint64_t last_pet_ms_ = 0;
  std::uint64_t last_commits_ = 0;
  std::uint64_t progress_ms_ = 0;  // when commits last moved, or nothing was pending
  bool started_ = false;
};

}  // namespace cairn::platform
