// BoardWatch on Linux: the watchdog is a /dev/watchdog-style character device
// (any byte written pets it; 'V' written just before close disarms it, unless
// the kernel was built with nowayout), the LED a /sys/class/leds/<name>
// directory ("trigger" set to "none" so "brightness" is ours). Loop thread.
#include "cairn/platform/board_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "cairn/core/log.h"

namespace cairn::platform {
namespace {

struct HardwareRow {
  const char* board;
  const char* key;
  const char* value;
};

// {"board", "key", "value"} from the HW_ lines of boards/*.mk (boards/image.mk).
const HardwareRow kHardware[] = {
#include "board_hardware.inc"
};

Status Errno(const char* what, const std::string& path, int err) {
  std::string msg = std::string(what) + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) return Status::NotFound(msg);
  return Status::IoError(msg);
}

// A small sysfs attribute, whole ("" if unreadable).
std::string ReadAttribute(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return "";
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
}

Status WriteAttribute(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return Errno("open", path, errno);
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) return Errno("write", path, n < 0 ? err : EIO);
  return Status();
}

}  // namespace

BoardHardware BoardHardwareOf(std::string_view board) {
  BoardHardware hw;
  for (const HardwareRow& r : kHardware) {
    if (board != r.board) continue;
    std::string_view key = r.key;
    if (key == "watchdog") hw.watchdog = r.value;
    if (key == "led") hw.led = r.value;
    if (key == "watchdog_interval_ms") hw.watchdog_interval_ms = std::strtoull(r.value, nullptr, 10);
  }
  return hw;
}

BoardWatch::BoardWatch(Loop& loop, BoardWatchOptions options, Callback<HealthSample()> sample)
    : loop_(loop), opts_(std::move(options)), sample_(std::move(sample)) {}

BoardWatch::~BoardWatch() {
  // No magic close here: a daemon that did not stop cleanly must still be
  // reset by the hardware.
  if (watchdog_fd_ >= 0) ::close(watchdog_fd_);
}

Status BoardWatch::Start() {
  // The watchdog first: if it cannot be opened there is nothing to undo.
  if (!opts_.watchdog.empty()) {
    watchdog_fd_ = ::open(opts_.watchdog.c_str(), O_WRONLY | O_CLOEXEC | O_NONBLOCK);
    if (watchdog_fd_ < 0) return Errno("open watchdog", opts_.watchdog, errno);
  }
  // A wrong LED name must not cost the board its watchdog: say so, go on.
  if (!opts_.led.empty()) {
    if (Status st = OpenLed(); !st.ok()) CAIRN_LOG(Error, "status LED: %s; running without it", st.ToString().c_str());
  }
  // A pet interval shorter than the tick shortens the tick.
  if (watchdog_fd_ >= 0 && opts_.watchdog_interval_ms > 0) {
    opts_.tick_ms = std::min(opts_.tick_ms, opts_.watchdog_interval_ms);
  }
  started_ = true;
  progress_ms_ = loop_.NowMs();
  last_pet_ms_ = 0;
  Tick();
  return Status();
}

Status BoardWatch::OpenLed() {
  // A name is looked up under led_root; a path names the directory itself.
  std::string dir = opts_.led.find('/') == std::string::npos ? opts_.led_root + "/" + opts_.led : opts_.led;
  // "none [mmc0] timer": the current trigger is the bracketed one.
  std::string triggers = ReadAttribute(dir + "/trigger");
  std::size_t open = triggers.find('['), close = triggers.find(']');
  if (open != std::string::npos && close != std::string::npos && close > open) {
    led_old_trigger_ = triggers.substr(open + 1, close - open - 1);
  }
  CAIRN_TRY(WriteAttribute(dir + "/trigger", "none"));
  std::string max = ReadAttribute(dir + "/max_brightness");
  while (!max.empty() && (max.back() == '\n' || max.back() == ' ')) max.pop_back();
  if (!max.empty() && max != "0") led_on_value_ = max;
  led_dir_ = dir;
  return Status();
}

void BoardWatch::Stop() {
  if (!started_) return;
  started_ = false;
  timer_.reset();
  if (watchdog_fd_ >= 0) {
    // The magic close: 'V' then close disarms the watchdog.
    if (::write(watchdog_fd_, "V", 1) != 1) {
      CAIRN_LOG(Warn, "watchdog %s: magic close failed: %s", opts_.watchdog.c_str(), std::strerror(errno));
    }
    ::close(watchdog_fd_);
    watchdog_fd_ = -1;
  }
  if (!led_dir_.empty()) {
    SetLed(false);
    if (!led_old_trigger_.empty()) (void)WriteAttribute(led_dir_ + "/trigger", led_old_trigger_);
    led_dir_.clear();
  }
}

const char* BoardWatch::StateName(State s) {
  switch (s) {
    case State::kHealthy: return "healthy";
    case State::kBusy: return "busy";
    case State::kFailed: return "failed";
  }
  return "failed";
}

void BoardWatch::Check() {
  HealthSample h = sample_();
  std::uint64_t now = loop_.NowMs();
  if (h.commits != last_commits_ || h.pending == 0) {
    last_commits_ = h.commits;
    progress_ms_ = now;
  }
  std::string problem;
  if (!h.store_error.empty()) {
    problem = "store commit failed: " + h.store_error;
  } else if (now - progress_ms_ >= opts_.stall_ms) {
    problem = "store commits stalled: " + std::to_string(h.pending) + " writes pending, no commit for " +
              std::to_string(now - progress_ms_) + " ms";
  }
  State next = !problem.empty() ? State::kFailed : (h.busy || h.pending > 0) ? State::kBusy : State::kHealthy;
  if (next == State::kFailed && state_ != State::kFailed) {
    CAIRN_LOG(Error, "unhealthy, no longer petting the watchdog: %s", problem.c_str());
  } else if (next != State::kFailed && state_ == State::kFailed) {
    CAIRN_LOG(Warn, "healthy again, petting the watchdog");
  }
  state_ = next;
  problem_ = std::move(problem);
}

void BoardWatch::Tick() {
  if (!started_) return;
  Check();
  std::uint64_t now = loop_.NowMs();
  if (state_ != State::kFailed && watchdog_fd_ >= 0 &&
      (pets_ == 0 || now - last_pet_ms_ >= opts_.watchdog_interval_ms)) {
    // One byte, never 'V' (that would arm the magic close).
    if (::write(watchdog_fd_, ".", 1) == 1) {
      ++pets_;
      last_pet_ms_ = now;
    } else {
      CAIRN_LOG(Warn, "watchdog %s: %s", opts_.watchdog.c_str(), std::strerror(errno));
    }
  }
  switch (state_) {
    case State::kHealthy: SetLed(true); break;
    case State::kBusy: SetLed(led_value_ != 1); break;
    case State::kFailed: SetLed(false); break;
  }
  timer_ = loop_.PostAfter(opts_.tick_ms, [this] { Tick(); });
}

void BoardWatch::SetLed(bool on) {
  if (led_dir_.empty() || led_value_ == (on ? 1 : 0)) return;
  Status st = WriteAttribute(led_dir_ + "/brightness", on ? led_on_value_ : "0");
  if (!st.ok()) {
    CAIRN_LOG(Warn, "status LED: %s", st.ToString().c_str());
    return;
  }
  led_value_ = on ? 1 : 0;
}

}  // namespace cairn::platform
