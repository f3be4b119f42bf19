// cairn: the owner's command. Parses the global options and runs one command
// from the table below. Single-threaded process.
//
//   cairn [-d DIR] [--json] [-q] [--timeout S] COMMAND [ARGS...]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "cairn/core/version.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/debug_fec.h"
#include "cli/dirs.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

// THE command table: one line per command. A name of several words matches
// that many leading words.
const Command kCommands[] = {
    {"alias", AliasMain, "alias add NAME CAP|rename OLD NEW|remove NAME|list|get NAME", "names for caps"},
    {"alias create", AliasCreateMain, "alias create NAME", "make a new directory and name it"},
    {"alias export", AliasExportMain, "alias export [FILE]", "write the directory aliases as Tahoe-LAFS's private/aliases"},
    {"alias import", AliasImportMain, "alias import FILE", "add every alias of a Tahoe-LAFS private/aliases file (all or none)"},
    {"backup", BackupMain,
     "backup FROM ALIAS:TO [--exclude PATTERN]... [--exclude-from FILE] [--exclude-vcs] [--ignore-timestamps] [-v]",
     "back up a local directory as Tahoe-LAFS does (Archives/<time>, Latest)"},
    {"backup schedule", BackupScheduleMain,
     "backup schedule add FROM ALIAS:TO --every DURATION [--exclude PATTERN]... [--exclude-vcs] | list | remove ALIAS:TO",
     "back up a local directory on a schedule in the daemon (docs/dirs.md)"},
    {"check", CheckMain, "check CAP|ALIAS [--verify] [--repair] [--add-lease] [--async]",
     "check, verify, repair a file and renew its leases (docs/check.md)"},
    {"cp", CpMain, "cp [-r] SRC DST", "copy files and trees between local disk and the grid"},
    {"debug chk-cap", DebugChkCapMain, "debug chk-cap --convergence B64 [-k K] [-n N] [--segment-size S]",
     "the immutable cap Tahoe-LAFS gives stdin's data (no upload)"},
    {"debug dirnode", DebugDirnodeMain, "debug dirnode CAP < BODY", "list a directory body as Tahoe-LAFS's t=json (no grid)"},
    {"debug fec", DebugFecMain, kDebugFecUsage, kDebugFecSummary},
    {"debug parse-cap", DebugParseCapMain, "debug parse-cap CAP", "show what a capability string holds"},
    {"debug ssk-cap", DebugSskCapMain, "debug ssk-cap --key KEY.pem [--format sdmf|mdmf]",
     "the mutable write cap Tahoe-LAFS gives an RSA key"},
    {"deep-check", DeepCheckMain,
     "deep-check ALIAS|ALIAS:path|DIRCAP [--verify] [--repair] [--add-lease] [--stream | --async]",
     "check everything reachable from a directory, each object once (docs/check.md)"},
    {"get", GetPathMain, "get ALIAS:path [-o FILE]", "download the file a directory path names"},
    {"get", GetMain, "get CAP [-o FILE]", "download an immutable file (verified) from the grid"},
    {"image", ImageMain, "image keygen|sign|verify IMAGE --pubkey KEY [--board B] [--root DIR]", "the signed board image (docs/boards.md)"},
    {"init", InitMain, "init DIR [--port P] [--nickname N] [--board NAME]", "create a node directory"},
    {"ln", LnMain, "ln FROM TO", "link a cap or path at another path"},
    {"ls", LsMain, "ls [-l] [--json] [ALIAS:path]", "list a directory"},
    {"maintenance", MaintenanceMain,
     "maintenance set --every DURATION [--repair] [--add-lease] [--verify-every DURATION] | show | off",
     "deep-check every alias on a schedule in the daemon (docs/check.md)"},
    {"metrics", MetricsMain, "metrics", "print the node's metrics (OpenMetrics text)"},
    {"mkdir", MkdirMain, "mkdir [ALIAS:path]", "make a new directory (linked at the path)"},
    {"mutable", MutableMain, "mutable create|put|get ...", "SDMF mutable files (docs/mutable.md)"},
    {"mutable create", MutableCreateMain, "mutable create [FILE|-] [--alias NAME]",
     "create a mutable (SDMF) file; prints its write cap"},
    {"mutable get", MutableGetMain, "mutable get CAP|ALIAS [-o FILE]", "read a mutable file (verified)"},
    {"mutable put", MutablePutMain, "mutable put CAP|ALIAS FILE|-", "replace a mutable file's contents"},
    {"mv", MvMain, "mv FROM TO", "move a link from one path to another"},
    {"nurl", NurlMain, "nurl", "print the node's NURL (offline; it holds the swissnum)"},
    {"put", PutPathMain, "put FILE ALIAS:path", "upload a file and link it at a directory path"},
    {"put", PutMain, "put FILE [--convergence B64]", "upload a file to the grid as an immutable file; prints its cap"},
    {"rm", RmMain, "rm ALIAS:path", "unlink a child from its directory"},
    {"servers", ServersMain, "servers add NURL [--nickname N]|remove ID|NICKNAME|list", "the storage servers of this node's grid"},
    {"status", StatusMain, "status", "show the running node's identity, listeners, memory and loop"},
    {"tahoe-entry", TahoeEntryMain, "tahoe-entry", "the servers.yaml entry a Tahoe-LAFS client uses to store here"},
    {"tasks", TasksMain, "tasks list|show ID|wait ID|cancel ID", "the daemon's task records"},
};

void PrintHelp(FILE* out) {
  std::fprintf(out,
               "usage: cairn [-d DIR] [--json] [-q] [--timeout S] COMMAND [ARGS...]\n"
               "\n"
               "Drives a cairn node over its control socket (DIR/control.sock).\n"
               "\n"
               "commands:\n");
  for (const Command& c : kCommands) std::fprintf(out, "  %s\n      %s\n", c.usage, c.summary);
  std::fprintf(out,
               "\n"
               "options:\n"
               "  -d DIR        node directory (default $CAIRN_NODE_DIR, else ./var/node)\n"
               "  --json        machine-readable output on stdout\n"
               "  -q            no progress output\n"
               "  --timeout S   seconds to wait for cairnd (default 30)\n"
               "  --version     print the version\n"
               "\n"
               "`cairn COMMAND --help` describes one command. Exit codes: docs/cli.md.\n");
}

std::size_t WordCount(const char* name) {
  std::size_t n = 1;
  for (const char* p = name; *p; ++p) n += *p == ' ';
  return n;
}

bool Matches(const char* name, const std::vector<std::string>& words) {
  std::string joined;
  std::size_t n = WordCount(name);
  if (words.size() < n) return false;
  for (std::size_t i = 0; i < n; ++i) joined += (i ? " " : "") + words[i];
  return joined == name;
}

}  // namespace

int Main(int argc, char** argv) {
  Options opts;
  if (const char* env = std::getenv("CAIRN_NODE_DIR")) opts.node_dir = env;
  if (opts.node_dir.empty()) opts.node_dir = "var/node";
  std::vector<std::string> words;
  bool rest_is_args = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (rest_is_args) {
      words.push_back(a);
    } else if (a == "--") {
      rest_is_args = true;
      words.push_back(a);
    } else if (a == "-d" || a == "--node-dir") {
      if (i + 1 >= argc) return UsageError("-d DIR COMMAND ...", "-d takes a directory");
      opts.node_dir = argv[++i];
    } else if (a == "--json") {
      opts.json = true;
    } else if (a == "-q" || a == "--quiet") {
      opts.quiet = true;
    } else if (a == "--timeout") {
      unsigned long long s;
      if (i + 1 >= argc || !ParseUint(argv[++i], 86400, &s) || s == 0) {
        return UsageError("--timeout S COMMAND ...", "--timeout takes seconds (1..86400)");
      }
      opts.timeout_ms = static_cast<int>(s * 1000);
    } else if (words.empty() && (a == "-h" || a == "--help" || a == "help")) {
      PrintHelp(stdout);
      return 0;
    } else if (words.empty() && a == "--version") {
      std::printf("cairn %s\n", kVersion);
      return 0;
    } else {
      words.push_back(a);
    }
  }
  if (words.empty()) {
    PrintHelp(stderr);
    return CodeExitCode(Code::kInvalidArgument);
  }
  const Command* best = nullptr;
  for (const Command& c : kCommands) {
    if (Matches(c.name, words) && (!best || WordCount(c.name) > WordCount(best->name))) best = &c;
  }
  if (!best) {
    std::fprintf(stderr, "cairn: unknown command \"%s\" (see cairn --help)\n", words[0].c_str());
    return CodeExitCode(Code::kInvalidArgument);
  }
  opts.args.assign(words.begin() + static_cast<long>(WordCount(best->name)), words.end());
  return best->fn(opts);
}

}  // namespace cairn::cli

int main(int argc, char** argv) { return cairn::cli::Main(argc, argv); }
