// `cairn put FILE [--convergence B64]` and `cairn get CAP [-o FILE]`:
// immutable files on the node's grid. The daemon reads and writes the files
// itself, by absolute path; `get` without -o has the daemon write a private
// temporary file beside the node's control socket, copies it to stdout and
// removes it. Single-threaded process.
#include <cjson/cJSON.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
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
  // This process reads the file, with its own permissions, and streams it to
  // the daemon in data frames: the daemon never opens a path it is given.
  int fd = file == "-" ? STDIN_FILENO : ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    Status why = err == ENOENT   ? Status::NotFound("no such file: " + file)
                 : err == EACCES ? Status::PermissionDenied("cannot read " + file)
                                 : Status::IoError("cannot open " + file + ": " + std::strerror(err));
    return Fail(opts, why);
  }
  struct stat st_file;
  bool sized = ::fstat(fd, &st_file) == 0 && S_ISREG(st_file.st_mode);
  Json params = Json::NewObject();
  if (sized) cJSON_AddNumberToObject(params.get(), "size", static_cast<double>(st_file.st_size));
  if (!convergence.empty()) cJSON_AddStringToObject(params.get(), "convergence", convergence.c_str());
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) {
    if (fd != STDIN_FILENO) ::close(fd);
    return Fail(opts, st);
  }
  ControlClient::Streams streams;
  streams.max_chunk = 256 << 10;  // within every board's control_chunk_bytes
  streams.next_input = [fd, &file](std::size_t max, bool* eof) -> Result<std::string> {
    std::string chunk(max, '\0');
    std::size_t got = 0;
    while (got < max) {
      ssize_t n = ::read(fd, chunk.data() + got, max - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::IoError("reading " + file + ": " + std::strerror(errno));
      if (n == 0) {
        *eof = true;
        break;
      }
      got += static_cast<std::size_t>(n);
    }
    chunk.resize(got);
    return chunk;
  };
  auto result = client.CallWithData("put", std::move(params), streams, !async,
                                    [&opts](const cJSON* event) { PrintProgress(opts, event); });
  if (fd != STDIN_FILENO) ::close(fd);
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
  // The daemon sends the file back in data frames; this process writes it
  // with its own permissions: to stdout, or to a temporary file beside FILE
  // that replaces FILE only once every byte has arrived.
  bool to_stdout = output.empty() || output == "-";
  std::string path, temp;
  int fd = STDOUT_FILENO;
  if (!to_stdout) {
    auto abs = Absolute(output);
    if (!abs.ok()) return Fail(opts, abs.status());
    path = *abs;
    temp = path + ".cairn-XXXXXX";
    fd = ::mkstemp(temp.data());
    if (fd < 0) return Fail(opts, Status::IoError("cannot create a file beside " + path + ": " + std::strerror(errno)));
  }
  auto discard = [&] {
    if (!to_stdout) {
      ::close(fd);
      ::unlink(temp.c_str());
    }
  };
  Json params = Json::NewObject();
  cJSON_AddStringToObject(params.get(), "cap", cap.c_str());
  ControlClient client;
  Status st = client.Connect(opts.node_dir, opts.timeout_ms);
  if (!st.ok()) {
    discard();
    return Fail(opts, st);
  }
  ControlClient::Streams streams;
  streams.on_data = [fd](std::string_view data, bool) -> Status {
    std::size_t done = 0;
    while (done < data.size()) {
      ssize_t n = ::write(fd, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return Status::IoError(std::string("writing the file: ") + std::strerror(errno));
      done += static_cast<std::size_t>(n);
    }
    return Status();
  };
  auto result = client.CallWithData("get", std::move(params), streams, true,
                                    [&opts](const cJSON* event) { PrintProgress(opts, event); });
  if (!result.ok()) {
    discard();
    return Fail(opts, result.status());
  }
  if (to_stdout) return 0;
  mode_t mask = ::umask(0);  // a new file's usual mode, as if created by open(2)
  ::umask(mask);
  if (::fchmod(fd, 0666 & ~mask) != 0 || ::fsync(fd) != 0 || ::close(fd) != 0 || ::rename(temp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(temp.c_str());
    return Fail(opts, Status::IoError("cannot write " + path + ": " + std::strerror(err)));
  }
  cJSON_AddStringToObject(result->get(), "path", path.c_str());
  if (opts.json) {
    PrintJson(*result);
  } else if (!opts.quiet) {
    std::fprintf(stderr, "wrote %s to %s\n", HumanBytes(Num(result->get(), "size")).c_str(), path.c_str());
  }
  return 0;
}

}  // namespace cairn::cli
