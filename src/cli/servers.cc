// `cairn servers add NURL [--nickname N] | remove ID|NICKNAME | list`: the
// storage servers this node uses as its grid. Adding and removing run as
// tasks and wait for them unless --async is given.
#include <cjson/cJSON.h>

#include <cstdio>
#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char kUsage[] = "servers add NURL [--nickname N] | servers remove ID|NICKNAME | servers list";

const char* Str(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

}  // namespace

int ServersMain(const Options& opts) {
  std::vector<std::string> args;
  std::string nickname;
  bool async = false;
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: cairn [-d DIR] [--json] servers add NURL [--nickname N] [--async]\n"
          "       cairn servers remove ID|NICKNAME [--async]\n"
          "       cairn servers list\n\n"
          "The storage servers this node publishes files to and reads them from. A server\n"
          "is named by its NURL (`cairn -d OTHER nurl` on a cairn node); its id is the SPKI\n"
          "hash in the NURL. Nicknames are unique; the default is host:port.\n");
      return 0;
    }
    if (a == "--async") {
      async = true;
    } else if (a == "--nickname" && i + 1 < opts.args.size()) {
      nickname = opts.args[++i];
    } else {
      args.push_back(a);
    }
  }
  std::string method;
  Json params = Json::NewObject();
  if (args.size() == 2 && args[0] == "add") {
    method = "servers.add";
    cJSON_AddStringToObject(params.get(), "nurl", args[1].c_str());
    if (!nickname.empty()) cJSON_AddStringToObject(params.get(), "nickname", nickname.c_str());
  } else if (args.size() == 2 && args[0] == "remove") {
    method = "servers.remove";
    cJSON_AddStringToObject(params.get(), "server", args[1].c_str());
  } else if (args.size() == 1 && args[0] == "list") {
    method = "servers.list";
  } else {
    return UsageError(kUsage, "unknown or incomplete servers command");
  }
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto result = client.Call(method, std::move(params), !async,
                            [&opts](const cJSON* event) { PrintProgress(opts, event); });
  if (!result.ok()) return Fail(opts, result.status());
  const cJSON* r = result->get();
  if (opts.json) {
    PrintJson(*result);
  } else if (async && cJSON_GetObjectItemCaseSensitive(r, "state")) {
    std::printf("task %.0f queued\n", cJSON_GetObjectItemCaseSensitive(r, "task")->valuedouble);
  } else if (method == "servers.list") {
    const cJSON* s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(r, "servers")) {
      std::printf("%-20s %s\n    %s\n", Str(s, "nickname"), Str(s, "id"), Str(s, "nurl"));
    }
  } else if (!opts.quiet) {
    std::fprintf(stderr, "%s server %s (%s)\n", method == "servers.add" ? "added" : "removed", Str(r, "nickname"),
                 Str(r, "id"));
  }
  return 0;
}

}  // namespace cairn::cli
