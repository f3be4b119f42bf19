// UpdateMutable (in-place MDMF updates) against in-process GBS servers
// (mutable_fixture.h): writes at the start, the middle, across a segment
// boundary, at the end, and past it (growing the file, also widening its
// block hash tree), each followed by a full read that must equal the
// expected bytes and by a full verification of every share as stored; a
// one-byte update of a 64-segment file rewrites only that segment's block
// and the hash nodes, chain, signature, offsets and prefix (every other
// stored byte is unchanged); two concurrent updates: at least one is
// UncoordinatedWrite and the file reads as one whole version.
#include <gtest/gtest.h>

#include <functional>
#include <optional>

#include "cairn/mutable/mdmf.h"
#include "cairn/mutable/mutable_file.h"
#include "unit/mutable/mutable_fixture.h"

namespace cairn::mutable_files {
namespace {

class MdmfUpdateTest : public MutableTest {
 protected:
  void SetUp() override {
    MutableTest::SetUp();
    format = caps::MutableFormat::kMdmf;
  }

  // Applies `data` at `offset` to the file and to `model`, then checks the
  // result, a full read, and every stored share.
  void Apply(const NewKey& key, std::string& model, std::uint64_t offset, const std::string& data,
             std::uint64_t* seqnum) {
    SCOPED_TRACE("update at " + std::to_string(offset) + " of " + std::to_string(data.size()) + " bytes");
    auto r = Update(key.writecap, offset, data, Options(2, 4, 4));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    if (model.size() < offset + data.size()) model.resize(offset + data.size());
    model.replace(offset, data.size(), data);
    EXPECT_EQ(r->seqnum, ++*seqnum);
    EXPECT_EQ(r->size, model.size());
    EXPECT_EQ(r->shares_replaced, 0u);
    ExpectPlacedAndValid(*r, key, 4);
    auto got = Get(key.writecap);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->seqnum, *seqnum);
    EXPECT_TRUE(got->contents == model) << "the full read differs from the expected bytes";
  }
};

TEST_F(MdmfUpdateTest, AtTheStartMiddleAcrossABoundaryTheEndAndGrowing) {
  StartServers(4);
  NewKey key = Key();
  const std::uint64_t seg = MdmfSegmentSize(2);
  std::string model = Pattern(static_cast<std::size_t>(5 * seg + 333), 31);
  auto created = Create(key, model, Options(2, 4, 4));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::uint64_t seqnum = 1;
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, 0, Pattern(10, 1), &seqnum));                   // the start
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, 2 * seg + 1000, Pattern(100, 2), &seqnum));     // the middle
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, 3 * seg - 5, Pattern(10, 3), &seqnum));         // across a boundary
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, seg, Pattern(seg, 4), &seqnum));                // one whole segment
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, 0, Pattern(2 * seg + 7, 5), &seqnum));          // many segments
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, model.size() - 3, Pattern(3, 6), &seqnum));     // the end
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, model.size() - 2, Pattern(50, 7), &seqnum));    // growing the tail
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, model.size(), Pattern(seg + 9, 8), &seqnum));   // appending a segment
  // Growing from 7 to 10 segments widens the block hash tree (8 to 16 leaves).
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, 6 * seg + 11, Pattern(3 * seg + 5, 9), &seqnum));
  // The file's whole-publish still works after in-place updates.
  auto put = Put(key.writecap, "replaced", Options(2, 4, 4));
  ASSERT_TRUE(put.ok()) << put.status().ToString();
  model = "replaced";
  ++seqnum;
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, 8, Pattern(5, 10), &seqnum));  // appending to a one-segment file
}

TEST_F(MdmfUpdateTest, GrowsAnEmptyFileAndASegmentAlignedOne) {
  StartServers(4);
  NewKey key = Key();
  std::string model;
  ASSERT_TRUE(Create(key, model, Options(2, 4, 4)).ok());
  std::uint64_t seqnum = 1;
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, 0, Pattern(static_cast<std::size_t>(MdmfSegmentSize(2)), 1), &seqnum));
  ASSERT_NO_FATAL_FAILURE(Apply(key, model, model.size(), Pattern(1, 2), &seqnum));
}

// A one-byte update of a 64-segment file: one read-test-write per server,
// and of every share as stored only segment 40's salt and block, the
// block hash tree nodes on its path, the chain, the signature, the offsets
// and the signed prefix changed; every other byte is as it was.
TEST_F(MdmfUpdateTest, OneByteOfA64SegmentFileWritesOnlyItsSegmentAndTheChangedHashes) {
  StartServers(3);
  NewKey key = Key();
  const std::uint64_t seg = MdmfSegmentSize(2);
  std::string model = Pattern(static_cast<std::size_t>(64 * seg), 41);
  auto created = Create(key, model, Options(2, 3, 3));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  std::vector<std::string> before(3);
  std::vector<std::size_t> holder(3);
  for (std::uint32_t sh = 0; sh < 3; ++sh) {
    holder[sh] = ServerIndex(created->placement.at(sh).front());
    before[sh] = ReadShare(holder[sh], key.writecap, sh);
  }
  std::vector<std::uint64_t> rtw(3);
  for (std::size_t i = 0; i < 3; ++i) rtw[i] = Requests(i, "read_test_write");
  const std::uint64_t at = 40 * seg + 1234;
  auto r = Update(key.writecap, at, "!", Options(2, 3, 3));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  model[at] = '!';
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(Requests(i, "read_test_write") - rtw[i], 1u);
  const MdmfGeometry g = MdmfGeometryOf(model.size(), 2);
  // Per share: one salt and block, 7 tree nodes (64 leaves), a chain of 2,
  // the signature, the offsets, the prefix.
  const std::uint64_t per_share = 16 + g.block_size + 7 * 32 + 2 * 34 + 256 + 64 + 59;
  EXPECT_EQ(r->bytes_written, 3 * per_share);
  for (std::uint32_t sh = 0; sh < 3; ++sh) {
    SCOPED_TRACE("share " + std::to_string(sh));
    const std::string after = ReadShare(holder[sh], key.writecap, sh);
    ASSERT_EQ(after.size(), before[sh].size());
    auto h = ParseMdmfHeader(after);
    ASSERT_TRUE(h.ok());
    const std::uint64_t seg_from = g.SegmentOffset(40), seg_to = seg_from + 16 + g.block_size;
    std::set<std::size_t> path;  // the block hash tree nodes from leaf 40 up
    for (std::size_t x = 63 + 40;; x = (x - 1) / 2) {
      path.insert(x);
      if (x == 0) break;
    }
    std::size_t changed_outside = 0;
    for (std::size_t b = 0; b < after.size(); ++b) {
      if (after[b] == before[sh][b]) continue;
      const bool header = b < kMdmfPrivateKeyOffset;
      const bool chain = b >= h->share_hash_chain.offset && b < h->share_hash_chain.end();
      const bool sig = b >= h->signature.offset && b < h->signature.end();
      const bool block = b >= seg_from && b < seg_to;
      const bool node = b >= h->block_hash_tree.offset && path.count((b - h->block_hash_tree.offset) / 32);
      if (!(header || chain || sig || block || node)) ++changed_outside;
    }
    EXPECT_EQ(changed_outside, 0u) << "bytes outside the touched segment and hashes changed";
  }
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_TRUE(got->contents == model);
  auto part = GetRange(key.writecap, at - 1, 3);
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(part->contents, model.substr(at - 1, 3));
}

// Two updates map the same version, then both write: at least one learns
// of the other, and the file reads as exactly one of the two results.
TEST_F(MdmfUpdateTest, ConcurrentUpdatesReportUncoordinatedWriteAndNeverMix) {
  StartServers(4);
  NewKey key = Key();
  const std::uint64_t seg = MdmfSegmentSize(2);
  const std::string base = Pattern(static_cast<std::size_t>(3 * seg), 51);
  ASSERT_TRUE(Create(key, base, Options(2, 4, 4)).ok());
  std::vector<std::function<void()>> held;
  MutableOptions o = Options(2, 4, 4);
  o.TEST_before_write = [&held](std::function<void()> resume) { held.push_back(std::move(resume)); };
  const std::string a = Pattern(100, 52), b = Pattern(200, 53);
  std::string model_a = base, model_b = base;
  model_a.replace(seg - 50, a.size(), a);
  model_b.replace(2 * seg + 10, b.size(), b);
  std::optional<Result<PublishResult>> ra, rb;
  UpdateMutable(loop, Grid(), key.writecap, seg - 50, a, o, nullptr, nullptr,
                [&](Result<PublishResult> r) { ra.emplace(std::move(r)); });
  UpdateMutable(loop, Grid(), key.writecap, 2 * seg + 10, b, o, nullptr, nullptr,
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
  EXPECT_TRUE(got->contents == model_a || got->contents == model_b) << "a mixture of two versions";
}

TEST_F(MdmfUpdateTest, Errors) {
  StartServers(3);
  NewKey key = Key();
  ASSERT_TRUE(Create(key, "0123456789", Options(2, 3, 3)).ok());
  auto past = Update(key.writecap, 11, "x", Options(2, 3, 3));
  EXPECT_EQ(past.status().code(), Code::kInvalidArgument) << past.status().ToString();
  auto empty = Update(key.writecap, 3, "", Options(2, 3, 3));
  EXPECT_EQ(empty.status().code(), Code::kInvalidArgument) << empty.status().ToString();
  auto readonly = Update(*caps::ToReadCap(key.writecap), 0, "x", Options(2, 3, 3));
  EXPECT_EQ(readonly.status().code(), Code::kBadCap) << readonly.status().ToString();
  format = caps::MutableFormat::kSdmf;
  NewKey sdmf = Key();
  ASSERT_TRUE(Create(sdmf, "abc", Options(2, 3, 3)).ok());
  auto wrong = Update(sdmf.writecap, 0, "x", Options(2, 3, 3));
  EXPECT_EQ(wrong.status().code(), Code::kInvalidArgument) << wrong.status().ToString();
  auto got = Get(key.writecap);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->contents, "0123456789");
  EXPECT_EQ(got->seqnum, 1u);
}

}  // namespace
}  // namespace cairn::mutable_files
