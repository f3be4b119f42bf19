// `cairn status`: the running node's identity (and NURL), listeners, memory
// and loop, and a line per scheduled backup.
#include <cjson/cJSON.h>

#include <cstdio>
#include <ctime>
#include <string>

#include "cairn/gbs/nurl.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char* Str(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "?";
}

double Num(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

// One line per backup schedule (docs/dirs.md, "Scheduled backups"): its
// target and source, its last run's result, and its next run.
void PrintBackupSchedules(const cJSON* r) {
  const cJSON* schedules = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "backup_schedules"),
                                                            "schedules");
  const cJSON* s;
  cJSON_ArrayForEach(s, schedules) {
    std::string line = std::string(Str(s, "target")) + " <- " + Str(s, "from") + ": ";
    const cJSON* last = cJSON_GetObjectItemCaseSensitive(s, "last");
    char buf[160];
    if (cJSON_IsObject(last)) {
      std::snprintf(buf, sizeof buf, "last run %s at %s (%.0f uploaded, %.0f reused, %.0f skipped)", Str(last, "state"),
                    UtcWhen(Num(last, "finished_ms")).c_str(), Num(last, "files_uploaded"), Num(last, "files_reused"),
                    Num(last, "files_skipped"));
      line += buf;
      const cJSON* error = cJSON_GetObjectItemCaseSensitive(last, "error");
      if (cJSON_IsString(error)) line += std::string(": ") + error->valuestring;
    } else {
      line += "never run";
    }
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "running"))) {
      std::snprintf(buf, sizeof buf, "; running now (task %.0f)", Num(s, "running_task"));
    } else {
      std::snprintf(buf, sizeof buf, "; next run %s", UtcWhen(Num(s, "next_run_ms")).c_str());
    }
    line += buf;
    std::printf("  backup     %s\n", line.c_str());
  }
}

}  // namespace

int StatusMain(const Options& opts) {
  if (!opts.args.empty()) {
    if (opts.args[0] == "--help" || opts.args[0] == "-h") {
      std::printf("usage: cairn [-d DIR] [--json] status\n\nThe running node at a glance: identity, listeners, memory, loop, shares and\n"
                  "space, maintenance, scheduled backups (each one's last run and next run),\n"
                  "tasks, and the last error it logged; also the node's NURL, read from its\n"
                  "directory (it carries the swissnum). --json gives every field.\n");
      return 0;
    }
    return UsageError("status", "status takes no arguments");
  }
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto result = client.Call("status", Json());
  if (!result.ok()) return Fail(opts, result.status());
  // The NURL is read from the node directory, as `cairn nurl` does (the
  // daemon does not repeat its swissnum over the socket). A directory this
  // user cannot read it from leaves it out.
  auto nurl = NodeNurl(opts.node_dir);
  if (opts.json) {
    if (nurl.ok()) cJSON_AddStringToObject(result->get(), "nurl", gbs::FormatNurl(*nurl).c_str());
    PrintJson(*result);
    return 0;
  }
  const cJSON* r = result->get();
  std::printf("cairnd %s, node %s\n", Str(r, "version"), Str(r, "node_id"));
  if (nurl.ok()) std::printf("  nurl       %s\n", gbs::FormatNurl(*nurl).c_str());
  std::printf("  nickname   %s\n", Str(r, "nickname"));
  std::printf("  board      %s\n", Str(r, "board"));
  std::printf("  pid        %.0f, up %.0f s\n", Num(r, "pid"), Num(r, "uptime_s"));
  std::printf("  store      %s\n", Str(r, "store_path"));
  const cJSON* listening = cJSON_GetObjectItemCaseSensitive(r, "listening");
  const cJSON* l;
  cJSON_ArrayForEach(l, listening) { std::printf("  listening  %-8s %s\n", Str(l, "kind"), Str(l, "address")); }
  const cJSON* rss = cJSON_GetObjectItemCaseSensitive(r, "rss");
  std::printf("  memory     %s anonymous, %s file-backed\n", HumanBytes(Num(rss, "anon_bytes")).c_str(),
              HumanBytes(Num(rss, "file_bytes")).c_str());
  const cJSON* loop = cJSON_GetObjectItemCaseSensitive(r, "loop");
  std::printf("  loop       %.0f iterations, longest %.2f ms\n", Num(loop, "iterations"),
              Num(loop, "max_busy_us") / 1000.0);
  const cJSON* store = cJSON_GetObjectItemCaseSensitive(r, "store");
  if (store) {
    std::printf("  shares     %.0f held%s\n", Num(store, "shares"),
                cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(store, "read_only")) ? " (read-only)" : "");
    if (cJSON_GetObjectItemCaseSensitive(store, "available_bytes")) {
      std::printf("  space      %s used, %s available, %s in uploads\n", HumanBytes(Num(store, "used_bytes")).c_str(),
                  HumanBytes(Num(store, "available_bytes")).c_str(), HumanBytes(Num(store, "incoming_bytes")).c_str());
    }
    const cJSON* full = cJSON_GetObjectItemCaseSensitive(store, "full");
    if (full) {
      std::time_t since = static_cast<std::time_t>(Num(full, "since_ms") / 1000);
      struct tm tm_utc {};
      char when[32] = "";
      gmtime_r(&since, &tm_utc);
      std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm_utc);
      std::printf("  STORE FULL since %s: %s (needs %s)\n", when, Str(full, "reason"),
                  HumanBytes(Num(full, "needed_bytes")).c_str());
    }
    const cJSON* we = cJSON_GetObjectItemCaseSensitive(store, "write_error");
    if (cJSON_IsString(we)) std::printf("  WRITES STOPPED: %s\n", we->valuestring);
  }
  const cJSON* maint = cJSON_GetObjectItemCaseSensitive(r, "maintenance");
  const cJSON* maint_last = cJSON_GetObjectItemCaseSensitive(maint, "last");
  if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(maint, "schedule")) || cJSON_IsObject(maint_last)) {
    std::printf("  maintenance %.0f passes, last %.0f checked, %.0f unhealthy, %.0f repaired, %.0f unrecoverable\n",
                Num(maint, "passes"), Num(maint_last, "objects_checked"), Num(maint_last, "unhealthy"),
                Num(maint_last, "repaired"), Num(maint_last, "unrecoverable"));
  }
  PrintBackupSchedules(r);
  const cJSON* tasks = cJSON_GetObjectItemCaseSensitive(r, "tasks");
  const cJSON* by_state = cJSON_GetObjectItemCaseSensitive(tasks, "by_state");
  std::printf("  tasks      %.0f running, %.0f queued, %.0f failed (of %.0f kept)\n", Num(by_state, "running"),
              Num(by_state, "queued"), Num(by_state, "failed"), Num(tasks, "kept"));
  const cJSON* last = cJSON_GetObjectItemCaseSensitive(r, "last_error");
  if (last) std::printf("  last error %s\n", Str(last, "message"));
  return 0;
}

}  // namespace cairn::cli
