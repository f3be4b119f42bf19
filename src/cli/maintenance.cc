// `cairn maintenance set --every DURATION [--repair] [--add-lease]
// [--verify-every DURATION]`, `cairn maintenance show`, `cairn maintenance
// off`: the node's maintenance schedule (docs/check.md). Durations are a
// number with s, m, h or d (seconds without one). Single-threaded process.
#include <cjson/cJSON.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "cli/commands.h"
#include "cli/file_io.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char kUsage[] =
    "maintenance set --every DURATION [--repair] [--add-lease] [--verify-every DURATION] | show | off";

const cJSON* Obj(const cJSON* o, const char* k) { return o ? cJSON_GetObjectItemCaseSensitive(o, k) : nullptr; }
double Num(const cJSON* o, const char* k) {
  const cJSON* v = Obj(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

void PrintShow(const cJSON* r) {
  const cJSON* s = Obj(r, "schedule");
  if (!cJSON_IsObject(s)) {
    std::printf("maintenance: off\n");
  } else {
    std::printf("maintenance: every %.0f s%s%s", Num(s, "every_s"), cJSON_IsTrue(Obj(s, "repair")) ? ", repair" : "",
                cJSON_IsTrue(Obj(s, "add_lease")) ? ", add-lease" : "");
    if (Num(s, "verify_every_s") > 0) std::printf(", verify every %.0f s", Num(s, "verify_every_s"));
    std::printf("\n");
  }
  if (cJSON_IsTrue(Obj(r, "running"))) {
    std::printf(" running: task %.0f\n", Num(r, "running_task"));
  } else {
    std::printf(" next run: %s\n", UtcWhen(Num(r, "next_run_ms")).c_str());
  }
  std::printf(" passes: %.0f (%.0f deferred for client work)\n", Num(r, "passes"), Num(r, "deferred"));
  const cJSON* last = Obj(r, "last");
  if (cJSON_IsObject(last)) {
    const cJSON* state = Obj(last, "state");
    std::printf(
        " last pass: task %.0f %s at %s: %.0f objects checked, %.0f unhealthy, %.0f repaired, "
        "%.0f unrecoverable, %.0f leases renewed%s\n",
        Num(last, "task"), cJSON_IsString(state) ? state->valuestring : "?", UtcWhen(Num(last, "finished_ms")).c_str(),
        Num(last, "objects_checked"), Num(last, "unhealthy"), Num(last, "repaired"), Num(last, "unrecoverable"),
        Num(last, "leases_renewed"), cJSON_IsTrue(Obj(last, "verified")) ? " (verified)" : "");
  }
}

}  // namespace

int MaintenanceMain(const Options& opts) {
  if (IsHelp(opts) || opts.args.empty()) {
    std::printf(
        "usage: cairn [-d DIR] [--json] %s\n\n"
        "The node's maintenance schedule: every DURATION (7d, 12h, 30m, 90s) "
        "cairnd\n"
        "deep-checks every alias as a task (`cairn tasks`), with --repair and\n"
        "--add-lease as set, verifying every share once every --verify-every. "
        "A pass\n"
        "waits while other tasks run; two never run at once. `show` (and `cairn "
        "status`)\n"
        "gives the last pass and the next run. docs/check.md.\n",
        kUsage);
    return opts.args.empty() && !IsHelp(opts) ? 2 : 0;
  }
  const std::string verb = opts.args[0];
  Json params = Json::NewObject();
  std::string method;
  if (verb == "set") {
    method = "maintenance.set";
    std::uint64_t every = 0;
    for (std::size_t i = 1; i < opts.args.size(); ++i) {
      const std::string& a = opts.args[i];
      if ((a == "--every" || a == "--verify-every" || a == "--test-hold-ms") && i + 1 < opts.args.size()) {
        const std::string& v = opts.args[++i];
        // --test-hold-ms (tests only; cairnd refuses it without CAIRN_TEST_HOOKS) is a plain number.
        std::uint64_t secs = ParseDuration(v);
        if (secs == 0) return UsageError(kUsage, "bad duration \"" + v + "\" (like 7d, 12h, 30m, 90s)");
        if (a == "--every") every = secs;
        const char* key = a == "--every" ? "every_s" : a == "--verify-every" ? "verify_every_s" : "test_hold_ms";
        cJSON_AddNumberToObject(params.get(), key, static_cast<double>(secs));
      } else if (a == "--repair") {
        cJSON_AddBoolToObject(params.get(), "repair", true);
      } else if (a == "--add-lease") {
        cJSON_AddBoolToObject(params.get(), "add_lease", true);
      } else {
        return UsageError(kUsage, "unexpected argument \"" + a + "\"");
      }
    }
    if (every == 0) return UsageError(kUsage, "maintenance set needs --every DURATION");
  } else if (verb == "show" || verb == "off") {
    if (opts.args.size() > 1) return UsageError(kUsage, "maintenance " + verb + " takes no arguments");
    method = "maintenance." + verb;
  } else {
    return UsageError(kUsage, "unknown maintenance command \"" + verb + "\"");
  }
  return CallAndReport(opts, method, std::move(params), PrintShow);
}

}  // namespace cairn::cli
