// Shared output rules of the cairn command: errors to stderr for people, or
// the protocol's error object on stdout with --json; the exit code always
// comes from error_codes.def. Single-threaded.
#pragma once

#include <cstdint>
#include <string>

#include "cairn/core/json.h"
#include "cairn/core/status.h"
#include "cli/cli.h"

namespace cairn::cli {

// Reports `status` (non-OK) and returns the exit code for it.
int Fail(const Options& opts, const Status& status);
// Usage error: message and usage line on stderr, exit 2.
int UsageError(const char* usage, const std::string& message);
// True when the arguments ask for help (--help or -h anywhere).
bool IsHelp(const Options& opts);
// Prints a result object as one JSON document on stdout (with --json).
void PrintJson(const Json& json);

// "7d", "12h", "30m", "2s", "90": seconds; 0 if malformed.
std::uint64_t ParseDuration(const std::string& text);

// A wall-clock time in ms as "YYYY-MM-DD HH:MM:SS UTC"; "-" for 0 (never).
std::string UtcWhen(double ms);
// A task's progress event on stderr (nothing with -q): "phase done/total",
// rewritten in place on a terminal.
void PrintProgress(const Options& opts, const cJSON* event);
// "12.3 MiB"
std::string HumanBytes(double bytes);
// Parses a decimal number; false on anything else.
bool ParseUint(const std::string& s, unsigned long long max, unsigned long long* out);

}  // namespace cairn::cli
