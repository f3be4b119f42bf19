// Benchmark: cairn's HTTP/1.1 server over TLS on 127.0.0.1. Prints JSON lines:
//   small GETs on keep-alive connections (requests/s; 1 and 8 clients),
//   one large upload read as a stream of pieces (MB/s),
// each with the loop's longest iteration. Clients are threads driving
// client tls::Sessions over blocking sockets; the server runs on the main
// thread's loop.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cairn/core/loop.h"
#include "cairn/http/server.h"
#include "cairn/tls/identity.h"
#include "cairn/tls/session.h"

namespace {

using namespace cairn;

struct Client {
  int fd = -1;
  std::unique_ptr<tls::Session> s;
  std::string got;

  bool Connect(std::uint16_t port, const std::string& pin) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    auto ctx = tls::Context::NewClient();
    s = std::move(*tls::Session::NewClient(*ctx, pin));
    for (;;) {
      bool done = false;
      if (!s->Handshake(&done).ok() || !Flush()) return false;
      if (done) return true;
      if (!Recv()) return false;
    }
  }
  bool Flush() {
    std::string out = s->TakeOutgoing();
    return out.empty() || send(fd, out.data(), out.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(out.size());
  }
  bool Recv() {
    char buf[65536];
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    s->Feed(std::string_view(buf, static_cast<std::size_t>(n)));
    return true;
  }
  bool Send(std::string_view bytes) { return s->Write(bytes).ok() && Flush(); }
  // Reads until `got` ends with `suffix`, then clears it.
  bool Expect(std::string_view suffix) {
    bool eof = false;
    while (got.size() < suffix.size() || got.compare(got.size() - suffix.size(), suffix.size(), suffix) != 0) {
      if (eof || !Recv() || !s->Read(&got, &eof).ok()) return false;
    }
    got.clear();
    return true;
  }
  ~Client() {
    if (fd >= 0) close(fd);
  }
};

double Since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void SmallGets(Loop& loop, http::Server& server, const std::string& pin, int clients, int per_client) {
  std::atomic<int> finished{0};
  std::atomic<long> ok{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    threads.emplace_back([&] {
      Client c;
      if (c.Connect(server.port(), pin)) {
        for (int r = 0; r < per_client; ++r) {
          if (!c.Send("GET /storage/v1/version HTTP/1.1\r\nHost: b\r\nAccept: application/cbor\r\n\r\n") ||
              !c.Expect("version-reply")) {
            break;
          }
          ++ok;
        }
      }
      ++finished;
      loop.PostFromAnyThread([] {});
    });
  }
  loop.RunUntil([&] { return finished.load() == clients; }, 300000);
  for (auto& t : threads) t.join();
  double secs = Since(start);
  std::printf(
      "{\"bench\":\"http\",\"case\":\"small_get_keepalive\",\"clients\":%d,\"requests\":%ld,\"seconds\":%.3f,"
      "\"requests_per_sec\":%.0f,\"loop_max_busy_us\":%llu}\n",
      clients, ok.load(), secs, ok.load() / secs, static_cast<unsigned long long>(loop.stats().max_busy_us));
  std::fflush(stdout);
}

void Upload(Loop& loop, http::Server& server, const std::string& pin, std::size_t total, const char* cipher) {
  std::atomic<bool> done{false};
  bool answered = false;
  auto start = std::chrono::steady_clock::now();
  std::thread t([&] {
    Client c;
    if (c.Connect(server.port(), pin)) {
      c.Send("PUT /upload HTTP/1.1\r\nHost: b\r\nContent-Length: " + std::to_string(total) + "\r\n\r\n");
      std::string block(1 << 20, 'u');
      for (std::size_t sent = 0; sent < total; sent += block.size()) {
        if (!c.Send(block)) break;
      }
      answered = c.Expect(std::to_string(total));
    }
    done = true;
    loop.PostFromAnyThread([] {});
  });
  loop.RunUntil([&] { return done.load(); }, 300000);
  t.join();
  double secs = Since(start);
  std::printf(
      "{\"bench\":\"http\",\"case\":\"upload_content_length\",\"cipher\":\"%s\",\"bytes\":%zu,\"ok\":%s,"
      "\"seconds\":%.3f,\"mb_per_sec\":%.1f,\"loop_max_busy_us\":%llu}\n",
      cipher, total, answered ? "true" : "false", secs, total / secs / 1e6,
      static_cast<unsigned long long>(loop.stats().max_busy_us));
  std::fflush(stdout);
}

// One server preferring `chacha` or AES-GCM (the client offers both, so the
// server's order decides, as on a board): small GETs, then a large upload.
int RunWith(const tls::Identity& id, const std::string& pin, bool chacha) {
  auto ctx = tls::Context::NewServer({id.key_pem, id.cert_pem, chacha});
  if (!ctx.ok()) return 1;
  Loop loop;
  http::Server server(loop, *ctx);
  http::ServerOptions options;
  Status st = server.Start(options, [](std::shared_ptr<http::Exchange> ex) {
    if (ex->request().path() != "/upload") {
      ex->Respond({200, {{"Content-Type", "application/cbor"}}, "version-reply"});
      return;
    }
    auto bytes = std::make_shared<std::uint64_t>(0);
    http::BodyOptions body;
    body.max_bytes = ~std::uint64_t{0};
    ex->ReadBody(
        body,
        [bytes](std::string piece) {
          *bytes += piece.size();
          return http::Flow::kMore;
        },
        [bytes, ex](Status s) {
          if (s.ok()) ex->Respond({200, {}, std::to_string(*bytes)});
        });
  });
  int rc = 0;
  if (!st.ok()) {
    std::fprintf(stderr, "http_bench: %s\n", st.ToString().c_str());
    rc = 1;
  } else if (!chacha) {
    SmallGets(loop, server, pin, 1, 20000);
    SmallGets(loop, server, pin, 8, 5000);
    Upload(loop, server, pin, std::size_t{1} << 30, "aes128-gcm");
  } else {
    Upload(loop, server, pin, std::size_t{1} << 29, "chacha20-poly1305");
  }
  bool closed = false;
  server.Close([&] { closed = true; });
  loop.RunUntil([&] { return closed; }, 5000);
  return rc;
}

}  // namespace

int main() {
  auto id = tls::GenerateIdentity();
  if (!id.ok()) return 1;
  std::string pin = *tls::SpkiHashOfCertPem(id->cert_pem);
  int rc = RunWith(*id, pin, false);
  return rc | RunWith(*id, pin, true);
}
