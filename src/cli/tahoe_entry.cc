// `cairn tahoe-entry`: the stanza a Tahoe-LAFS client pastes under
// `storage:` in its private/servers.yaml to use this node as a storage
// server over GBS (offline, from the node directory).
#include <cjson/cJSON.h>

#include <cstdio>

#include "cairn/core/base32.h"
#include "cairn/core/config.h"
#include "cairn/core/node_dir.h"
#include "cairn/gbs/nurl.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cairn::cli {

int TahoeEntryMain(const Options& opts) {
  if (!opts.args.empty()) {
    if (opts.args[0] == "--help" || opts.args[0] == "-h") {
      std::printf(
          "usage: cairn [-d DIR] tahoe-entry\n\n"
          "Prints the entry a Tahoe-LAFS (1.19 or later) client adds under \"storage:\" in its\n"
          "private/servers.yaml to store shares on this node over GBS. The entry holds the\n"
          "node's NURL, which contains its swissnum: give it only to clients that may store\n"
          "here. The FURL in it is a placeholder that carries the node's seed (Tahoe clients\n"
          "derive lease and write-enabler secrets from it); it is never connected to.\n");
      return 0;
    }
    return UsageError("tahoe-entry", "tahoe-entry takes no arguments");
  }
  auto nurl = NodeNurl(opts.node_dir);
  if (!nurl.ok()) return Fail(opts, nurl.status());
  auto seed = gbs::ServerSeed(*nurl);
  if (!seed.ok()) return Fail(opts, seed.status());
  auto config = LoadConfigFile(NodePaths(opts.node_dir).config);
  if (!config.ok()) return Fail(opts, config.status());
  std::string tubid = Base32Encode(*seed);
  std::string server_id = "v0-cairn-" + tubid;
  std::string host = nurl->host.find(':') != std::string::npos ? "[" + nurl->host + "]" : nurl->host;
  std::string furl = "pb://" + tubid + "@tcp:" + host + ":" + std::to_string(nurl->port) + "/" + nurl->swissnum;
  std::string text = gbs::FormatNurl(*nurl);
  std::string nickname;  // a YAML double-quoted scalar
  for (char c : config->nickname) {
    if (c == '"' || c == '\\') nickname.push_back('\\');
    nickname.push_back(c);
  }
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddStringToObject(out.get(), "server_id", server_id.c_str());
    cJSON* ann = cJSON_AddObjectToObject(out.get(), "ann");
    cJSON_AddStringToObject(ann, "nickname", config->nickname.c_str());
    cJSON_AddStringToObject(ann, "anonymous-storage-FURL", furl.c_str());
    cJSON* nurls = cJSON_AddArrayToObject(ann, "anonymous-storage-NURLs");
    cJSON_AddItemToArray(nurls, cJSON_CreateString(text.c_str()));
    cJSON_AddStringToObject(ann, "permutation-seed-base32", tubid.c_str());
    PrintJson(out);
    return 0;
  }
  std::printf(
      "# Add under \"storage:\" in the Tahoe-LAFS client's private/servers.yaml.\n"
      "  %s:\n"
      "    ann:\n"
      "      nickname: \"%s\"\n"
      "      anonymous-storage-FURL: %s\n"
      "      anonymous-storage-NURLs:\n"
      "        - %s\n"
      "      permutation-seed-base32: %s\n",
      server_id.c_str(), nickname.c_str(), furl.c_str(), text.c_str(), tubid.c_str());
  return 0;
}

}  // namespace cairn::cli
