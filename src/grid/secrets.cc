// The node's secret files (cairn/grid/secrets.h), through the platform
// layer. Blocking: thread pool only.
#include "cairn/grid/secrets.h"

#include "cairn/core/base32.h"
#include "cairn/crypto/random.h"
#include "cairn/platform/platform.h"

namespace cairn::grid {
namespace {

// A secret file is one base32 line; anything longer is not ours.
constexpr std::size_t kMaxSecretFileBytes = 256;

Result<std::string> ReadSecret(platform::Platform& p, int fd, const std::string& path) {
  std::string text(kMaxSecretFileBytes, '\0');
  auto n = p.PRead(fd, text.data(), text.size(), 0);
  p.Close(fd);
  if (!n.ok()) return n.status();
  text.resize(*n);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  auto raw = Base32Decode(text);
  if (!raw.ok() || raw->empty()) return Status::InvalidArgument(path + " does not hold a base32 secret");
  return *raw;
}

std::string DirOf(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Result<std::string> LoadOrCreateSecret(platform::Platform& p, const std::string& path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto existing = p.OpenRead(path);
    if (existing.ok()) return ReadSecret(p, *existing, path);
    if (existing.status().code() != Code::kNotFound) return existing.status();
    CAIRN_TRY_ASSIGN(std::string raw, crypto::RandomBytes(32));
    const std::string text = Base32Encode(raw) + "\n";
    auto fd = p.CreateExclusive(path);
    if (!fd.ok() && fd.status().code() == Code::kConflict) continue;  // another task made it first: read theirs
    if (!fd.ok()) return fd.status();
    Status written = p.PWrite(*fd, text.data(), text.size(), 0);
    if (written.ok()) written = p.SyncData(*fd);
    p.Close(*fd);
    // The new name must be durable too: a secret used for a share and then
    // lost at a power cut would orphan every lease or key made with it.
    if (written.ok()) written = p.SyncDir(DirOf(path));
    if (!written.ok()) {
      p.Unlink(path).IgnoreError();  // best effort: the next use makes a new one
      return written.WithContext("writing " + path);
    }
    return raw;
  }
  return Status::Internal("secret file " + path + " appeared and vanished");
}

Result<std::string> LoadOrCreateSecret(const std::string& path) {
  return LoadOrCreateSecret(*platform::HostPlatform(), path);
}

Result<NodeSecrets> SecretFiles::Read(bool convergence, bool lease) const {
  NodeSecrets out;
  if (convergence) {
    CAIRN_TRY_ASSIGN(out.convergence, Convergence());
  }
  if (lease) {
    CAIRN_TRY_ASSIGN(out.lease, Lease());
  }
  return out;
}

}  // namespace cairn::grid
