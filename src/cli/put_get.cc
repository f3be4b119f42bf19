// `cairn put FILE [--convergence B64]` and `cairn get CAP [-o FILE]`:
// immutable files on the node's grid. The daemon reads and writes the files
// itself, by absolute path; `get` without -o has the daemon write a private
// temporary file beside the node's control socket, copies it to stdout and
// removes it. Single-threaded process.
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <unistd.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "cli/client.h"
#include "cli/commands.h"
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

Result<std::string> Absolute(const std::string& path) {
  if (!path.empty() && path[0] == '/') return path;
  char cwd[PATH_MAX];
  if (!::getcwd(cwd, sizeof cwd)) return Status::IoError("cannot read the current directory");
  return std::string(cwd) + "/" + path;
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
  auto path = Absolute(file);
  if (!path.ok()) return Fail(opts, path.status());
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "path", path->c_str());
  if (!convergence.empty()) cJSON_AddStringToObject(params.get(), "convergence", convergence.c_str());
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto result =
      client.Call("put", std::move(params), !async, [&opts](const cJSON* event) { PrintProgress(opts, event); });
  if (!result.ok()) return Fail(opts, result.status());
  const cJSON* r = result->get();
  if (opts.json) {
    PrintJson(*result);
  } else if (async && cJSON_GetObjectItemCaseSensitive(r, "state")) {
    std::printf("task %.0f queued\n", Num(r, "task"));
  } else {
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
  std::string cap, output;
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if (a == "--help" || a == "-h") {
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
    if ((a == "-o" || a == "--output") && i + 1 < opts.args.size()) {
      output = opts.args[++i];
    } else if (cap.empty() && !a.empty() && a[0] != '-') {
      cap = a;
    } else {
      return UsageError(kGetUsage, "unexpected argument \"" + a + "\"");
    }
  }
  if (cap.empty()) return UsageError(kGetUsage, "get takes a CAP");
  bool to_stdout = output.empty();
  std::string path;
  if (to_stdout) {
    // A private temporary file the daemon (the same user) fills.
    auto dir = Absolute(opts.node_dir);
    if (!dir.ok()) return Fail(opts, dir.status());
    std::string tmpl = *dir + "/get-XXXXXX";
    int fd = ::mkstemp(tmpl.data());
    if (fd < 0) return Fail(opts, Status::IoError("cannot create a temporary file in " + *dir));
    ::close(fd);
    path = tmpl;
  } else {
    auto abs = Absolute(output);
    if (!abs.ok()) return Fail(opts, abs.status());
    path = *abs;
  }
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "cap", cap.c_str());
  cJSON_AddStringToObject(params.get(), "path", path.c_str());
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) {
    if (to_stdout) ::unlink(path.c_str());
    return Fail(opts, st);
  }
  auto result =
      client.Call("get", std::move(params), true, [&opts](const cJSON* event) { PrintProgress(opts, event); });
  if (!result.ok()) {
    if (to_stdout) ::unlink(path.c_str());
    return Fail(opts, result.status());
  }
  if (to_stdout) {
    FILE* f = std::fopen(path.c_str(), "rb");
    ::unlink(path.c_str());
    if (!f) return Fail(opts, Status::IoError("the downloaded file vanished"));
    char buf[1 << 16];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) std::fwrite(buf, 1, n, stdout);
    std::fclose(f);
    return 0;
  }
  if (opts.json) {
    PrintJson(*result);
  } else if (!opts.quiet) {
    std::fprintf(stderr, "wrote %s to %s\n", HumanBytes(Num(result->get(), "size")).c_str(), path.c_str());
  }
  return 0;
}

}  // namespace cairn::cli
