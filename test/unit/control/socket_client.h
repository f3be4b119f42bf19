// SocketClient: the client end of a control socket for unit tests, on the
// test's own thread. It writes request and data frames (blocking: they are
// small) and reads answers without blocking while it turns the real Loop
// that runs the control::Server, until the answer it waits for is whole.
// Loop thread only.
#pragma once

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "cairn/control/protocol.h"
#include "cairn/core/json.h"
#include "cairn/core/loop.h"

namespace cairn::control::testing {

// One frame received: its JSON head and, for a data frame, its attachment.
struct Frame {
  Json head;
  std::string data;
  bool is_data() const { return cJSON_GetObjectItemCaseSensitive(head.get(), "data") != nullptr; }
  bool is_final() const {
    return cJSON_GetObjectItemCaseSensitive(head.get(), "result") || cJSON_GetObjectItemCaseSensitive(head.get(), "error");
  }
  const cJSON* result() const { return cJSON_GetObjectItemCaseSensitive(head.get(), "result"); }
  // The error's code name, or "" for a result.
  std::string error_code() const {
    const cJSON* e = cJSON_GetObjectItemCaseSensitive(head.get(), "error");
    const cJSON* c = e ? cJSON_GetObjectItemCaseSensitive(e, "code") : nullptr;
    return cJSON_IsString(c) ? c->valuestring : "";
  }
  std::string error_message() const {
    const cJSON* e = cJSON_GetObjectItemCaseSensitive(head.get(), "error");
    const cJSON* m = e ? cJSON_GetObjectItemCaseSensitive(e, "message") : nullptr;
    return cJSON_IsString(m) ? m->valuestring : "";
  }
};

class SocketClient {
 public:
  SocketClient(Loop& loop, const std::string& path) : loop_(loop) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  }
  ~SocketClient() {
    if (fd_ >= 0) ::close(fd_);
  }

  void Request(long long id, const char* method, const char* params_json, bool wait = true) {
    auto params = Json::Parse(params_json);
    ASSERT_TRUE(params.ok()) << params_json;
    Write(RequestFrame(id, method, std::move(params).value(), wait));
  }
  void Data(long long id, std::uint64_t seq, const std::string& bytes, bool eof) {
    Json jid(cJSON_CreateNumber(static_cast<double>(id)));
    Write(DataFrameLine(jid.get(), seq, bytes.size(), eof) + bytes);
  }
  // Closes the client's end (the server sees the client leave).
  void Disconnect() {
    ::close(fd_);
    fd_ = -1;
  }

  // Turns the loop until the final frame for `id` has arrived (or `timeout_ms`
  // passes); returns every frame for `id` so far, in order.
  std::vector<Frame> AnswerTo(long long id, std::uint64_t timeout_ms = 10000) {
    auto done = [&] {
      ReadAvailable();
      for (const Frame& f : frames_) {
        if (IdOf(f) == id && f.is_final()) return true;
      }
      return false;
    };
    // The socket is not the loop's: a short timer makes the loop look again.
    std::unique_ptr<Timer> tick;
    std::function<void()> rearm = [&] { tick = loop_.PostAfter(2, [&] { rearm(); }); };
    rearm();
    EXPECT_TRUE(loop_.RunUntil(done, timeout_ms)) << "no answer to request " << id;
    tick.reset();
    std::vector<Frame> out, rest;
    for (Frame& f : frames_) (IdOf(f) == id ? out : rest).push_back(std::move(f));
    frames_ = std::move(rest);
    return out;
  }
  // The final frame of AnswerTo(id).
  Frame FinalOf(long long id) {
    std::vector<Frame> all = AnswerTo(id);
    if (all.empty()) return Frame{};
    return std::move(all.back());
  }

 private:
  static long long IdOf(const Frame& f) {
    const cJSON* id = cJSON_GetObjectItemCaseSensitive(f.head.get(), "id");
    return cJSON_IsNumber(id) ? static_cast<long long>(id->valuedouble) : -1;
  }
  void Write(const std::string& bytes) {
    std::size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      ASSERT_GT(n, 0) << std::strerror(errno);
      done += static_cast<std::size_t>(n);
    }
  }
  void ReadAvailable() {
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      in_.append(buf, static_cast<std::size_t>(n));
    }
    for (;;) {
      std::size_t nl = in_.find('\n');
      if (nl == std::string::npos) return;
      std::string line = in_.substr(0, nl);
      AttachmentHead head = ParseAttachmentHead(line, 1ull << 32);
      std::size_t need = nl + 1 + (head.present ? static_cast<std::size_t>(head.bytes) : 0);
      if (in_.size() < need) return;
      auto parsed = Json::Parse(line);
      EXPECT_TRUE(parsed.ok()) << line;
      Frame f{parsed.ok() ? std::move(parsed).value() : Json::NewObject(),
              in_.substr(nl + 1, need - nl - 1)};
      frames_.push_back(std::move(f));
      in_.erase(0, need);
    }
  }

  Loop& loop_;
  int fd_ = -1;
  std::string in_;
  std::vector<Frame> frames_;
};

}  // namespace cairn::control::testing
