// Blocking control-socket client. Single-threaded.
#include "cli/client.h"

#include <cjson/cJSON.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

#include "cairn/control/protocol.h"
#include "cairn/core/node_dir.h"

namespace cairn::cli {

ControlClient::~ControlClient() {
  if (fd_ >= 0) close(fd_);
}

Status ControlClient::Connect(const std::string& node_dir, int timeout_ms) {
  timeout_ms_ = timeout_ms;
  socket_path_ = NodePaths(node_dir).socket;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof addr.sun_path) {
    return Status::InvalidArgument("control socket path too long: " + socket_path_);
  }
  std::memcpy(addr.sun_path, socket_path_.c_str(), socket_path_.size() + 1);
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return Status::IoError(std::string("socket: ") + std::strerror(errno));
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    int err = errno;
    return Status::Unavailable("no cairnd is answering on " + socket_path_ + " (" + std::strerror(err) +
                               "); start it with: cairnd " + node_dir);
  }
  return Status();
}

Status ControlClient::Fill() {
  for (;;) {
    pollfd p{fd_, POLLIN, 0};
    int rc = poll(&p, 1, timeout_ms_);
    if (rc == 0) return Status::Timeout("cairnd did not answer within " + std::to_string(timeout_ms_ / 1000) + " s");
    if (rc < 0) {
      if (errno == EINTR) continue;
      return Status::IoError(std::string("poll: ") + std::strerror(errno));
    }
    char buf[65536];
    ssize_t n = read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::Unavailable("cairnd closed the control connection");
    buffer_.append(buf, static_cast<std::size_t>(n));
    return Status();
  }
}

Result<std::string> ControlClient::ReadLine() {
  for (;;) {
    std::size_t nl = buffer_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffer_.substr(0, nl);
      buffer_.erase(0, nl + 1);
      return line;
    }
    CAIRN_TRY(Fill());
  }
}

Result<std::string> ControlClient::ReadBytes(std::size_t n) {
  while (buffer_.size() < n) CAIRN_TRY(Fill());
  std::string out = buffer_.substr(0, n);
  buffer_.erase(0, n);
  return out;
}

Status ControlClient::SendAll(std::string_view bytes) {
  std::size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::Unavailable(std::string("writing to cairnd: ") + std::strerror(errno));
    off += static_cast<std::size_t>(n);
  }
  return Status();
}

Result<Json> ControlClient::Call(const std::string& method, Json params, bool wait,
                                 const std::function<void(const cJSON* event)>& on_progress) {
  long long id = next_id_++;
  CAIRN_TRY(SendAll(control::RequestFrame(id, method, std::move(params), wait)));
  return ReadAnswer(id, nullptr, on_progress);
}

Result<Json> ControlClient::CallWithData(const std::string& method, Json params, const Streams& streams, bool wait,
                                         const std::function<void(const cJSON* event)>& on_progress) {
  long long id = next_id_++;
  CAIRN_TRY(SendAll(control::RequestFrame(id, method, std::move(params), wait)));
  if (streams.next_input) {
    Json rid = Json(cJSON_CreateNumber(static_cast<double>(id)));
    for (std::uint64_t seq = 0;; ++seq) {
      bool eof = false;
      CAIRN_TRY_ASSIGN(std::string chunk, streams.next_input(streams.max_chunk, &eof));
      Status sent = SendAll(control::DataFrameLine(rid.get(), seq, chunk.size(), eof));
      if (sent.ok()) sent = SendAll(chunk);
      // The daemon may have answered (and closed) early, e.g. refusing the
      // request before reading its input: its answer says why.
      if (!sent.ok()) return ReadAnswer(id, &streams, on_progress);
      if (eof) break;
    }
  }
  return ReadAnswer(id, &streams, on_progress);
}

Result<Json> ControlClient::ReadAnswer(long long id, const Streams* streams,
                                       const std::function<void(const cJSON* event)>& on_progress) {
  for (;;) {
    CAIRN_TRY_ASSIGN(std::string line, ReadLine());
    auto parsed = Json::Parse(line);
    if (!parsed.ok()) return Status::Internal("cairnd sent a malformed frame: " + std::string(parsed.status().message()));
    const cJSON* root = parsed->get();
    const cJSON* rid = cJSON_GetObjectItemCaseSensitive(root, "id");
    const cJSON* error = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON* bytes = cJSON_GetObjectItemCaseSensitive(root, "bytes");
    std::string attachment;
    // Range checks before the casts: a double out of an integer's range is
    // undefined behaviour to convert.
    constexpr double kMaxExact = 9007199254740992.0;  // 2^53
    if (cJSON_IsNumber(bytes) && bytes->valuedouble >= 0) {
      if (bytes->valuedouble > kMaxExact || bytes->valuedouble > static_cast<double>(SIZE_MAX / 2)) {
        return Status::Internal("cairnd announced an attachment too large to read");
      }
      CAIRN_TRY_ASSIGN(attachment, ReadBytes(static_cast<std::size_t>(bytes->valuedouble)));
    }
    bool ours = cJSON_IsNumber(rid) && rid->valuedouble >= -kMaxExact && rid->valuedouble <= kMaxExact &&
                static_cast<long long>(rid->valuedouble) == id;
    if (!ours) {
      // A frame for no request (id null) is about the connection itself.
      if (cJSON_IsNull(rid) && error) return control::ErrorFromJson(error);
      continue;
    }
    if (error) return control::ErrorFromJson(error);
    if (cJSON_GetObjectItemCaseSensitive(root, "data")) {
      if (!streams || !streams->on_data) return Status::Internal("cairnd sent data this command does not expect");
      CAIRN_TRY(streams->on_data(attachment, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "eof"))));
      continue;
    }
    const cJSON* progress = cJSON_GetObjectItemCaseSensitive(root, "progress");
    if (progress) {
      if (on_progress) on_progress(progress);
      continue;
    }
    cJSON* result = cJSON_DetachItemFromObjectCaseSensitive(parsed->get(), "result");
    if (result) return Json(result);
    // Event frames (progress) carry neither; later commands render them.
  }
}

}  // namespace cairn::cli
