// `cairn mutable create [FILE|-] [--alias NAME]`, `cairn mutable put
// CAP|ALIAS FILE|-` and `cairn mutable get CAP|ALIAS [-o FILE]`: SDMF
// mutable files on the node's grid (docs/mutable.md). This process reads
// and writes the user's files; they travel over the control socket as data
// frames. Single-threaded process.
#include <cjson/cJSON.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/file_io.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char kCreateUsage[] = "mutable create [FILE|-] [--alias NAME] [--format sdmf|mdmf] [--async]";
const char kPutUsage[] = "mutable put CAP|ALIAS FILE|- [--offset A] [--async]";
const char kGetUsage[] = "mutable get CAP|ALIAS [-o FILE] [--offset A] [--size N]";

const char kHelp[] =
    "\n"
    "Mutable files (SDMF or MDMF) on the node's grid (`cairn servers list`),\n"
    "encoded with client.shares_needed/total/happy from cairn.json (default\n"
    "3/10/7), at most limits.sdmf_max_bytes (16 MiB; kirkwood 4 MiB).\n"
    "  create   makes a new file (RSA-2048 key) holding FILE (empty without one) and\n"
    "           prints its write cap: URI:SSK:... (SDMF, the default) or, with\n"
    "           --format mdmf, URI:MDMF:... (segments of 128 KiB); --alias NAME also\n"
    "           names it (the name must not exist: conflict, exit 4, nothing sent).\n"
    "  put      replaces the contents of the file a write cap (or alias) names;\n"
    "           with --offset A (MDMF only) writes FILE at byte A in place (past\n"
    "           the end grows the file), rewriting only the segments it touches.\n"
    "  get      reads the newest version (a write or read cap URI:SSK-RO:, or an\n"
    "           alias) to stdout, or to FILE (written beside it, then renamed);\n"
    "           --offset A and --size N read only those bytes (of an MDMF file,\n"
    "           only the segments that hold them are fetched).\n"
    "Exit codes: 3 not found, 4 conflict, 5 not enough servers, 6 uncoordinated\n"
    "write (another writer changed the file meanwhile), 7 bad cap; docs/mutable.md.\n";

const char* Str(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

double Num(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

int Help(const char* usage) {
  std::printf("usage: cairn [-d DIR] [--json] %s\n%s", usage, kHelp);
  return 0;
}

// Sends `file` (may be empty: no input, an empty file) as the input of
// `method` and prints the publish result: the write cap on stdout.
int Publish(const Options& opts, const char* method, Json params, const std::string& file, bool async) {
  InputFile input;
  ControlClient::Streams streams;
  if (!file.empty()) {
    Status opened = input.Open(file);
    if (!opened.ok()) return Fail(opts, opened);
    if (input.size()) cJSON_AddNumberToObject(params.get(), "size", static_cast<double>(*input.size()));
    streams = input.Streams();
  } else {
    cJSON_AddNumberToObject(params.get(), "size", 0);
    streams.next_input = [](std::size_t, bool* eof) -> Result<std::string> {
      *eof = true;
      return std::string();
    };
  }
  auto result = CallSending(opts, method, std::move(params), streams, async);
  if (!result.ok()) return Fail(opts, result.status());
  const cJSON* r = result->get();
  if (!PrintedPlainAnswer(opts, async, *result)) {
    std::printf("%s\n", Str(r, "writecap"));
    if (!opts.quiet) {
      std::fprintf(stderr, "%s, seqnum %.0f, happiness %.0f%s%s\n", HumanBytes(Num(r, "size")).c_str(),
                   Num(r, "seqnum"), Num(r, "happiness"), *Str(r, "alias") ? ", alias " : "", Str(r, "alias"));
    }
  }
  return 0;
}

}  // namespace

int MutableMain(const Options& opts) {
  static const char kAll[] = "mutable create [FILE|-] [--alias NAME] | mutable put CAP|ALIAS FILE|- | mutable get CAP|ALIAS [-o FILE]";
  if (IsHelp(opts)) {
    std::printf("usage: cairn [-d DIR] [--json] %s\n       cairn %s\n       cairn %s\n%s", kCreateUsage, kPutUsage,
                kGetUsage, kHelp);
    return 0;
  }
  return UsageError(kAll, opts.args.empty() ? "mutable needs a subcommand: create, put or get"
                                            : "unknown subcommand \"" + opts.args[0] + "\" (create, put or get)");
}

int MutableCreateMain(const Options& opts) {
  if (IsHelp(opts)) return Help(kCreateUsage);
  std::string file, alias, format;
  bool async = false;
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if (a == "--async") {
      async = true;
    } else if (a == "--alias" && i + 1 < opts.args.size()) {
      alias = opts.args[++i];
    } else if (a == "--format" && i + 1 < opts.args.size()) {
      format = opts.args[++i];
      if (format != "sdmf" && format != "mdmf") {
        return UsageError(kCreateUsage, "--format takes sdmf or mdmf, not \"" + format + "\"");
      }
    } else if (file.empty() && !a.empty() && (a[0] != '-' || a == "-")) {
      file = a;
    } else {
      return UsageError(kCreateUsage, "unexpected argument \"" + a + "\"");
    }
  }
  Json params = Json::NewObject();
  if (!alias.empty()) cJSON_AddStringToObject(params.get(), "alias", alias.c_str());
  if (!format.empty()) cJSON_AddStringToObject(params.get(), "format", format.c_str());
  return Publish(opts, "mutable.create", std::move(params), file, async);
}

int MutablePutMain(const Options& opts) {
  if (IsHelp(opts)) return Help(kPutUsage);
  std::string target, file;
  bool async = false;
  Json params = Json::NewObject();
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if (a == "--async") {
      async = true;
    } else if (a == "--offset" && i + 1 < opts.args.size()) {
      const std::string& v = opts.args[++i];
      char* end = nullptr;
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || v[0] == '-' || *end != '\0') return UsageError(kPutUsage, "--offset takes a number of bytes");
      cJSON_AddNumberToObject(params.get(), "offset", static_cast<double>(n));
    } else if (target.empty() && !a.empty() && a[0] != '-') {
      target = a;
    } else if (file.empty() && !a.empty() && (a[0] != '-' || a == "-")) {
      file = a;
    } else {
      return UsageError(kPutUsage, "unexpected argument \"" + a + "\"");
    }
  }
  if (file.empty()) return UsageError(kPutUsage, "mutable put takes a CAP or ALIAS and a FILE");
  cJSON_AddStringToObject(params.get(), "target", target.c_str());
  return Publish(opts, "mutable.put", std::move(params), file, async);
}

int MutableGetMain(const Options& opts) {
  if (IsHelp(opts)) return Help(kGetUsage);
  std::string target, output;
  // --offset and --size first; the rest is a target and an output.
  Options rest = opts;
  rest.args.clear();
  Json params = Json::NewObject();
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if ((a == "--offset" || a == "--size") && i + 1 < opts.args.size()) {
      const std::string& v = opts.args[++i];
      char* end = nullptr;
      unsigned long long n = std::strtoull(v.c_str(), &end, 10);
      if (v.empty() || v[0] == '-' || *end != '\0') return UsageError(kGetUsage, a + " takes a number of bytes");
      cJSON_AddNumberToObject(params.get(), a.c_str() + 2, static_cast<double>(n));
    } else {
      rest.args.push_back(a);
    }
  }
  if (int code = ParseTargetAndOutput(rest, kGetUsage, &target, &output)) return code;
  if (target.empty()) return UsageError(kGetUsage, "mutable get takes a CAP or ALIAS");
  cJSON_AddStringToObject(params.get(), "target", target.c_str());
  return FetchAndReport(opts, "mutable.get", std::move(params), output, [](const cJSON* r) {
    std::fprintf(stderr, "wrote %s (seqnum %.0f) to %s\n", HumanBytes(Num(r, "size")).c_str(), Num(r, "seqnum"),
                 Str(r, "path"));
  });
}

}  // namespace cairn::cli
