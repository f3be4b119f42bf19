// Log formatting and the level filter. Any thread.
#include "cairn/core/log.h"

#include <time.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace cairn {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<LogSink> g_sink{nullptr};
std::mutex g_last_error_mu;
LastError g_last_error;  // guarded by g_last_error_mu

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kError: return "ERROR";
    case LogLevel::kWarn: return "WARN";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kDebug: return "DEBUG";
  }
  return "?";
}

void StderrSink(LogLevel level, std::string_view line) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  tm tm_utc;
  gmtime_r(&ts.tv_sec, &tm_utc);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm_utc);
  std::fprintf(stderr, "%s.%03ldZ %-5s %.*s\n", stamp, ts.tv_nsec / 1000000, LevelName(level),
               static_cast<int>(line.size()), line.data());
}

}  // namespace

void SetLogLevel(LogLevel level) { g_level = static_cast<int>(level); }
LogLevel GetLogLevel() { return static_cast<LogLevel>(g_level.load()); }
void SetLogSink(LogSink sink) { g_sink = sink; }

LastError GetLastError() {
  std::lock_guard<std::mutex> lock(g_last_error_mu);
  return g_last_error;
}

bool ParseLogLevel(std::string_view name, LogLevel* out) {
  static constexpr std::pair<std::string_view, LogLevel> kNames[] = {
      {"error", LogLevel::kError}, {"warn", LogLevel::kWarn}, {"info", LogLevel::kInfo}, {"debug", LogLevel::kDebug}};
  for (const auto& [n, l] : kNames) {
    if (n == name) {
      *out = l;
      return true;
    }
  }
  return false;
}

void LogMessage(LogLevel level, const char* file, int line, const char* fmt, ...) {
  char buf[1024];
  const char* base = std::strrchr(file, '/');
  int n = std::snprintf(buf, sizeof buf, "%s:%d: ", base ? base + 1 : file, line);
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(buf + n, sizeof buf - static_cast<size_t>(n), fmt, ap);
  va_end(ap);
  size_t len = static_cast<size_t>(n) + (m < 0 ? 0 : static_cast<size_t>(m));
  if (len >= sizeof buf) len = sizeof buf - 1;  // truncated, still one line
  if (level == LogLevel::kError) {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    std::lock_guard<std::mutex> lock(g_last_error_mu);
    g_last_error.line.assign(buf, len);
    g_last_error.wall_ms = static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec / 1000000);
  }
  LogSink sink = g_sink.load();
  (sink ? sink : StderrSink)(level, std::string_view(buf, len));
}

}  // namespace cairn
