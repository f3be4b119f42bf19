// tls::Dialer against a tls::Listener on 127.0.0.1, both on one loop: the
// pin decides, and every result arrives on a later turn.
#include "cairn/tls/client.h"

#include <gtest/gtest.h>

#include <optional>
#include <vector>

#include "cairn/tls/identity.h"
#include "cairn/tls/server.h"
#include "tls/own_records.h"

namespace cairn::tls {
namespace {

class DialerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto id = GenerateIdentity();
    ASSERT_TRUE(id.ok());
    pin = *SpkiHashOfCertPem(id->cert_pem);
    ServerOptions so;
    so.key_pem = id->key_pem;
    so.cert_pem = id->cert_pem;
    listener = std::make_unique<Listener>(loop, *Context::NewServer(so));
    // An echo server.
    ASSERT_TRUE(listener
                    ->Start({},
                            [this](std::shared_ptr<Connection> c) {
                              accepted.push_back(c);
                              Connection* raw = c.get();
                              c->Start([raw](std::string d) { raw->Write(std::move(d)); }, [](Status) {});
                            })
                    .ok());
    dialer = std::make_unique<Dialer>(loop, *Context::NewClient());
  }
  void TearDown() override {
    bool a = false, b = false;
    dialer->Close([&] { a = true; });
    listener->Close([&] { b = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return a && b; }, 20000));
    accepted.clear();
  }
  // Dials, checking that the result comes exactly once and never inside
  // Connect().
  Result<std::shared_ptr<Connection>> Dial(DialOptions o) {
    std::optional<Result<std::shared_ptr<Connection>>> got;
    int calls = 0;
    dialer->Connect(o, [&](Result<std::shared_ptr<Connection>> r) {
      ++calls;
      got.emplace(std::move(r));
    });
    EXPECT_EQ(calls, 0) << "the dial completed inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return got.has_value(); }, 20000));
    loop.RunOnce();
    EXPECT_EQ(calls, 1);
    return std::move(*got);
  }
  DialOptions Opts() {
    DialOptions o;
    o.host = "127.0.0.1";
    o.port = listener->port();
    o.spki_pin = pin;
    return o;
  }

  Loop loop;
  std::string pin;
  std::unique_ptr<Listener> listener;
  std::unique_ptr<Dialer> dialer;
  std::vector<std::shared_ptr<Connection>> accepted;
};

TEST_F(DialerTest, PinnedConnectionCarriesDataBothWays) {
  auto c = Dial(Opts());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string got;
  std::optional<Status> ended;
  (*c)->Start([&](std::string d) { got += d; }, [&](Status s) { ended = s; });
  (*c)->Write("hello over tls");
  ASSERT_TRUE(loop.RunUntil([&] { return got.size() == 14; }, 20000));
  EXPECT_EQ(got, "hello over tls");
  (*c)->Close();
  ASSERT_TRUE(loop.RunUntil([&] { return ended.has_value(); }, 20000));
  EXPECT_TRUE(ended->ok());
}

// Both ends' records after the handshake are cairn's own unless the switch
// (limits.tls_own_records, CAIRN_TLS_OWN_RECORDS) is off, and a 3 MiB
// echo crosses them intact.
TEST_F(DialerTest, ConnectionsUseTheChosenRecordLayer) {
  auto c = Dial(Opts());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  const char* want = OwnRecordsDefault() ? "cairn" : "mbedtls";
  EXPECT_STREQ((*c)->TEST_record_layer(), want);
  ASSERT_TRUE(loop.RunUntil([&] { return !accepted.empty(); }, 20000));
  EXPECT_STREQ(accepted[0]->TEST_record_layer(), want);
  std::string sent(3 << 20, '\0');
  for (std::size_t i = 0; i < sent.size(); ++i) sent[i] = static_cast<char>(i % 251);
  std::string got;
  std::uint64_t reserved_before = TEST_reserved_seals();
  std::uint64_t opens_before = TEST_reserved_opens();
  (*c)->Start([&](std::string d) { got += d; }, [](Status) {});
  (*c)->Write(sent);
  ASSERT_TRUE(loop.RunUntil([&] { return got.size() >= sent.size(); }, 60000));
  EXPECT_TRUE(got == sent);
  // A 3 MiB write is sealed on the thread pool, 256 KiB a job, with its
  // sequence numbers fixed on the loop; the echo's smaller writes are not.
  if (OwnRecordsDefault()) {
    EXPECT_GE(TEST_reserved_seals() - reserved_before, 12u);
    // Its 16 KiB records are opened on the thread pool (by the server, and
    // the echo's by the client), a few per job.
    EXPECT_GE(TEST_reserved_opens() - opens_before, 2 * (sent.size() / (16 * 16384)));
  } else {
    EXPECT_EQ(TEST_reserved_seals(), reserved_before);
    EXPECT_EQ(TEST_reserved_opens(), opens_before);
  }
  (*c)->Close();
}

// A large write is encrypted a slice per turn (never all in one loop
// iteration), arrives whole and in order, calls its completion once, and a
// Close() right after it still sends every byte before close_notify.
TEST_F(DialerTest, LargeWriteIsSlicedAcrossTurnsAndCloseWaitsForIt) {
  // The server writes 4 MiB and closes; the client reads it all.
  std::string big(4 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  std::shared_ptr<Connection> server_side;
  listener->Close([] {});
  Listener sender(loop, *Context::NewServer([&] {
    auto id = GenerateIdentity();
    ServerOptions so;
    so.key_pem = id->key_pem;
    so.cert_pem = id->cert_pem;
    pin = *SpkiHashOfCertPem(id->cert_pem);
    return so;
  }()));
  int completions = 0;
  std::optional<Status> write_status;
  std::uint64_t write_turn = 0;
  ASSERT_TRUE(sender
                  .Start({},
                         [&](std::shared_ptr<Connection> c) {
                           server_side = c;
                           c->Start([](std::string) {}, [](Status) {});
                           write_turn = loop.turn();
                           c->Write(big, [&](Status st) {
                             ++completions;
                             write_status = st;
                           });
                           EXPECT_GT(c->queued_write_bytes(), 0u);
                           c->Close();
                         })
                  .ok());
  DialOptions o = Opts();
  o.port = sender.port();
  o.spki_pin = pin;
  auto c = Dial(o);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string got;
  std::optional<Status> ended;
  (*c)->Start([&](std::string d) { got += d; }, [&](Status s) { ended = s; });
  ASSERT_TRUE(loop.RunUntil([&] { return ended.has_value() && write_status.has_value(); }, 60000));
  EXPECT_TRUE(ended->ok()) << ended->ToString();
  ASSERT_EQ(got.size(), big.size());
  EXPECT_TRUE(got == big) << "the bytes arrived altered or out of order";
  EXPECT_EQ(completions, 1);
  EXPECT_TRUE(write_status->ok()) << write_status->ToString();
  EXPECT_GT(loop.turn(), write_turn + 16) << "4 MiB should take many turns of 64 KiB slices";
  bool closed = false;
  sender.Close([&] { closed = true; });
  ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
}

// Pieces of one shared buffer (small ones encrypted at once, large ones
// queued behind) and owned strings between them arrive in the order written,
// each completion runs once on a later turn, and the connection lets go of
// the buffer once everything is encrypted.
TEST_F(DialerTest, SharedBufferPiecesArriveInOrderWithoutBeingKept) {
  auto c = Dial(Opts());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  std::string got;
  (*c)->Start([&](std::string d) { got += d; }, [](Status) {});
  std::string bytes(3 << 20, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7 + i / 1000) & 0xff);
  auto shared = std::make_shared<const std::string>(std::move(bytes));
  std::string want;
  int completions = 0;
  bool inside = true;
  auto count = [&](Status st) {
    EXPECT_TRUE(st.ok()) << st.ToString();
    EXPECT_FALSE(inside) << "a completion ran inside Write";
    ++completions;
  };
  // (offset, length): a small piece, a large one (queued, sliced), a small
  // one behind it, the rest.
  const std::pair<std::size_t, std::size_t> pieces[] = {{0, 1000}, {1000, 2 << 20}, {(2 << 20) + 1000, 10},
                                                          {(2 << 20) + 1010, (1 << 20) - 1010}};
  for (auto [off, len] : pieces) {
    (*c)->Write(shared, off, len, count);
    want += shared->substr(off, len);
    (*c)->Write("|", count);
    want += "|";
  }
  inside = false;
  EXPECT_GT(shared.use_count(), 1) << "the queued pieces hold the buffer";
  ASSERT_TRUE(loop.RunUntil([&] { return got.size() == want.size() && completions == 8; }, 60000));
  EXPECT_TRUE(got == want) << "the bytes arrived altered or out of order";
  EXPECT_EQ(shared.use_count(), 1) << "the connection still holds the buffer after sending it";
}

// Writes from an application that gives up mid-way: Abort() with a large
// write queued fails its completion instead of dropping it.
TEST_F(DialerTest, AbortFailsAQueuedLargeWrite) {
  auto c = Dial(Opts());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  (*c)->Start([](std::string) {}, [](Status) {});
  std::optional<Status> st;
  (*c)->Write(std::string(1 << 20, 'x'), [&](Status s) { st = s; });
  (*c)->Abort(Status::Cancelled("test"));
  ASSERT_TRUE(loop.RunUntil([&] { return st.has_value(); }, 20000));
  EXPECT_FALSE(st->ok());
}

TEST_F(DialerTest, WrongPinIsUnauthenticated) {
  DialOptions o = Opts();
  o.spki_pin = std::string(43, 'A');
  auto c = Dial(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnauthenticated) << c.status().ToString();
  EXPECT_NE(c.status().message().find("pinned SPKI"), std::string_view::npos);
}

TEST_F(DialerTest, RefusedConnectionIsUnavailableOnALaterTurn) {
  std::uint16_t dead;
  {
    // A port that nobody listens on: bind one, note it, close it.
    Listener tmp(loop, nullptr);
    ASSERT_TRUE(tmp.Start({}, [](std::shared_ptr<Connection>) {}).ok());
    dead = tmp.port();
    bool closed = false;
    tmp.Close([&] { closed = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
  }
  DialOptions o = Opts();
  o.port = dead;
  auto c = Dial(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnavailable) << c.status().ToString();
}

TEST_F(DialerTest, BadHostFailsOnALaterTurn) {
  DialOptions o = Opts();
  o.host = "no-such-host.invalid";
  auto c = Dial(o);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(c.status().code() == Code::kUnavailable || c.status().code() == Code::kInvalidArgument)
      << c.status().ToString();
}

TEST_F(DialerTest, CloseDuringDialReportsShuttingDown) {
  std::optional<Result<std::shared_ptr<Connection>>> got;
  dialer->Connect(Opts(), [&](Result<std::shared_ptr<Connection>> r) { got.emplace(std::move(r)); });
  bool closed = false;
  dialer->Close([&] { closed = true; });
  EXPECT_FALSE(got.has_value());
  ASSERT_TRUE(loop.RunUntil([&] { return got.has_value() && closed; }, 20000));
  EXPECT_EQ(got->status().code(), Code::kShuttingDown);
  // A dial after Close() fails too, later.
  got.reset();
  dialer->Connect(Opts(), [&](Result<std::shared_ptr<Connection>> r) { got.emplace(std::move(r)); });
  EXPECT_FALSE(got.has_value());
  ASSERT_TRUE(loop.RunUntil([&] { return got.has_value(); }, 20000));
  EXPECT_EQ(got->status().code(), Code::kShuttingDown);
}

// Operations that fail at once still complete on a later turn, exactly
// once (Tahoe-LAFS #877): writes of both kinds on a closed connection.
TEST_F(DialerTest, WriteOnAClosedConnectionFailsOnALaterTurn) {
  auto c = Dial(Opts());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  int ends = 0;
  (*c)->Start([](std::string) {}, [&](Status) { ++ends; });
  (*c)->Close();
  EXPECT_EQ(ends, 0) << "on_end ran inside Close()";
  int calls = 0;
  std::vector<Status> got;
  auto count = [&](Status st) {
    ++calls;
    got.push_back(st);
  };
  (*c)->Write("late", count);
  (*c)->Write(std::make_shared<const std::string>(1 << 20, 'x'), 0, 1 << 20, count);
  EXPECT_EQ(calls, 0) << "a failed write completed inside Write()";
  ASSERT_TRUE(loop.RunUntil([&] { return calls == 2 && ends == 1; }, 20000));
  for (int i = 0; i < 5; ++i) loop.RunOnce();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(ends, 1);
  for (const Status& st : got) EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
}

// Abort() ends the connection on a later turn: on_end runs once, with why.
TEST_F(DialerTest, AbortEndsOnALaterTurnOnce) {
  auto c = Dial(Opts());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  int ends = 0;
  Status why;
  (*c)->Start([](std::string) {}, [&](Status st) {
    ++ends;
    why = st;
  });
  (*c)->Abort(Status::Cancelled("test"));
  (*c)->Abort(Status::Cancelled("again"));
  (*c)->Close();
  EXPECT_EQ(ends, 0) << "on_end ran inside Abort()";
  EXPECT_FALSE((*c)->open());
  ASSERT_TRUE(loop.RunUntil([&] { return ends == 1; }, 20000));
  for (int i = 0; i < 5; ++i) loop.RunOnce();
  EXPECT_EQ(ends, 1);
  EXPECT_EQ(why.code(), Code::kCancelled);
}

// A dialer's Close() with nothing open completes on a later turn, once.
TEST_F(DialerTest, CloseWithNothingOpenCompletesOnALaterTurn) {
  Dialer d(loop, *Context::NewClient());
  int calls = 0;
  d.Close([&] { ++calls; });
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(loop.RunUntil([&] { return calls == 1; }, 20000));
  loop.RunOnce();
  EXPECT_EQ(calls, 1);
}

// The handshake gate, seen from the server: a client that rejects the pin
// never finishes the handshake, so the listener never hands its connection
// to the application.
TEST_F(DialerTest, PinMismatchHandsOutNothing) {
  int handed_out = 0;
  Listener gate(loop, *Context::NewServer([&] {
    auto id = GenerateIdentity();
    ServerOptions so;
    so.key_pem = id->key_pem;
    so.cert_pem = id->cert_pem;
    return so;
  }()));
  ASSERT_TRUE(gate.Start({"127.0.0.1", 0, 300, 16}, [&](std::shared_ptr<Connection>) { ++handed_out; }).ok());
  // A client with the wrong pin: its handshake fails, so nothing it might
  // send is ever application data.
  DialOptions o = Opts();
  o.port = gate.port();
  auto c = Dial(o);
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), Code::kUnauthenticated) << c.status().ToString();
  ASSERT_TRUE(loop.RunUntil([&] { return gate.open_connections() == 0; }, 20000));
  EXPECT_EQ(handed_out, 0);
  bool closed = false;
  gate.Close([&] { closed = true; });
  ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
}

}  // namespace
}  // namespace cairn::tls
