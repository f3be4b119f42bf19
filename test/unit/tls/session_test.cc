// TLS sessions paired in memory: handshake, data, pinning, suites, bad input.
#include "cairn/tls/session.h"

#include <gtest/gtest.h>

#include "cairn/tls/identity.h"

namespace cairn::tls {
namespace {

struct Pair {
  std::unique_ptr<Session> server, client;
  Status server_status, client_status;
  bool server_done = false, client_done = false;

  // Moves bytes both ways until both handshakes finish or one fails.
  // `chunk` limits how many bytes move per step (1 feeds byte by byte).
  void Handshake(std::size_t chunk = 1 << 20) {
    for (int round = 0; round < 100000 && !(server_done && client_done); ++round) {
      client_status = client->Handshake(&client_done);
      if (!client_status.ok()) return;
      Move(client.get(), server.get(), chunk);
      server_status = server->Handshake(&server_done);
      if (!server_status.ok()) return;
      Move(server.get(), client.get(), chunk);
    }
  }
  std::string pending_c2s, pending_s2c;
  void Move(Session* from, Session* to, std::size_t chunk) {
    std::string& q = from == client.get() ? pending_c2s : pending_s2c;
    q += from->TakeOutgoing();
    std::size_t n = std::min(chunk, q.size());
    to->Feed(std::string_view(q).substr(0, n));
    q.erase(0, n);
  }
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto id = GenerateIdentity();
    ASSERT_TRUE(id.ok()) << id.status().ToString();
    identity = *id;
    pin = *SpkiHashOfCertPem(identity.cert_pem);
  }
  Pair MakePair(bool prefer_chacha, const std::string& client_pin) {
    auto sctx = Context::NewServer({identity.key_pem, identity.cert_pem, prefer_chacha});
    EXPECT_TRUE(sctx.ok()) << sctx.status().ToString();
    auto cctx = Context::NewClient();
    EXPECT_TRUE(cctx.ok());
    Pair p;
    p.server = (*Session::NewServer(*sctx));
    p.client = (*Session::NewClient(*cctx, client_pin));
    return p;
  }
  Identity identity;
  std::string pin;
};

TEST_F(TlsTest, HandshakeAndDataBothWays) {
  Pair p = MakePair(false, pin);
  p.Handshake();
  ASSERT_TRUE(p.client_status.ok()) << p.client_status.ToString();
  ASSERT_TRUE(p.server_status.ok()) << p.server_status.ToString();
  ASSERT_TRUE(p.client_done && p.server_done);
  EXPECT_EQ(p.client->peer_spki(), pin);
  EXPECT_EQ(pin.size(), 43u);

  std::string big(100000, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(p.client->Write(big).ok());
  p.server->Feed(p.client->TakeOutgoing());
  std::string got;
  bool eof = false;
  ASSERT_TRUE(p.server->Read(&got, &eof).ok());
  EXPECT_EQ(got, big);
  EXPECT_FALSE(eof);

  ASSERT_TRUE(p.server->Write("pong").ok());
  p.server->Close();
  p.client->Feed(p.server->TakeOutgoing());
  std::string back;
  ASSERT_TRUE(p.client->Read(&back, &eof).ok());
  EXPECT_EQ(back, "pong");
  EXPECT_TRUE(eof);
}

TEST_F(TlsTest, ByteAtATimeHandshake) {
  Pair p = MakePair(false, pin);
  p.Handshake(1);
  EXPECT_TRUE(p.client_done && p.server_done) << p.client_status.ToString() << " / " << p.server_status.ToString();
}

TEST_F(TlsTest, ServerOrderPicksTheSuite) {
  Pair aes = MakePair(false, pin);
  aes.Handshake();
  EXPECT_NE(aes.client->ciphersuite().find("AES-128-GCM"), std::string::npos) << aes.client->ciphersuite();
  Pair chacha = MakePair(true, pin);
  chacha.Handshake();
  EXPECT_NE(chacha.client->ciphersuite().find("CHACHA20-POLY1305"), std::string::npos) << chacha.client->ciphersuite();
}

TEST_F(TlsTest, WrongPinIsRefused) {
  std::string wrong = pin;
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  Pair p = MakePair(false, wrong);
  p.Handshake();
  EXPECT_FALSE(p.client_done);
  EXPECT_EQ(p.client_status.code(), Code::kUnauthenticated) << p.client_status.ToString();
}

TEST_F(TlsTest, GarbageIsAnErrorNotACrash) {
  auto sctx = Context::NewServer({identity.key_pem, identity.cert_pem, false});
  ASSERT_TRUE(sctx.ok());
  auto s = (*Session::NewServer(*sctx));
  s->Feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  bool done = false;
  Status st = s->Handshake(&done);
  EXPECT_FALSE(done);
  EXPECT_FALSE(st.ok());
}

TEST_F(TlsTest, MismatchedKeyAndCertificateAreRejected) {
  auto other = GenerateIdentity();
  ASSERT_TRUE(other.ok());
  auto ctx = Context::NewServer({other->key_pem, identity.cert_pem, false});
  EXPECT_FALSE(ctx.ok());
  EXPECT_FALSE(Context::NewServer({"not a key", identity.cert_pem, false}).ok());
}

}  // namespace
}  // namespace cairn::tls
