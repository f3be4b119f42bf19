// `cairn put FILE [--convergence B64]` and `cairn get CAP [-o FILE]`:
// immutable files on the node's grid. This process reads and writes the
// user's files (file_io.h); they travel over the control socket as data
// frames. Single-threaded process.
#include <cjson/cJSON.h>

#include <cstdio>
#include <string>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/file_io.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char kPutUsage[] = "put FILE [--convergence B64] [--async]";
const char kGetUsage[] = "get CAP|ALIAS [-o FILE]";

const char* Str(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

double Num(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

}  // namespace

int PutMain(const Options& opts) {
  std::string file, convergence;
  bool async = false;
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: cairn [-d DIR] [--json] put FILE [--convergence B64] "
          "[--async]\n\n"
          "Uploads FILE to the node's grid (`cairn servers list`) as "
          "an immutable file and\n"
          "prints its cap: URI:LIT:... for 55 bytes or less (nothing "
          "is stored), else\n"
          "URI:CHK:... . The encoding comes from cairn.json "
          "(client.shares_needed/total/\n"
          "happy, default 3/10/7; client.max_segment_size, default 1 "
          "MiB, as Tahoe-LAFS\n"
          "1.19+). Encryption is convergent, with the node's secret in "
          "DIR/private/convergence\n"
          "unless --convergence gives one (base64): the same file, "
          "secret and encoding\n"
          "give the same cap, as `cairn debug chk-cap` prints it.\n");
      return 0;
    }
    if (a == "--async") {
      async = true;
    } else if (a == "--convergence" && i + 1 < opts.args.size()) {
      convergence = opts.args[++i];
    } else if (file.empty() && (a.empty() || a[0] != '-' || a == "-")) {
      file = a;
    } else {
      return UsageError(kPutUsage, "unexpected argument \"" + a + "\"");
    }
  }
  if (file.empty()) return UsageError(kPutUsage, "put takes a FILE");
  // This process reads the file, with its own permissions, and streams it to
  // the daemon in data frames: the daemon never opens a path it is given.
  InputFile input;
  Status opened = input.Open(file);
  if (!opened.ok()) return Fail(opts, opened);
  Json params = Json::NewObject();
  if (input.size()) cJSON_AddNumberToObject(params.get(), "size", static_cast<double>(*input.size()));
  if (!convergence.empty()) cJSON_AddStringToObject(params.get(), "convergence", convergence.c_str());
  auto result = CallSending(opts, "put", std::move(params), input.Streams(), async);
  if (!result.ok()) return Fail(opts, result.status());
  const cJSON* r = result->get();
  if (!PrintedPlainAnswer(opts, async, *result)) {
    std::printf("%s\n", Str(r, "cap"));
    if (!opts.quiet) {
      std::fprintf(stderr, "%s, happiness %.0f, %.0f shares uploaded, %.0f already there\n",
                   HumanBytes(Num(r, "size")).c_str(), Num(r, "happiness"), Num(r, "shares_uploaded"),
                   Num(r, "shares_reused"));
    }
  }
  return 0;
}

int GetMain(const Options& opts) {
  if (IsHelp(opts)) {
    std::printf(
        "usage: cairn [-d DIR] [--json] get CAP|ALIAS [-o FILE]\n\n"
        "Downloads an immutable file (URI:CHK:... or URI:LIT:..., or the "
        "alias of one)\nfrom the node's grid,\n"
        "verifying every hash, into FILE (created or replaced; "
        "removed again if the\n"
        "download fails), or to stdout without -o. Corrupt shares "
        "are reported to\n"
        "their servers and replaced by others.\n");
    return 0;
  }
  std::string cap, output;
  if (int code = ParseTargetAndOutput(opts, kGetUsage, &cap, &output)) return code;
  if (cap.empty()) return UsageError(kGetUsage, "get takes a CAP");
  // The daemon sends the file back in data frames; this process writes it
  // with its own permissions: to stdout, or to a temporary file beside FILE
  // that replaces FILE only once every byte has arrived.
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "cap", cap.c_str());
  return FetchAndReport(opts, "get", std::move(params), output, [](const cJSON* r) {
    std::fprintf(stderr, "wrote %s to %s\n", HumanBytes(Num(r, "size")).c_str(), Str(r, "path"));
  });
}

}  // namespace cairn::cli
