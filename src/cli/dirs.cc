// `cairn mkdir`, `ls`, `ln`, `mv`, `rm`, `alias create`, `put FILE
// ALIAS:path`, `get ALIAS:path` (docs/dirs.md): Tahoe-LAFS directories on
// the node's grid through cairnd's dir.* methods, and `debug dirnode`, which
// reads a directory body from stdin with no grid. The main thread does
// everything but `cp`'s downloads into a local tree, which run on a few
// threads of their own (CopyFiles).
#include "cli/dirs.h"

#include <cjson/cJSON.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "cairn/caps/cap.h"
#include "cairn/dirnode/aliases.h"
#include "cairn/dirnode/dirnode.h"
#include "cairn/dirnode/listing.h"
#include "cli/client.h"
#include "cli/commands.h"
#include "cli/file_io.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char* Str(const cJSON* o, const char* key) {
  const cJSON* v = cJSON_GetObjectItemCaseSensitive(o, key);
  return cJSON_IsString(v) ? v->valuestring : "";
}

// The positional arguments, or a usage error for an unknown option.
// `flags` are accepted and set.
int Positionals(const Options& opts, const char* usage, std::vector<std::pair<const char*, bool*>> flags,
                std::vector<std::string>* out) {
  for (const std::string& a : opts.args) {
    bool matched = false;
    for (auto& [name, value] : flags) {
      if (a == name) {
        *value = true;
        matched = true;
      }
    }
    if (matched) continue;
    if (a.size() > 1 && a[0] == '-') return UsageError(usage, "unknown option \"" + a + "\"");
    out->push_back(a);
  }
  return 0;
}

const char kDirsHelp[] =
    "Paths are Tahoe-LAFS's: ALIAS:path/to/child, URI:DIR2:...:path or\n"
    "URI:DIR2:.../path; a path without an alias starts at the alias \"tahoe\".\n"
    "Directories are SDMF mutable files; every change is a read-modify-write of\n"
    "the directory that re-reads and re-applies itself when another writer\n"
    "changed it meanwhile (docs/dirs.md). Exit codes: 3 not found, 4 conflict\n"
    "(the name exists, or the change no longer applies), 5 not enough servers,\n"
    "6 uncoordinated write (gave up after repeated conflicts), 7 bad cap.\n";

// Prints a directory command's help: its own text, then what all share.
int Help(const char* usage, const char* text) {
  std::printf("usage: cairn [-d DIR] [--json] %s\n\n%s%s", usage, text, kDirsHelp);
  return 0;
}

// Calls a dir.* method and prints its result with --json; `say` prints it
// for people. The exit code.
int CallAndSay(const Options& opts, const char* method, Json params,
               const std::function<void(const cJSON*)>& say) {
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto result = client.Call(method, std::move(params), true, [&opts](const cJSON* e) { PrintProgress(opts, e); });
  if (!result.ok()) return Fail(opts, result.status());
  if (opts.json) {
    PrintJson(*result);
  } else if (say) {
    say(result->get());
  }
  return 0;
}

// `ls -l`'s line for one child: type and access, size, the link's
// modification time, name.
void PrintLong(const std::string& name, const cJSON* node) {
  const cJSON* kind = cJSON_GetArrayItem(node, 0);
  const cJSON* props = cJSON_GetArrayItem(node, 1);
  const std::string type = cJSON_IsString(kind) ? kind->valuestring : "unknown";
  const char t = type == "dirnode" ? 'd' : type == "filenode" ? '-' : '?';
  const bool writable = cJSON_GetObjectItemCaseSensitive(props, "rw_uri") != nullptr;
  const cJSON* size = cJSON_GetObjectItemCaseSensitive(props, "size");
  std::string size_text = cJSON_IsNumber(size) ? std::to_string(static_cast<long long>(size->valuedouble)) : "-";
  const cJSON* md = cJSON_GetObjectItemCaseSensitive(props, "metadata");
  const cJSON* tahoe = cJSON_GetObjectItemCaseSensitive(md, "tahoe");
  const cJSON* motime = cJSON_GetObjectItemCaseSensitive(tahoe, "linkmotime");
  const cJSON* mtime = cJSON_GetObjectItemCaseSensitive(md, "mtime");
  // Numbers, or raw numbers in a listing made in this process (debug dirnode).
  auto number = [](const cJSON* v) {
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsRaw(v)) return std::strtod(v->valuestring, nullptr);
    return 0.0;
  };
  double when = number(motime) > 0 ? number(motime) : number(mtime);
  char date[32] = "-";
  if (when > 0) {
    std::time_t secs = static_cast<std::time_t>(when);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M", &tm);
  }
  std::printf("%c%s %10s %s %s\n", t, writable ? "rw" : "r-", size_text.c_str(), date, name.c_str());
}

// Prints a t=json listing (or a single node) the way `tahoe ls` does:
// one name a line, or with `long_form` one line of details each.
void PrintListing(const cJSON* listing, const std::string& target, bool long_form) {
  const cJSON* kind = cJSON_GetArrayItem(listing, 0);
  const cJSON* props = cJSON_GetArrayItem(listing, 1);
  if (!cJSON_IsString(kind) || std::string(kind->valuestring) != "dirnode") {
    if (long_form) return PrintLong(target, listing);
    std::printf("%s\n", target.c_str());
    return;
  }
  const cJSON* child;
  cJSON_ArrayForEach(child, cJSON_GetObjectItemCaseSensitive(props, "children")) {
    if (long_form) {
      PrintLong(child->string, child);
    } else {
      std::printf("%s\n", child->string);
    }
  }
}

}  // namespace

int DebugDirnodeMain(const Options& opts) {
  static const char kUsage[] = "debug dirnode CAP < BODY";
  if (IsHelp(opts)) {
    return Help(kUsage,
                "Reads a directory body (the plaintext of the file behind the directory cap)\n"
                "from stdin and prints its children as Tahoe-LAFS's t=json shows them\n"
                "(--json: the whole [\"dirnode\", {...}] document; else `ls -l` lines).\n"
                "A read cap (URI:DIR2-RO:) never shows a child's write cap. Needs no grid.\n");
  }
  bool long_form = false;
  std::vector<std::string> args;
  if (int code = Positionals(opts, kUsage, {{"-l", &long_form}}, &args)) return code;
  if (args.size() != 1) return UsageError(kUsage, "debug dirnode takes one directory CAP");
  auto cap = caps::ParseCap(args[0]);
  if (!cap.ok()) return Fail(opts, cap.status());
  auto access = dirnode::AccessOf(*cap);
  if (!access.ok()) return Fail(opts, access.status());
  std::string body(std::istreambuf_iterator<char>(std::cin), {});
  if (cap->kind == caps::CapKind::kLiteral && body.empty()) body = cap->literal;
  auto parsed = dirnode::ParseBody(body, *access);
  if (!parsed.ok()) return Fail(opts, parsed.status());
  Json listing = dirnode::ListingJson(*cap, parsed->children);
  if (opts.json) {
    PrintJson(listing);
  } else {
    for (const auto& [name, child] : parsed->children) {
      Json node = dirnode::ChildJson(child, !access->writekey.empty(), access->immutable);
      PrintLong(name, node.get());
    }
  }
  if (parsed->dropped && !opts.quiet) {
    std::fprintf(stderr, "%zu children dropped (mutable caps in an immutable directory)\n", parsed->dropped);
  }
  return 0;
}

int MkdirMain(const Options& opts) {
  static const char kUsage[] = "mkdir [--format sdmf|mdmf] [ALIAS:path]";
  if (IsHelp(opts)) {
    return Help(kUsage,
                "Creates a new, empty mutable directory and prints its write cap. With a path,\n"
                "links it there (the parent must exist and the name must not: conflict, exit 4).\n"
                "--format mdmf makes a URI:DIR2-MDMF: directory (default: SDMF, URI:DIR2:).\n\n");
  }
  std::string format;
  Options rest = opts;
  rest.args.clear();
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    if (a == "--format") {
      if (i + 1 >= opts.args.size()) return UsageError(kUsage, "--format needs sdmf or mdmf");
      format = opts.args[++i];
    } else if (a.rfind("--format=", 0) == 0) {
      format = a.substr(9);
    } else {
      rest.args.push_back(a);
    }
  }
  std::vector<std::string> args;
  if (int code = Positionals(rest, kUsage, {}, &args)) return code;
  if (args.size() > 1) return UsageError(kUsage, "mkdir takes at most one path");
  Json params = Json::NewObject();
  if (!args.empty()) cJSON_AddStringToObject(params.get(), "path", args[0].c_str());
  if (!format.empty()) cJSON_AddStringToObject(params.get(), "format", format.c_str());
  return CallAndSay(opts, "dir.mkdir", std::move(params), [](const cJSON* r) { std::printf("%s\n", Str(r, "cap")); });
}

int AliasCreateMain(const Options& opts) {
  static const char kUsage[] = "alias create NAME";
  if (IsHelp(opts)) {
    return Help(kUsage, "Creates a new, empty mutable directory and names it NAME (which must not exist).\n");
  }
  std::vector<std::string> args;
  if (int code = Positionals(opts, kUsage, {}, &args)) return code;
  if (args.size() != 1) return UsageError(kUsage, "alias create takes one NAME");
  std::string name = args[0];
  if (!name.empty() && name.back() == ':') name.pop_back();  // Tahoe accepts "NAME:" too
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "name", name.c_str());
  return CallAndSay(opts, "alias.create", std::move(params), [&opts](const cJSON* r) {
    if (!opts.quiet) std::fprintf(stderr, "Alias '%s' created\n", Str(r, "name"));
    std::printf("%s\n", Str(r, "cap"));
  });
}

int AliasImportMain(const Options& opts) {
  static const char kUsage[] = "alias import FILE";
  if (IsHelp(opts)) {
    return Help(kUsage,
                "Adds every alias of FILE, a Tahoe-LAFS private/aliases file (\"NAME: CAP\" a\n"
                "line; '#' comments), all of them or none: conflict (exit 4) if a name exists,\n"
                "bad_cap (exit 7) for a cap that is not a directory's, invalid_argument for a\n"
                "name cairn does not take (letters, digits, '.', '_', '-').\n");
  }
  std::vector<std::string> args;
  if (int code = Positionals(opts, kUsage, {}, &args)) return code;
  if (args.size() != 1) return UsageError(kUsage, "alias import takes one FILE");
  std::ifstream in(args[0], std::ios::binary);
  if (!in) return Fail(opts, Status::NotFound("cannot read " + args[0]));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto parsed = dirnode::ParseAliasesFile(text);
  if (!parsed.ok()) return Fail(opts, parsed.status());
  Json params = Json::NewObject();
  cJSON* list = cJSON_AddArrayToObject(params.get(), "aliases");
  for (const auto& a : *parsed) {
    cJSON* e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", a.first.c_str());
    cJSON_AddStringToObject(e, "cap", a.second.c_str());
    cJSON_AddItemToArray(list, e);
  }
  return CallAndSay(opts, "alias.import", std::move(params), [&opts](const cJSON* r) {
    const cJSON* n = cJSON_GetObjectItemCaseSensitive(r, "imported");
    if (!opts.quiet) std::fprintf(stderr, "%.0f aliases imported\n", cJSON_IsNumber(n) ? n->valuedouble : 0);
  });
}

int AliasExportMain(const Options& opts) {
  static const char kUsage[] = "alias export [FILE]";
  if (IsHelp(opts)) {
    return Help(kUsage,
                "Writes the node's directory aliases as a Tahoe-LAFS private/aliases file\n"
                "(\"NAME: CAP\" a line) to FILE (through FILE.tmp, renamed into place) or to\n"
                "stdout. Aliases of files are left out (Tahoe's aliases name directories) and\n"
                "listed on stderr.\n");
  }
  std::vector<std::string> args;
  if (int code = Positionals(opts, kUsage, {}, &args)) return code;
  if (args.size() > 1) return UsageError(kUsage, "alias export takes at most one FILE");
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto listed = client.Call("alias.list", Json::NewObject(), true, nullptr);
  if (!listed.ok()) return Fail(opts, listed.status());
  std::vector<std::pair<std::string, std::string>> dirs;
  std::vector<std::string> left_out;
  const cJSON* a;
  cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(listed->get(), "aliases")) {
    const std::string name = Str(a, "name"), cap = Str(a, "cap");
    auto parsed = caps::ParseCap(cap);
    if (parsed.ok() && parsed->directory) {
      dirs.emplace_back(name, cap);
    } else {
      left_out.push_back(name);
    }
  }
  const std::string text = dirnode::FormatAliasesFile(dirs);
  if (args.empty()) {
    std::fwrite(text.data(), 1, text.size(), stdout);
  } else {
    const std::string tmp = args[0] + ".tmp";
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out || std::rename(tmp.c_str(), args[0].c_str()) != 0) {
      return Fail(opts, Status::IoError("cannot write " + args[0]));
    }
  }
  for (const std::string& name : left_out) {
    std::fprintf(stderr, "left out alias '%s': not a directory\n", name.c_str());
  }
  return 0;
}

int LsMain(const Options& opts) {
  static const char kUsage[] = "ls [-l] [--json] [ALIAS:path]";
  if (IsHelp(opts)) {
    return Help(kUsage,
                "Lists a directory's children, one name a line; -l adds type (d directory,\n"
                "- file, ? unknown), rw/r- (a write cap is held), size, the link's time\n"
                "(UTC) and name. --json prints Tahoe-LAFS's t=json document.\n\n");
  }
  bool long_form = false;
  std::vector<std::string> args;
  if (int code = Positionals(opts, kUsage, {{"-l", &long_form}}, &args)) return code;
  if (args.size() > 1) return UsageError(kUsage, "ls takes at most one path");
  std::string target = args.empty() ? "tahoe:" : args[0];
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "path", target.c_str());
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) return Fail(opts, st);
  auto result = client.Call("dir.ls", std::move(params), true, [&opts](const cJSON* e) { PrintProgress(opts, e); });
  if (!result.ok()) return Fail(opts, result.status());
  const cJSON* listing = cJSON_GetObjectItemCaseSensitive(result->get(), "listing");
  if (opts.json) {
    PrintJson(Json(cJSON_Duplicate(listing, true)));
    return 0;
  }
  std::string last = target;
  std::size_t cut = last.find_last_of("/:");
  if (cut != std::string::npos) last = last.substr(cut + 1);
  PrintListing(listing, last, long_form);
  return 0;
}

int LnMain(const Options& opts) {
  static const char kUsage[] = "ln FROM TO";
  if (IsHelp(opts)) {
    return Help(kUsage,
                "Links what FROM names (a cap, or ALIAS:path) at TO. If TO ends in '/' or names\n"
                "a directory's root (ALIAS:), the link takes FROM's last name. An existing name\n"
                "at TO is replaced unless it is a directory. The new link gets new times\n"
                "(as `tahoe ln`).\n\n");
  }
  std::vector<std::string> args;
  if (int code = Positionals(opts, kUsage, {}, &args)) return code;
  if (args.size() != 2) return UsageError(kUsage, "ln takes FROM and TO");
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "from", args[0].c_str());
  cJSON_AddStringToObject(params.get(), "to", args[1].c_str());
  return CallAndSay(opts, "dir.ln", std::move(params), nullptr);
}

int MvMain(const Options& opts) {
  static const char kUsage[] = "mv FROM TO";
  if (IsHelp(opts)) {
    return Help(kUsage,
                "Moves the link FROM (ALIAS:path) to TO: linked at TO (replacing a file there,\n"
                "never a directory), then unlinked at FROM. Within one directory it is one\n"
                "change. The link keeps its metadata, with new link times.\n\n");
  }
  std::vector<std::string> args;
  if (int code = Positionals(opts, kUsage, {}, &args)) return code;
  if (args.size() != 2) return UsageError(kUsage, "mv takes FROM and TO");
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "from", args[0].c_str());
  cJSON_AddStringToObject(params.get(), "to", args[1].c_str());
  return CallAndSay(opts, "dir.mv", std::move(params), [&opts](const cJSON*) {
    if (!opts.quiet) std::fprintf(stderr, "OK\n");
  });
}

int RmMain(const Options& opts) {
  static const char kUsage[] = "rm ALIAS:path";
  if (IsHelp(opts)) {
    return Help(kUsage, "Unlinks the child a path names from its directory (not found: exit 3).\n\n");
  }
  std::vector<std::string> args;
  if (int code = Positionals(opts, kUsage, {}, &args)) return code;
  if (args.size() != 1) return UsageError(kUsage, "rm takes one path");
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "path", args[0].c_str());
  return CallAndSay(opts, "dir.rm", std::move(params), nullptr);
}

int PutPathMain(const Options& opts) {
  // Exactly FILE and a path make this command; anything else (the plain
  // put's FILE [--convergence B64] [--async], --help) is PutMain's. A put
  // into a directory runs two tasks in turn and always waits for them.
  std::vector<std::string> positional;
  for (const std::string& a : opts.args) {
    if (!a.empty() && a[0] == '-' && a != "-") return PutMain(opts);
    positional.push_back(a);
  }
  if (positional.size() != 2) return PutMain(opts);
  InputFile input;
  Status opened = input.Open(positional[0]);
  if (!opened.ok()) return Fail(opts, opened);
  Json params = Json::NewObject();
  if (input.size()) cJSON_AddNumberToObject(params.get(), "size", static_cast<double>(*input.size()));
  cJSON_AddStringToObject(params.get(), "path", positional[1].c_str());
  auto result = CallSending(opts, "dir.put", std::move(params), input.Streams(), false);
  if (!result.ok()) return Fail(opts, result.status());
  if (!PrintedPlainAnswer(opts, false, *result)) std::printf("%s\n", Str(result->get(), "cap"));
  return 0;
}

int GetPathMain(const Options& opts) {
  static const char kUsage[] = "get ALIAS:path [-o FILE]";
  if (IsHelp(opts)) return GetMain(opts);
  std::string target, output;
  if (int code = ParseTargetAndOutput(opts, kUsage, &target, &output)) return code;
  const bool uri = target.rfind("URI:", 0) == 0;
  const bool path = uri ? target.find('/') != std::string::npos : target.find(':') != std::string::npos;
  if (!path) return GetMain(opts);
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "path", target.c_str());
  return FetchAndReport(opts, "dir.get", std::move(params), output, [](const cJSON* r) {
    std::fprintf(stderr, "wrote %s to %s\n", HumanBytes(cJSON_GetObjectItemCaseSensitive(r, "size")
                                                          ? cJSON_GetObjectItemCaseSensitive(r, "size")->valuedouble
                                                          : 0)
                                             .c_str(),
                 Str(r, "path"));
  });
}

// ---- cp ---------------------------------------------------------------------
// `cairn cp [-r] SRC DST` composes the methods above, one request per file
// or directory: dir.put and dir.mkdir upward, dir.ls and dir.get downward,
// dir.ln from grid to grid (an immutable file is linked, not copied).

namespace {

// Tahoe's rule for cp: a grid path starts with a cap, or has an alias
// before any '/'; anything else is local ("./a:b" is a local name).
bool IsGridPath(const std::string& s) {
  if (s.rfind("URI:", 0) == 0 || s.rfind("ro.URI:", 0) == 0 || s.rfind("imm.URI:", 0) == 0) return true;
  std::size_t colon = s.find(':');
  std::size_t slash = s.find('/');
  return colon != std::string::npos && colon > 0 && (slash == std::string::npos || colon < slash);
}

std::string GridJoin(const std::string& dir, const std::string& name) {
  if (!dir.empty() && (dir.back() == ':' || dir.back() == '/')) return dir + name;
  return dir + "/" + name;
}

std::string LocalJoin(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string BaseName(std::string s) {
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  std::size_t cut = s.find_last_of("/:");
  return cut == std::string::npos ? s : s.substr(cut + 1);
}

Result<Json> CallOne(const Options& opts, const char* method, Json params) {
  ControlClient client;
  CAIRN_TRY(client.Connect(opts.node_dir, opts.timeout_ms));
  return client.Call(method, std::move(params), true, [&opts](const cJSON* e) { PrintProgress(opts, e); });
}

Status PutOne(const Options& opts, const std::string& local, const std::string& grid) {
  InputFile input;
  CAIRN_TRY(input.Open(local));
  Json params = Json::NewObject();
  if (input.size()) cJSON_AddNumberToObject(params.get(), "size", static_cast<double>(*input.size()));
  cJSON_AddStringToObject(params.get(), "path", grid.c_str());
  auto r = CallSending(opts, "dir.put", std::move(params), input.Streams(), false);
  return r.status();
}

Status GetOne(const Options& opts, const std::string& grid, const std::string& local) {
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "path", grid.c_str());
  bool to_stdout = false;
  return FetchTo(opts, "dir.get", std::move(params), local, &to_stdout).status();
}

// The t=json listing of a grid path.
Result<Json> ListOne(const Options& opts, const std::string& grid) {
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "path", grid.c_str());
  CAIRN_TRY_ASSIGN(Json r, CallOne(opts, "dir.ls", std::move(params)));
  return Json(cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r.get(), "listing"), true));
}

bool IsDirListing(const Json& listing) {
  const cJSON* kind = cJSON_GetArrayItem(listing.get(), 0);
  return cJSON_IsString(kind) && std::string(kind->valuestring) == "dirnode";
}

struct CopyCounts {
  std::size_t files = 0, dirs = 0, skipped = 0;
};

// A directory at `grid`: made, or kept if it is one already.
Status EnsureGridDir(const Options& opts, const std::string& grid) {
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "path", grid.c_str());
  auto made = CallOne(opts, "dir.mkdir", std::move(params));
  if (made.ok()) return Status();
  if (made.status().code() != Code::kConflict) return made.status();
  CAIRN_TRY_ASSIGN(Json listing, ListOne(opts, grid));
  if (!IsDirListing(listing)) return Status::Conflict(grid + " exists and is not a directory");
  return Status();
}

Status CopyUp(const Options& opts, const std::string& local, const std::string& grid, CopyCounts* n) {
  CAIRN_TRY(EnsureGridDir(opts, grid));
  ++n->dirs;
  DIR* d = opendir(local.c_str());
  if (!d) return Status::IoError("cannot list " + local);
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string name = e->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  closedir(d);
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    const std::string from = LocalJoin(local, name);
    struct stat st;
    if (lstat(from.c_str(), &st) != 0) return Status::IoError("cannot stat " + from);
    if (S_ISDIR(st.st_mode)) {
      CAIRN_TRY(CopyUp(opts, from, GridJoin(grid, name), n));
    } else if (S_ISREG(st.st_mode)) {
      CAIRN_TRY(PutOne(opts, from, GridJoin(grid, name)));
      ++n->files;
    } else {
      std::fprintf(stderr, "WARNING: cannot copy '%s': not a regular file or directory\n", from.c_str());
      ++n->skipped;
    }
  }
  return Status();
}

// The cap a listing entry names (its read cap, else its write cap), or "".
std::string CapOf(const cJSON* props) {
  std::string cap = Str(props, "ro_uri");
  return cap.empty() ? Str(props, "rw_uri") : cap;
}

// Restores what a link's metadata says of a local file or directory, as
// `tahoe backup` recorded it (tahoe-dirnodes.md B.3): the permission bits
// of "st_mode", else of cairn's own "cairn_mode", and the modification time
// "mtime" (float seconds). Nothing for a link without them (`tahoe cp` and
// `cairn cp` record none).
Status ApplyMetadata(const std::string& path, const cJSON* metadata) {
  const cJSON* mode = cJSON_GetObjectItemCaseSensitive(metadata, "st_mode");
  if (!cJSON_IsNumber(mode)) mode = cJSON_GetObjectItemCaseSensitive(metadata, "cairn_mode");
  if (cJSON_IsNumber(mode) && mode->valuedouble >= 0) {
    const auto bits = static_cast<mode_t>(static_cast<unsigned long long>(mode->valuedouble) & 07777);
    if (chmod(path.c_str(), bits) != 0) return Status::IoError("cannot set the mode of " + path);
  }
  const cJSON* mtime = cJSON_GetObjectItemCaseSensitive(metadata, "mtime");
  if (cJSON_IsNumber(mtime) && mtime->valuedouble >= 0) {
    const double t = mtime->valuedouble;
    struct timespec times[2];
    times[0].tv_sec = 0;
    times[0].tv_nsec = UTIME_OMIT;
    times[1].tv_sec = static_cast<time_t>(t);
    long long ns = std::llround((t - static_cast<double>(times[1].tv_sec)) * 1e9);
    if (ns >= 1000000000LL) {
      ++times[1].tv_sec;
      ns -= 1000000000LL;
    }
    times[1].tv_nsec = static_cast<long>(ns < 0 ? 0 : ns);
    if (utimensat(AT_FDCWD, path.c_str(), times, 0) != 0) return Status::IoError("cannot set the times of " + path);
  }
  return Status();
}

// A download to `local`: refused if something is there, unless `overwrite`.
Status GetNew(const Options& opts, const std::string& source, const std::string& local, bool overwrite) {
  struct stat st;
  if (!overwrite && lstat(local.c_str(), &st) == 0) {
    return Status::Conflict(local + " exists (cp --overwrite replaces files)");
  }
  return GetOne(opts, source, local);
}

// One file of a directory being copied down.
struct FileCopy {
  std::string cap;           // read by its own cap
  std::string to;            // the local path
  const cJSON* metadata;     // its link's metadata, in the listing (outlives the copy)
};

// Downloads restored at once: each is a task in the daemon whose records are
// group-committed, so several in flight share their syncs (one at a time,
// a restore of small files ran at 44 files/s, nearly all of it syncs).
constexpr std::size_t kDownloadsInFlight = 8;

// Downloads `files` (GetNew, then ApplyMetadata), up to kDownloadsInFlight
// at once on threads of this command, each over its own control connection.
// After a failure no further file is started; the first failure is returned.
Status CopyFiles(const Options& opts, const std::vector<FileCopy>& files, bool overwrite) {
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first;
  auto work = [&] {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= files.size() || failed.load()) return;
      Status st = GetNew(opts, files[i].cap, files[i].to, overwrite);
      if (st.ok()) st = ApplyMetadata(files[i].to, files[i].metadata);
      if (!st.ok()) {
        std::lock_guard<std::mutex> hold(mu);
        if (!failed.exchange(true)) first = st;
        return;
      }
    }
  };
  const std::size_t threads = std::min(files.size(), kDownloadsInFlight);
  if (threads <= 1) {
    work();
    return first;
  }
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(work);
  for (std::thread& t : pool) t.join();
  return first;
}

// Copies the directory `listing` (at `grid`) into `local`, each child read
// by its own cap (no path walk), its times and mode restored from its link's
// metadata; a directory's after its children. The files of one directory
// are downloaded several at once (CopyFiles), before its subdirectories.
Status CopyDown(const Options& opts, const std::string& grid, const Json& listing, const std::string& local,
                bool overwrite, CopyCounts* n) {
  if (mkdir(local.c_str(), 0777) != 0 && errno != EEXIST) return Status::IoError("cannot create " + local);
  ++n->dirs;
  const cJSON* kids = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(listing.get(), 1), "children");
  std::vector<FileCopy> files;
  for (const cJSON* kid = kids ? kids->child : nullptr; kid; kid = kid->next) {
    const std::string name = kid->string;
    if (std::string(cJSON_GetArrayItem(kid, 0)->valuestring) != "filenode" || name.empty() || name == "." ||
        name == ".." || name.find('/') != std::string::npos) {
      continue;  // reported, or copied, by the loop below
    }
    const cJSON* props = cJSON_GetArrayItem(kid, 1);
    std::string cap = CapOf(props);
    if (cap.empty()) cap = GridJoin(grid, name);
    files.push_back({std::move(cap), LocalJoin(local, name), cJSON_GetObjectItemCaseSensitive(props, "metadata")});
  }
  CAIRN_TRY(CopyFiles(opts, files, overwrite));
  n->files += files.size();
  const cJSON* kid;
  cJSON_ArrayForEach(kid, kids) {
    const std::string name = kid->string;
    const std::string kind = cJSON_GetArrayItem(kid, 0)->valuestring;
    const cJSON* props = cJSON_GetArrayItem(kid, 1);
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
      std::fprintf(stderr, "WARNING: cannot copy the child named '%s' to a local file\n", name.c_str());
      ++n->skipped;
      continue;
    }
    const std::string from = GridJoin(grid, name), to = LocalJoin(local, name);
    std::string cap = CapOf(props);
    if (cap.empty()) cap = from;
    const cJSON* metadata = cJSON_GetObjectItemCaseSensitive(props, "metadata");
    if (kind == "dirnode") {
      CAIRN_TRY_ASSIGN(Json sub, ListOne(opts, cap));
      CAIRN_TRY(CopyDown(opts, from, sub, to, overwrite, n));
      CAIRN_TRY(ApplyMetadata(to, metadata));
    } else if (kind == "filenode") {
      continue;  // copied above
    } else {
      std::fprintf(stderr, "WARNING: cannot copy '%s': a node of a kind cairn does not know\n", from.c_str());
      ++n->skipped;
    }
  }
  return Status();
}

}  // namespace

int CpMain(const Options& opts) {
  static const char kUsage[] = "cp [-r] [--overwrite] SRC DST";
  if (IsHelp(opts)) {
    return Help(kUsage,
                "Copies a file or, with -r, a directory tree: local to grid (each file uploaded\n"
                "and linked, each directory made), grid to local (each file downloaded), or grid\n"
                "to grid (linked). SRC or DST is on the grid when it starts with a cap or an\n"
                "alias (\"ALIAS:...\"); otherwise it is local. A DST that is a directory (or ends\n"
                "in '/') receives SRC under its own name. Symlinks and special files are\n"
                "reported and skipped (exit 2 if anything was skipped). Grid to local: a file\n"
                "that exists locally is not replaced without --overwrite (conflict, exit 4);\n"
                "modes and modification times are restored from the links' metadata where\n"
                "it has them (`tahoe backup` and `cairn backup` snapshots).\n\n");
  }
  bool recursive = false, overwrite = false;
  std::vector<std::string> args;
  if (int code = Positionals(opts, kUsage,
                             {{"-r", &recursive}, {"--recursive", &recursive}, {"--overwrite", &overwrite}}, &args)) {
    return code;
  }
  if (args.size() != 2) return UsageError(kUsage, "cp takes SRC and DST");
  std::string src = args[0], dst = args[1];
  const bool src_grid = IsGridPath(src), dst_grid = IsGridPath(dst);
  CopyCounts n;
  Status st;
  if (src_grid && dst_grid) {
    Json params = Json::NewObject();
    cJSON_AddStringToObject(params.get(), "from", src.c_str());
    cJSON_AddStringToObject(params.get(), "to", dst.c_str());
    st = CallOne(opts, "dir.ln", std::move(params)).status();
    if (st.ok()) ++n.files;
  } else if (!src_grid && dst_grid) {
    struct stat sst;
    if (stat(src.c_str(), &sst) != 0) return Fail(opts, Status::NotFound("no such file or directory: " + src));
    bool into = dst.back() == '/' || dst.back() == ':';
    if (!into) {
      auto existing = ListOne(opts, dst);
      into = existing.ok() && IsDirListing(*existing);
    }
    const std::string target = into ? GridJoin(dst, BaseName(src)) : dst;
    if (S_ISDIR(sst.st_mode)) {
      if (!recursive) return Fail(opts, Status::InvalidArgument(src + " is a directory: cp -r copies trees"));
      st = CopyUp(opts, src, target, &n);
    } else {
      st = PutOne(opts, src, target);
      if (st.ok()) ++n.files;
    }
  } else if (src_grid && !dst_grid) {
    auto listing = ListOne(opts, src);
    if (!listing.ok()) return Fail(opts, listing.status());
    struct stat dst_st;
    const bool into = dst.back() == '/' || (stat(dst.c_str(), &dst_st) == 0 && S_ISDIR(dst_st.st_mode));
    const std::string target = into ? LocalJoin(dst, BaseName(src)) : dst;
    if (IsDirListing(*listing)) {
      if (!recursive) return Fail(opts, Status::InvalidArgument(src + " is a directory: cp -r copies trees"));
      st = CopyDown(opts, src, *listing, target, overwrite, &n);
    } else {
      st = GetNew(opts, src, target, overwrite);
      if (st.ok()) st = ApplyMetadata(target, cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(listing->get(), 1), "metadata"));
      if (st.ok()) ++n.files;
    }
  } else {
    return UsageError(kUsage, "neither SRC nor DST is on the grid (an alias or a cap)");
  }
  if (!st.ok()) return Fail(opts, st);
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddNumberToObject(out.get(), "files", static_cast<double>(n.files));
    cJSON_AddNumberToObject(out.get(), "directories", static_cast<double>(n.dirs));
    cJSON_AddNumberToObject(out.get(), "skipped", static_cast<double>(n.skipped));
    PrintJson(out);
  } else if (!opts.quiet) {
    std::fprintf(stderr, "%zu files copied, %zu directories, %zu skipped\n", n.files, n.dirs, n.skipped);
  }
  return n.skipped ? CodeExitCode(Code::kInvalidArgument) : 0;
}

}  // namespace cairn::cli
