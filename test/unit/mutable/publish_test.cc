// CreateMutable and PublishMutable against several in-process GBS servers
// on one loop (mutable_fixture.h): round trips at the sizes that matter,
// shares that parse and verify, errors on a later turn, the Tahoe-LAFS #877
// scenario (a mapped server failing at once, answers twice, late and out of
// order: no duplicate write, no false UncoordinatedWrite, every share
// placed), shares moved off failed servers, a real uncoordinated write, and
// cancellation. Every completion is checked to run exactly once and never
// inside the initiating call.
#include "cairn/mutable/mutable_file.h"

#include <gtest/gtest.h>

#include <functional>
#include <optional>
#include <random>
#include <set>

#include "unit/mutable/mutable_fixture.h"

namespace cairn::mutable_files {
namespace {

TEST_P(MutableFormatTest, CreatePutGetRoundTripsAtTheSizesThatMatter) {
  StartServers(5);
  NewKey key = Key();
  EXPECT_EQ(key.writecap.kind, caps::CapKind::kMutableWrite);
  auto created = Create(key, "first", Options(3, 5, 4));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->seqnum, 1u);
  EXPECT_EQ(caps::FormatCap(created->writecap), caps::FormatCap(key.writecap));
  EXPECT_GE(created->happiness, 4u);
  ExpectPlacedAndValid(*created, key, 5);
  EXPECT_TRUE(phases.count("publishing"));

  caps::Cap readcap = *caps::ToReadCap(key.writecap);
  std::uint64_t seqnum = 1;
  // Empty, one byte, k-multiple boundaries (k = 3), a 1 MiB file, then
  // smaller again (the old share's bytes past the new end must not matter).
  for (std::size_t size : {0, 1, 2, 3, 4, 8, 9, 10, 3999, 1 << 20, 1, 5000}) {
    SCOPED_TRACE("size " + std::to_string(size));
    std::string data = Pattern(size, static_cast<unsigned>(size) + 11);
    phases.clear();
    auto put = Put(key.writecap, data, Options(3, 5, 4));
    ASSERT_TRUE(put.ok()) << put.status().ToString();
    EXPECT_EQ(put->seqnum, ++seqnum);
    EXPECT_EQ(put->size, size);
    EXPECT_EQ(put->servers_failed, 0u);
    EXPECT_EQ(put->writes_sent, 5u);  // one request per server, all shares in it
    EXPECT_TRUE(phases.count("mapping") && phases.count("publishing"));
    ExpectPlacedAndValid(*put, key, 5);
    phases.clear();
    auto got = Get(size % 2 ? readcap : key.writecap);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->seqnum, seqnum);
    EXPECT_TRUE(got->contents == data);
    // An empty MDMF file has no segments: its signed header is all there is.
    EXPECT_EQ(got->shares_used.size(), format == caps::MutableFormat::kMdmf && size == 0 ? 0u : 3u);
    EXPECT_EQ(got->corrupt_shares, 0u);
    EXPECT_TRUE(phases.count("mapping") && phases.count("retrieving"));
  }
}

TEST_P(MutableFormatTest, UpdateKeepsTheFilesEncodingAndSharesStayPut) {
  StartServers(6);
  NewKey key = Key();
  auto created = Create(key, Pattern(3000, 1), Options(2, 4, 3));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  // Other k/N in the options: the file keeps 2-of-4, each share where it was.
  auto put = Put(key.writecap, Pattern(7000, 2), Options(3, 10, 3));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->placement, created->placement);
  ExpectPlacedAndValid(*put, key, 4);
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == Pattern(7000, 2));
  EXPECT_EQ(got->shares_used.size(), 2u);
}

TEST_P(MutableFormatTest, ErrorsArriveOnALaterTurn) {
  StartServers(3);
  NewKey key = Key();
  auto bad = Create(key, "x", Options(3, 2, 1));  // k > N
  EXPECT_EQ(bad.status().code(), Code::kInvalidArgument) << bad.status().ToString();
  auto unknown = Get(key.writecap);
  EXPECT_EQ(unknown.status().code(), Code::kNotFound) << unknown.status().ToString();
  auto nothing = Put(key.writecap, "x", Options(1, 3, 1));
  EXPECT_EQ(nothing.status().code(), Code::kNotFound) << nothing.status().ToString();
  auto readonly = Put(*caps::ToReadCap(key.writecap), "x", Options(1, 3, 1));
  EXPECT_EQ(readonly.status().code(), Code::kBadCap) << readonly.status().ToString();
  caps::Cap chk;
  chk.kind = caps::CapKind::kChk;
  auto wrong = Get(chk);
  EXPECT_EQ(wrong.status().code(), Code::kBadCap) << wrong.status().ToString();
  ASSERT_TRUE(Create(key, "x", Options(1, 3, 1)).ok());
  // Creating it again finds its shares: another writer's, as far as it knows.
  auto again = Create(key, "y", Options(1, 3, 1));
  EXPECT_EQ(again.status().code(), Code::kUncoordinatedWrite) << again.status().ToString();
  // No servers at all.
  std::optional<Result<PublishResult>> out;
  int completions = 0;
  CreateMutable(loop, {}, key, "x", Options(1, 1, 1), nullptr, nullptr, [&](Result<PublishResult> r) {
    ++completions;
    out.emplace(std::move(r));
  });
  auto none = Await(out, completions);
  EXPECT_EQ(none.status().code(), Code::kNotEnoughServers) << none.status().ToString();
}

// Tahoe-LAFS #877: a server in the servermap whose write fails at once
// (its connection died after the map), while the other servers answer
// twice, late, and in a shuffled order. The publish must send no write
// twice, must not take any of it for another writer, and must place every
// share (the failed server's on a spare server).
TEST_P(MutableFormatTest, Ticket877FailedAtOnceDuplicateAndLateAnswers) {
  StartServers(7);
  NewKey key = Key();
  auto created = Create(key, Pattern(5000, 1), Options(3, 5, 4));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::size_t dead = ServerIndex(created->placement.at(0).front());
  std::vector<std::shared_ptr<int>> rtw(servers.size());
  for (std::size_t i = 0; i < servers.size(); ++i) {
    rtw[i] = std::make_shared<int>(0);
    gbs::ClientOptions co;
    co.TEST_late_ms = 10 + 37 * ((i * 3) % 7);  // answers arrive out of order
    gbs::Fault fault = i == dead ? gbs::Fault::kFailAtOnce : i % 2 ? gbs::Fault::kAnswerTwice : gbs::Fault::kAnswerLate;
    co.TEST_fault = [count = rtw[i], fault](std::string_view endpoint) {
      if (endpoint != "read-test-write") return gbs::Fault::kNone;
      ++*count;
      return fault;
    };
    ReplaceClient(i, std::move(co));
  }
  std::vector<std::uint64_t> before(servers.size());
  for (std::size_t i = 0; i < servers.size(); ++i) before[i] = Requests(i, "read_test_write");

  std::string data = Pattern(70000, 2);
  auto put = Put(key.writecap, data, Options(3, 5, 4));
  ASSERT_TRUE(put.ok()) << put.status().ToString();  // above all: no UncoordinatedWrite
  EXPECT_EQ(put->seqnum, 2u);
  EXPECT_EQ(put->servers_failed, 1u);
  EXPECT_GE(put->shares_replaced, 1u);
  for (std::size_t i = 0; i < servers.size(); ++i) {
    SCOPED_TRACE("server s" + std::to_string(i));
    EXPECT_LE(*rtw[i], 1) << "a server was sent more than one write";
    EXPECT_LE(Requests(i, "read_test_write") - before[i], 1u);
  }
  EXPECT_EQ(*rtw[dead], 1);
  for (const auto& [sh, names] : put->placement) {
    for (const std::string& name : names) EXPECT_NE(ServerIndex(name), dead);
  }
  ExpectPlacedAndValid(*put, key, 5);
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->seqnum, 2u);
  EXPECT_TRUE(got->contents == data);
}

// The #877 scenario again, many times over: every round, one server that
// holds a share of the file fails at once when its write is sent, and each
// other server answers normally, twice, or late (random delays, so answers
// arrive in shuffled order). Each round must publish the next seqnum with
// every share placed and no UncoordinatedWrite; the servers must receive
// exactly the writes the publisher says it sent (never one twice), and a
// retrieve must return the round's contents.
TEST_P(MutableFormatTest, Ticket877RandomizedRounds) {
  constexpr int kRounds = 40;
  StartServers(7);
  NewKey key = Key();
  auto created = Create(key, Pattern(3000, 7), Options(3, 5, 4));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::uint64_t seqnum = created->seqnum;
  std::vector<std::string> holders_of_0 = created->placement.at(0);
  std::mt19937 rng(877);
  std::size_t failed_at_once = 0, writes = 0;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    // The server that fails: one that holds a share now (in the servermap).
    const std::size_t dead = ServerIndex(holders_of_0[rng() % holders_of_0.size()]);
    std::vector<std::shared_ptr<int>> calls(servers.size());
    std::vector<std::uint64_t> before(servers.size());
    for (std::size_t i = 0; i < servers.size(); ++i) {
      calls[i] = std::make_shared<int>(0);
      gbs::ClientOptions co;
      co.TEST_late_ms = 1 + rng() % 60;
      const unsigned pick = rng() % 3;
      gbs::Fault fault = i == dead     ? gbs::Fault::kFailAtOnce
                         : pick == 0   ? gbs::Fault::kNone
                         : pick == 1   ? gbs::Fault::kAnswerTwice
                                       : gbs::Fault::kAnswerLate;
      co.TEST_fault = [count = calls[i], fault](std::string_view endpoint) {
        if (endpoint != "read-test-write") return gbs::Fault::kNone;
        ++*count;
        return fault;
      };
      ReplaceClient(i, std::move(co));
      before[i] = Requests(i, "read_test_write");
    }
    std::string data = Pattern(1000 + rng() % 20000, 100 + round);
    auto put = Put(key.writecap, data, Options(3, 5, 4));
    ASSERT_TRUE(put.ok()) << put.status().ToString();  // never a false UncoordinatedWrite
    ASSERT_EQ(put->seqnum, ++seqnum);
    ASSERT_EQ(put->servers_failed, 1u);
    ASSERT_EQ(put->placement.size(), 5u) << "every share placed";
    std::size_t hook_calls = 0, received = 0;
    for (std::size_t i = 0; i < servers.size(); ++i) {
      hook_calls += *calls[i];
      received += Requests(i, "read_test_write") - before[i];
    }
    EXPECT_EQ(hook_calls, put->writes_sent) << "the client sent what the publisher counts";
    EXPECT_EQ(received + static_cast<std::size_t>(*calls[dead]), put->writes_sent)
        << "the servers received each write once (the dead server's never arrived)";
    EXPECT_EQ(*calls[dead], 1) << "the failed server was written once, then given up";
    failed_at_once += static_cast<std::size_t>(*calls[dead]);
    writes += hook_calls;
    auto got = Get(key.writecap);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    ASSERT_EQ(got->seqnum, seqnum);
    ASSERT_TRUE(got->contents == data);
    holders_of_0 = put->placement.at(0);
  }
  EXPECT_EQ(failed_at_once, static_cast<std::size_t>(kRounds));
  RecordProperty("fault_injected_publishes", kRounds);
  RecordProperty("writes_sent", static_cast<int>(writes));
}

// With no spare server, a failed server's share goes to a server that
// already had its write: a second request, with only that share, and no
// surprise at finding the first request's share there.
TEST_P(MutableFormatTest, WithoutASpareServerAShareJoinsAnotherServer) {
  StartServers(5);
  NewKey key = Key();
  auto created = Create(key, Pattern(3000, 1), Options(3, 5, 4));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::size_t dead = ServerIndex(created->placement.at(2).front());
  gbs::ClientOptions co;
  co.TEST_fault = [](std::string_view endpoint) {
    return endpoint == "read-test-write" ? gbs::Fault::kFailAtOnce : gbs::Fault::kNone;
  };
  ReplaceClient(dead, std::move(co));
  std::string data = Pattern(12345, 2);
  auto put = Put(key.writecap, data, Options(3, 5, 4));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->writes_sent, 6u);  // five first requests, one for the moved share
  EXPECT_EQ(put->shares_replaced, 1u);
  EXPECT_EQ(put->happiness, 4u);
  ExpectPlacedAndValid(*put, key, 5);
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == data);
}

TEST_P(MutableFormatTest, ADroppedConnectionMidPublishMovesItsShares) {
  StartServers(6);
  NewKey key = Key();
  ASSERT_TRUE(Create(key, Pattern(100, 1), Options(3, 5, 4)).ok());
  auto rtw = std::make_shared<int>(0);
  gbs::ClientOptions co;
  co.TEST_fault = [rtw](std::string_view endpoint) {
    if (endpoint != "read-test-write") return gbs::Fault::kNone;
    return ++*rtw == 1 ? gbs::Fault::kDropConnection : gbs::Fault::kNone;
  };
  // The first server in line for share 0 of the next publish holds it now.
  auto first = Put(key.writecap, Pattern(200, 2), Options(3, 5, 4));
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  std::size_t victim = ServerIndex(first->placement.at(0).front());
  ReplaceClient(victim, std::move(co));
  std::string data = Pattern(40000, 3);
  auto put = Put(key.writecap, data, Options(3, 5, 4));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(*rtw, 1);
  EXPECT_EQ(put->servers_failed, 1u);
  ASSERT_EQ(put->placement.size(), 5u);
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == data);
}

// Servers known by their announcement (a tub id that is not their SPKI
// hash's seed): a file made with those identities is updated with them.
// Updated with the NURL-derived seeds instead (the servers added by NURL
// alone), the write enablers are wrong: the two servers answer 401, and the
// publish fails as what it is, naming the servers and the shares left stale
// there, never succeeding around them.
TEST_P(MutableFormatTest, AWrongWriteEnablerIsAnAuthorizationFailureNotASuccess) {
  StartServers(5);
  tub_ids[1] = std::string(20, '\x11');
  tub_ids[3] = std::string(20, '\x33');
  NewKey key = Key();
  auto created = Create(key, Pattern(3000, 1), Options(2, 4, 3));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto updated = Put(key.writecap, Pattern(5000, 2), Options(2, 4, 3));
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  std::map<std::string, std::vector<std::uint32_t>> held;
  for (const auto& [sh, names] : updated->placement) {
    for (const std::string& n : names) held[n].push_back(sh);
  }
  ASSERT_TRUE(held.count("s1") || held.count("s3")) << "no share on an announced server: the test proves nothing";

  tub_ids.clear();
  std::string data = Pattern(7000, 3);
  auto put = Put(key.writecap, data, Options(2, 4, 3));
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.status().code(), Code::kUnauthenticated) << put.status().ToString();
  const std::string msg(put.status().message());
  EXPECT_NE(msg.find("401"), std::string::npos) << msg;
  EXPECT_NE(msg.find("stale shares"), std::string::npos) << msg;
  for (const char* name : {"s1", "s3"}) {
    for (std::uint32_t sh : held[name]) {
      EXPECT_NE(msg.find("share " + std::to_string(sh) + " on " + name + " (seqnum 2)"), std::string::npos) << msg;
    }
  }
  // The servers that know the file's identity took the new version: it reads back.
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == data);
}

// Two publishers map the same version, then both write: at least one
// learns of the other (UncoordinatedWrite), and the file then reads as
// exactly one of the two versions.
TEST_P(MutableFormatTest, ConcurrentPublishersReportUncoordinatedWrite) {
  StartServers(4);
  NewKey key = Key();
  ASSERT_TRUE(Create(key, Pattern(1000, 1), Options(2, 4, 2)).ok());
  std::vector<std::function<void()>> held;
  MutableOptions o = Options(2, 4, 2);
  o.TEST_before_write = [&held](std::function<void()> resume) { held.push_back(std::move(resume)); };
  const std::string a = Pattern(9000, 2), b = Pattern(8000, 3);
  std::optional<Result<PublishResult>> ra, rb;
  PublishMutable(loop, Grid(), key.writecap, a, o, nullptr, nullptr,
                 [&](Result<PublishResult> r) { ra.emplace(std::move(r)); });
  PublishMutable(loop, Grid(), key.writecap, b, o, nullptr, nullptr,
                 [&](Result<PublishResult> r) { rb.emplace(std::move(r)); });
  ASSERT_TRUE(loop.RunUntil([&] { return held.size() == 2; }, 60000));
  for (auto& resume : held) resume();
  ASSERT_TRUE(loop.RunUntil([&] { return ra.has_value() && rb.has_value(); }, 60000));
  int uncoordinated = 0;
  for (auto* r : {&ra, &rb}) {
    if ((*r)->ok()) continue;
    EXPECT_EQ((*r)->status().code(), Code::kUncoordinatedWrite) << (*r)->status().ToString();
    ++uncoordinated;
  }
  EXPECT_GE(uncoordinated, 1);
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->seqnum, 2u);
  EXPECT_TRUE(got->contents == a || got->contents == b) << "a mixture of two versions";
  // The next publish repairs the race: one version everywhere.
  auto put = Put(key.writecap, "settled", Options(2, 4, 2));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  EXPECT_EQ(put->seqnum, 3u);
  ExpectPlacedAndValid(*put, key, 4);
}

// A read-modify-write's guard: a publish given the version its change was
// made to writes nothing once another version is the newest, and goes
// ahead while the version it read is still the newest.
TEST_P(MutableFormatTest, AnExpectedVersionThatIsNoLongerNewestWritesNothing) {
  StartServers(4);
  NewKey key = Key();
  ASSERT_TRUE(Create(key, Pattern(1000, 1), Options(2, 4, 3)).ok());
  auto read = Get(key.writecap);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  ASSERT_FALSE(read->version.empty());
  EXPECT_EQ(SeqnumOfCheckstring(read->version), read->seqnum);
  // Another writer publishes after the read.
  ASSERT_TRUE(Put(key.writecap, Pattern(2000, 2), Options(2, 4, 3)).ok());
  MutableOptions guarded = Options(2, 4, 3);
  guarded.expected_version = read->version;
  auto writes = [this] {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < 4; ++i) sum += Requests(i, "read_test_write");
    return sum;
  };
  const std::uint64_t writes_before = writes();
  auto stale = Put(key.writecap, Pattern(3000, 3), guarded);
  EXPECT_EQ(stale.status().code(), Code::kUncoordinatedWrite) << stale.status().ToString();
  EXPECT_EQ(writes(), writes_before) << "a guarded publish wrote after finding a newer version";
  auto now = Get(key.writecap);
  ASSERT_TRUE(now.ok()) << now.status().ToString();
  EXPECT_TRUE(now->contents == Pattern(2000, 2));
  // Built on the newest version, the same guard lets the change through.
  guarded.expected_version = now->version;
  auto fresh = Put(key.writecap, Pattern(3000, 3), guarded);
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  EXPECT_EQ(fresh->seqnum, now->seqnum + 1);
}

TEST_P(MutableFormatTest, StopCancels) {
  StartServers(3);
  NewKey key = Key();
  ASSERT_TRUE(Create(key, "x", Options(2, 3, 2)).ok());
  std::optional<Result<PublishResult>> out;
  int completions = 0;
  PublishMutable(loop, Grid(), key.writecap, "y", Options(2, 3, 2), nullptr, [] { return true; },
                 [&](Result<PublishResult> r) {
                   ++completions;
                   out.emplace(std::move(r));
                 });
  auto put = Await(out, completions);
  EXPECT_EQ(put.status().code(), Code::kCancelled) << put.status().ToString();
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->contents, "x");
}

// A share larger than one write vector (4 MiB) goes as several in its one
// read-test-write, and is stored whole.
TEST_P(MutableFormatTest, ALargeShareGoesAsSeveralWriteVectors) {
  StartServers(2);
  NewKey key = Key();
  const std::string data = Pattern((9u << 20) + 123, 61);
  auto created = Create(key, data, Options(1, 2, 2));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(created->writes_sent, 2u);
  ExpectPlacedAndValid(*created, key, 2);
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == data);
}

// One instantiation for the suite's tests in every file (publish, retrieve).
INSTANTIATE_TEST_SUITE_P(Formats, MutableFormatTest,
                         ::testing::Values(caps::MutableFormat::kSdmf, caps::MutableFormat::kMdmf), FormatName);

}  // namespace
}  // namespace cairn::mutable_files
