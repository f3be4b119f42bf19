// Random bytes from getrandom(2).
#include "cairn/crypto/random.h"

#include <sys/random.h>

#include <cerrno>
#include <cstring>

namespace cairn::crypto {

Result<std::string> RandomBytes(std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    ssize_t r = getrandom(out.data() + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Internal(std::string("getrandom: ") + std::strerror(errno));
    got += static_cast<std::size_t>(r);
  }
  return out;
}

}  // namespace cairn::crypto
