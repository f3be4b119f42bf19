// gbs::Client against an in-process GBS server (http::Server + StorageServer
// + ShareStore in a temporary directory) on 127.0.0.1, over pinned TLS, all
// on one loop. Every call is checked not to complete inside the call.
#include "cairn/gbs/client.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <type_traits>

#include "cairn/gbs/server.h"
#include "cairn/http/server.h"
#include "cairn/store/store.h"
#include "cairn/tls/identity.h"
#include "cairn/tls/server.h"
#include "cairn/tls/session.h"

namespace cairn::gbs {
namespace {

StorageIndex Si(int n) {
  StorageIndex si{};
  si[0] = static_cast<std::uint8_t>(n);
  si[15] = static_cast<std::uint8_t>(n * 3 + 1);
  return si;
}

const LeaseSecrets kLease{std::string(32, 'r'), std::string(32, 'c')};
const std::string kUpload = "upload-secret-20byte";
const std::string kWe(32, 'W');

class GbsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/cairn-gbsclient-XXXXXX";
    dir = mkdtemp(tmpl);
    store::StoreOptions so;
    so.dir = dir;
    so.map_bytes = 4 << 20;
    so.map_max_bytes = 64 << 20;
    so.sweep_interval_ms = 3600000;
    auto st = store::ShareStore::Open(loop, so);
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store = std::move(*st);
    auto id = tls::GenerateIdentity();
    ASSERT_TRUE(id.ok());
    tls::ServerOptions to;
    to.key_pem = id->key_pem;
    to.cert_pem = id->cert_pem;
    StorageServerOptions go;
    go.swissnum = "swiss-test-number";
    go.application_version = "cairn/test";
    gbs = std::make_unique<StorageServer>(loop, *store, go);
    server = std::make_unique<http::Server>(loop, *tls::Context::NewServer(to));
    http::ServerOptions ho;
    ho.idle_ms = server_idle_ms;
    ASSERT_TRUE(server->Start(ho, [this](std::shared_ptr<http::Exchange> ex) { gbs->Handle(std::move(ex)); }).ok());
    nurl.spki_hash = *tls::SpkiHashOfCertPem(id->cert_pem);
    nurl.host = "127.0.0.1";
    nurl.port = server->port();
    nurl.swissnum = go.swissnum;
    ctx = *tls::Context::NewClient();
    client = MakeClient(nurl);
  }
  void TearDown() override {
    for (auto& c : clients) Close(*c);
    clients.clear();
    bool a = false, b = false;
    if (server) server->Close([&] { a = true; });
    store->Close([&] { b = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return (a || !server) && b; }, 20000));
    std::filesystem::remove_all(dir);
  }
  Client* MakeClient(const Nurl& n, ClientOptions o = {}) {
    clients.push_back(std::make_unique<Client>(loop, ctx, n, std::move(o)));
    return clients.back().get();
  }
  void Close(Client& c) {
    bool done = false;
    c.Close([&] { done = true; });
    ASSERT_TRUE(loop.RunUntil([&] { return done; }, 20000));
  }
  // Starts a call, checks it did not complete inside the call, runs the loop
  // until it completes.
  template <typename R, typename F>
  R Sync(F start) {
    std::optional<R> out;
    int completions = 0;
    start([&](R r) {
      ++completions;
      out.emplace(std::move(r));
    });
    EXPECT_FALSE(out.has_value()) << "the completion ran inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
    EXPECT_EQ(completions, 1);
    return std::move(*out);
  }
  Status Upload(Client* c, const StorageIndex& si, std::uint32_t shnum, const std::string& data) {
    auto a = Sync<Result<AllocateResponse>>(
        [&](auto cb) { c->Allocate(si, kUpload, kLease, {{shnum}, data.size()}, std::move(cb)); });
    if (!a.ok()) return a.status();
    auto w = Sync<Result<WriteResult>>([&](auto cb) { c->WriteChunk(si, shnum, kUpload, 0, data, std::move(cb)); });
    if (!w.ok()) return w.status();
    return w->complete ? Status() : Status::Internal("not complete");
  }

  Loop loop;
  std::string dir;
  std::uint64_t server_idle_ms = 60000;
  std::unique_ptr<store::ShareStore> store;
  std::unique_ptr<StorageServer> gbs;
  std::unique_ptr<http::Server> server;
  std::shared_ptr<tls::Context> ctx;
  Nurl nurl;
  std::vector<std::unique_ptr<Client>> clients;
  Client* client = nullptr;
};

TEST_F(GbsClientTest, Version) {
  auto v = Sync<Result<Version>>([&](auto cb) { client->GetVersion(std::move(cb)); });
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(v->application_version, "cairn/test");
  EXPECT_GT(v->maximum_immutable_share_size, 0u);
}

TEST_F(GbsClientTest, ImmutableUploadInChunksListReadAndAbort) {
  StorageIndex si = Si(1);
  std::string data(300000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  auto a = Sync<Result<AllocateResponse>>(
      [&](auto cb) { client->Allocate(si, kUpload, kLease, {{0, 1}, data.size()}, std::move(cb)); });
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->allocated, (ShareNumbers{0, 1}));
  // Two chunks: 200 with what is still required, then 201.
  auto w1 = Sync<Result<WriteResult>>(
      [&](auto cb) { client->WriteChunk(si, 0, kUpload, 0, data.substr(0, 100000), std::move(cb)); });
  ASSERT_TRUE(w1.ok()) << w1.status().ToString();
  EXPECT_FALSE(w1->complete);
  ASSERT_EQ(w1->required.size(), 1u);
  EXPECT_EQ(w1->required[0], (Range{100000, 300000}));
  auto w2 = Sync<Result<WriteResult>>(
      [&](auto cb) { client->WriteChunk(si, 0, kUpload, 100000, data.substr(100000), std::move(cb)); });
  ASSERT_TRUE(w2.ok()) << w2.status().ToString();
  EXPECT_TRUE(w2->complete);
  // A conflicting overwrite of share 1's range is 409, a wrong secret 401.
  ASSERT_TRUE(Sync<Result<WriteResult>>([&](auto cb) { client->WriteChunk(si, 1, kUpload, 0, "abc", std::move(cb)); }).ok());
  auto conflict = Sync<Result<WriteResult>>([&](auto cb) { client->WriteChunk(si, 1, kUpload, 0, "xyz", std::move(cb)); });
  EXPECT_EQ(conflict.status().code(), Code::kConflict) << conflict.status().ToString();
  auto bad = Sync<Result<WriteResult>>([&](auto cb) { client->WriteChunk(si, 1, "wrong", 3, "d", std::move(cb)); });
  EXPECT_EQ(bad.status().code(), Code::kUnauthenticated) << bad.status().ToString();
  // Abort share 1; aborting the complete share 0 is 405.
  EXPECT_TRUE(Sync<Status>([&](auto cb) { client->Abort(si, 1, kUpload, std::move(cb)); }).ok());
  EXPECT_EQ(Sync<Status>([&](auto cb) { client->Abort(si, 0, kUpload, std::move(cb)); }).code(),
            Code::kFailedPrecondition);
  // The write after completion has no upload: 404.
  auto late = Sync<Result<WriteResult>>([&](auto cb) { client->WriteChunk(si, 0, kUpload, 0, "x", std::move(cb)); });
  EXPECT_EQ(late.status().code(), Code::kNotFound);

  auto list = Sync<Result<ShareNumbers>>([&](auto cb) { client->ListImmutable(si, std::move(cb)); });
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (ShareNumbers{0}));
  auto r = Sync<Result<std::string>>([&](auto cb) { client->ReadImmutable(si, 0, 1000, 5000, std::move(cb)); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(*r, data.substr(1000, 5000));
  // Past the end: truncated, then empty (204).
  auto tail = Sync<Result<std::string>>([&](auto cb) { client->ReadImmutable(si, 0, 299990, 100, std::move(cb)); });
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(*tail, data.substr(299990));
  auto past = Sync<Result<std::string>>([&](auto cb) { client->ReadImmutable(si, 0, 400000, 100, std::move(cb)); });
  ASSERT_TRUE(past.ok());
  EXPECT_EQ(*past, "");
  auto none = Sync<Result<std::string>>([&](auto cb) { client->ReadImmutable(si, 7, 0, 100, std::move(cb)); });
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  // A second allocate sees the complete share.
  auto again = Sync<Result<AllocateResponse>>(
      [&](auto cb) { client->Allocate(si, kUpload, kLease, {{0}, data.size()}, std::move(cb)); });
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->already_have, (ShareNumbers{0}));
  EXPECT_TRUE(again->allocated.empty());
}

TEST_F(GbsClientTest, LeaseAndCorruptionAdvisory) {
  StorageIndex si = Si(2);
  EXPECT_EQ(Sync<Status>([&](auto cb) { client->AddLease(si, kLease, std::move(cb)); }).code(), Code::kNotFound);
  ASSERT_TRUE(Upload(client, si, 3, "share bytes").ok());
  EXPECT_TRUE(Sync<Status>([&](auto cb) { client->AddLease(si, kLease, std::move(cb)); }).ok());
  EXPECT_TRUE(Sync<Status>([&](auto cb) { client->AdviseCorrupt(false, si, 3, "bad hash", std::move(cb)); }).ok());
  EXPECT_EQ(Sync<Status>([&](auto cb) { client->AdviseCorrupt(false, si, 4, "bad hash", std::move(cb)); }).code(),
            Code::kNotFound);
}

TEST_F(GbsClientTest, MutableReadTestWriteAndReads) {
  StorageIndex si = Si(3);
  std::string data = "mutable share contents";
  RtwRequest w;
  w.shares[0].test.push_back({0, 0, ""});
  w.shares[0].write.push_back({0, data});
  auto r1 = Sync<Result<RtwResponse>>([&](auto cb) { client->ReadTestWrite(si, kWe, kLease, w, std::move(cb)); });
  ASSERT_TRUE(r1.ok()) << r1.status().ToString();
  EXPECT_TRUE(r1->success);
  // The same test now fails (the share is no longer empty): 200, success false.
  RtwRequest w2 = w;
  w2.shares[0].test[0] = {0, 7, "MUTABLE"};
  w2.read.push_back({0, 7});
  auto r2 = Sync<Result<RtwResponse>>([&](auto cb) { client->ReadTestWrite(si, kWe, kLease, w2, std::move(cb)); });
  ASSERT_TRUE(r2.ok()) << r2.status().ToString();
  EXPECT_FALSE(r2->success);
  EXPECT_EQ(r2->data[0], (std::vector<std::string>{"mutable"}));
  // A wrong write enabler is 401.
  auto r3 = Sync<Result<RtwResponse>>(
      [&](auto cb) { client->ReadTestWrite(si, std::string(32, 'X'), kLease, w, std::move(cb)); });
  EXPECT_EQ(r3.status().code(), Code::kUnauthenticated) << r3.status().ToString();
  auto list = Sync<Result<ShareNumbers>>([&](auto cb) { client->ListMutable(si, std::move(cb)); });
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(*list, (ShareNumbers{0}));
  auto read = Sync<Result<std::string>>([&](auto cb) { client->ReadMutable(si, 0, 8, 5, std::move(cb)); });
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, "share");
  EXPECT_TRUE(Sync<Status>([&](auto cb) { client->AdviseCorrupt(true, si, 0, "bad signature", std::move(cb)); }).ok());
}

TEST_F(GbsClientTest, WrongSwissnumIsUnauthenticated) {
  Nurl n = nurl;
  n.swissnum = "not-the-swissnum";
  Client* c = MakeClient(n);
  auto v = Sync<Result<Version>>([&](auto cb) { c->GetVersion(std::move(cb)); });
  EXPECT_EQ(v.status().code(), Code::kUnauthenticated) << v.status().ToString();
}

TEST_F(GbsClientTest, WrongPinIsUnauthenticatedAndDoesNotDisturbAnotherClient) {
  Nurl n = nurl;
  n.spki_hash = std::string(43, 'B');
  Client* bad = MakeClient(n);
  auto v = Sync<Result<Version>>([&](auto cb) { bad->GetVersion(std::move(cb)); });
  EXPECT_EQ(v.status().code(), Code::kUnauthenticated) << v.status().ToString();
  EXPECT_NE(v.status().message().find("SPKI"), std::string_view::npos);
  EXPECT_TRUE(Sync<Result<Version>>([&](auto cb) { client->GetVersion(std::move(cb)); }).ok());
}

TEST_F(GbsClientTest, DeadServerFailsOnALaterTurnNeverInsideTheCall) {
  // Ticket #877: a call to a server that is gone must not complete inside
  // the call, even though the failure is known at once.
  bool closed = false;
  server->Close([&] { closed = true; });
  ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
  server.reset();
  int completions = 0;
  std::vector<Status> results;
  for (int i = 0; i < 5; ++i) {
    client->GetVersion([&](Result<Version> r) {
      ++completions;
      results.push_back(r.status());
    });
    client->ReadImmutable(Si(1), 0, 0, 10, [&](Result<std::string> r) {
      ++completions;
      results.push_back(r.status());
    });
    EXPECT_EQ(completions, 0) << "a completion ran inside the call that started it";
  }
  ASSERT_TRUE(loop.RunUntil([&] { return completions == 10; }, 20000));
  for (const Status& s : results) EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
  // A later call on the same client is still asynchronous.
  auto again = Sync<Result<Version>>([&](auto cb) { client->GetVersion(std::move(cb)); });
  EXPECT_EQ(again.status().code(), Code::kUnavailable);
}

TEST_F(GbsClientTest, FailAtOnceFaultCompletesOnALaterTurn) {
  ClientOptions o;
  o.TEST_fault = [](std::string_view) { return Fault::kFailAtOnce; };
  Client* c = MakeClient(nurl, std::move(o));
  auto v = Sync<Result<Version>>([&](auto cb) { c->GetVersion(std::move(cb)); });
  EXPECT_EQ(v.status().code(), Code::kUnavailable);
  EXPECT_EQ(c->open_connections(), 0u);  // nothing was sent
}

// Counts completions of calls that fail at once: none inside the call, one
// on a later turn, never a second.
class Counter {
 public:
  template <typename R>
  Callback<void(R)> Expect(Code code) {
    return [this, code](R r) {
      ++done_;
      if constexpr (std::is_same_v<R, Status>) {
        EXPECT_EQ(r.code(), code) << r.ToString();
      } else {
        EXPECT_EQ(r.status().code(), code) << r.status().ToString();
      }
    };
  }
  int done() const { return done_; }

 private:
  int done_ = 0;
};

TEST_F(GbsClientTest, BadArgumentsFailOnALaterTurn) {
  Counter n;
  int calls = 0;
  auto check_call = [&] {
    ++calls;
    EXPECT_EQ(n.done(), 0) << "call " << calls << " completed inside the call that started it";
  };
  client->WriteChunk(Si(1), 0, kUpload, 0, "", n.Expect<Result<WriteResult>>(Code::kInvalidArgument));
  check_call();
  client->ReadImmutable(Si(1), 0, 0, 0, n.Expect<Result<std::string>>(Code::kInvalidArgument));
  check_call();
  client->ReadMutable(Si(1), 0, 0, (64ull << 20) + 1, n.Expect<Result<std::string>>(Code::kInvalidArgument));
  check_call();
  client->ReadMutable(Si(1), 0, ~0ull - 2, 10, n.Expect<Result<std::string>>(Code::kInvalidArgument));
  check_call();
  ASSERT_TRUE(loop.RunUntil([&] { return n.done() == 4; }, 20000));
  loop.RunUntil([] { return false; }, 50);
  EXPECT_EQ(n.done(), 4) << "a call completed twice";
  EXPECT_EQ(client->stats().calls, 0u) << "nothing was sent";
}

TEST_F(GbsClientTest, CallsOnAClosedClientFailOnALaterTurn) {
  auto c = std::make_unique<Client>(loop, ctx, nurl);
  // Open a connection first, so that Close has something to close.
  {
    std::optional<Result<Version>> v;
    c->GetVersion([&](Result<Version> r) { v.emplace(std::move(r)); });
    ASSERT_TRUE(loop.RunUntil([&] { return v.has_value(); }, 20000));
    ASSERT_TRUE(v->ok()) << v->status().ToString();
  }
  bool closed = false;
  c->Close([&] { closed = true; });
  EXPECT_FALSE(closed) << "Close completed inside the call";
  ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
  RtwRequest w;
  w.shares[0].write.push_back({0, "x"});
  // One call of each kind, each checked right after it returns.
  std::vector<Callback<void(Counter&)>> calls;
  calls.push_back([&](Counter& k) { c->GetVersion(k.Expect<Result<Version>>(Code::kShuttingDown)); });
  calls.push_back([&](Counter& k) { c->AddLease(Si(1), kLease, k.Expect<Status>(Code::kShuttingDown)); });
  calls.push_back([&](Counter& k) {
    c->Allocate(Si(1), kUpload, kLease, {{0}, 10}, k.Expect<Result<AllocateResponse>>(Code::kShuttingDown));
  });
  calls.push_back([&](Counter& k) {
    c->WriteChunk(Si(1), 0, kUpload, 0, "abc", k.Expect<Result<WriteResult>>(Code::kShuttingDown));
  });
  calls.push_back([&](Counter& k) { c->Abort(Si(1), 0, kUpload, k.Expect<Status>(Code::kShuttingDown)); });
  calls.push_back([&](Counter& k) { c->ListImmutable(Si(1), k.Expect<Result<ShareNumbers>>(Code::kShuttingDown)); });
  calls.push_back([&](Counter& k) { c->ListMutable(Si(1), k.Expect<Result<ShareNumbers>>(Code::kShuttingDown)); });
  calls.push_back([&](Counter& k) {
    c->ReadImmutable(Si(1), 0, 0, 10, k.Expect<Result<std::string>>(Code::kShuttingDown));
  });
  calls.push_back([&](Counter& k) {
    c->ReadMutable(Si(1), 0, 0, 10, k.Expect<Result<std::string>>(Code::kShuttingDown));
  });
  calls.push_back([&](Counter& k) { c->AdviseCorrupt(true, Si(1), 0, "bad", k.Expect<Status>(Code::kShuttingDown)); });
  calls.push_back([&](Counter& k) {
    c->ReadTestWrite(Si(1), kWe, kLease, w, k.Expect<Result<RtwResponse>>(Code::kShuttingDown));
  });
  for (std::size_t i = 0; i < calls.size(); ++i) {
    Counter k;
    calls[i](k);
    EXPECT_EQ(k.done(), 0) << "call " << i << " completed inside the call that started it";
    ASSERT_TRUE(loop.RunUntil([&] { return k.done() > 0; }, 20000)) << "call " << i;
    loop.RunUntil([] { return false; }, 10);
    EXPECT_EQ(k.done(), 1) << "call " << i;
  }
}

TEST_F(GbsClientTest, CloseCompletesALateAnswerStillWaiting) {
  ClientOptions o;
  o.TEST_fault = [](std::string_view) { return Fault::kAnswerLate; };
  o.TEST_late_ms = 600000;
  auto c = std::make_unique<Client>(loop, ctx, nurl, std::move(o));
  int done = 0;
  Status st;
  c->GetVersion([&](Result<Version> r) {
    ++done;
    st = r.status();
  });
  // Let the answer arrive and wait on its timer.
  ASSERT_TRUE(loop.RunUntil([&] { return gbs->stats().requests.count("version") > 0; }, 20000));
  loop.RunUntil([] { return false; }, 200);
  EXPECT_EQ(done, 0);
  bool closed = false;
  c->Close([&] { closed = true; });
  EXPECT_EQ(done, 0) << "completed inside Close";
  ASSERT_TRUE(loop.RunUntil([&] { return closed && done > 0; }, 20000));
  loop.RunUntil([] { return false; }, 20);
  EXPECT_EQ(done, 1);
  EXPECT_EQ(st.code(), Code::kShuttingDown) << st.ToString();
}

TEST_F(GbsClientTest, DroppedConnectionFailsTheCallOnce) {
  ClientOptions o;
  o.TEST_fault = [](std::string_view e) { return e == "read-test-write" ? Fault::kDropConnection : Fault::kNone; };
  Client* c = MakeClient(nurl, std::move(o));
  RtwRequest w;
  w.shares[0].write.push_back({0, "x"});
  auto r = Sync<Result<RtwResponse>>([&](auto cb) { c->ReadTestWrite(Si(4), kWe, kLease, w, std::move(cb)); });
  EXPECT_EQ(r.status().code(), Code::kUnavailable) << r.status().ToString();
  // The client recovers with a fresh connection.
  EXPECT_TRUE(Sync<Result<Version>>([&](auto cb) { c->GetVersion(std::move(cb)); }).ok());
}

TEST_F(GbsClientTest, DuplicateAnswerNeverCompletesTwice) {
  ClientOptions o;
  o.TEST_fault = [](std::string_view) { return Fault::kAnswerTwice; };
  Client* c = MakeClient(nurl, std::move(o));
  RtwRequest w;
  w.shares[1].write.push_back({0, "y"});
  auto r = Sync<Result<RtwResponse>>([&](auto cb) { c->ReadTestWrite(Si(5), kWe, kLease, w, std::move(cb)); });
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  // Let any stray second completion surface before counting.
  loop.RunUntil([] { return false; }, 50);
  EXPECT_EQ(c->stats().duplicate_answers, 1u);
}

TEST_F(GbsClientTest, LateAnswerArrivesOnce) {
  ClientOptions o;
  o.TEST_fault = [](std::string_view) { return Fault::kAnswerLate; };
  o.TEST_late_ms = 30;
  Client* c = MakeClient(nurl, std::move(o));
  EXPECT_TRUE(Sync<Result<Version>>([&](auto cb) { c->GetVersion(std::move(cb)); }).ok());
}

TEST_F(GbsClientTest, ConnectionRefusedIsUnavailable) {
  Nurl n = nurl;
  bool closed = false;
  server->Close([&] { closed = true; });
  ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
  server.reset();
  Client* c = MakeClient(n);
  auto st = Sync<Status>([&](auto cb) { c->AddLease(Si(1), kLease, std::move(cb)); });
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.ToString();
}

TEST_F(GbsClientTest, PoolIsBoundedAndConnectionsAreReused) {
  ClientOptions o;
  o.max_connections = 3;
  Client* c = MakeClient(nurl, std::move(o));
  int done = 0, ok = 0;
  for (int i = 0; i < 40; ++i) {
    c->GetVersion([&](Result<Version> r) {
      ++done;
      ok += r.ok();
    });
  }
  EXPECT_LE(c->open_connections(), 3u);
  ASSERT_TRUE(loop.RunUntil([&] { return done == 40; }, 20000));
  EXPECT_EQ(ok, 40);
  EXPECT_LE(c->http_stats().max_open, 3u);
  EXPECT_LE(c->http_stats().connections_made, 3u);
  EXPECT_LE(server->open_connections(), 3u);
}

TEST_F(GbsClientTest, ServerClosingIdleConnectionIsRetriedForGets) {
  // The server drops idle keep-alive connections quickly; the client's
  // pooled connection dies under it, and GETs still succeed.
  TearDown();
  server_idle_ms = 100;
  SetUp();
  for (int i = 0; i < 3; ++i) {
    auto v = Sync<Result<Version>>([&](auto cb) { client->GetVersion(std::move(cb)); });
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    // Let the server close the idle connection.
    ASSERT_TRUE(loop.RunUntil([&] { return server->open_connections() == 0; }, 20000));
  }
  // Either the client saw the close before reuse (a fresh dial) or the
  // request met the closed connection and was retried: never a failure.
  EXPECT_GE(client->http_stats().connections_made, 3u);
}

TEST_F(GbsClientTest, VersionAnswerIsReusedWhileTheCacheHoldsIt) {
  ClientOptions o;
  o.version_cache_ms = 3600 * 1000;
  Client* cached = MakeClient(nurl, std::move(o));
  for (int i = 0; i < 3; ++i) {
    int completions = 0;
    std::optional<Result<Version>> v;
    cached->GetVersion([&](Result<Version> r) {
      ++completions;
      v.emplace(std::move(r));
    });
    EXPECT_EQ(completions, 0) << "a cached answer ran inside the call";
    ASSERT_TRUE(loop.RunUntil([&] { return completions == 1; }, 20000));
    ASSERT_TRUE(v->ok()) << v->status().ToString();
    EXPECT_GT((*v)->maximum_immutable_share_size, 0u);
  }
  EXPECT_EQ(cached->stats().calls, 1u);  // one request; two answers from the cache
  EXPECT_EQ(cached->stats().versions_cached, 2u);
  // Without the option (the default), every call asks the server.
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(Sync<Result<Version>>([&](auto cb) { client->GetVersion(std::move(cb)); }).ok());
  EXPECT_EQ(client->stats().versions_cached, 0u);
  EXPECT_EQ(client->stats().calls, 2u);
}

}  // namespace
}  // namespace cairn::gbs
