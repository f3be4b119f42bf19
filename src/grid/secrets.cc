// The node's secret files (cairn/grid/secrets.h). Blocking: thread pool only.
#include "cairn/grid/secrets.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cairn/core/base32.h"
#include "cairn/crypto/random.h"

namespace cairn::grid {

Result<std::string> LoadOrCreateSecret(const std::string& path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
      char buf[256];
      ssize_t n = ::read(fd, buf, sizeof buf);
      ::close(fd);
      if (n < 0) return Status::IoError("cannot read " + path + ": " + std::strerror(errno));
      std::string text(buf, static_cast<std::size_t>(n));
      while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
      auto raw = Base32Decode(text);
      if (!raw.ok() || raw->empty()) return Status::InvalidArgument(path + " does not hold a base32 secret");
      return *raw;
    }
    if (errno != ENOENT) return Status::IoError("cannot open " + path + ": " + std::strerror(errno));
    CAIRN_TRY_ASSIGN(std::string raw, crypto::RandomBytes(32));
    std::string text = Base32Encode(raw) + "\n";
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) continue;  // another task created it first: read theirs
    if (fd < 0) return Status::IoError("cannot create " + path + ": " + std::strerror(errno));
    bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
    ::close(fd);
    if (!ok) {
      ::unlink(path.c_str());
      return Status::IoError("cannot write " + path);
    }
    return raw;
  }
  return Status::Internal("secret file " + path + " appeared and vanished");
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
