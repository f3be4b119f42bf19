// `cairn alias add NAME CAP | rename OLD NEW | remove NAME | list | get NAME`:
// the owner's names for caps, kept by cairnd. The mutating forms run as
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

const char kUsage[] = "alias add NAME CAP | alias rename OLD NEW | alias remove NAME | alias list | alias get NAME";

void PrintHelp() {
  std::printf(
      "usage: cairn [-d DIR] [--json] alias add NAME CAP [--async]\n"
      "       cairn alias rename OLD NEW [--async]\n"
      "       cairn alias remove NAME [--async]\n"
      "       cairn alias list\n"
      "       cairn alias get NAME\n\n"
      "Names for caps, kept by cairnd. A name is 1-64 letters, digits, '.', '_' or '-',\n"
      "starting with a letter or digit. add refuses a name that exists (conflict, exit 4);\n"
      "rename refuses a new name that exists; remove is refused while a task uses the\n"
      "name (in_use, exit 4). --async prints the task id instead of waiting.\n");
}

const char* Str(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

}  // namespace

int AliasMain(const Options& opts) {
  std::vector<std::string> args;
  bool async = false;
  for (const std::string& a : opts.args) {
    if (a == "--help" || a == "-h") {
      PrintHelp();
      return 0;
    }
    if (a == "--async") {
      async = true;
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) return UsageError(kUsage, "alias needs a subcommand");
  const std::string& sub = args[0];
  std::string method;
  Json params = Json::NewObject();
  if (sub == "add" && args.size() == 3) {
    method = "alias.add";
    cJSON_AddStringToObject(params.get(), "name", args[1].c_str());
    cJSON_AddStringToObject(params.get(), "cap", args[2].c_str());
  } else if (sub == "rename" && args.size() == 3) {
    method = "alias.rename";
    cJSON_AddStringToObject(params.get(), "from", args[1].c_str());
    cJSON_AddStringToObject(params.get(), "to", args[2].c_str());
  } else if (sub == "remove" && args.size() == 2) {
    method = "alias.remove";
    cJSON_AddStringToObject(params.get(), "name", args[1].c_str());
  } else if (sub == "get" && args.size() == 2) {
    method = "alias.get";
    cJSON_AddStringToObject(params.get(), "name", args[1].c_str());
  } else if (sub == "list" && args.size() == 1) {
    method = "alias.list";
  } else {
    return UsageError(kUsage, "unknown or incomplete alias command");
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
  } else if (method == "alias.list") {
    const cJSON* a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(r, "aliases")) {
      std::printf("%-24s %s\n", Str(a, "name"), Str(a, "cap"));
    }
  } else if (method == "alias.get") {
    std::printf("%s\n", Str(r, "cap"));
  } else if (method == "alias.rename") {
    if (!opts.quiet) std::fprintf(stderr, "renamed %s to %s\n", Str(r, "from"), Str(r, "to"));
  } else if (!opts.quiet) {
    std::fprintf(stderr, "%s %s\n", method == "alias.add" ? "added" : "removed", Str(r, "name"));
  }
  return 0;
}

}  // namespace cairn::cli
