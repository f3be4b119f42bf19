// `cairn tasks list | show ID | wait ID | cancel ID`: the daemon's task records.
#include <cjson/cJSON.h>

#include <cstdio>
#include <ctime>

#include "cairn/control/protocol.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char kUsage[] = "tasks list | tasks show ID | tasks wait ID | tasks cancel ID";

const char* Str(const cJSON* o, const char* key, const char* dflt = "") {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : dflt;
}

double Num(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

std::string When(double ms) {
  if (ms <= 0) return "-";
  std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm;
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

void PrintRecord(const cJSON* r) {
  std::printf("task %.0f  %s  %s\n", Num(r, "id"), Str(r, "kind"), Str(r, "state"));
  std::printf("  submitted  %s\n", When(Num(r, "submitted_ms")).c_str());
  if (Num(r, "started_ms") > 0) std::printf("  started    %s\n", When(Num(r, "started_ms")).c_str());
  if (Num(r, "finished_ms") > 0) std::printf("  finished   %s\n", When(Num(r, "finished_ms")).c_str());
  const cJSON* keys = cJSON_GetObjectItemCaseSensitive(r, "keys");
  const cJSON* k;
  cJSON_ArrayForEach(k, keys) { std::printf("  holds      %s (%s)\n", Str(k, "key"), Str(k, "mode")); }
  const cJSON* waits = cJSON_GetObjectItemCaseSensitive(r, "waiting_on");
  cJSON_ArrayForEach(k, waits) { std::printf("  waits on   %s, held by task %.0f\n", Str(k, "key"), Num(k, "held_by")); }
  const cJSON* p = cJSON_GetObjectItemCaseSensitive(r, "progress");
  if (p) std::printf("  progress   %s %.0f/%.0f\n", Str(p, "phase"), Num(p, "done"), Num(p, "total"));
  const cJSON* e = cJSON_GetObjectItemCaseSensitive(r, "error");
  if (e) std::printf("  error      %s: %s\n", Str(e, "code"), Str(e, "message"));
}

Result<unsigned long long> IdArg(const Options& opts) {
  unsigned long long id;
  if (opts.args.size() != 2 || !ParseUint(opts.args[1], 1ULL << 53, &id)) {
    return Status::InvalidArgument("tasks " + (opts.args.empty() ? std::string("?") : opts.args[0]) + " takes one task id");
  }
  return id;
}

}  // namespace

int TasksMain(const Options& opts) {
  if (opts.args.empty() || opts.args[0] == "--help" || opts.args[0] == "-h") {
    std::printf("usage: cairn %s\n\n"
                "list     every kept task record, newest first\n"
                "show     one task: state, resources it holds or waits on, progress, result\n"
                "wait     wait for a task to end; the exit code is the task's outcome\n"
                "cancel   cancel a queued task, or ask a running one to stop\n",
                kUsage);
    return opts.args.empty() ? 2 : 0;
  }
  const std::string& verb = opts.args[0];
  std::string method;
  Json params = Json::NewObject();
  if (verb == "list") {
    if (opts.args.size() != 1) return UsageError(kUsage, "tasks list takes no arguments");
    method = "tasks.list";
  } else if (verb == "show" || verb == "wait" || verb == "cancel") {
    auto id = IdArg(opts);
    if (!id.ok()) return UsageError(kUsage, std::string(id.status().message()));
    cJSON_AddNumberToObject(params.get(), "id", static_cast<double>(*id));
    method = "tasks." + verb;
  } else {
    return UsageError(kUsage, "unknown tasks command \"" + verb + "\"");
  }
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto result = client.Call(method, std::move(params));
  if (!result.ok()) return Fail(opts, result.status());
  const cJSON* r = result->get();
  if (opts.json) {
    PrintJson(*result);
  } else if (verb == "list") {
    const cJSON* tasks = cJSON_GetObjectItemCaseSensitive(r, "tasks");
    std::printf("%-6s %-10s %-16s %-19s %s\n", "ID", "STATE", "KIND", "SUBMITTED", "ERROR");
    const cJSON* t;
    cJSON_ArrayForEach(t, tasks) {
      const cJSON* e = cJSON_GetObjectItemCaseSensitive(t, "error");
      std::printf("%-6.0f %-10s %-16s %-19s %s\n", Num(t, "id"), Str(t, "state"), Str(t, "kind"),
                  When(Num(t, "submitted_ms")).c_str(), e ? Str(e, "code") : "");
    }
  } else if (verb == "cancel") {
    std::printf("task %.0f: %s\n", Num(r, "task"), Str(r, "state"));
  } else {
    PrintRecord(r);
  }
  if (verb == "wait") {
    const cJSON* e = cJSON_GetObjectItemCaseSensitive(r, "error");
    if (e) return CodeExitCode(control::ErrorFromJson(e).code());
  }
  return 0;
}

}  // namespace cairn::cli
