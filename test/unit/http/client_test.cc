// http::Client against an http::Server on 127.0.0.1, both on one loop: every
// request completes exactly once and never inside Send(), also when it fails
// at once (Tahoe-LAFS #877); Close() completes on a later turn.
#include "cairn/http/client.h"

#include <gtest/gtest.h>

#include <optional>

#include "cairn/http/server.h"
#include "cairn/tls/identity.h"
#include "cairn/tls/session.h"

namespace cairn::http {
namespace {

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto id = tls::GenerateIdentity();
    ASSERT_TRUE(id.ok());
    pin = *tls::SpkiHashOfCertPem(id->cert_pem);
    server = std::make_unique<Server>(loop, *tls::Context::NewServer({id->key_pem, id->cert_pem, false}));
    ASSERT_TRUE(server
                    ->Start({},
                            [](std::shared_ptr<Exchange> ex) {
                              ex->Respond({200, {}, "answer to " + std::string(ex->request().path())});
                            })
                    .ok());
  }
  void TearDown() override {
    bool closed = false;
    server->Close([&] { closed = true; });
    EXPECT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
    server.reset();
  }
  ClientOptions Options(std::uint16_t port) {
    ClientOptions o;
    o.host = "127.0.0.1";
    o.port = port;
    o.spki_pin = pin;
    return o;
  }
  // Sends `rq`, checks that nothing completed inside Send(), waits for the
  // answer and checks that it came exactly once.
  Result<ClientResponse> SendOnce(Client& client, ClientRequest rq) {
    int calls = 0;
    std::optional<Result<ClientResponse>> got;
    client.Send(std::move(rq), [&](Result<ClientResponse> r) {
      ++calls;
      got.emplace(std::move(r));
    });
    EXPECT_EQ(calls, 0) << "the request completed inside Send()";
    EXPECT_TRUE(loop.RunUntil([&] { return got.has_value(); }, 20000));
    for (int i = 0; i < 3; ++i) loop.RunOnce();
    EXPECT_EQ(calls, 1);
    if (!got) return Status::Internal("no answer");
    return std::move(*got);
  }
  void CloseClient(Client& client) {
    int calls = 0;
    client.Close([&] { ++calls; });
    EXPECT_EQ(calls, 0) << "Close() completed inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return calls > 0; }, 20000));
    loop.RunOnce();
    EXPECT_EQ(calls, 1);
  }
  static ClientRequest Get(std::string target) {
    ClientRequest rq;
    rq.method = "GET";
    rq.target = std::move(target);
    return rq;
  }

  Loop loop;
  std::string pin;
  std::unique_ptr<Server> server;
};

TEST_F(HttpClientTest, RequestCompletesOnceOnALaterTurn) {
  Client client(loop, *tls::Context::NewClient(), Options(server->port()));
  auto r = SendOnce(client, Get("/a"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "answer to /a");
  // Again on the kept-alive connection.
  r = SendOnce(client, Get("/b"));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->body, "answer to /b");
  EXPECT_EQ(client.stats().connections_made, 1u);
  CloseClient(client);
}

TEST_F(HttpClientTest, RefusedConnectionFailsOnALaterTurn) {
  std::uint16_t dead;
  {
    // A port that nobody listens on: bind one, note it, close it.
    Server tmp(loop, nullptr);
    ASSERT_TRUE(tmp.Start({}, [](std::shared_ptr<Exchange>) {}).ok());
    dead = tmp.port();
    bool closed = false;
    tmp.Close([&] { closed = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
  }
  Client client(loop, *tls::Context::NewClient(), Options(dead));
  auto r = SendOnce(client, Get("/a"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  CloseClient(client);
}

TEST_F(HttpClientTest, WrongPinFailsOnALaterTurn) {
  ClientOptions o = Options(server->port());
  o.spki_pin = std::string(43, 'A');
  Client client(loop, *tls::Context::NewClient(), o);
  auto r = SendOnce(client, Get("/a"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated) << r.status().ToString();
  CloseClient(client);
}

TEST_F(HttpClientTest, FullQueueFailsOnALaterTurn) {
  ClientOptions o = Options(server->port());
  o.max_queued = 0;
  Client client(loop, *tls::Context::NewClient(), o);
  auto r = SendOnce(client, Get("/a"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kResourceExhausted) << r.status().ToString();
  CloseClient(client);
}

TEST_F(HttpClientTest, SendAfterCloseFailsOnALaterTurn) {
  Client client(loop, *tls::Context::NewClient(), Options(server->port()));
  CloseClient(client);
  auto r = SendOnce(client, Get("/a"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kShuttingDown) << r.status().ToString();
}

// Close() while a request waits for its connection fails it once, later.
TEST_F(HttpClientTest, CloseFailsARequestInFlightOnce) {
  Client client(loop, *tls::Context::NewClient(), Options(server->port()));
  int calls = 0;
  std::optional<Status> st;
  client.Send(Get("/a"), [&](Result<ClientResponse> r) {
    ++calls;
    st = r.status();
  });
  CloseClient(client);
  for (int i = 0; i < 3; ++i) loop.RunOnce();
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(st->code(), Code::kShuttingDown) << st->ToString();
}

}  // namespace
}  // namespace cairn::http
