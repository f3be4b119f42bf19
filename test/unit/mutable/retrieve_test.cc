// RetrieveMutable against several in-process GBS servers on one loop
// (mutable_fixture.h): reads with N-k servers down, no wait for a slow
// server, corrupt shares detected, advised and skipped, a fallback to the
// next recoverable version (corrupt or unreadable newest), and a version
// published between a retrieve's map and its fetch (read whole after a
// second map, or UncoordinatedWrite when it keeps changing). Every
// completion is checked to run exactly once and never inside the
// initiating call.
#include "cairn/mutable/mutable_file.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <optional>
#include <set>

#include "cairn/mutable/mdmf.h"
#include "unit/mutable/mutable_fixture.h"

namespace cairn::mutable_files {
namespace {

TEST_P(MutableFormatTest, ReadsWithNMinusKServersDown) {
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

TEST_P(MutableFormatTest, RetrieveDoesNotWaitForASlowServer) {
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

TEST_P(MutableFormatTest, CorruptSharesAreDetectedAdvisedAndSkipped) {
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
  ASSERT_NO_FATAL_FAILURE(CorruptBlock(s0, key, 0));
  std::string share1 = ReadShare(s1, key.writecap, 1);
  auto header1 = FormatFor(format).ParseHeader(share1);
  ASSERT_TRUE(header1.ok()) << header1.status().ToString();
  std::uint64_t o_sig = header1->signature.offset;
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

// Seqnum 2 sits on three servers only (the other three refused its
// writes and keep seqnum 1), and all but one of its shares are corrupt in
// their blocks, which only the full verification sees: seqnum 2 is
// unrecoverable, so the retrieve reads seqnum 1, advising the corrupt ones.
TEST_P(MutableFormatTest, RetrieveFallsBackToTheNextRecoverableVersion) {
  TwoVersionFile f;
  ASSERT_NO_FATAL_FAILURE(MakeTwoVersions(41, &f));
  const NewKey& key = f.key;
  const std::set<std::size_t>& keep_v1 = f.keep_v1;
  std::size_t corrupted = 0;
  std::set<std::size_t> v2_servers;
  for (const auto& [sh, names] : f.put->placement) {
    for (const std::string& name : names) {
      ASSERT_FALSE(keep_v1.count(ServerIndex(name)));
      v2_servers.insert(ServerIndex(name));
      if (sh == 0 && name == names.front()) continue;  // the one good share of seqnum 2
      CorruptBlock(ServerIndex(name), key, sh);
      ++corrupted;
    }
  }
  ASSERT_GE(corrupted, 5u);
  auto got = Get(*caps::ToReadCap(key.writecap));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->seqnum, 1u);
  EXPECT_TRUE(got->contents == f.v1);
  EXPECT_EQ(got->versions_tried, 2u);
  EXPECT_EQ(got->shares_used.size(), 2u);
  for (const auto& [sh, name] : got->shares_used) EXPECT_TRUE(keep_v1.count(ServerIndex(name))) << name;
  // Every corrupt share the retrieve read was advised to its server.
  EXPECT_GE(got->corrupt_shares, 1u);
  std::uint64_t advised = 0;
  for (std::size_t i : v2_servers) advised += Requests(i, "corrupt_mutable");
  EXPECT_EQ(advised, got->corrupt_shares);
}

// Seqnum 2 as in the test above, but every read of its servers fails once
// the servermap is made: seqnum 2 cannot be read, seqnum 1 is.
TEST_P(MutableFormatTest, RetrieveFallsBackWhenTheNewestVersionCannotBeRead) {
  TwoVersionFile f;
  ASSERT_NO_FATAL_FAILURE(MakeTwoVersions(43, &f));
  const NewKey& key = f.key;
  const std::set<std::size_t>& keep_v1 = f.keep_v1;
  auto reads_fail = std::make_shared<bool>(false);
  for (std::size_t i = 0; i < servers.size(); ++i) {
    if (keep_v1.count(i)) continue;
    gbs::ClientOptions co;
    co.TEST_fault = [reads_fail](std::string_view endpoint) {
      return endpoint == "read" && *reads_fail ? gbs::Fault::kFailAtOnce : gbs::Fault::kNone;
    };
    ReplaceClient(i, std::move(co));
  }
  RetrieveOptions o;
  o.TEST_before_fetch = [reads_fail](std::function<void()> resume) {
    *reads_fail = true;
    resume();
  };
  auto got = GetWith(key.writecap, std::move(o));
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(got->seqnum, 1u);
  EXPECT_TRUE(got->contents == f.v1);
  EXPECT_EQ(got->corrupt_shares, 0u);  // unreadable is not corrupt
  for (const auto& [sh, name] : got->shares_used) EXPECT_TRUE(keep_v1.count(ServerIndex(name))) << name;
}

// Another writer publishes between the retrieve's servermap and its fetch:
// the shares read no longer match the mapped version. The retrieve never
// mixes them; it maps once more and reads the new version whole.
TEST_P(MutableFormatTest, AVersionPublishedDuringARetrieveIsReadWholeAfterASecondMap) {
  StartServers(5);
  NewKey key = Key();
  const std::string v1 = Pattern(30000, 51), v2 = Pattern(29000, 52);
  ASSERT_TRUE(Create(key, v1, Options(3, 5, 4)).ok());
  int calls = 0;
  std::optional<Result<PublishResult>> put;
  RetrieveOptions o;
  o.TEST_before_fetch = [&](std::function<void()> resume) {
    if (++calls > 1) return resume();
    PublishMutable(loop, Grid(), key.writecap, v2, Options(3, 5, 4), nullptr, nullptr,
                   [&put, resume](Result<PublishResult> r) {
                     put.emplace(std::move(r));
                     resume();
                   });
  };
  auto got = GetWith(key.writecap, std::move(o));
  ASSERT_TRUE(put && put->ok()) << (put ? put->status().ToString() : "no publish");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(got->servermap_updates, 2u);
  EXPECT_EQ(got->seqnum, 2u);
  EXPECT_TRUE(got->contents == v2) << "not the new version whole";
  EXPECT_EQ(got->corrupt_shares, 0u);  // a rewritten share is not corrupt
}

// A writer that publishes again before each fetch: after the second map
// the retrieve gives up with UncoordinatedWrite rather than loop or mix.
TEST_P(MutableFormatTest, AFileThatKeepsChangingUnderARetrieveIsUncoordinatedWrite) {
  StartServers(4);
  NewKey key = Key();
  ASSERT_TRUE(Create(key, Pattern(20000, 61), Options(2, 4, 3)).ok());
  int calls = 0;
  RetrieveOptions o;
  o.TEST_before_fetch = [&](std::function<void()> resume) {
    ++calls;
    PublishMutable(loop, Grid(), key.writecap, Pattern(20000, 61 + static_cast<unsigned>(calls)), Options(2, 4, 3),
                   nullptr, nullptr, [resume](Result<PublishResult> r) {
                     EXPECT_TRUE(r.ok()) << r.status().ToString();
                     resume();
                   });
  };
  auto got = GetWith(key.writecap, std::move(o));
  EXPECT_EQ(got.status().code(), Code::kUncoordinatedWrite) << got.status().ToString();
  EXPECT_EQ(calls, 2);
  // Left alone, the file reads as the last version published.
  auto after = Get(key.writecap);
  ASSERT_TRUE(after.ok()) << after.status().ToString();
  EXPECT_EQ(after->seqnum, 3u);
  EXPECT_TRUE(after->contents == Pattern(20000, 63));
}

// Ranged reads at every segment boundary (and inside, across, past the
// end), for both formats: each equals that part of the file. For MDMF only
// the segments that cover the range are fetched: a 1-byte read of a
// 20-segment file reads about one block per share, not the file.
TEST_P(MutableFormatTest, RangedReadsAtEverySegmentBoundary) {
  StartServers(4);
  NewKey key = Key();
  const std::uint64_t seg = MdmfSegmentSize(2);
  const std::string data = Pattern(static_cast<std::size_t>(4 * seg + 1000), 21);
  auto created = Create(key, data, Options(2, 4, 4));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges = {{0, 1}, {0, seg}, {0, data.size()},
                                                                 {data.size() - 1, 1}, {data.size(), 10},
                                                                 {data.size() + 5, 10}, {7, 0}, {100, UINT64_MAX}};
  for (std::uint64_t b = seg; b < data.size(); b += seg) {
    for (auto r : std::vector<std::pair<std::uint64_t, std::uint64_t>>{{b - 1, 1}, {b, 1}, {b - 1, 2}, {b, seg},
                                                                      {b - seg, seg}, {b - 10, seg + 20}}) {
      ranges.push_back(r);
    }
  }
  for (auto [offset, size] : ranges) {
    SCOPED_TRACE("offset " + std::to_string(offset) + " size " + std::to_string(size));
    auto got = GetRange(key.writecap, offset, size);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    const std::string want = offset >= data.size() ? std::string() : data.substr(offset, size);
    EXPECT_TRUE(got->contents == want) << got->contents.size() << " bytes, want " << want.size();
    EXPECT_EQ(got->file_size, data.size());
    EXPECT_EQ(got->offset, std::min<std::uint64_t>(offset, data.size()));
  }
  if (format != caps::MutableFormat::kMdmf) return;
  const std::string big = Pattern(static_cast<std::size_t>(20 * seg), 22);
  auto put = Put(key.writecap, big, Options(2, 4, 4));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  auto one = GetRange(key.writecap, 11 * seg + 5, 1);
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(one->contents, big.substr(static_cast<std::size_t>(11 * seg + 5), 1));
  // Per share (k = 2): the prefix, the tree nodes (nodes up to 4 KiB apart
  // are joined into one read: here the whole 63-node tree, 2016 bytes), one
  // salt and block: not the other 19 blocks.
  EXPECT_LT(one->bytes_fetched, 2 * (seg / 2 + 16 + 59 + 4096));
  EXPECT_GE(one->bytes_fetched, 2 * (seg / 2 + 16));
  auto all = Get(key.writecap);
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_TRUE(all->contents == big);
}

// MDMF: a corrupt block in the middle of the file is found when its
// segment is read (not at the servermap), reported with an advisory, and
// read around; a range that does not touch it never sees it.
TEST_F(MutableTest, MdmfCorruptBlockIsFoundReportedAndReadAround) {
  format = caps::MutableFormat::kMdmf;
  StartServers(4);
  NewKey key = Key();
  const std::uint64_t seg = MdmfSegmentSize(2);
  const std::string data = Pattern(static_cast<std::size_t>(6 * seg + 17), 23);
  auto created = Create(key, data, Options(2, 4, 4));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  const std::size_t s0 = ServerIndex(created->placement.at(0).front());
  std::string share = ReadShare(s0, key.writecap, 0);
  auto h = ParseMdmfHeader(share);
  ASSERT_TRUE(h.ok());
  const MdmfGeometry g = MdmfGeometryOf(data.size(), 2);
  const std::uint64_t at = g.SegmentOffset(3) + kSaltSize + 100;  // inside segment 3's block
  Overwrite(s0, key, 0, at, std::string(1, static_cast<char>(share[at] ^ 0x40)));
  auto before = GetRange(key.writecap, 0, 3 * seg);
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_TRUE(before->contents == data.substr(0, 3 * seg));
  EXPECT_EQ(before->corrupt_shares, 0u);
  EXPECT_TRUE(before->shares_used.count(0));
  const std::uint64_t advised = Requests(s0, "corrupt_mutable");
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == data);
  EXPECT_EQ(got->corrupt_shares, 1u);
  EXPECT_FALSE(got->shares_used.count(0));
  EXPECT_EQ(Requests(s0, "corrupt_mutable"), advised + 1);
}

}  // namespace
}  // namespace cairn::mutable_files
