// `cairn init DIR`: creates a node directory, offline. Everything is built in
// a sibling temporary directory and renamed into place at the end, so a
// failure leaves nothing half-made and an existing node is never touched.
#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <lmdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cairn/core/base32.h"
#include "cairn/core/config.h"
#include "cairn/core/file.h"
#include "cairn/core/node_dir.h"
#include "cairn/crypto/random.h"
#include "cairn/tls/identity.h"
#include "cli/commands.h"
#include "cli/output.h"

namespace cairn::cli {
namespace {

const char kUsage[] = "init DIR [--port P] [--nickname N] [--board NAME] [--listen ADDR] [--host HOST]";

const char kHelp[] =
    "usage: cairn init DIR [options]\n"
    "\n"
    "Creates a new node directory: DIR/cairn.json (configuration), DIR/private/\n"
    "(TLS key and certificate, swissnum, the convergence and lease secrets; mode\n"
    "0700) and DIR/store/ (the LMDB environment). Refuses a DIR that exists and\n"
    "is not empty.\n"
    "\n"
    "  --port P        storage (GBS) port, default 3456\n"
    "  --nickname N    the node's nickname, default the host name\n"
    "  --board NAME    whose defaults to use, default this build's board\n"
    "  --listen ADDR   address the storage server binds, default 127.0.0.1\n"
    "  --host HOST     host named in the node's NURL, default the listen address\n";

Status WriteFile(const std::string& path, const std::string& data, mode_t mode) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) return Status::IoError(path + ": " + std::strerror(errno));
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return Status::IoError(path + ": " + std::strerror(err));
    }
    off += static_cast<std::size_t>(n);
  }
  if (fsync(fd) != 0) {
    int err = errno;
    close(fd);
    return Status::IoError(path + ": fsync: " + std::strerror(err));
  }
  close(fd);
  return Status();
}

Status MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0) return Status::IoError(path + ": " + std::strerror(errno));
  // mkdir's mode is masked by the umask; private directories must be exact.
  if (chmod(path.c_str(), mode) != 0) return Status::IoError(path + ": chmod: " + std::strerror(errno));
  return Status();
}

Status CreateStoreEnv(const std::string& path) {
  MDB_env* env = nullptr;
  int rc = mdb_env_create(&env);
  if (rc == 0) rc = mdb_env_open(env, path.c_str(), 0, 0600);
  // mdb_env_open writes the new file's meta pages without syncing them.
  if (rc == 0) rc = mdb_env_sync(env, 1);
  if (env) mdb_env_close(env);
  if (rc != 0) return Status::IoError(path + ": LMDB: " + mdb_strerror(rc));
  return SyncDir(path);
}

// 1 if `path` does not exist, 0 if it is an empty directory, else an error.
Result<bool> CheckTarget(const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return true;
    return Status::IoError(path + ": " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) return Status::Conflict(path + " exists and is not a directory; cairn init never touches it");
  DIR* d = opendir(path.c_str());
  if (!d) return Status::IoError(path + ": " + std::strerror(errno));
  bool empty = true;
  while (dirent* e = readdir(d)) {
    if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
      empty = false;
      break;
    }
  }
  closedir(d);
  if (!empty) {
    return Status::Conflict(path + " already exists and is not empty; cairn init never touches an existing node directory");
  }
  return false;
}

void RemoveTree(const std::string& path) {
  DIR* d = opendir(path.c_str());
  if (d) {
    while (dirent* e = readdir(d)) {
      if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
      std::string child = path + "/" + e->d_name;
      struct stat st;
      if (lstat(child.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
        RemoveTree(child);
      } else {
        unlink(child.c_str());
      }
    }
    closedir(d);
  }
  rmdir(path.c_str());
}

Status Populate(const NodePaths& p, const Config& config, std::string* node_id) {
  CAIRN_TRY(MakeDir(p.dir, 0755));
  CAIRN_TRY(MakeDir(p.private_dir, 0700));
  CAIRN_TRY_ASSIGN(tls::Identity id, tls::GenerateIdentity());
  CAIRN_TRY(WriteFile(p.tls_key, id.key_pem, 0600));
  CAIRN_TRY(WriteFile(p.tls_cert, id.cert_pem, 0644));
  CAIRN_TRY_ASSIGN(*node_id, tls::SpkiHashOfCertPem(id.cert_pem));
  CAIRN_TRY_ASSIGN(std::string swissnum, tls::RandomUrlSafeToken(32));
  CAIRN_TRY(WriteFile(p.swissnum, swissnum + "\n", 0600));
  // The convergence and lease secrets of put/get (docs/put-get.md), as
  // Tahoe-LAFS keeps them: 32 random bytes in base32. cairnd also creates
  // them on first use in a directory made before they existed.
  CAIRN_TRY_ASSIGN(std::string convergence, crypto::RandomBytes(32));
  CAIRN_TRY(WriteFile(p.private_dir + "/convergence", Base32Encode(convergence) + "\n", 0600));
  CAIRN_TRY_ASSIGN(std::string lease_secret, crypto::RandomBytes(32));
  CAIRN_TRY(WriteFile(p.private_dir + "/secret", Base32Encode(lease_secret) + "\n", 0600));
  CAIRN_TRY(SyncDir(p.private_dir));
  CAIRN_TRY(MakeDir(p.store, 0700));
  CAIRN_TRY(CreateStoreEnv(p.store));
  // The config is written last: its presence marks a complete node directory.
  CAIRN_TRY(WriteFile(p.config, ConfigToJson(config), 0644));
  // Every entry made above is durable before the rename publishes them.
  return SyncDir(p.dir);
}

}  // namespace

int InitMain(const Options& opts) {
  std::string dir;
  Config config;
  config.board = std::string(BuildBoard());
  char host[256] = "cairn";
  gethostname(host, sizeof host - 1);
  config.nickname = host;
  bool host_set = false;
  for (std::size_t i = 0; i < opts.args.size(); ++i) {
    const std::string& a = opts.args[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= opts.args.size()) return false;
      *out = opts.args[++i];
      return true;
    };
    std::string v;
    if (a == "-h" || a == "--help") {
      std::fputs(kHelp, stdout);
      return 0;
    } else if (a == "--port") {
      unsigned long long port;
      if (!value(&v) || !ParseUint(v, 65535, &port) || port == 0) return UsageError(kUsage, "--port takes 1..65535");
      config.port = static_cast<std::uint16_t>(port);
    } else if (a == "--nickname") {
      if (!value(&config.nickname)) return UsageError(kUsage, "--nickname takes a name");
    } else if (a == "--board") {
      if (!value(&config.board)) return UsageError(kUsage, "--board takes a board name");
    } else if (a == "--listen") {
      if (!value(&config.listen_address)) return UsageError(kUsage, "--listen takes an address");
    } else if (a == "--host") {
      if (!value(&config.public_host)) return UsageError(kUsage, "--host takes a host name");
      host_set = true;
    } else if (!a.empty() && a[0] == '-') {
      return UsageError(kUsage, "unknown option " + a);
    } else if (dir.empty()) {
      dir = a;
    } else {
      return UsageError(kUsage, "one directory only");
    }
  }
  if (dir.empty()) return UsageError(kUsage, "which directory?");
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  if (!host_set) config.public_host = config.listen_address;
  auto limits = BoardDefaults(config.board);
  if (!limits.ok()) return Fail(opts, limits.status());
  config.limits = *limits;

  auto target = CheckTarget(dir);
  if (!target.ok()) return Fail(opts, target.status());

  // Missing parents are made, as `mkdir -p` would.
  for (std::size_t slash = dir.find('/', 1); slash != std::string::npos; slash = dir.find('/', slash + 1)) {
    std::string parent = dir.substr(0, slash);
    if (mkdir(parent.c_str(), 0755) == 0) {
      Status synced = SyncDir(ParentDir(parent));
      if (!synced.ok()) return Fail(opts, synced);
    } else if (errno != EEXIST) {
      return Fail(opts, Status::IoError(parent + ": " + std::strerror(errno)));
    }
  }
  std::string tmp = dir + ".init-" + std::to_string(getpid());
  NodePaths staging(tmp);
  std::string node_id;
  Status st = Populate(staging, config, &node_id);
  if (st.ok() && rename(tmp.c_str(), dir.c_str()) != 0) {
    // Replacing an empty directory is allowed; a non-empty one is not.
    st = (errno == ENOTEMPTY || errno == EEXIST)
             ? Status::Conflict(dir + " was filled while cairn init ran; nothing was changed")
             : Status::IoError("rename " + tmp + " to " + dir + ": " + std::strerror(errno));
  }
  // The rename is durable only once the parent directory is synced: before
  // that, a power cut may leave the node directory missing (or the staging
  // name in its place).
  if (st.ok()) st = SyncDir(ParentDir(dir));
  if (!st.ok()) {
    RemoveTree(tmp);
    return Fail(opts, st);
  }
  NodePaths paths(dir);
  if (opts.json) {
    Json out = Json::NewObject();
    cJSON_AddStringToObject(out.get(), "node_dir", dir.c_str());
    cJSON_AddStringToObject(out.get(), "node_id", node_id.c_str());
    cJSON_AddStringToObject(out.get(), "board", config.board.c_str());
    cJSON_AddNumberToObject(out.get(), "port", config.port);
    PrintJson(out);
  } else {
    std::printf("created node directory %s\n", dir.c_str());
    std::printf("  node id   %s\n", node_id.c_str());
    std::printf("  board     %s\n", config.board.c_str());
    std::printf("  storage   %s:%u\n", config.listen_address.c_str(), config.port);
    std::printf("start it with: cairnd %s\n", dir.c_str());
  }
  return 0;
}

}  // namespace cairn::cli
