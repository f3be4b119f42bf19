// The syslog log sink for images, where stderr goes nowhere. Any thread.
#include <syslog.h>

#include "cairn/platform/log_sinks.h"

namespace cairn::platform {
namespace {

void SyslogSink(LogLevel level, std::string_view line) {
  int prio = LOG_INFO;
  switch (level) {
    case LogLevel::kError: prio = LOG_ERR; break;
    case LogLevel::kWarn: prio = LOG_WARNING; break;
    case LogLevel::kInfo: prio = LOG_INFO; break;
    case LogLevel::kDebug: prio = LOG_DEBUG; break;
  }
  syslog(prio, "%.*s", static_cast<int>(line.size()), line.data());
}

}  // namespace

LogSink OpenSyslogSink() {
  openlog("cairnd", LOG_PID | LOG_NDELAY, LOG_DAEMON);
  return SyslogSink;
}

}  // namespace cairn::platform
