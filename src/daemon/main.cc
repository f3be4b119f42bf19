// cairnd DIR: runs a cairn node in the foreground, logging to stderr.
//
// Exit codes: 0 clean shutdown; 1 error; 2 usage; 4 the node directory is in
// use by another cairnd; 78 the node directory or its config is invalid.
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "cairn/core/config.h"
#include "cairn/core/file.h"
#include "cairn/core/log.h"
#include "cairn/core/loop.h"
#include "cairn/core/node_dir.h"
#include "cairn/core/version.h"
#include "cairn/platform/log_sinks.h"
#include "cairn/platform/platform.h"
#include "cairn/tls/identity.h"
#include "daemon/node.h"

namespace {

constexpr int kExitUsage = 2;
constexpr int kExitConfig = 78;

const char kUsage[] =
    "usage: cairnd DIR\n"
    "\n"
    "Runs the cairn node in DIR (made by `cairn init DIR`) in the foreground,\n"
    "logging to stderr. SIGTERM or SIGINT stops it cleanly.\n"
    "\n"
    "  -h, --help     this text\n"
    "  --version      print the version\n";


}  // namespace

int main(int argc, char** argv) {
  using namespace cairn;
  std::string dir;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--version") {
      std::printf("cairnd %s\n", kVersion);
      return 0;
    }
    if (!a.empty() && a[0] == '-') {
      std::fprintf(stderr, "cairnd: unknown option %s\n%s", a.c_str(), kUsage);
      return kExitUsage;
    }
    if (!dir.empty()) {
      std::fprintf(stderr, "cairnd: one node directory only\n%s", kUsage);
      return kExitUsage;
    }
    dir = a;
  }
  if (dir.empty()) {
    std::fputs(kUsage, stderr);
    return kExitUsage;
  }

  NodePaths paths = NodePaths(dir).MakeAbsolute();
  struct stat st;
  if (stat(paths.config.c_str(), &st) != 0) {
    std::fprintf(stderr, "cairnd: %s is not a cairn node directory (no cairn.json); create one with: cairn init %s\n",
                 dir.c_str(), dir.c_str());
    return kExitConfig;
  }
  auto config = LoadConfigFile(paths.config);
  if (!config.ok()) {
    std::fprintf(stderr, "cairnd: %s\n", config.status().ToString().c_str());
    return kExitConfig;
  }
  SetLogLevel(config->log_level);
  if (config->log_sink == "syslog") SetLogSink(platform::OpenSyslogSink());

  // The lock comes before anything that touches the directory's contents
  // (the control socket's stale file is removed only by the lock's holder).
  auto lock = NodeLock::Acquire(paths);
  if (!lock.ok()) {
    std::fprintf(stderr, "cairnd: %s\n", std::string(lock.status().message()).c_str());
    return CodeExitCode(lock.status().code());
  }

  auto cert = ReadWholeFile(paths.tls_cert);
  if (!cert.ok()) {
    std::fprintf(stderr, "cairnd: %s\n", cert.status().ToString().c_str());
    return kExitConfig;
  }
  auto node_id = tls::SpkiHashOfCertPem(*cert);
  if (!node_id.ok()) {
    std::fprintf(stderr, "cairnd: %s: %s\n", paths.tls_cert.c_str(), node_id.status().ToString().c_str());
    return kExitConfig;
  }

  std::uint64_t threshold = platform::TuneProcessMemory(config->limits.malloc_mmap_threshold_bytes);
  if (threshold != config->limits.malloc_mmap_threshold_bytes) {
    CAIRN_LOG(Info, "limits.malloc_mmap_threshold_bytes %llu is out of this build's range; using %llu",
              static_cast<unsigned long long>(config->limits.malloc_mmap_threshold_bytes),
              static_cast<unsigned long long>(threshold));
  }
  // Must be set before libuv's thread pool starts (at the first queued work).
  setenv("UV_THREADPOOL_SIZE", std::to_string(config->limits.threadpool).c_str(), 1);
  std::signal(SIGPIPE, SIG_IGN);

  int exit_code = 0;
  {
    Loop loop;
    daemon::Node node(loop, paths, *config, *node_id);
    Status started = node.Start();
    if (!started.ok()) {
      CAIRN_LOG(Error, "cannot start: %s", started.ToString().c_str());
      exit_code = 1;
      node.Stop([&loop] { loop.Stop(); });
    }
    loop.Run();
    if (!node.stopping()) {
      // The loop ran out of work without a shutdown: close what is left.
      node.Stop([&loop] { loop.Stop(); });
      loop.Run();
    }
  }
  return exit_code;
}
