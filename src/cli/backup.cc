// `cairn backup FROM ALIAS:TO` (docs/dirs.md, "Backups"): asks cairnd's
// `backup` method to back up the local directory FROM into TO with
// Tahoe-LAFS's layout, shows its progress as Tahoe's "Backing up N/M..."
// lines, and prints Tahoe's summary lines and exit code (0, or 2 when
// anything was skipped). Single-threaded process.
#include <cjson/cJSON.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cairn/core/clock.h"
#include "cli/client.h"
#include "cli/dirs.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char kUsage[] =
    "backup FROM ALIAS:TO [--exclude PATTERN]... [--exclude-from FILE] [--exclude-vcs] [--ignore-timestamps] [-v]";

double Num(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

// Tahoe's elapsed-time forms: "0h 0m 1s" and "0:00:01".
std::string Elapsed(double ms, bool clock_form) {
  long s = static_cast<long>(ms / 1000);
  char text[48];
  if (clock_form) {
    std::snprintf(text, sizeof text, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%ldh %ldm %lds", s / 3600, s / 60 % 60, s % 60);
  }
  return text;
}

}  // namespace

int BackupMain(const Options& opts) {
  if (IsHelp(opts)) {
    std::printf(
        "usage: cairn [-d DIR] [--json] [-q] %s\n\n"
        "Backs up the local directory FROM into the directory TO on the grid, as\n"
        "`tahoe backup` does: an immutable snapshot TO/Archives/<UTC time> and\n"
        "TO/Latest linked to it. cairnd reads FROM (it must be readable by the\n"
        "daemon's user) and keeps a backup database in the node directory, so files\n"
        "whose size, mtime and ctime did not change are not uploaded again and\n"
        "directories with the same children are reused. As Tahoe does, a reused file\n"
        "or directory last checked more than 30 days ago may be checked first (surely\n"
        "after 60 days) and is uploaded again if the check finds it unhealthy.\n"
        "  --exclude PATTERN   skip names matching the glob (any level; repeatable)\n"
        "  --exclude-from FILE one pattern a line (UTF-8; empty lines ignored)\n"
        "  --exclude-vcs       skip CVS, .git, .svn, .hg, ... (Tahoe's list)\n"
        "  --ignore-timestamps upload every file again, changed or not (directories\n"
        "                      with the same children are still reused)\n"
        "  -v                  a line per file and directory, and the checks made\n"
        "Exit codes: 0, 2 if anything was skipped (symlinks, special or unreadable\n"
        "files; the snapshot is still made), else docs/cli.md's.\n"
        "Scheduled backups: `cairn backup schedule --help`.\n",
        kUsage);
    return 0;
  }
  std::vector<std::string> pos, excludes;
  bool vcs = false, verbose = false, ignore_timestamps = false;
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if (a == "--exclude" || a == "--exclude-from" || a == "--exclude-from-utf-8") {
      if (i + 1 >= opts.args.size()) return UsageError(kUsage, a + " needs a value");
      const std::string& value = opts.args[++i];
      if (a == "--exclude") {
        excludes.push_back(value);
        continue;
      }
      std::ifstream in(value);
      if (!in) return Fail(opts, Status::NotFound("cannot read " + value));
      std::string line;
      while (std::getline(in, line)) {
        const auto b = line.find_first_not_of(" \t\r\n");
        const auto e = line.find_last_not_of(" \t\r\n");
        if (b == std::string::npos) continue;
        excludes.push_back(line.substr(b, e - b + 1));
      }
    } else if (a == "--exclude-vcs") {
      vcs = true;
    } else if (a == "--ignore-timestamps") {
      ignore_timestamps = true;
    } else if (a == "-v" || a == "--verbose") {
      verbose = true;
    } else if (a.size() > 1 && a[0] == '-') {
      return UsageError(kUsage, "unknown option \"" + a + "\"");
    } else {
      pos.push_back(a);
    }
  }
  if (pos.size() != 2) return UsageError(kUsage, "FROM and TO are needed");
  char real[PATH_MAX];
  if (!realpath(pos[0].c_str(), real)) return Fail(opts, Status::NotFound("no such directory: " + pos[0]));

  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "from", real);
  cJSON_AddStringToObject(params.get(), "to", pos[1].c_str());
  cJSON* list = cJSON_AddArrayToObject(params.get(), "exclude");
  for (const std::string& p : excludes) cJSON_AddItemToArray(list, cJSON_CreateString(p.c_str()));
  if (vcs) cJSON_AddBoolToObject(params.get(), "exclude_vcs", true);
  if (verbose) cJSON_AddBoolToObject(params.get(), "verbose", true);
  if (ignore_timestamps) cJSON_AddBoolToObject(params.get(), "ignore_timestamps", true);

  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  const double started = clock::MonotonicMs();
  auto result = client.Call("backup", std::move(params), true, [&opts, started](const cJSON* e) {
    if (opts.quiet || opts.json) return;
    const cJSON* phase = cJSON_GetObjectItemCaseSensitive(e, "phase");
    if (cJSON_IsString(phase) && std::string(phase->valuestring) == "backing up") {
      std::fprintf(stderr, "Backing up %.0f/%.0f... %s elapsed...\n", Num(e, "done"), Num(e, "total"),
                   Elapsed(clock::MonotonicMs() - started, false).c_str());
    }
  });
  if (!result.ok()) return Fail(opts, result.status());
  const cJSON* r = result->get();
  const bool skipped = Num(r, "files_skipped") > 0 || Num(r, "directories_skipped") > 0;
  if (opts.json) {
    PrintJson(*result);
    return skipped ? 2 : 0;
  }
  const cJSON* item;
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(r, "warnings")) {
    if (cJSON_IsString(item)) std::fprintf(stderr, "%s\n", item->valuestring);
  }
  cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(r, "lines")) {
    if (cJSON_IsString(item)) std::printf("%s\n", item->valuestring);
  }
  std::printf(" %.0f files uploaded (%.0f reused), %.0f files skipped, %.0f directories created (%.0f reused), "
              "%.0f directories skipped\n",
              Num(r, "files_uploaded"), Num(r, "files_reused"), Num(r, "files_skipped"), Num(r, "directories_created"),
              Num(r, "directories_reused"), Num(r, "directories_skipped"));
  if (verbose) {
    std::printf(" %.0f files checked, %.0f directories checked\n", Num(r, "files_checked"),
                Num(r, "directories_checked"));
  }
  std::printf(" backup done, elapsed time: %s\n", Elapsed(clock::MonotonicMs() - started, true).c_str());
  return skipped ? 2 : 0;
}

}  // namespace cairn::cli
