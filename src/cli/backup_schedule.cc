// `cairn backup schedule add FROM ALIAS:TO --every DURATION [--exclude
// PATTERN]... [--exclude-from FILE] [--exclude-vcs]`, `cairn backup schedule
// list`, `cairn backup schedule remove ALIAS:TO` (docs/dirs.md, "Scheduled backups"):
// the node's scheduled backups, each run by cairnd as the `backup` method's
// tasks. Durations are a number with s, m, h or d (seconds without one).
// Single-threaded process.
#include <cjson/cJSON.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/file_io.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char kUsage[] =
    "backup schedule add FROM ALIAS:TO --every DURATION [--exclude PATTERN]... [--exclude-from FILE] "
    "[--exclude-vcs] | list | remove ALIAS:TO";

const cJSON* Obj(const cJSON* o, const char* k) { return o ? cJSON_GetObjectItemCaseSensitive(o, k) : nullptr; }
double Num(const cJSON* o, const char* k) {
  const cJSON* v = Obj(o, k);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}
std::string Str(const cJSON* o, const char* k) {
  const cJSON* v = Obj(o, k);
  return cJSON_IsString(v) ? v->valuestring : "";
}

void PrintList(const cJSON* r) {
  const cJSON* list = Obj(r, "schedules");
  if (cJSON_GetArraySize(list) == 0) std::printf("no scheduled backups\n");
  const cJSON* s;
  cJSON_ArrayForEach(s, list) {
    std::printf("%s <- %s every %.0f s\n", Str(s, "target").c_str(), Str(s, "from").c_str(), Num(s, "every_s"));
    if (cJSON_IsTrue(Obj(s, "running"))) {
      std::printf(" running: task %.0f\n", Num(s, "running_task"));
    } else {
      std::printf(" next run: %s\n", UtcWhen(Num(s, "next_run_ms")).c_str());
    }
    std::printf(" runs: %.0f\n", Num(s, "runs"));
    const cJSON* last = Obj(s, "last");
    if (cJSON_IsObject(last)) {
      std::printf(" last run: task %.0f %s at %s: %.0f files uploaded, %.0f reused, %.0f skipped", Num(last, "task"),
                  Str(last, "state").c_str(), UtcWhen(Num(last, "finished_ms")).c_str(), Num(last, "files_uploaded"),
                  Num(last, "files_reused"), Num(last, "files_skipped"));
      if (!Str(last, "error").empty()) std::printf(" (%s)", Str(last, "error").c_str());
      std::printf("\n");
    }
  }
}

}  // namespace

int BackupScheduleMain(const Options& opts) {
  if (IsHelp(opts) || opts.args.empty()) {
    std::printf(
        "usage: cairn [-d DIR] [--json] %s\n\n"
        "Backs up FROM into ALIAS:TO every DURATION (1d, 12h, 30m, 90s), in cairnd,\n"
        "as `cairn backup` does (the same tasks, see `cairn tasks`). A run that is due\n"
        "while another backup of TO runs waits for it; two never overlap. The\n"
        "schedules survive a restart; `list` (and `cairn status`) shows each one's\n"
        "last run and next run. docs/dirs.md, \"Scheduled backups\".\n",
        kUsage);
    return opts.args.empty() && !IsHelp(opts) ? 2 : 0;
  }
  const std::string verb = opts.args[0];
  Json params = Json::NewObject();
  std::string method;
  if (verb == "add") {
    method = "backup.schedule.add";
    std::vector<std::string> pos;
    cJSON* excludes = cJSON_CreateArray();
    cJSON_AddItemToObject(params.get(), "exclude", excludes);
    std::uint64_t every = 0;
    for (std::size_t i = 1; i < opts.args.size(); ++i) {
      const std::string& a = opts.args[i];
      if (a == "--every" || a == "--exclude" || a == "--exclude-from") {
        if (i + 1 >= opts.args.size()) return UsageError(kUsage, a + " needs a value");
        const std::string& v = opts.args[++i];
        if (a == "--every") {
          every = ParseDuration(v);
          if (every == 0) return UsageError(kUsage, "bad duration \"" + v + "\" (like 1d, 12h, 30m, 90s)");
        } else if (a == "--exclude") {
          cJSON_AddItemToArray(excludes, cJSON_CreateString(v.c_str()));
        } else {
          std::ifstream in(v);
          if (!in) return Fail(opts, Status::NotFound("cannot read " + v));
          std::string line;
          while (std::getline(in, line)) {
            const auto b = line.find_first_not_of(" \t\r\n");
            const auto e = line.find_last_not_of(" \t\r\n");
            if (b == std::string::npos) continue;
            cJSON_AddItemToArray(excludes, cJSON_CreateString(line.substr(b, e - b + 1).c_str()));
          }
        }
      } else if (a == "--exclude-vcs") {
        cJSON_AddBoolToObject(params.get(), "exclude_vcs", true);
      } else if (!a.empty() && a[0] == '-') {
        return UsageError(kUsage, "unexpected option \"" + a + "\"");
      } else {
        pos.push_back(a);
      }
    }
    if (pos.size() != 2) return UsageError(kUsage, "backup schedule add takes FROM and ALIAS:TO");
    if (every == 0) return UsageError(kUsage, "backup schedule add needs --every DURATION");
    char real[PATH_MAX];
    if (!realpath(pos[0].c_str(), real)) return Fail(opts, Status::NotFound("no such directory: " + pos[0]));
    cJSON_AddStringToObject(params.get(), "from", real);
    cJSON_AddStringToObject(params.get(), "to", pos[1].c_str());
    cJSON_AddNumberToObject(params.get(), "every_s", static_cast<double>(every));
  } else if (verb == "list") {
    if (opts.args.size() > 1) return UsageError(kUsage, "backup schedule list takes no arguments");
    method = "backup.schedule.list";
  } else if (verb == "remove") {
    if (opts.args.size() != 2) return UsageError(kUsage, "backup schedule remove takes ALIAS:TO");
    method = "backup.schedule.remove";
    cJSON_AddStringToObject(params.get(), "to", opts.args[1].c_str());
  } else {
    return UsageError(kUsage, "unknown backup schedule command \"" + verb + "\"");
  }
  return CallAndReport(opts, method, std::move(params), PrintList);
}

}  // namespace cairn::cli
