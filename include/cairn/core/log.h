// Logging: CAIRN_LOG(INFO, "format %s", arg). Lines go to a sink the daemon
// chooses (stderr by default; syslog through the platform layer on images).
// Any thread; each line is written whole.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace cairn {

enum class LogLevel { kError = 0, kWarn = 1, kInfo = 2, kDebug = 3 };

// A sink receives one formatted line without its trailing newline.
using LogSink = void (*)(LogLevel level, std::string_view line);

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "error", "warn", "info", "debug"; false if unknown.
bool ParseLogLevel(std::string_view name, LogLevel* out);
// nullptr restores the stderr sink.
void SetLogSink(LogSink sink);

// The most recent Error line and its wall-clock time (ms since the epoch),
// for `cairn status`; empty and 0 before any. Any thread.
struct LastError {
  std::string line;
  std::uint64_t wall_ms = 0;
};
LastError GetLastError();

void LogMessage(LogLevel level, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

}  // namespace cairn

#define CAIRN_LOG(level, ...)                                                          \
  do {                                                                                 \
    if (::cairn::LogLevel::k##level <= ::cairn::GetLogLevel())                         \
      ::cairn::LogMessage(::cairn::LogLevel::k##level, __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
// Levels: CAIRN_LOG(Error, ...), CAIRN_LOG(Warn, ...), CAIRN_LOG(Info, ...), CAIRN_LOG(Debug, ...).
