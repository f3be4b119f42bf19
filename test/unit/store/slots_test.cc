// Mutable slots: Tahoe's read-test-write rules (tahoe-protocol.md §2.2),
// chunk boundaries, all-or-nothing, arrival order.
#include "unit/store/store_fixture.h"

namespace cairn::store {
namespace {

using Slots = StoreTest;

ShareTestWrite TestAt(ShareNum n, std::uint64_t off, std::uint64_t size, std::string specimen) {
  ShareTestWrite tw;
  tw.shnum = n;
  tw.tests.push_back({off, size, std::move(specimen)});
  return tw;
}

TEST_F(Slots, FirstWriteCreatesTheSlotAndStoresTheWriteEnabler) {
  auto r = Rtw(Si(1), {WriteAt(0, 0, "hello"), WriteAt(3, 0, "three")});
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->success);
  EXPECT_TRUE(r->data.empty());  // shares created by this request are not read
  EXPECT_EQ(*ListMut(Si(1)), (std::vector<ShareNum>{0, 3}));
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100), "hello");
  EXPECT_EQ(*ReadMut(Si(1), 0, 1, 3), "ell");
  EXPECT_EQ(ReadMut(Si(1), 1, 0, 10).status().code(), Code::kNotFound);
  EXPECT_EQ(ListMut(Si(2))->size(), 0u);
}

TEST_F(Slots, WrongWriteEnablerChangesNothing) {
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 0, "hello")})->success);
  auto r = Rtw(Si(1), {WriteAt(0, 0, "HELLO"), WriteAt(1, 0, "new")}, {}, std::string(32, 'X'));
  EXPECT_EQ(r.status().code(), Code::kUnauthenticated);
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100), "hello");
  EXPECT_EQ(*ListMut(Si(1)), (std::vector<ShareNum>{0}));
}

TEST_F(Slots, FailingTestWritesNothingAndReturnsReadVectors) {
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 0, "version-1"), WriteAt(1, 0, "other")})->success);
  ShareTestWrite ok = TestAt(0, 0, 9, "version-1");
  ok.writes.push_back({0, std::string("version-2")});
  ShareTestWrite bad = TestAt(1, 0, 5, "nope!");
  bad.writes.push_back({0, std::string("XXXXX")});
  auto r = Rtw(Si(1), {ok, bad}, {{0, 7}, {8, 10}});
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->success);
  // Read vectors cover every existing share, truncated at the end.
  ASSERT_EQ(r->data.size(), 2u);
  EXPECT_EQ(r->data[0], (std::vector<std::string>{"version", "1"}));
  EXPECT_EQ(r->data[1], (std::vector<std::string>{"other", ""}));
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100), "version-1");
  EXPECT_EQ(*ReadMut(Si(1), 1, 0, 100), "other");
}

TEST_F(Slots, TestsSeeTheDataBeforeTheWrites) {
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 0, "abc")})->success);
  ShareTestWrite tw = TestAt(0, 0, 3, "abc");
  tw.writes.push_back({0, std::string("xyz")});
  auto r = Rtw(Si(1), {tw}, {{0, 3}});
  EXPECT_TRUE(r->success);
  EXPECT_EQ(r->data[0], (std::vector<std::string>{"abc"}));  // read before the write
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 3), "xyz");
}

TEST_F(Slots, MissingShareReadsAsEmpty) {
  // (0, 1, "") means "must not exist yet": passes for a new share...
  ShareTestWrite tw = TestAt(0, 0, 1, "");
  tw.writes.push_back({0, std::string("first")});
  EXPECT_TRUE(Rtw(Si(1), {tw})->success);
  // ...and fails once it exists.
  EXPECT_FALSE(Rtw(Si(1), {tw})->success);
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 10), "first");
  // A specimen longer than the data fails (length included).
  EXPECT_FALSE(Rtw(Si(1), {TestAt(0, 0, 10, std::string("first\0\0\0\0\0", 10))})->success);
  EXPECT_TRUE(Rtw(Si(1), {TestAt(0, 0, 10, "first")})->success);
}

TEST_F(Slots, WritesBeyondTheEndZeroFillAndLaterWritesWin) {
  ShareTestWrite tw;
  tw.shnum = 0;
  tw.writes = {{0, "aaaa"}, {2, "bb"}, {10, "c"}, {20, ""}};
  ASSERT_TRUE(Rtw(Si(1), {tw})->success);
  // A zero-length write past the end extends with zeros too (Tahoe's rule).
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100), std::string("aabb\0\0\0\0\0\0c", 11) + std::string(9, '\0'));
}

TEST_F(Slots, NewLengthTruncatesButNeverExtends) {
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 0, "0123456789")})->success);
  ShareTestWrite cut;
  cut.shnum = 0;
  cut.new_length = 4;
  ASSERT_TRUE(Rtw(Si(1), {cut})->success);
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100), "0123");
  cut.new_length = 100;  // longer than the data: ignored (Tahoe never extends)
  ASSERT_TRUE(Rtw(Si(1), {cut})->success);
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100), "0123");
  // Extending by a write after a truncation shows zeros, not the old bytes.
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 8, "89")})->success);
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100), std::string("0123\0\0\0\089", 10));
}

TEST_F(Slots, WriteAndTruncateInOneRequest) {
  // The truncated chunk was written in the same transaction, so its page is
  // dirty and LMDB rewrites it in place: the kept bytes must be copied out
  // first (AddressSanitizer reports the overlap otherwise).
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 0, "hello world")})->success);
  ShareTestWrite tw = WriteAt(0, 6, "there");
  tw.new_length = 8;
  ASSERT_TRUE(Rtw(Si(1), {tw})->success);
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100), "hello th");
}

TEST_F(Slots, NewLengthZeroDeletesTheShare) {
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 0, "a"), WriteAt(1, 0, "b")})->success);
  ShareTestWrite del;
  del.shnum = 0;
  del.new_length = 0;
  del.writes.push_back({0, "ignored"});
  ASSERT_TRUE(Rtw(Si(1), {del})->success);
  EXPECT_EQ(*ListMut(Si(1)), (std::vector<ShareNum>{1}));
  EXPECT_EQ(ReadMut(Si(1), 0, 0, 10).status().code(), Code::kNotFound);
  EXPECT_EQ(store->stats().shares, 1u);
  // Deleting a share that does not exist creates nothing.
  del.shnum = 7;
  ASSERT_TRUE(Rtw(Si(1), {del})->success);
  EXPECT_EQ(*ListMut(Si(1)), (std::vector<ShareNum>{1}));
}

TEST_F(Slots, LargeSharesAcrossChunkBoundaries) {
  std::string big(100000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i % 251);
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 0, big)})->success);
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, big.size()), big);
  // Overwrite a span across two chunk boundaries, then truncate mid-chunk.
  std::string patch(40000, 'P');
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 16000, patch)})->success);
  big.replace(16000, patch.size(), patch);
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, big.size()), big);
  EXPECT_EQ(*ReadMut(Si(1), 0, 16370, 30), big.substr(16370, 30));
  ShareTestWrite cut;
  cut.shnum = 0;
  cut.new_length = 20000;
  ASSERT_TRUE(Rtw(Si(1), {cut})->success);
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 50000, "end")})->success);
  std::string want = big.substr(0, 20000) + std::string(30000, '\0') + "end";
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100000), want);
}

TEST_F(Slots, AllOrNothingAcrossShares) {
  // The second share is over the size limit: neither share is written.
  CloseStore();
  options.max_mutable_share_bytes = 1000;
  Reopen();
  auto r = Rtw(Si(1), {WriteAt(0, 0, "small"), WriteAt(1, 0, std::string(2000, 'x'))});
  EXPECT_EQ(r.status().code(), Code::kNoSpace);
  EXPECT_EQ(ListMut(Si(1))->size(), 0u);
}

TEST_F(Slots, DuplicateShareNumbersAreRefused) {
  auto r = Rtw(Si(1), {WriteAt(0, 0, "a"), WriteAt(0, 1, "b")});
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
}

TEST_F(Slots, WritesApplyInArrivalOrderAndSeeEveryEarlierWrite) {
  // 200 test-and-writes issued at once, each expecting the previous value:
  // serialized in arrival order, every one succeeds.
  int ok = 0, done = 0;
  for (int i = 0; i < 200; ++i) {
    ShareTestWrite tw;
    tw.shnum = 0;
    if (i > 0) tw.tests.push_back({0, 8, std::to_string(10000000 + i - 1)});
    tw.writes.push_back({0, std::to_string(10000000 + i)});
    store->ReadTestWrite(Si(1), std::string(32, 'W'), Lease('a'), {tw}, {}, [&](Result<RtwResult> r) {
      ++done;
      ok += r.ok() && r->success;
    });
  }
  EXPECT_EQ(done, 0);
  ASSERT_TRUE(loop.RunUntil([&] { return done == 200; }, 30000));
  EXPECT_EQ(ok, 200);
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 8), "10000199");
  // Group commit: far fewer commits than writes.
  EXPECT_LT(store->stats().commits, 200u);
}

TEST_F(Slots, ForcedOneTransactionPerWrite) {
  CloseStore();
  options.batch_ops = 1;
  Reopen();
  int done = 0;
  for (int i = 0; i < 20; ++i) {
    store->ReadTestWrite(Si(1), std::string(32, 'W'), Lease('a'), {WriteAt(0, 0, std::to_string(i))}, {},
                         [&](Result<RtwResult> r) { done += r.ok(); });
  }
  ASSERT_TRUE(loop.RunUntil([&] { return done == 20; }, 30000));
  EXPECT_EQ(store->stats().commits, 20u);
  EXPECT_EQ(store->stats().largest_batch, 1u);
}

TEST_F(Slots, SlotsSurviveAReopen) {
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(2, 0, "persist")})->success);
  Reopen();
  EXPECT_EQ(*ReadMut(Si(1), 2, 0, 100), "persist");
  EXPECT_EQ(Rtw(Si(1), {WriteAt(2, 0, "x")}, {}, std::string(32, 'Y')).status().code(), Code::kUnauthenticated);
}

}  // namespace
}  // namespace cairn::store
