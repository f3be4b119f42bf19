// Log sinks the platform provides (the daemon picks one from cairn.json's
// "log_sink"). Any thread.
#pragma once

#include <string_view>

#include "cairn/core/log.h"

namespace cairn::platform {

// Opens syslog (LOG_DAEMON, tagged "cairnd", with the pid) and returns a sink
// that writes each line at the matching priority.
LogSink OpenSyslogSink();

}  // namespace cairn::platform
