// The RecordLayer seam over two sessions paired in memory: after the
// handshake, records sealed on one side open on the other (also when they
// arrive a byte at a time, and with the bytes that came with the last
// handshake flight), close_notify ends the stream, and a damaged record is an
// error.
#include "tls/record_layer.h"

#include <gtest/gtest.h>

#include "cairn/tls/identity.h"
#include "cairn/tls/session.h"

namespace cairn::tls {
namespace {

class RecordLayerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto id = GenerateIdentity();
    ASSERT_TRUE(id.ok());
    auto sctx = Context::NewServer({id->key_pem, id->cert_pem, false});
    ASSERT_TRUE(sctx.ok());
    server = *Session::NewServer(*sctx);
    client = *Session::NewClient(*Context::NewClient(), *SpkiHashOfCertPem(id->cert_pem));
    bool sdone = false, cdone = false;
    for (int i = 0; i < 100 && !(sdone && cdone); ++i) {
      ASSERT_TRUE(client->Handshake(&cdone).ok());
      server->Feed(client->TakeOutgoing());
      ASSERT_TRUE(server->Handshake(&sdone).ok());
      client->Feed(server->TakeOutgoing());
    }
    ASSERT_TRUE(sdone && cdone);
    server_records = NewSessionRecords(*server);
    client_records = NewSessionRecords(*client);
  }
  std::unique_ptr<Session> server, client;
  std::unique_ptr<RecordLayer> server_records, client_records;
};

TEST_F(RecordLayerTest, SealedRecordsOpenOnTheOtherSide) {
  // The client's last flight (TLS 1.3: its Finished) may still be on its way.
  server_records->Feed(client_records->TakeOutgoing());
  std::string big(100000, 'q');
  ASSERT_TRUE(client_records->Seal("hello ").ok());
  ASSERT_TRUE(client_records->Seal(big).ok());
  std::string wire = client_records->TakeOutgoing();
  EXPECT_TRUE(client_records->TakeOutgoing().empty()) << "TakeOutgoing must leave the buffer empty";
  std::string got;
  bool eof = false;
  for (char ch : wire) {  // a byte at a time: partial records wait
    server_records->Feed(std::string_view(&ch, 1));
    ASSERT_TRUE(server_records->Open(&got, &eof).ok());
  }
  EXPECT_EQ(got, "hello " + big);
  EXPECT_FALSE(eof);
  // And back, then close_notify.
  ASSERT_TRUE(server_records->Seal("back").ok());
  server_records->SealClose();
  client_records->Feed(server_records->TakeOutgoing());
  std::string back;
  ASSERT_TRUE(client_records->Open(&back, &eof).ok());
  EXPECT_EQ(back, "back");
  EXPECT_TRUE(eof);
}

TEST_F(RecordLayerTest, ADamagedRecordIsAnError) {
  server_records->Feed(client_records->TakeOutgoing());
  std::string discard;
  bool eof = false;
  ASSERT_TRUE(server_records->Open(&discard, &eof).ok());
  ASSERT_TRUE(client_records->Seal("integrity matters").ok());
  std::string wire = client_records->TakeOutgoing();
  wire[wire.size() - 3] ^= 0x40;  // inside the record's tag
  server_records->Feed(wire);
  std::string got;
  Status st = server_records->Open(&got, &eof);
  EXPECT_FALSE(st.ok());
  EXPECT_EQ(st.code(), Code::kIntegrity) << st.ToString();
  EXPECT_TRUE(got.empty());
}

}  // namespace
}  // namespace cairn::tls
