// `cairn check TARGET [--verify] [--repair] [--add-lease] [--async]`: one
// file's health on the grid, as `tahoe check` reports it (docs/check.md).
// The exit code says the verdict: 0 healthy, 11 recoverable but not
// healthy, 5 unrecoverable (after a repair, of the post-repair check).
// Single-threaded process.
#include <cjson/cJSON.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/file_io.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char kUsage[] = "check CAP|ALIAS|ALIAS:path [--verify] [--repair] [--add-lease] [--async]";

// The exit codes of a finished check (docs/check.md).
constexpr int kExitHealthy = 0;
constexpr int kExitUnhealthy = 11;
constexpr int kExitUnrecoverable = 5;

const cJSON* Obj(const cJSON* o, const char* key) { return cJSON_GetObjectItemCaseSensitive(o, key); }

const char* Str(const cJSON* o, const char* key) {
  const cJSON* v = Obj(o, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

double Num(const cJSON* o, const char* key) {
  const cJSON* v = Obj(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

bool Bool(const cJSON* o, const char* key) { return cJSON_IsTrue(Obj(o, key)); }

// The results the verdict comes from: the post-repair check if there was one.
const cJSON* FinalResults(const cJSON* r) {
  const cJSON* post = Obj(r, "post-repair-results");
  return Obj(post ? post : r, "results");
}

int ExitCodeOf(const cJSON* r) {
  const cJSON* res = FinalResults(r);
  if (Bool(res, "healthy")) return kExitHealthy;
  return Bool(res, "recoverable") ? kExitUnhealthy : kExitUnrecoverable;
}

void PrintResults(const char* title, const cJSON* check) {
  const cJSON* res = Obj(check, "results");
  std::printf("%sSummary: %s\n", title, Str(check, "summary"));
  if (*Str(check, "storage-index")) std::printf(" storage index: %s\n", Str(check, "storage-index"));
  if (!Obj(res, "count-shares-good")) return;  // LIT
  std::printf(" good-shares: %.0f (encoding is %.0f-of-%.0f)\n", Num(res, "count-shares-good"),
              Num(res, "count-shares-needed"), Num(res, "count-shares-expected"));
  std::printf(" wrong-shares: %.0f\n", Num(res, "count-wrong-shares"));
  std::printf(" good-share-hosts: %.0f, happiness %.0f%s\n", Num(res, "count-good-share-hosts"),
              Num(res, "count-happiness"), Bool(res, "needs-rebalancing") ? " (needs rebalancing)" : "");
  const cJSON* c;
  cJSON_ArrayForEach(c, Obj(res, "list-corrupt-shares")) {
    const cJSON* server = cJSON_GetArrayItem(c, 0);
    const cJSON* shnum = cJSON_GetArrayItem(c, 2);
    const cJSON* why = cJSON_GetArrayItem(c, 3);
    std::printf(" corrupt: server %s, SI %s, shnum %.0f%s%s\n", cJSON_IsString(server) ? server->valuestring : "?",
                Str(check, "storage-index"), cJSON_IsNumber(shnum) ? shnum->valuedouble : 0,
                cJSON_IsString(why) ? ": " : "", cJSON_IsString(why) ? why->valuestring : "");
  }
}

// Arguments common to check and deep-check (and deep-check's --stream
// when `stream` is given); "" if they parse, else why not.
std::string ParseFlags(const Options& opts, std::string* target, Json* params, bool* async, bool* stream = nullptr) {
  *params = Json::NewObject();
  for (const std::string& a : opts.args) {
    if (a == "--stream" && stream) {
      *stream = true;
      cJSON_AddBoolToObject(params->get(), "stream", true);
    } else if (a == "--verify" || a == "--repair") {
      cJSON_AddBoolToObject(params->get(), a.c_str() + 2, true);
    } else if (a == "--add-lease") {
      cJSON_AddBoolToObject(params->get(), "add_lease", true);
    } else if (a == "--async") {
      *async = true;
    } else if (target->empty() && !a.empty() && a[0] != '-') {
      *target = a;
    } else {
      return "unexpected argument \"" + a + "\"";
    }
  }
  if (target->empty()) return "a TARGET is needed";
  cJSON_AddStringToObject(params->get(), "target", target->c_str());
  return "";
}

const char kDeepUsage[] =
    "deep-check ALIAS|ALIAS:path|DIRCAP [--verify] [--repair] [--add-lease] [--stream | --async]";

// `tahoe deep-check`'s progress: "N objects checked.." each time the walk
// passes another hundred objects, on stderr (nothing with -q or --json):
// in place on a terminal, a line each on a pipe or in a log.
class DeepProgress {
 public:
  explicit DeepProgress(const Options& opts) : quiet_(opts.quiet || opts.json), tty_(isatty(STDERR_FILENO) == 1) {}
  ~DeepProgress() {
    if (shown_ && tty_) std::fprintf(stderr, "\r\033[K");
  }
  void Event(const cJSON* event) {
    const cJSON* done = cJSON_GetObjectItemCaseSensitive(event, "done");
    if (quiet_ || !cJSON_IsNumber(done)) return;
    const auto hundreds = static_cast<unsigned long long>(done->valuedouble) / 100;
    if (hundreds <= hundreds_) return;  // events are coalesced: a hundred may be skipped
    hundreds_ = hundreds;
    shown_ = true;
    std::fprintf(stderr, "%s%llu objects checked..%s", tty_ ? "\r\033[K" : "", hundreds * 100, tty_ ? "" : "\n");
    std::fflush(stderr);
  }

 private:
  bool quiet_, tty_;
  bool shown_ = false;
  unsigned long long hundreds_ = 0;
};

// The verdict of a deep-check, for its exit code.
int DeepExitCode(const cJSON* r) {
  if (Num(r, "count-objects-unrecoverable") > 0) return kExitUnrecoverable;
  const bool repaired = Obj(r, "count-objects-unhealthy-post-repair") != nullptr;
  const double unhealthy = Num(r, repaired ? "count-objects-unhealthy-post-repair" : "count-objects-unhealthy");
  if (unhealthy > 0 || cJSON_GetArraySize(Obj(r, "list-errors")) > 0) return kExitUnhealthy;
  return kExitHealthy;
}

std::string PathOf(const cJSON* path) {
  if (cJSON_GetArraySize(path) == 0) return "<root>";
  std::string out;
  const cJSON* p;
  cJSON_ArrayForEach(p, path) {
    if (!out.empty()) out += "/";
    out += cJSON_IsString(p) ? p->valuestring : "?";
  }
  return out;
}

}  // namespace

int DeepCheckMain(const Options& opts) {
  if (IsHelp(opts)) {
    std::printf(
        "usage: cairn [-d DIR] [--json] %s\n\n"
        "Checks everything reachable from a directory (an alias, a path or a "
        "directory\n"
        "cap), each object once, as `tahoe deep-check` does; --verify, "
        "--repair and\n"
        "--add-lease as for `cairn check`. Prints one line per object and the "
        "totals;\n"
        "--json prints Tahoe-LAFS's deep-check results; --stream prints "
        "Tahoe's\n"
        "stream-deep-check lines instead (a JSON object per object, then the "
        "stats).\n"
        "A line \"N objects checked..\" on stderr every 100 objects. "
        "Exit code: 0 all healthy, 11\n"
        "something not healthy (or a directory unreadable), 5 something "
        "unrecoverable\n"
        "(after --repair: of the checks made after the repairs). "
        "docs/check.md.\n",
        kDeepUsage);
    return 0;
  }
  std::string target;
  Json params;
  bool async = false, stream = false;
  std::string bad = ParseFlags(opts, &target, &params, &async, &stream);
  if (bad.empty() && stream && async) bad = "--stream sends the lines as the walk ends: it cannot be --async";
  if (!bad.empty()) return UsageError(kDeepUsage, bad);
  ControlClient::Streams streams;
  if (stream) {
    // Tahoe's stream-deep-check lines, as they come, to stdout.
    streams.on_data = [](std::string_view data, bool) -> Status {
      if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size()) {
        return Status::IoError("writing the stream to stdout failed");
      }
      return Status();
    };
  }
  Result<Json> result = Status::Internal("no answer");
  {
    DeepProgress progress(opts);
    ControlClient client;
    Status connected = client.Connect(opts.node_dir, opts.timeout_ms);
    if (!connected.ok()) return Fail(opts, connected);
    result = client.CallWithData("deep-check", std::move(params), streams, !async,
                                 [&progress](const cJSON* event) { progress.Event(event); });
  }
  if (!result.ok()) return Fail(opts, result.status());
  const cJSON* r = result->get();
  if (async) {
    PrintedPlainAnswer(opts, async, *result);
    return 0;
  }
  if (stream) {
    std::fflush(stdout);
    return DeepExitCode(r);
  }
  if (opts.json) {
    PrintJson(*result);
    return DeepExitCode(r);
  }
  const cJSON* o;
  cJSON_ArrayForEach(o, Obj(r, "objects")) {
    std::printf("'%s': %s\n", PathOf(Obj(o, "path")).c_str(), Str(o, "summary"));
  }
  cJSON_ArrayForEach(o, Obj(r, "list-corrupt-shares")) {
    const cJSON* server = cJSON_GetArrayItem(o, 0);
    const cJSON* si = cJSON_GetArrayItem(o, 1);
    const cJSON* shnum = cJSON_GetArrayItem(o, 2);
    std::printf(" corrupt: server %s, SI %s, shnum %.0f\n", cJSON_IsString(server) ? server->valuestring : "?",
                cJSON_IsString(si) ? si->valuestring : "?", cJSON_IsNumber(shnum) ? shnum->valuedouble : 0);
  }
  cJSON_ArrayForEach(o, Obj(r, "list-errors")) { std::printf("ERROR: %s\n", cJSON_IsString(o) ? o->valuestring : "?"); }
  // Tahoe's CLI counts LIT files as checked (and healthy); its JSON does not.
  const double lit = Num(r, "count-literal-objects");
  const double checked = Num(r, "count-objects-checked") + lit;
  if (Obj(r, "count-objects-healthy-pre-repair")) {
    std::printf("done: %.0f objects checked\n", checked);
    std::printf(" pre-repair: %.0f healthy, %.0f unhealthy\n", Num(r, "count-objects-healthy-pre-repair") + lit,
                Num(r, "count-objects-unhealthy-pre-repair"));
    std::printf(" %.0f repairs attempted, %.0f successful, %.0f failed\n", Num(r, "count-repairs-attempted"),
                Num(r, "count-repairs-successful"), Num(r, "count-repairs-unsuccessful"));
    std::printf(" post-repair: %.0f healthy, %.0f unhealthy\n", Num(r, "count-objects-healthy-post-repair") + lit,
                Num(r, "count-objects-unhealthy-post-repair"));
  } else {
    std::printf("done: %.0f objects checked, %.0f healthy, %.0f unhealthy\n", checked,
                Num(r, "count-objects-healthy") + lit, Num(r, "count-objects-unhealthy"));
  }
  if (Num(r, "count-objects-unrecoverable") > 0) {
    std::printf(" %.0f unrecoverable\n", Num(r, "count-objects-unrecoverable"));
  }
  const cJSON* lease = Obj(r, "lease");
  if (lease) {
    std::printf(" leases renewed on %.0f servers (%.0f failed)\n", Num(lease, "renewed"), Num(lease, "failed"));
  }
  return DeepExitCode(r);
}

int CheckMain(const Options& opts) {
  if (IsHelp(opts)) {
    std::printf(
        "usage: cairn [-d DIR] [--json] %s\n\n"
        "Checks one file (URI:CHK:, URI:LIT:, URI:SSK:, URI:MDMF: caps, their "
        "read and\n"
        "verify caps, or an alias) on the node's grid, as `tahoe check` does: "
        "every\n"
        "server is asked which shares it holds. --verify reads every share in "
        "full\n"
        "and checks every hash and signature (corrupt shares are reported to "
        "their\n"
        "servers). --add-lease renews the node's lease on every server holding "
        "a\n"
        "share. --repair makes missing or corrupt shares again from k good "
        "ones and\n"
        "places them to reach servers of happiness (a mutable file is "
        "republished as\n"
        "a new version; that needs its write cap). --json prints Tahoe-LAFS's "
        "check\n"
        "results. Exit code: 0 healthy, 11 recoverable but not healthy, 5\n"
        "unrecoverable (after --repair: of the check made after it). "
        "docs/check.md.\n",
        kUsage);
    return 0;
  }
  std::string target;
  Json params;
  bool async = false;
  std::string bad = ParseFlags(opts, &target, &params, &async);
  if (!bad.empty()) return UsageError(kUsage, bad == "a TARGET is needed" ? "check takes a CAP or an ALIAS" : bad);
  auto result = CallSending(opts, "check", std::move(params), ControlClient::Streams{}, async);
  if (!result.ok()) return Fail(opts, result.status());
  const cJSON* r = result->get();
  if (async) {
    PrintedPlainAnswer(opts, async, *result);
    return 0;
  }
  if (opts.json) {
    PrintJson(*result);
    return ExitCodeOf(r);
  }
  if (Obj(r, "pre-repair-results")) {
    PrintResults("", Obj(r, "pre-repair-results"));
    if (Bool(r, "repair-attempted")) {
      std::printf(Bool(r, "repair-successful") ? " repair successful\n" : " repair failed\n");
      if (*Str(r, "repair-error")) std::printf(" repair error: %s\n", Str(r, "repair-error"));
      PrintResults("post-repair ", Obj(r, "post-repair-results"));
    } else if (*Str(r, "repair-error")) {
      std::printf(" repair not attempted: %s\n", Str(r, "repair-error"));
    }
  } else {
    PrintResults("", r);
  }
  const cJSON* lease = Obj(r, "lease");
  if (lease) {
    std::printf(" leases renewed on %d servers (%d hold no share, %d failed)\n",
                cJSON_GetArraySize(Obj(lease, "renewed")), cJSON_GetArraySize(Obj(lease, "no-shares")),
                cJSON_GetArraySize(Obj(lease, "failed")));
  }
  return ExitCodeOf(r);
}

}  // namespace cairn::cli
