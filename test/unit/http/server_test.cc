// http::Server over real TLS on 127.0.0.1: a blocking client thread speaks
// raw HTTP/1.1 through a client tls::Session while the test drives the loop.
#include "cairn/http/server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "cairn/tls/identity.h"
#include "cairn/tls/session.h"

namespace cairn::http {
namespace {

// A blocking TLS client: connect, send bytes, read until the server closes
// or a predicate on what arrived holds.
struct Client {
  int fd = -1;
  std::unique_ptr<tls::Session> s;
  std::string got;
  bool eof = false;

  bool Connect(std::uint16_t port, const std::string& pin) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return false;
    timeval tv{20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
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
  // Reads until `until(got)` or the end of the connection.
  template <typename P>
  void ReadUntil(P until) {
    while (!eof && !until(got)) {
      if (!Recv()) {
        eof = true;
        break;
      }
      if (!s->Read(&got, &eof).ok()) eof = true;
      (void)Flush();
    }
  }
  void ReadToEnd() {
    ReadUntil([](const std::string&) { return false; });
  }
  ~Client() {
    if (fd >= 0) close(fd);
  }
};

bool HasResponses(const std::string& got, int n) {
  int seen = 0;
  for (std::size_t at = got.find("HTTP/1.1 "); at != std::string::npos; at = got.find("HTTP/1.1 ", at + 1)) ++seen;
  return seen >= n;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto id = tls::GenerateIdentity();
    ASSERT_TRUE(id.ok());
    pin = *tls::SpkiHashOfCertPem(id->cert_pem);
    auto ctx = tls::Context::NewServer({id->key_pem, id->cert_pem, false});
    ASSERT_TRUE(ctx.ok());
    server = std::make_unique<Server>(loop, *ctx);
    options.idle_ms = 5000;
    options.request_ms = 5000;
  }
  void TearDown() override {
    bool closed = false;
    server->Close([&] { closed = true; });
    EXPECT_TRUE(loop.RunUntil([&] { return closed; }, 5000));
    server.reset();
    // Everything closed: the loop has no handle left.
    EXPECT_FALSE(loop.RunOnce());
  }
  // Runs `client` on a thread while the loop runs, until it finishes.
  template <typename F>
  void RunClient(F client) {
    std::atomic<bool> done{false};
    std::thread t([&] {
      client();
      done = true;
      loop.PostFromAnyThread([] {});  // wake the loop out of its poll
    });
    EXPECT_TRUE(loop.RunUntil([&] { return done.load(); }, 30000));
    t.join();
  }

  Loop loop;
  std::unique_ptr<Server> server;
  ServerOptions options;
  std::string pin;
};

TEST_F(HttpServerTest, KeepAliveAndPipelinedRequestsInOrder) {
  std::vector<std::string> paths;
  ASSERT_TRUE(server
                  ->Start(options,
                          [&](std::shared_ptr<Exchange> ex) {
                            paths.push_back(ex->request().target);
                            ASSERT_NE(ex->request().Header("host"), nullptr);
                            ex->Respond({200, {{"X-Path", std::string(ex->request().path())}}, "body"});
                          })
                  .ok());
  std::string got;
  RunClient([&] {
    Client c;
    if (!c.Connect(server->port(), pin)) return;
    c.Send("GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    c.ReadUntil([](const std::string& g) { return g.size() >= 4 && g.compare(g.size() - 4, 4, "body") == 0; });
    c.Send("GET /b HTTP/1.1\r\nHost: h\r\n\r\nGET /c?q HTTP/1.1\r\nHost: h\r\n\r\nGET /d HTTP/1.1\r\nHost: h\r\n\r\n");
    c.ReadUntil([](const std::string& g) { return HasResponses(g, 4); });
    got = c.got;
  });
  EXPECT_EQ(paths, (std::vector<std::string>{"/a", "/b", "/c?q", "/d"}));
  EXPECT_LT(got.find("X-Path: /a"), got.find("X-Path: /b"));
  EXPECT_LT(got.find("X-Path: /b"), got.find("X-Path: /c"));
  EXPECT_LT(got.find("X-Path: /c"), got.find("X-Path: /d"));
  EXPECT_EQ(got.find("Connection: close"), std::string::npos);
}

TEST_F(HttpServerTest, CallbacksAreAlwaysPosted) {
  int handler_calls = 0, pieces = 0, ends = 0;
  ASSERT_TRUE(server
                  ->Start(options,
                          [&](std::shared_ptr<Exchange> ex) {
                            ++handler_calls;
                            ex->ReadBody(
                                {},
                                [&](std::string) {
                                  ++pieces;
                                  return Flow::kMore;
                                },
                                [&, ex](Status st) {
                                  ++ends;
                                  EXPECT_TRUE(st.ok());
                                  ex->Respond({200, {}, "done"});
                                  // A second body read is refused later, not now.
                                });
                            // Nothing is delivered inside ReadBody, even with the body already here.
                            EXPECT_EQ(pieces, 0);
                            EXPECT_EQ(ends, 0);
                          })
                  .ok());
  RunClient([&] {
    Client c;
    if (!c.Connect(server->port(), pin)) return;
    c.Send("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello");
    c.ReadUntil([](const std::string& g) { return g.find("done") != std::string::npos; });
  });
  EXPECT_EQ(handler_calls, 1);
  EXPECT_EQ(pieces, 1);
  EXPECT_EQ(ends, 1);
}

TEST_F(HttpServerTest, PausedBodyDeliversNothingUntilResumed) {
  const std::size_t kBody = 4 << 20;
  std::shared_ptr<Exchange> held;
  std::size_t received = 0;
  int pieces = 0;
  bool paused = false, ended = false;
  ASSERT_TRUE(server
                  ->Start(options,
                          [&](std::shared_ptr<Exchange> ex) {
                            held = ex;
                            ex->ReadBody(
                                {kBody, false},
                                [&](std::string piece) {
                                  EXPECT_FALSE(paused) << "a piece arrived while paused";
                                  EXPECT_LE(piece.size(), 64u * 1024);
                                  received += piece.size();
                                  ++pieces;
                                  paused = pieces == 3;  // pause once, mid-body
                                  return paused ? Flow::kPause : Flow::kMore;
                                },
                                [&](Status st) {
                                  EXPECT_TRUE(st.ok()) << st.ToString();
                                  ended = true;
                                  held->Respond({200, {}, std::to_string(received)});
                                });
                          })
                  .ok());
  std::atomic<bool> client_done{false};
  std::string got;
  std::thread t([&] {
    Client c;
    if (c.Connect(server->port(), pin)) {
      c.Send("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: " + std::to_string(kBody) + "\r\n\r\n");
      std::string block(1 << 20, 'z');
      for (std::size_t sent = 0; sent < kBody; sent += block.size()) c.Send(block);
      c.ReadUntil([](const std::string& g) { return g.find("\r\n\r\n") != std::string::npos && g.back() != '\n'; });
      got = c.got;
    }
    client_done = true;
    loop.PostFromAnyThread([] {});
  });
  ASSERT_TRUE(loop.RunUntil([&] { return paused; }, 20000));
  // Many turns while paused: the client keeps sending, nothing is delivered.
  for (int i = 0; i < 200; ++i) loop.RunOnce();
  EXPECT_EQ(pieces, 3);
  held->ResumeBody();
  paused = false;
  EXPECT_TRUE(loop.RunUntil([&] { return client_done.load(); }, 30000));
  t.join();
  EXPECT_TRUE(ended);
  EXPECT_EQ(received, kBody);
  EXPECT_NE(got.find("\r\n\r\n" + std::to_string(kBody)), std::string::npos) << got.substr(0, 200);
}

TEST_F(HttpServerTest, TooLargeIsAnswered413BeforeTheBody) {
  Status end_status;
  int pieces = 0;
  ASSERT_TRUE(server
                  ->Start(options,
                          [&](std::shared_ptr<Exchange> ex) {
                            ex->ReadBody(
                                {100, false},
                                [&](std::string) {
                                  ++pieces;
                                  return Flow::kMore;
                                },
                                [&, ex](Status st) { end_status = st; });
                          })
                  .ok());
  std::string got;
  RunClient([&] {
    Client c;
    if (!c.Connect(server->port(), pin)) return;
    c.Send("PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 101\r\n\r\n");
    c.ReadToEnd();
    got = c.got;
  });
  EXPECT_EQ(got.rfind("HTTP/1.1 413 Content Too Large\r\n", 0), 0u) << got;
  EXPECT_NE(got.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(pieces, 0);
  EXPECT_EQ(end_status.code(), Code::kFrameTooLarge);
}

TEST_F(HttpServerTest, DroppedExchangeIs500) {
  ASSERT_TRUE(server->Start(options, [&](std::shared_ptr<Exchange>) {}).ok());
  std::string got;
  RunClient([&] {
    Client c;
    if (!c.Connect(server->port(), pin)) return;
    c.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    c.ReadToEnd();
    got = c.got;
  });
  EXPECT_EQ(got.rfind("HTTP/1.1 500 ", 0), 0u) << got;
}

TEST_F(HttpServerTest, StreamedResponseWaitsForTheWriteQueue) {
  const std::size_t kTotal = 8 << 20, kPiece = 64 << 10;
  std::size_t written = 0;
  int waits = 0;
  Callback<void(std::shared_ptr<Exchange>)> step;
  step = [&](std::shared_ptr<Exchange> ex) {
    if (written == kTotal) {
      ex->EndResponse();
      return;
    }
    written += kPiece;
    ++waits;
    ex->WriteBody(std::string(kPiece, 'w'), [&, ex](Status st) {
      ASSERT_TRUE(st.ok()) << st.ToString();
      step(ex);
    });
  };
  ASSERT_TRUE(server
                  ->Start(options,
                          [&](std::shared_ptr<Exchange> ex) {
                            ex->StartResponse(200, {}, std::nullopt);
                            step(ex);
                          })
                  .ok());
  std::size_t body = 0;
  RunClient([&] {
    Client c;
    if (!c.Connect(server->port(), pin)) return;
    c.Send("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n");
    c.ReadToEnd();
    // De-chunk.
    std::size_t at = c.got.find("\r\n\r\n") + 4;
    for (;;) {
      std::size_t eol = c.got.find("\r\n", at);
      if (eol == std::string::npos) break;
      std::size_t n = std::strtoul(c.got.substr(at, eol - at).c_str(), nullptr, 16);
      if (n == 0) break;
      body += n;
      at = eol + 2 + n + 2;
    }
  });
  EXPECT_EQ(body, kTotal);
  EXPECT_EQ(waits, static_cast<int>(kTotal / kPiece));
}

TEST_F(HttpServerTest, HeadTimeoutIs408AndIdleCloseIsQuiet) {
  options.request_ms = 100;
  options.idle_ms = 300;
  ASSERT_TRUE(server->Start(options, [&](std::shared_ptr<Exchange> ex) { ex->Respond({200, {}, "ok"}); }).ok());
  std::string slow, idle;
  RunClient([&] {
    Client c;
    if (!c.Connect(server->port(), pin)) return;
    c.Send("GET / HTTP/1.1\r\nHost: h\r\n");
    c.ReadToEnd();
    slow = c.got;
    Client d;
    if (!d.Connect(server->port(), pin)) return;
    d.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    d.ReadToEnd();
    idle = d.got;
  });
  EXPECT_EQ(slow.rfind("HTTP/1.1 408 ", 0), 0u) << slow;
  EXPECT_EQ(idle.rfind("HTTP/1.1 200 ", 0), 0u) << idle;
  EXPECT_EQ(idle.find("408"), std::string::npos) << idle;
  EXPECT_TRUE(loop.RunUntil([&] { return server->open_connections() == 0; }, 5000));
}

TEST_F(HttpServerTest, ConnectionLimit) {
  options.max_connections = 1;
  ASSERT_TRUE(server->Start(options, [&](std::shared_ptr<Exchange> ex) { ex->Respond({200, {}, "ok"}); }).ok());
  bool first_ok = false, second_refused = false;
  RunClient([&] {
    Client a;
    first_ok = a.Connect(server->port(), pin);
    Client b;
    second_refused = !b.Connect(server->port(), pin);
    a.Send("GET / HTTP/1.1\r\nHost: h\r\n\r\n");
    a.ReadUntil([](const std::string& g) { return HasResponses(g, 1) && g.back() == 'k'; });
    first_ok = first_ok && a.got.rfind("HTTP/1.1 200 ", 0) == 0;
  });
  EXPECT_TRUE(first_ok);
  EXPECT_TRUE(second_refused);
}

}  // namespace
}  // namespace cairn::http
