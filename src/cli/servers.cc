// `cairn servers add NURL|ENTRY-FILE [--nickname N] | remove ID|NICKNAME |
// list`: the storage servers this node uses as its grid. A cairn node is
// added by its NURL; a Tahoe-LAFS node by its announcement (the entry its
// operator hands out, read from a file or stdin), which carries the tub id
// and permutation seed its secrets and placement derive from. Adding and
// removing run as tasks and wait for them unless --async is given.
#include <cjson/cJSON.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "cli/tahoe_servers.h"

namespace cairn::cli {
namespace {

const char kUsage[] =
    "servers add NURL|ENTRY-FILE|- [--nickname N] | servers import SERVERS-YAML|- | servers remove ID|NICKNAME | "
    "servers list";

// A whole (small) file, or stdin for "-".
Result<std::string> ReadText(const std::string& path) {
  std::FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (!f) return Status::NotFound("cannot open " + path + ": " + std::strerror(errno));
  std::string text;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    text.append(buf, n);
    if (text.size() > (1u << 20)) break;
  }
  bool failed = std::ferror(f) != 0;
  if (f != stdin) std::fclose(f);
  if (failed) return Status::IoError("cannot read " + path);
  if (text.size() > (1u << 20)) return Status::InvalidArgument(path + " is larger than 1 MiB");
  return text;
}

bool LooksLikeUrl(const std::string& a) { return a.rfind("pb://", 0) == 0 || a.rfind("pb+tor://", 0) == 0; }

const char* Str(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

}  // namespace

namespace {

// `cairn servers --help`.
void PrintHelp() {
  std::printf(
      "usage: cairn [-d DIR] [--json] servers add NURL|ENTRY-FILE|- [--nickname N] [--async]\n"
      "       cairn servers import SERVERS-YAML|- [--async]\n"
      "       cairn servers remove ID|NICKNAME [--async]\n"
      "       cairn servers list\n\n"
      "The storage servers this node publishes files to and reads them from. A cairn\n"
      "node is added by its NURL (`cairn -d OTHER nurl`). A Tahoe-LAFS node is added by\n"
      "its announcement: the servers.yaml entry its operator hands out (YAML or JSON,\n"
      "the \"ann\" stanza or the whole entry, as `cairn tahoe-entry` prints it), in a\n"
      "file or on stdin (\"-\"). Its write enablers and lease secrets then derive from\n"
      "the tub id in its FURL and its shares are placed by its permutation seed, as a\n"
      "Tahoe-LAFS client does; a server added by NURL alone is taken to be a cairn node.\n"
      "`servers import` adds every server of a Tahoe-LAFS client's private/servers.yaml\n"
      "that has a NURL, all or none; servers without one are listed as skipped.\n"
      "`servers list` shows each server's identity (\"cairn\" or \"announced\").\n"
      "A server's id is the SPKI hash in its NURL. Nicknames are unique; the default is\n"
      "the announced nickname, else host:port.\n");
}

// What one servers command asks of cairnd: the method, its params and, for
// an import, the entries skipped on the way (server id, why).
struct ServersRequest {
  std::string method;
  Json params = Json::NewObject();
  std::vector<std::pair<std::string, std::string>> skipped;
};

// The request for `args` (the command's words without its flags), or the
// error to report; `exit_usage` is set when the words themselves are wrong.
Result<ServersRequest> BuildRequest(const std::vector<std::string>& args, const std::string& nickname,
                                    bool* exit_usage) {
  ServersRequest req;
  Json& params = req.params;
  if (args.size() == 2 && args[0] == "add") {
    req.method = "servers.add";
    if (LooksLikeUrl(args[1])) {
      cJSON_AddStringToObject(params.get(), "nurl", args[1].c_str());
    } else {
      CAIRN_TRY_ASSIGN(std::string text, ReadText(args[1]));
      auto entry = OneServerEntry(text);
      if (!entry.ok()) return entry.status().WithContext(args[1]);
      cJSON_AddItemToObject(params.get(), "announcement", entry->ann.release());
      if (!entry->server_id.empty()) cJSON_AddStringToObject(params.get(), "server_id", entry->server_id.c_str());
    }
    if (!nickname.empty()) cJSON_AddStringToObject(params.get(), "nickname", nickname.c_str());
  } else if (args.size() == 2 && args[0] == "import") {
    req.method = "servers.import";
    CAIRN_TRY_ASSIGN(std::string text, ReadText(args[1]));
    auto file = ReadServersYaml(text);
    if (!file.ok()) return file.status().WithContext(args[1] + "; nothing was imported");
    req.skipped = std::move(file->skipped);
    if (file->entries.empty()) {
      std::string why;
      for (const auto& [id, reason] : req.skipped) why += "; " + id + ": " + reason;
      return Status::InvalidArgument(args[1] + " has no server with a NURL" + why);
    }
    cJSON* list = cJSON_AddArrayToObject(params.get(), "servers");
    for (TahoeServerEntry& e : file->entries) {
      cJSON* item = cJSON_CreateObject();
      cJSON_AddStringToObject(item, "server_id", e.server_id.c_str());
      cJSON_AddItemToObject(item, "announcement", e.ann.release());
      cJSON_AddItemToArray(list, item);
    }
  } else if (args.size() == 2 && args[0] == "remove") {
    req.method = "servers.remove";
    cJSON_AddStringToObject(params.get(), "server", args[1].c_str());
  } else if (args.size() == 1 && args[0] == "list") {
    req.method = "servers.list";
  } else {
    *exit_usage = true;
    return Status::InvalidArgument("unknown or incomplete servers command");
  }
  return req;
}

// Prints cairnd's answer to `req` as the user asked (`result` is the answer).
void PrintAnswer(const Options& opts, bool async, const ServersRequest& req, Json& result) {
  const std::string& method = req.method;
  const auto& skipped = req.skipped;
  const cJSON* r = result.get();
  if (method == "servers.import" && !skipped.empty() && cJSON_IsObject(r) &&
      !cJSON_GetObjectItemCaseSensitive(r, "state")) {
    cJSON* out = cJSON_AddArrayToObject(result.get(), "skipped");
    for (const auto& [id, why] : skipped) {
      cJSON* item = cJSON_CreateObject();
      cJSON_AddStringToObject(item, "server_id", id.c_str());
      cJSON_AddStringToObject(item, "why", why.c_str());
      cJSON_AddItemToArray(out, item);
    }
  }
  if (opts.json) {
    PrintJson(result);
  } else if (async && cJSON_GetObjectItemCaseSensitive(r, "state")) {
    std::printf("task %.0f queued\n", cJSON_GetObjectItemCaseSensitive(r, "task")->valuedouble);
  } else if (method == "servers.list") {
    const cJSON* s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(r, "servers")) {
      std::printf("%-20s %s\n    %s\n    identity %s: tub id %s, permutation seed %s\n", Str(s, "nickname"),
                  Str(s, "id"), Str(s, "nurl"), Str(s, "identity"), Str(s, "tub_id"), Str(s, "permutation_seed"));
    }
  } else if (method == "servers.import") {
    const cJSON* s;
    cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(r, "imported")) {
      if (opts.quiet) continue;
      std::fprintf(stderr, "imported server %s (%s, identity %s)\n", Str(s, "nickname"), Str(s, "id"),
                   Str(s, "identity"));
    }
    for (const auto& [id, why] : skipped) std::fprintf(stderr, "skipped %s: %s\n", id.c_str(), why.c_str());
  } else if (!opts.quiet) {
    std::fprintf(stderr, "%s server %s (%s, identity %s)\n", method == "servers.add" ? "added" : "removed",
                 Str(r, "nickname"), Str(r, "id"), Str(r, "identity"));
  }
}

}  // namespace

int ServersMain(const Options& opts) {
  std::vector<std::string> args;
  std::string nickname;
  bool async = false;
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if (a == "--help" || a == "-h") {
      PrintHelp();
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
  bool usage = false;
  auto req = BuildRequest(args, nickname, &usage);
  if (usage) return UsageError(kUsage, std::string(req.status().message()));
  if (!req.ok()) return Fail(opts, req.status());
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto result = client.Call(req->method, std::move(req->params), !async,
                            [&opts](const cJSON* event) { PrintProgress(opts, event); });
  if (!result.ok()) return Fail(opts, result.status());
  PrintAnswer(opts, async, *req, *result);
  return 0;
}

}  // namespace cairn::cli
