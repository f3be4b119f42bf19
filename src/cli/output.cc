// cairn's shared output helpers. PrintProgress may be called from several
// threads of one command (cp's downloads); the rest from one thread.
#include "cli/output.h"

#include <cjson/cJSON.h>

#include <unistd.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <mutex>

#include "cairn/control/protocol.h"

namespace cairn::cli {

int Fail(const Options& opts, const Status& status) {
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddItemToObject(out.get(), "error", control::ErrorToJson(status).release());
    PrintJson(out);
  } else {
    std::fprintf(stderr, "cairn: %s\n", std::string(status.message().empty() ? CodeMeaning(status.code())
                                                                             : status.message())
                                            .c_str());
  }
  return CodeExitCode(status.code());
}

bool IsHelp(const Options& opts) {
  for (const std::string& a : opts.args) {
    if (a == "--help" || a == "-h") return true;
  }
  return false;
}

int UsageError(const char* usage, const std::string& message) {
  std::fprintf(stderr, "cairn: %s\nusage: cairn %s\n", message.c_str(), usage);
  return CodeExitCode(Code::kInvalidArgument);
}

namespace {

// cJSON prints a number with 15 significant digits when that reads back
// within a relative epsilon, so a time such as 1796596030.5910902 came out
// as 1796596030.59109, another double. The output gets the shortest digits
// that read back exactly instead (raw text; the tree is only printed).
void ExactNumbers(cJSON* parent) {
  for (cJSON* item = parent ? parent->child : nullptr; item != nullptr;) {
    cJSON* next = item->next;
    double d = item->valuedouble;
    bool small_int = std::trunc(d) == d && std::fabs(d) <= 2147483647.0;  // cJSON prints these with %d
    if (cJSON_IsNumber(item) && std::isfinite(d) && !small_int) {
      char buf[32];
      auto res = std::to_chars(buf, buf + sizeof(buf) - 1, d);
      *res.ptr = '\0';
      cJSON* raw = cJSON_CreateRaw(buf);
      if (raw != nullptr && cJSON_IsObject(parent) && item->string != nullptr) {
        cJSON_ReplaceItemInObjectCaseSensitive(parent, item->string, raw);  // keeps the member's name
      } else if (raw != nullptr) {
        cJSON_ReplaceItemViaPointer(parent, item, raw);
      }
    } else {
      ExactNumbers(item);
    }
    item = next;
  }
}

}  // namespace

void PrintJson(const Json& json) {
  ExactNumbers(json.get());
  std::printf("%s\n", json.PrintPretty().c_str());
}

void PrintProgress(const Options& opts, const cJSON* event) {
  if (opts.quiet || opts.json) return;
  const cJSON* phase = cJSON_GetObjectItemCaseSensitive(event, "phase");
  const cJSON* done = cJSON_GetObjectItemCaseSensitive(event, "done");
  const cJSON* total = cJSON_GetObjectItemCaseSensitive(event, "total");
  if (!cJSON_IsString(phase) || !cJSON_IsNumber(done) || !cJSON_IsNumber(total)) return;
  bool tty = isatty(STDERR_FILENO) == 1;
  if (!tty) {
    // A log or a pipe gets at most one line a second, the first after a
    // second of work, so a short command writes none and a long one stays
    // readable; a terminal gets every update, in place.
    // Several threads may report (cp's downloads): one clock for all.
    static std::mutex mu;
    static auto last = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> hold(mu);
    auto now = std::chrono::steady_clock::now();
    if (now - last < std::chrono::seconds(1)) return;
    last = now;
  }
  std::fprintf(stderr, "%s%s %.0f/%.0f%s", tty ? "\r\033[K" : "", phase->valuestring, done->valuedouble,
               total->valuedouble, tty ? "" : "\n");
  std::fflush(stderr);
}

std::uint64_t ParseDuration(const std::string& text) {
  std::uint64_t n = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    if (n > (1ull << 40)) return 0;
    n = n * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  if (i == 0) return 0;
  const std::string unit = text.substr(i);
  if (unit.empty() || unit == "s") return n;
  if (unit == "m") return n * 60;
  if (unit == "h") return n * 3600;
  if (unit == "d") return n * 86400;
  return 0;
}

std::string UtcWhen(double ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  char buf[64];
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string HumanBytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

bool ParseUint(const std::string& s, unsigned long long max, unsigned long long* out) {
  if (s.empty() || s.size() > 20) return false;
  unsigned long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    unsigned long long next = v * 10 + static_cast<unsigned>(c - '0');
    if (next / 10 != v) return false;
    v = next;
  }
  if (v > max) return false;
  *out = v;
  return true;
}

}  // namespace cairn::cli
