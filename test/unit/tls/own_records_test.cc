// cairn's own TLS 1.2 records (src/tls/own_records.cc) against the mbedTLS
// session's records, in memory: a session pair runs the handshake, then one
// side (or both) takes over its records, and what one seals the other must
// open, in both suites, from 0 bytes to a few MiB, split at every byte, with
// close_notify both ways; a damaged, oversized, mistyped or renegotiating
// record ends the connection and none of its bytes is delivered.
#include "tls/own_records.h"

#include <gtest/gtest.h>

#include <random>

#include "cairn/tls/identity.h"
#include "cairn/tls/session.h"

namespace cairn::tls {
namespace {

struct Side {
  std::unique_ptr<Session> session;
  std::unique_ptr<RecordLayer> records;
};

struct Params {
  bool client_own;
  bool server_own;
  bool chacha;
};

std::string Describe(const Params& p) {
  return std::string(p.chacha ? "chacha" : "aes128gcm") + (p.client_own ? "_client_own" : "_client_mbedtls") +
         (p.server_own ? "_server_own" : "_server_mbedtls");
}

class OwnRecordsTest : public ::testing::TestWithParam<Params> {
 protected:
  static void SetUpTestSuite() {
    auto id = GenerateIdentity();
    ASSERT_TRUE(id.ok());
    identity_ = new Identity(*id);
  }
  static void TearDownTestSuite() {
    delete identity_;
    identity_ = nullptr;
  }

  // Runs the handshake with both sides fed whole flights. With
  // `server_speaks_first`, the server seals `first` right after its
  // Finished, and the client receives both in one piece.
  void Connect(const Params& p, std::string_view first = {}) {
    // A record layer may refer to its session: it goes first.
    server.records.reset();
    client.records.reset();
    auto sctx = Context::NewServer({identity_->key_pem, identity_->cert_pem, p.chacha});
    ASSERT_TRUE(sctx.ok());
    (*sctx)->set_own_records(p.server_own);
    auto cctx = Context::NewClient();
    ASSERT_TRUE(cctx.ok());
    (*cctx)->set_own_records(p.client_own);
    server.session = *Session::NewServer(*sctx);
    client.session = *Session::NewClient(*cctx, *SpkiHashOfCertPem(identity_->cert_pem));
    bool sdone = false, cdone = false;
    for (int i = 0; i < 20 && !cdone; ++i) {
      ASSERT_TRUE(client.session->Handshake(&cdone).ok());
      if (cdone) break;
      server.session->Feed(client.session->TakeOutgoing());
      ASSERT_TRUE(server.session->Handshake(&sdone).ok());
      std::string flight = server.session->TakeOutgoing();
      if (sdone && !server.records) {
        server.records = NewRecordLayer(*server.session);
        if (!first.empty()) {
          ASSERT_TRUE(server.records->Seal(first).ok());
          flight += server.records->TakeOutgoing();
        }
      }
      client.session->Feed(flight);
    }
    ASSERT_TRUE(sdone && cdone);
    client.records = NewRecordLayer(*client.session);
    EXPECT_STREQ(client.records->name(), p.client_own ? "cairn" : "mbedtls");
    EXPECT_STREQ(server.records->name(), p.server_own ? "cairn" : "mbedtls");
  }

  // Moves what `from` sealed to `to` and opens it.
  Status Move(Side& from, Side& to, std::string* got, bool* eof) {
    to.records->Feed(from.records->TakeOutgoing());
    return to.records->Open(got, eof);
  }

  static Identity* identity_;
  Side client, server;
};

Identity* OwnRecordsTest::identity_ = nullptr;

std::string Pattern(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

TEST_P(OwnRecordsTest, TheHandshakeLeavesSequenceNumberOneInBothDirections) {
  Params p = GetParam();
  Connect(p);
  for (Side* s : {&client, &server}) {
    RecordKeys keys;
    ASSERT_TRUE(s->session->ExportRecordKeys(&keys).ok());
    // The Finished messages were record 0 of the new epoch in each direction.
    EXPECT_EQ(keys.write_seq, 1u);
    EXPECT_EQ(keys.read_seq, 1u);
    EXPECT_EQ(keys.write_key.size(), 16u + (p.chacha ? 16u : 0u));
    EXPECT_EQ(keys.write_iv.size(), p.chacha ? 12u : 4u);
  }
  RecordKeys c, s;
  ASSERT_TRUE(client.session->ExportRecordKeys(&c).ok());
  ASSERT_TRUE(server.session->ExportRecordKeys(&s).ok());
  EXPECT_EQ(c.write_key, s.read_key);
  EXPECT_EQ(c.read_key, s.write_key);
  EXPECT_EQ(c.write_iv, s.read_iv);
  EXPECT_NE(c.write_key, c.read_key);
}

TEST_P(OwnRecordsTest, TransfersOfEverySizeBothWays) {
  Connect(GetParam());
  const std::size_t sizes[] = {0, 1, 13, 16383, 16384, 16385, 65536, 100000, 3 * 1024 * 1024 + 7};
  std::uint32_t seed = 1;
  for (std::size_t n : sizes) {
    for (bool c2s : {true, false}) {
      Side& from = c2s ? client : server;
      Side& to = c2s ? server : client;
      std::string data = Pattern(n, seed++);
      ASSERT_TRUE(from.records->Seal(data).ok());
      std::string wire = from.records->TakeOutgoing();
      // Whole records of at most 16 KiB of plaintext.
      std::size_t records = (n + kMaxRecordPlaintext - 1) / kMaxRecordPlaintext;
      EXPECT_GE(wire.size(), n + records * 21) << n;
      EXPECT_LE(wire.size(), n + records * 29) << n;
      to.records->Feed(wire);
      std::string got;
      bool eof = false;
      ASSERT_TRUE(to.records->Open(&got, &eof).ok()) << n;
      EXPECT_FALSE(eof);
      ASSERT_EQ(got.size(), data.size()) << n << (c2s ? " client to server" : " server to client");
      EXPECT_TRUE(got == data) << n;
    }
  }
}

TEST_P(OwnRecordsTest, ARecordSplitAtEveryByteBoundary) {
  Connect(GetParam());
  // Two records: every split point of the pair.
  std::string data = Pattern(200, 7) + Pattern(1500, 8);
  for (bool c2s : {true, false}) {
    Side& from = c2s ? client : server;
    Side& to = c2s ? server : client;
    ASSERT_TRUE(from.records->Seal(std::string_view(data).substr(0, 200)).ok());
    ASSERT_TRUE(from.records->Seal(std::string_view(data).substr(200)).ok());
    std::string first = from.records->TakeOutgoing();
    // Sealing the same bytes again gives the next records; the layers stay
    // in step because each split's records are opened once.
    for (std::size_t cut = 0; cut <= first.size(); ++cut) {
      std::string wire = first;
      if (cut > 0) {
        ASSERT_TRUE(from.records->Seal(std::string_view(data).substr(0, 200)).ok());
        ASSERT_TRUE(from.records->Seal(std::string_view(data).substr(200)).ok());
        wire = from.records->TakeOutgoing();
      }
      std::string got;
      bool eof = false;
      to.records->Feed(std::string_view(wire).substr(0, cut));
      ASSERT_TRUE(to.records->Open(&got, &eof).ok()) << cut;
      EXPECT_LE(got.size(), data.size());
      to.records->Feed(std::string_view(wire).substr(cut));
      ASSERT_TRUE(to.records->Open(&got, &eof).ok()) << cut;
      ASSERT_TRUE(got == data) << "split at " << cut << (c2s ? " client to server" : " server to client");
      if (HasFailure()) return;
    }
  }
}

TEST_P(OwnRecordsTest, AByteAtATime) {
  Connect(GetParam());
  std::string data = Pattern(40000, 3);
  ASSERT_TRUE(client.records->Seal(data).ok());
  std::string wire = client.records->TakeOutgoing();
  std::string got;
  bool eof = false;
  for (char ch : wire) {
    server.records->Feed(std::string_view(&ch, 1));
    ASSERT_TRUE(server.records->Open(&got, &eof).ok());
  }
  EXPECT_TRUE(got == data);
}

TEST_P(OwnRecordsTest, CloseNotifyBothWays) {
  Connect(GetParam());
  std::string got;
  bool eof = false;
  ASSERT_TRUE(client.records->Seal("last words").ok());
  client.records->SealClose();
  ASSERT_TRUE(Move(client, server, &got, &eof).ok());
  EXPECT_EQ(got, "last words");
  EXPECT_TRUE(eof);
  got.clear();
  eof = false;
  ASSERT_TRUE(server.records->Seal("reply").ok());
  server.records->SealClose();
  ASSERT_TRUE(Move(server, client, &got, &eof).ok());
  EXPECT_EQ(got, "reply");
  EXPECT_TRUE(eof);
}

TEST_P(OwnRecordsTest, ApplicationDataInTheFlightOfTheFinished) {
  Params p = GetParam();
  std::string first = Pattern(30000, 11);
  Connect(p, first);  // the server's first records ride with its Finished
  std::string got;
  bool eof = false;
  ASSERT_TRUE(client.records->Open(&got, &eof).ok());
  EXPECT_TRUE(got == first) << got.size();
}

TEST_P(OwnRecordsTest, AFlippedBitAnywhereInARecordDeliversNothingOfIt) {
  Params p = GetParam();
  std::string data = Pattern(300, 5);
  // Every byte of the body (explicit nonce, ciphertext, tag) in turn, on a
  // fresh connection each time: the good record before it arrives, the bad
  // one is refused whole, and the connection is over.
  std::size_t record_size = 0;
  for (std::size_t at = kRecordHeader; record_size == 0 || at < record_size; at += (at < 40 ? 1 : 37)) {
    Connect(p);
    ASSERT_TRUE(client.records->Seal("before").ok());
    std::string good = client.records->TakeOutgoing();
    ASSERT_TRUE(client.records->Seal(data).ok());
    std::string bad = client.records->TakeOutgoing();
    record_size = bad.size();
    std::string wire = good + bad;
    wire[good.size() + at] ^= 0x01;
    server.records->Feed(wire);
    std::string got;
    bool eof = false;
    Status st = server.records->Open(&got, &eof);
    EXPECT_EQ(st.code(), Code::kIntegrity) << "byte " << at << ": " << st.ToString();
    EXPECT_EQ(got, "before") << "byte " << at;
    if (!p.server_own) continue;  // mbedTLS's own reaction is its business
    // The peer hears why: a fatal bad_record_mac alert.
    std::string alert = server.records->TakeOutgoing();
    client.records->Feed(alert);
    std::string back;
    EXPECT_FALSE(client.records->Open(&back, &eof).ok()) << "byte " << at;
    // And the layer stays failed.
    std::string more;
    EXPECT_FALSE(server.records->Open(&more, &eof).ok());
    EXPECT_TRUE(more.empty());
    if (HasFailure()) return;
  }
}

INSTANTIATE_TEST_SUITE_P(Pairs, OwnRecordsTest,
                         ::testing::Values(Params{true, false, false}, Params{false, true, false},
                                           Params{true, true, false}, Params{true, false, true},
                                           Params{false, true, true}, Params{true, true, true}),
                         [](const ::testing::TestParamInfo<Params>& param_info) { return Describe(param_info.param); });

// Records only a misbehaving peer sends, forged with the client's own keys
// and fed to a server that uses cairn's records.
class ForgedRecordTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto id = GenerateIdentity();
    ASSERT_TRUE(id.ok());
    auto sctx = Context::NewServer({id->key_pem, id->cert_pem, false});
    ASSERT_TRUE(sctx.ok());
    (*sctx)->set_own_records(true);
    auto cctx = Context::NewClient();
    (*cctx)->set_own_records(false);
    server = *Session::NewServer(*sctx);
    client = *Session::NewClient(*cctx, *SpkiHashOfCertPem(id->cert_pem));
    bool sdone = false, cdone = false;
    for (int i = 0; i < 20 && !(sdone && cdone); ++i) {
      ASSERT_TRUE(client->Handshake(&cdone).ok());
      server->Feed(client->TakeOutgoing());
      ASSERT_TRUE(server->Handshake(&sdone).ok());
      client->Feed(server->TakeOutgoing());
    }
    ASSERT_TRUE(sdone && cdone);
    server_records = NewRecordLayer(*server);
    client_records = NewRecordLayer(*client);
    ASSERT_STREQ(server_records->name(), "cairn");
    ASSERT_TRUE(client->ExportRecordKeys(&keys).ok());
    auto c = RecordCipher::New(keys.algorithm, keys.write_key, keys.write_iv);
    ASSERT_TRUE(c.ok());
    forge = std::make_unique<RecordCipher>(std::move(*c));
  }
  // A record the client could have sealed as its next one.
  std::string Forge(std::uint8_t type, std::string_view plain) {
    std::string rec(plain.size() + forge->overhead(), '\0');
    forge->Seal(keys.write_seq++, type, reinterpret_cast<const std::uint8_t*>(plain.data()), plain.size(),
                reinterpret_cast<std::uint8_t*>(rec.data()));
    return rec;
  }
  Status FeedServer(const std::string& wire, std::string* got, bool* eof) {
    server_records->Feed(wire);
    return server_records->Open(got, eof);
  }
  // The server's answer, opened by the client's mbedTLS records.
  Status ClientHears() {
    client_records->Feed(server_records->TakeOutgoing());
    std::string got;
    bool eof = false;
    return client_records->Open(&got, &eof);
  }

  std::unique_ptr<Session> server, client;
  std::unique_ptr<RecordLayer> server_records, client_records;
  RecordKeys keys;
  std::unique_ptr<RecordCipher> forge;
};

TEST_F(ForgedRecordTest, ForgedRecordsMatchMbedTlsRecords) {
  std::string got;
  bool eof = false;
  ASSERT_TRUE(FeedServer(Forge(kTypeApplicationData, "forged by the test"), &got, &eof).ok());
  EXPECT_EQ(got, "forged by the test");
}

TEST_F(ForgedRecordTest, RenegotiationIsRefusedWithAnAlert) {
  std::string got;
  bool eof = false;
  // A ClientHello's first bytes are enough: it is never parsed.
  Status st = FeedServer(Forge(kTypeHandshake, std::string("\x01\x00\x00\x00", 4)), &got, &eof);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_NE(st.ToString().find("renegotiate"), std::string::npos);
  EXPECT_FALSE(ClientHears().ok()) << "the client's mbedTLS must see the fatal alert";
}

TEST_F(ForgedRecordTest, AnOversizedRecordIsRefused) {
  std::string got;
  bool eof = false;
  Status st = FeedServer(Forge(kTypeApplicationData, std::string(kMaxRecordPlaintext + 1, 'x')), &got, &eof);
  EXPECT_EQ(st.code(), Code::kIntegrity) << st.ToString();
  EXPECT_TRUE(got.empty());
  EXPECT_FALSE(ClientHears().ok());
}

TEST_F(ForgedRecordTest, ALengthOverTheLimitIsRefusedFromTheHeader) {
  std::string got;
  bool eof = false;
  std::string header("\x17\x03\x03\x48\x01", 5);  // 18433 bytes
  Status st = FeedServer(header, &got, &eof);
  EXPECT_EQ(st.code(), Code::kIntegrity) << st.ToString();
}

TEST_F(ForgedRecordTest, AWrongVersionOrTypeIsRefused) {
  std::string got;
  bool eof = false;
  std::string rec = Forge(kTypeApplicationData, "x");
  rec[2] = 1;  // TLS 1.0
  EXPECT_EQ(FeedServer(rec, &got, &eof).code(), Code::kIntegrity);
  SetUp();
  EXPECT_EQ(FeedServer(Forge(kTypeChangeCipherSpec, "\x01"), &got, &eof).code(), Code::kIntegrity);
  SetUp();
  EXPECT_EQ(FeedServer(Forge(99, "x"), &got, &eof).code(), Code::kIntegrity);
  EXPECT_TRUE(got.empty());
}

TEST_F(ForgedRecordTest, AFatalAlertEndsAWarningDoesNot) {
  std::string got;
  bool eof = false;
  // One statement per record: the order of evaluation of a + b is unspecified.
  std::string wire = Forge(kTypeAlert, std::string("\x01\x5a", 2));
  wire += Forge(kTypeApplicationData, "still here");
  ASSERT_TRUE(FeedServer(wire, &got, &eof).ok());  // user_canceled, a warning
  EXPECT_EQ(got, "still here");
  EXPECT_FALSE(eof);
  wire = Forge(kTypeAlert, std::string("\x02\x28", 2));
  wire += Forge(kTypeApplicationData, "lost");
  Status st = FeedServer(wire, &got, &eof);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
  EXPECT_EQ(got, "still here");
}

TEST_F(ForgedRecordTest, ARecordReplayedOrReorderedFailsItsTag) {
  std::string got;
  bool eof = false;
  std::string one = Forge(kTypeApplicationData, "one");
  std::string two = Forge(kTypeApplicationData, "two");
  Status st = FeedServer(two + one, &got, &eof);
  EXPECT_EQ(st.code(), Code::kIntegrity);
  EXPECT_TRUE(got.empty());
}

TEST_F(ForgedRecordTest, BytesAfterCloseNotifyAreIgnored) {
  std::string got;
  bool eof = false;
  std::string wire = Forge(kTypeApplicationData, "a");
  wire += Forge(kTypeAlert, std::string("\x01\x00", 2));
  wire += Forge(kTypeApplicationData, "after");
  ASSERT_TRUE(FeedServer(wire, &got, &eof).ok());
  EXPECT_EQ(got, "a");
  EXPECT_TRUE(eof);
}

// Large records opened elsewhere (the connection's thread pool): Open stops
// before the first whole application data record of 8 KiB or more;
// ReserveOpen takes it and the whole application data records after it,
// with their sequence numbers, and its function opens exactly those, in
// order; what follows is opened by Open again with the right numbers.
TEST_F(ForgedRecordTest, LargeRecordsAreLeftToReserveOpenAndOpenedInOrder) {
  server_records->OpenLargeRecordsElsewhere(8192);
  std::string big1 = Pattern(16384, 1), big2 = Pattern(9000, 2), small = Pattern(8100, 3);
  // One statement each: the forged records' sequence numbers are in order.
  std::string wire = Forge(kTypeApplicationData, "a");
  wire += Forge(kTypeApplicationData, big1);
  wire += Forge(kTypeApplicationData, "b");
  wire += Forge(kTypeApplicationData, big2);
  std::string partial = Forge(kTypeApplicationData, big1);
  std::string got;
  bool eof = false;
  std::uint64_t opens_before = TEST_reserved_opens();
  ASSERT_TRUE(FeedServer(wire + partial.substr(0, 100), &got, &eof).ok());
  EXPECT_EQ(got, "a");
  // Open leaves the large record (and what follows) alone.
  ASSERT_TRUE(server_records->Open(&got, &eof).ok());
  EXPECT_EQ(got, "a");
  auto open = server_records->ReserveOpen();
  ASSERT_TRUE(open != nullptr);
  EXPECT_EQ(TEST_reserved_opens() - opens_before, 1u);
  // The partial record is not part of the job; nothing else is large and whole.
  EXPECT_TRUE(server_records->ReserveOpen() == nullptr);
  RecordLayer::Opened opened = open();
  ASSERT_TRUE(opened.status.ok()) << opened.status.ToString();
  EXPECT_TRUE(opened.plaintext == big1 + "b" + big2);
  // The rest of the partial record, then a record under the threshold:
  // the large one goes to a second job, the small one is opened by Open.
  std::string rest = partial.substr(100);
  rest += Forge(kTypeApplicationData, small);
  server_records->Feed(rest);
  got.clear();
  ASSERT_TRUE(server_records->Open(&got, &eof).ok());
  EXPECT_TRUE(got.empty());
  open = server_records->ReserveOpen();
  ASSERT_TRUE(open != nullptr);
  opened = open();
  ASSERT_TRUE(opened.status.ok());
  EXPECT_TRUE(opened.plaintext == big1 + small);
  EXPECT_TRUE(server_records->ReserveOpen() == nullptr);
  ASSERT_TRUE(FeedServer(Forge(kTypeApplicationData, "c"), &got, &eof).ok());
  EXPECT_EQ(got, "c");
  EXPECT_FALSE(eof);
  EXPECT_TRUE(ClientHears().ok());  // no alert was sent
}

// A large record whose tag fails, opened elsewhere: the records before it
// in the job are delivered, nothing of it or after it; OpenFailed sends the
// bad_record_mac alert and the layer stays failed.
TEST_F(ForgedRecordTest, ABadTagInALargeRecordOpenedElsewhereDeliversNothingOfIt) {
  server_records->OpenLargeRecordsElsewhere(8192);
  std::string big1 = Pattern(16384, 4), big2 = Pattern(16384, 5);
  std::string wire = Forge(kTypeApplicationData, big1);
  std::size_t bad_at = wire.size();
  wire += Forge(kTypeApplicationData, big2);
  wire += Forge(kTypeApplicationData, "after");
  wire[bad_at + kRecordHeader + 8 + 5000] ^= 0x20;
  std::string got;
  bool eof = false;
  ASSERT_TRUE(FeedServer(wire, &got, &eof).ok());
  EXPECT_TRUE(got.empty());
  auto open = server_records->ReserveOpen();
  ASSERT_TRUE(open != nullptr);
  RecordLayer::Opened opened = open();
  EXPECT_EQ(opened.status.code(), Code::kIntegrity);
  EXPECT_TRUE(opened.plaintext == big1);
  Status st = server_records->OpenFailed(opened.status);
  EXPECT_EQ(st.code(), Code::kIntegrity);
  EXPECT_FALSE(ClientHears().ok());  // the peer hears bad_record_mac
  std::string more;
  EXPECT_FALSE(server_records->Open(&more, &eof).ok());
  EXPECT_TRUE(more.empty());
  EXPECT_TRUE(server_records->ReserveOpen() == nullptr);
}

}  // namespace
}  // namespace cairn::tls
