// Large incoming records opened on the thread pool (Connection::Impl::
// OpenOffLoop): a tls::Dialer's connection to a tls::Listener through a
// relay on 127.0.0.1 that flips one bit in the body of the client's third
// large application data record. The server delivers the two records before
// it, in order, nothing of it or after it, and ends with Integrity; a clean
// relay delivers everything. The relay is a thread with blocking sockets,
// bounded by poll timeouts; the connections run on the test's loop.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <optional>
#include <thread>

#include "cairn/tls/client.h"
#include "cairn/tls/identity.h"
#include "cairn/tls/server.h"
#include "tls/own_records.h"

namespace cairn::tls {
namespace {

// Forwards one connection to `to_port`; in the client-to-server direction
// it follows the TLS records and, if `flip_record` > 0, flips a bit in the
// middle of the body of that application data record (counting those of
// 8 KiB or more from 1).
class Relay {
 public:
  Relay(std::uint16_t to_port, int flip_record) : to_port_(to_port), flip_record_(flip_record) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(listen(listen_fd_, 1), 0);
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Run(); });
  }
  ~Relay() {
    stop_ = true;
    thread_.join();
    close(listen_fd_);
  }
  std::uint16_t port() const { return port_; }
  bool flipped() const { return flipped_; }

 private:
  void Run() {
    pollfd lp{listen_fd_, POLLIN, 0};
    while (!stop_ && poll(&lp, 1, 50) == 0) {
    }
    if (stop_) return;
    int a = accept(listen_fd_, nullptr, nullptr);
    int b = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(to_port_);
    if (a < 0 || connect(b, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      stop_ = true;
    }
    char buf[65536];
    pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
    while (!stop_) {
      if (poll(fds, 2, 50) <= 0) continue;
      for (int i = 0; i < 2; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
        ssize_t n = read(fds[i].fd, buf, sizeof buf);
        if (n <= 0) {
          stop_ = true;
          break;
        }
        if (i == 0) Inspect(buf, static_cast<std::size_t>(n));
        for (ssize_t off = 0; off < n;) {
          ssize_t w = write(fds[1 - i].fd, buf + off, static_cast<std::size_t>(n - off));
          if (w <= 0) {
            stop_ = true;
            break;
          }
          off += w;
        }
      }
    }
    if (a >= 0) close(a);
    close(b);
  }
  // Follows the client's records byte by byte: a header (5 bytes), then
  // its body.
  void Inspect(char* p, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
      if (header_got_ < 5) {
        header_[header_got_++] = static_cast<std::uint8_t>(p[i]);
        if (header_got_ == 5) {
          body_left_ = static_cast<std::size_t>(header_[3]) << 8 | header_[4];
          body_len_ = body_left_;
          if (header_[0] == kTypeApplicationData && body_len_ >= 8192) ++large_records_;
          if (body_left_ == 0) header_got_ = 0;
        }
        continue;
      }
      if (flip_record_ > 0 && large_records_ == flip_record_ && header_[0] == kTypeApplicationData &&
          body_len_ >= 8192 && body_len_ - body_left_ == body_len_ / 2 && !flipped_) {
        p[i] = static_cast<char>(p[i] ^ 0x10);
        flipped_ = true;
      }
      if (--body_left_ == 0) header_got_ = 0;
    }
  }

  std::uint16_t to_port_;
  int flip_record_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> flipped_{false};
  std::uint8_t header_[5] = {};
  std::size_t header_got_ = 0, body_left_ = 0, body_len_ = 0;
  int large_records_ = 0;
  std::thread thread_;
};

class OpenOffLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto id = GenerateIdentity();
    ASSERT_TRUE(id.ok());
    pin = *SpkiHashOfCertPem(id->cert_pem);
    ServerOptions so;
    so.key_pem = id->key_pem;
    so.cert_pem = id->cert_pem;
    // cairn's records on both ends, whatever CAIRN_TLS_OWN_RECORDS says.
    auto sctx = Context::NewServer(so);
    ASSERT_TRUE(sctx.ok());
    (*sctx)->set_own_records(true);
    listener = std::make_unique<Listener>(loop, *sctx);
    ASSERT_TRUE(listener
                    ->Start({},
                            [this](std::shared_ptr<Connection> c) {
                              server_side = c;
                              c->Start([this](std::string d) { got += d; }, [this](Status s) { ended = s; });
                            })
                    .ok());
    auto cctx = Context::NewClient();
    ASSERT_TRUE(cctx.ok());
    (*cctx)->set_own_records(true);
    dialer = std::make_unique<Dialer>(loop, *cctx);
  }
  void TearDown() override {
    bool a = false, b = false;
    dialer->Close([&] { a = true; });
    listener->Close([&] { b = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return a && b; }, 20000));
    server_side.reset();
  }
  // Sends `sent` from a client dialed through `relay`; returns when the
  // server's connection has ended or has everything.
  void Send(Relay& relay, const std::string& sent) {
    DialOptions o;
    o.host = "127.0.0.1";
    o.port = relay.port();
    o.spki_pin = pin;
    std::optional<Result<std::shared_ptr<Connection>>> c;
    dialer->Connect(o, [&](Result<std::shared_ptr<Connection>> r) { c.emplace(std::move(r)); });
    ASSERT_TRUE(loop.RunUntil([&] { return c.has_value(); }, 20000));
    ASSERT_TRUE(c->ok()) << c->status().ToString();
    client = **c;
    client->Start([](std::string) {}, [](Status) {});
    client->Write(sent);
    ASSERT_TRUE(loop.RunUntil([&] { return ended.has_value() || got.size() >= sent.size(); }, 60000));
  }

  Loop loop;
  std::string pin;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Dialer> dialer;
  std::shared_ptr<Connection> server_side, client;
  std::string got;
  std::optional<Status> ended;
};

std::string Pattern(std::size_t n) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + i / 16384) & 0xff);
  return s;
}

TEST_F(OpenOffLoopTest, LargeRecordsAreOpenedOffTheLoopInOrder) {
  Relay relay(listener->port(), 0);
  std::string sent = Pattern(1 << 20);
  std::uint64_t opens_before = TEST_reserved_opens();
  Send(relay, sent);
  EXPECT_TRUE(got == sent);
  EXPECT_FALSE(ended.has_value());
  // 64 records of 16 KiB, at most 16 a job.
  EXPECT_GE(TEST_reserved_opens() - opens_before, 4u);
  client->Close();
}

TEST_F(OpenOffLoopTest, ABadTagInALargeRecordEndsTheConnectionAndDeliversNothingOfIt) {
  Relay relay(listener->port(), 3);
  std::string sent = Pattern(1 << 20);
  Send(relay, sent);
  EXPECT_TRUE(relay.flipped());
  ASSERT_TRUE(loop.RunUntil([&] { return ended.has_value(); }, 20000));
  EXPECT_EQ(ended->code(), Code::kIntegrity) << ended->ToString();
  // The two 16 KiB records before the damaged one, and nothing more.
  EXPECT_EQ(got.size(), 2u * 16384);
  EXPECT_TRUE(got == sent.substr(0, got.size()));
  client->Close();
}

}  // namespace
}  // namespace cairn::tls
