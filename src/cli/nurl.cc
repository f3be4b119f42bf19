// `cairn nurl`: the node's NURL, read from its directory (offline: works
// whether or not cairnd runs). Give it to other cairn nodes and Tahoe-LAFS
// clients; it carries the node's secret swissnum.
#include <cjson/cJSON.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "cairn/core/config.h"
#include "cairn/core/file.h"
#include "cairn/core/node_dir.h"
#include "cairn/gbs/nurl.h"
#include "cairn/tls/identity.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {


}  // namespace

Result<gbs::Nurl> NodeNurl(const std::string& node_dir) {
  NodePaths paths(node_dir);
  CAIRN_TRY_ASSIGN(Config config, LoadConfigFile(paths.config));
  CAIRN_TRY_ASSIGN(std::string cert, ReadWholeFile(paths.tls_cert));
  CAIRN_TRY_ASSIGN(std::string swissnum, ReadWholeFile(paths.swissnum));
  while (!swissnum.empty() && (swissnum.back() == '\n' || swissnum.back() == '\r')) swissnum.pop_back();
  gbs::Nurl n;
  CAIRN_TRY_ASSIGN(n.spki_hash, tls::SpkiHashOfCertPem(cert));
  n.host = config.public_host;
  n.port = config.port;
  n.swissnum = swissnum;
  // Refuse to print something a client could not parse.
  CAIRN_TRY(gbs::ParseNurl(gbs::FormatNurl(n)).status());
  return n;
}

int NurlMain(const Options& opts) {
  if (!opts.args.empty()) {
    if (opts.args[0] == "--help" || opts.args[0] == "-h") {
      std::printf("usage: cairn [-d DIR] nurl\n\nPrints the node's NURL. It contains the node's swissnum: share it only\n"
                  "with clients that may store shares here.\n");
      return 0;
    }
    return UsageError("nurl", "nurl takes no arguments");
  }
  auto n = NodeNurl(opts.node_dir);
  if (!n.ok()) return Fail(opts, n.status());
  std::string text = gbs::FormatNurl(*n);
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddStringToObject(out.get(), "nurl", text.c_str());
    cJSON_AddStringToObject(out.get(), "spki_hash", n->spki_hash.c_str());
    PrintJson(out);
  } else {
    std::printf("%s\n", text.c_str());
  }
  return 0;
}

}  // namespace cairn::cli
