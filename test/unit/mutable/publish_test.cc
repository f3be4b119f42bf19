// CreateMutable, PublishMutable and RetrieveMutable against several
// in-process GBS servers on one loop (test/support/grid_fixture.h): round
// trips at the sizes that matter, shares that parse and verify, reads with
// N-k servers down, corrupt shares detected, advised and skipped, the
// Tahoe-LAFS #877 scenario (a mapped server failing at once, answers twice,
// late and out of order: no duplicate write, no false UncoordinatedWrite,
// every share placed), and a real uncoordinated write. Every completion is
// checked to run exactly once and never inside the initiating call.
#include "cairn/mutable/mutable_file.h"

#include <gtest/gtest.h>

#include <optional>
#include <set>

#include "cairn/caps/keys.h"
#include "cairn/gbs/client.h"
#include "cairn/mutable/sdmf.h"
#include "support/grid_fixture.h"

namespace cairn::mutable_files {
namespace {

using testing::Pattern;

std::uint64_t GetBe(std::string_view b, std::size_t at, std::size_t len) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < len; ++i) v = (v << 8) | static_cast<std::uint8_t>(b[at + i]);
  return v;
}

class MutableTest : public testing::GridFixture {
 protected:
  // Runs the loop until `out` is set; checks the completion came once and
  // not inside the call that started it (`out` still empty right after it).
  template <typename T>
  Result<T> Await(std::optional<Result<T>>& out, const int& completions) {
    EXPECT_FALSE(out.has_value()) << "the completion ran inside the call";
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 120000));
    // A later turn must not bring a second completion.
    for (int i = 0; i < 5; ++i) loop.RunOnce();
    EXPECT_EQ(completions, 1);
    if (!out) return Status::Timeout("no completion");
    return std::move(*out);
  }

  NewKey Key() {
    std::optional<Result<NewKey>> out;
    int completions = 0;
    NewMutableKey(loop, [&](Result<NewKey> k) {
      ++completions;
      out.emplace(std::move(k));
    });
    auto key = Await(out, completions);
    EXPECT_TRUE(key.ok()) << key.status().ToString();
    return std::move(*key);
  }

  MutableOptions Options(std::uint32_t k, std::uint32_t n, std::uint32_t happy) {
    MutableOptions o;
    o.k = k;
    o.n = n;
    o.happy = happy;
    o.lease_secret = std::string(32, 'L');
    return o;
  }

  Result<PublishResult> Create(const NewKey& key, const std::string& data, MutableOptions o) {
    std::optional<Result<PublishResult>> out;
    int completions = 0;
    CreateMutable(loop, Grid(), key, data, std::move(o), Progress(), nullptr, [&](Result<PublishResult> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    return Await(out, completions);
  }

  Result<PublishResult> Put(const caps::Cap& cap, const std::string& data, MutableOptions o) {
    std::optional<Result<PublishResult>> out;
    int completions = 0;
    PublishMutable(loop, Grid(), cap, data, std::move(o), Progress(), nullptr, [&](Result<PublishResult> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    return Await(out, completions);
  }

  Result<RetrieveResult> Get(const caps::Cap& cap) {
    std::optional<Result<RetrieveResult>> out;
    int completions = 0;
    RetrieveMutable(loop, Grid(), cap, Progress(), nullptr, [&](Result<RetrieveResult> r) {
      ++completions;
      out.emplace(std::move(r));
    });
    return Await(out, completions);
  }

  grid::ProgressFn Progress() {
    return [this](const std::string& phase, std::uint64_t, std::uint64_t) { phases.insert(phase); };
  }

  std::size_t ServerIndex(const std::string& name) { return static_cast<std::size_t>(std::stoul(name.substr(1))); }

  // Share `shnum` as server `server` stores it.
  std::string ReadShare(std::size_t server, const caps::Cap& cap, std::uint32_t shnum) {
    std::string si = *caps::StorageIndexOf(cap);
    gbs::StorageIndex sidx{};
    std::copy(si.begin(), si.end(), sidx.begin());
    std::optional<Result<std::string>> out;
    servers[server]->client->ReadMutable(sidx, shnum, 0, 1 << 24, [&](Result<std::string> r) { out.emplace(r); });
    EXPECT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
    EXPECT_TRUE(out->ok()) << out->status().ToString();
    return out->ok() ? **out : std::string();
  }

  // Overwrites bytes of a stored share through the server, with the file's
  // write enabler for that server and no test vector.
  void Overwrite(std::size_t server, const NewKey& key, std::uint32_t shnum, std::uint64_t offset,
                 const std::string& bytes) {
    caps::MutableKeys keys = caps::DeriveMutableKeys(key.privkey_pkcs8, key.pubkey_spki);
    gbs::StorageIndex sidx{};
    std::copy(keys.storage_index.begin(), keys.storage_index.end(), sidx.begin());
    gbs::RtwRequest req;
    req.shares[shnum].write.push_back(gbs::WriteVector{offset, bytes});
    std::string seed = *gbs::ServerSeed(servers[server]->nurl);
    std::optional<Result<gbs::RtwResponse>> out;
    servers[server]->client->ReadTestWrite(sidx, caps::WriteEnablerOf(keys.write_enabler_master, seed),
                                           {std::string(32, 'r'), std::string(32, 'c')}, req,
                                           [&](Result<gbs::RtwResponse> r) { out.emplace(std::move(r)); });
    ASSERT_TRUE(loop.RunUntil([&] { return out.has_value(); }, 20000));
    ASSERT_TRUE(out->ok()) << out->status().ToString();
    ASSERT_TRUE((*out)->success);
  }

  std::uint64_t Requests(std::size_t server, const std::string& endpoint) {
    std::uint64_t n = 0;
    for (const auto& [ep, by_status] : servers[server]->gbs->stats().requests) {
      if (ep != endpoint) continue;
      for (const auto& [status, count] : by_status) n += count;
    }
    return n;
  }

  // Every share 0..n-1 placed, each one parsing and verifying as stored.
  void ExpectPlacedAndValid(const PublishResult& r, const NewKey& key, std::uint32_t n) {
    ASSERT_EQ(r.placement.size(), n);
    for (std::uint32_t sh = 0; sh < n; ++sh) {
      ASSERT_TRUE(r.placement.count(sh)) << "share " << sh << " not placed";
      for (const std::string& name : r.placement.at(sh)) {
        auto share = ParseSdmfShare(ReadShare(ServerIndex(name), key.writecap, sh));
        ASSERT_TRUE(share.ok()) << share.status().ToString();
        EXPECT_EQ(share->seqnum, r.seqnum);
        EXPECT_EQ(share->n, n);
        Status st = VerifySdmfShare(*share, sh, key.writecap.digest);
        EXPECT_TRUE(st.ok()) << "share " << sh << " on " << name << ": " << st.ToString();
      }
    }
  }

  std::set<std::string> phases;
};

TEST_F(MutableTest, CreatePutGetRoundTripsAtTheSizesThatMatter) {
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
    EXPECT_EQ(got->shares_used.size(), 3u);
    EXPECT_EQ(got->corrupt_shares, 0u);
    EXPECT_TRUE(phases.count("mapping") && phases.count("retrieving"));
  }
}

TEST_F(MutableTest, UpdateKeepsTheFilesEncodingAndSharesStayPut) {
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

TEST_F(MutableTest, ErrorsArriveOnALaterTurn) {
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

TEST_F(MutableTest, ReadsWithNMinusKServersDown) {
  StartServers(5);
  NewKey key = Key();
  std::string data = Pattern(20000, 5);
  ASSERT_TRUE(Create(key, data, Options(3, 5, 4)).ok());
  StopServer(*servers[0], false);
  StopServer(*servers[3], false);
  auto got = Get(*caps::ToReadCap(key.writecap));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == data);
  for (const auto& [sh, name] : got->shares_used) EXPECT_TRUE(name != "s0" && name != "s3");
  // Publishing on three servers cannot reach happiness 4: the failed
  // servers are named, and nothing is written.
  std::uint64_t writes = 0;
  for (std::size_t i = 0; i < servers.size(); ++i) writes += servers[i]->gbs ? Requests(i, "read_test_write") : 0;
  auto put = Put(key.writecap, Pattern(100, 6), Options(3, 5, 4));
  EXPECT_EQ(put.status().code(), Code::kNotEnoughServers) << put.status().ToString();
  EXPECT_NE(put.status().message().find("s0"), std::string_view::npos) << put.status().ToString();
  for (std::size_t i = 0; i < servers.size(); ++i) writes -= servers[i]->gbs ? Requests(i, "read_test_write") : 0;
  EXPECT_EQ(writes, 0u);
  StopServer(*servers[4], false);
  auto lost = Get(key.writecap);
  EXPECT_EQ(lost.status().code(), Code::kNotEnoughServers) << lost.status().ToString();
}

TEST_F(MutableTest, RetrieveDoesNotWaitForASlowServer) {
  StartServers(6);
  NewKey key = Key();
  std::string data = Pattern(30000, 21);
  auto created = Create(key, data, Options(2, 4, 3));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  // The holder of share 0 answers its share list 30 s late: 2k = 4 other
  // servers answered and a version is recoverable, which is enough.
  const std::size_t slow = ServerIndex(created->placement.at(0).front());
  gbs::ClientOptions co;
  co.TEST_late_ms = 30000;
  co.TEST_fault = [](std::string_view endpoint) {
    return endpoint == "list" ? gbs::Fault::kAnswerLate : gbs::Fault::kNone;
  };
  ReplaceClient(slow, std::move(co));
  const std::uint64_t start = loop.NowMs();
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_LT(loop.NowMs() - start, 10000u);
  EXPECT_TRUE(got->contents == data);
  for (const auto& [sh, name] : got->shares_used) EXPECT_NE(ServerIndex(name), slow);
}

TEST_F(MutableTest, CorruptSharesAreDetectedAdvisedAndSkipped) {
  StartServers(5);
  NewKey key = Key();
  std::string data = Pattern(30000, 8);
  auto created = Create(key, data, Options(3, 5, 4));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  // Share 0 (the first a reader tries) gets a flipped byte in its block,
  // which only the full verification sees; share 1 a flipped signature
  // byte, which the servermap already sees.
  std::size_t s0 = ServerIndex(created->placement.at(0).front());
  std::size_t s1 = ServerIndex(created->placement.at(1).front());
  std::string share0 = ReadShare(s0, key.writecap, 0);
  std::uint64_t o_data = GetBe(share0, 87, 4);
  Overwrite(s0, key, 0, o_data + 7, std::string(1, static_cast<char>(share0[o_data + 7] ^ 0x20)));
  std::string share1 = ReadShare(s1, key.writecap, 1);
  std::uint64_t o_sig = GetBe(share1, 75, 4);
  Overwrite(s1, key, 1, o_sig + 3, std::string(1, static_cast<char>(share1[o_sig + 3] ^ 0x01)));
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == data);
  EXPECT_EQ(got->corrupt_shares, 2u);
  EXPECT_FALSE(got->shares_used.count(0));
  EXPECT_FALSE(got->shares_used.count(1));
  EXPECT_GE(Requests(s0, "corrupt_mutable"), 1u);
  EXPECT_GE(Requests(s1, "corrupt_mutable"), 1u);
  // A publish rewrites the corrupt shares too (tested against what was
  // there), and the file is whole again.
  auto put = Put(key.writecap, Pattern(100, 9), Options(3, 5, 4));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  ExpectPlacedAndValid(*put, key, 5);
  auto again = Get(key.writecap);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(again->corrupt_shares, 0u);
  EXPECT_TRUE(again->contents == Pattern(100, 9));
}

// Tahoe-LAFS #877: a server in the servermap whose write fails at once
// (its connection died after the map), while the other servers answer
// twice, late, and in a shuffled order. The publish must send no write
// twice, must not take any of it for another writer, and must place every
// share (the failed server's on a spare server).
TEST_F(MutableTest, Ticket877FailedAtOnceDuplicateAndLateAnswers) {
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

// With no spare server, a failed server's share goes to a server that
// already had its write: a second request, with only that share, and no
// surprise at finding the first request's share there.
TEST_F(MutableTest, WithoutASpareServerAShareJoinsAnotherServer) {
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

TEST_F(MutableTest, ADroppedConnectionMidPublishMovesItsShares) {
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

// Two publishers map the same version, then both write: at least one
// learns of the other (UncoordinatedWrite), and the file then reads as
// exactly one of the two versions.
TEST_F(MutableTest, ConcurrentPublishersReportUncoordinatedWrite) {
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

TEST_F(MutableTest, StopCancels) {
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

}  // namespace
}  // namespace cairn::mutable_files
