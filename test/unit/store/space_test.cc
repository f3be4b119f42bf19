// Space and faults: reserved space, size limits, ENOSPC and EIO from the
// platform, a full LMDB map, map growth, read-only mode, queue bounds.
#include "unit/store/store_fixture.h"

namespace cairn::store {
namespace {

using Space = StoreTest;

TEST_F(Space, ReservedSpaceLimitsAllocations) {
  CloseStore();
  options.reserved_bytes = 500;
  Reopen();
  fault.SetAvailBytes(1500);
  auto a = Allocate(Si(1), {0, 1, 2}, 400);
  ASSERT_TRUE(a.ok());
  // 1000 usable: two uploads of 400 fit; the third does not and is in
  // neither set (Tahoe's rule).
  EXPECT_EQ(a->allocated, (std::vector<ShareNum>{0, 1}));
  EXPECT_TRUE(a->already_have.empty());
  auto info = Sync<Result<SpaceInfo>>([&](auto cb) { store->Space(std::move(cb)); });
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->incoming_bytes, 800u);
  EXPECT_EQ(info->available_bytes, 200u);
}

TEST_F(Space, ReservedSpaceLimitsMutableGrowth) {
  CloseStore();
  options.reserved_bytes = 500;
  Reopen();
  fault.SetAvailBytes(1500);
  EXPECT_TRUE(Rtw(Si(1), {WriteAt(0, 0, std::string(900, 'a'))})->success);
  fault.SetAvailBytes(600);  // the disk filled: 100 bytes above the reservation
  EXPECT_EQ(Rtw(Si(1), {WriteAt(0, 900, std::string(200, 'b'))}).status().code(), Code::kNoSpace);
  EXPECT_EQ(ReadMut(Si(1), 0, 0, 2000)->size(), 900u);  // nothing of it applied
  // Rewriting in place needs no room.
  EXPECT_TRUE(Rtw(Si(1), {WriteAt(0, 0, std::string(900, 'c'))})->success);
}

TEST_F(Space, ShareSizeLimits) {
  CloseStore();
  options.max_immutable_share_bytes = 100;
  options.max_mutable_share_bytes = 100;
  Reopen();
  EXPECT_TRUE(Allocate(Si(1), {0}, 101)->allocated.empty());
  EXPECT_EQ(Allocate(Si(1), {0}, 100)->allocated.size(), 1u);
  EXPECT_EQ(Rtw(Si(2), {WriteAt(0, 50, std::string(51, 'x'))}).status().code(), Code::kNoSpace);
  EXPECT_TRUE(Rtw(Si(2), {WriteAt(0, 50, std::string(50, 'x'))})->success);
}

TEST_F(Space, EnospcOnABodyWriteIsNoSpaceAndTheStoreGoesOn) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  fault.FailWrites(1);
  EXPECT_EQ(Write(Si(1), 0, 0, "abcd").status().code(), Code::kNoSpace);
  auto w = Write(Si(1), 0, 0, "abcd");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->required, (std::vector<Range>{{4, 8}}));
  EXPECT_TRUE(Write(Si(1), 0, 4, "efgh")->complete);
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 8), "abcdefgh");
}

TEST_F(Space, OneFailingWriteInABatchFailsAlone) {
  ASSERT_TRUE(Allocate(Si(1), {0, 1}, 4).ok());
  fault.FailWrites(1);
  std::optional<Result<WriteResult>> first, second;
  store->WriteChunk(Si(1), 0, "upload-secret", 0, "abcd", [&](Result<WriteResult> r) { first.emplace(std::move(r)); });
  store->WriteChunk(Si(1), 1, "upload-secret", 0, "efgh", [&](Result<WriteResult> r) { second.emplace(std::move(r)); });
  ASSERT_TRUE(loop.RunUntil([&] { return first && second; }, 20000));
  // Both may share one transaction; only the one that hit ENOSPC fails.
  EXPECT_EQ(first->status().code(), Code::kNoSpace);
  ASSERT_TRUE(second->ok());
  EXPECT_TRUE((*second)->complete);
}

TEST_F(Space, EioOnFsyncStopsWritesUntilReopen) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 8).ok());
  ASSERT_TRUE(Rtw(Si(2), {WriteAt(0, 0, "before")})->success);
  fault.FailSyncs(1);
  // The write that completes the share is the one synced.
  EXPECT_EQ(Write(Si(1), 0, 0, "abcdefgh").status().code(), Code::kIoError);
  // Sticky: every later write is refused and says why; reads go on.
  auto r = Rtw(Si(2), {WriteAt(0, 0, "after")});
  EXPECT_EQ(r.status().code(), Code::kIoError);
  EXPECT_NE(store->stats().sticky_error.find("fdatasync"), std::string::npos);
  EXPECT_EQ(*ReadMut(Si(2), 0, 0, 10), "before");
  Reopen();
  // The failed write was never recorded; the store takes writes again.
  auto w = Write(Si(1), 0, 0, "abcd");
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_EQ(w->required, (std::vector<Range>{{4, 8}}));
}

TEST_F(Space, SlowFsyncGroupsWrites) {
  fault.SetSyncDelayMs(30);
  std::vector<ShareNum> shnums;
  for (ShareNum n = 0; n < 40; ++n) shnums.push_back(n);
  ASSERT_EQ(Allocate(Si(1), shnums, 4)->allocated.size(), 40u);
  std::uint64_t before = store->stats().commits;
  int done = 0;
  for (ShareNum n = 0; n < 40; ++n) {
    store->WriteChunk(Si(1), n, "upload-secret", 0, "abcd", [&](Result<WriteResult> r) { done += r.ok() && r->complete; });
  }
  ASSERT_TRUE(loop.RunUntil([&] { return done == 40; }, 30000));
  EXPECT_LT(store->stats().commits - before, 40u);
  EXPECT_EQ(ListImm(Si(1))->size(), 40u);
}

TEST_F(Space, MapGrowsUpToItsLimit) {
  CloseStore();
  options.map_bytes = 1 << 20;
  options.map_max_bytes = 32 << 20;
  Reopen();
  for (int i = 0; i < 8; ++i) {
    auto r = Rtw(Si(i), {WriteAt(0, 0, std::string(512 * 1024, static_cast<char>('a' + i)))});
    ASSERT_TRUE(r.ok()) << r.status().ToString();
  }
  EXPECT_GT(store->stats().map_grows, 0u);
  Reopen();  // a grown map keeps its size
  EXPECT_EQ(*ReadMut(Si(7), 0, 0, 3), "hhh");
}

TEST_F(Space, FullMapAtItsLimitIsNoSpaceAndTheStoreStaysUsable) {
  CloseStore();
  options.map_bytes = 2 << 20;
  options.map_max_bytes = 2 << 20;
  Reopen();
  int stored = 0;
  Status last;
  for (int i = 0; i < 64 && last.ok(); ++i) {
    auto r = Rtw(Si(i), {WriteAt(0, 0, std::string(100 * 1024, 'x'))});
    last = r.status();
    stored += r.ok();
  }
  EXPECT_EQ(last.code(), Code::kNoSpace) << last.ToString();
  EXPECT_GT(stored, 0);
  // Everything acknowledged is readable; small writes still fit or fail
  // cleanly; freeing space makes room again.
  for (int i = 0; i < stored; ++i) EXPECT_EQ(ReadMut(Si(i), 0, 0, 100 * 1024)->size(), 100u * 1024);
  ShareTestWrite del;
  del.shnum = 0;
  del.new_length = 0;
  ASSERT_TRUE(Rtw(Si(0), {del}).ok());
  ASSERT_TRUE(Rtw(Si(1), {del}).ok());
  auto r = Rtw(Si(200), {WriteAt(0, 0, std::string(100 * 1024, 'y'))});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(store->stats().sticky_error.empty());
}

TEST_F(Space, ReadOnlyRefusesEveryWrite) {
  PutImmutable(Si(1), 0, "data");
  ASSERT_TRUE(Rtw(Si(2), {WriteAt(0, 0, "slot")})->success);
  CloseStore();
  options.read_only = true;
  Reopen();
  EXPECT_EQ(Allocate(Si(3), {0}, 4).status().code(), Code::kReadOnly);
  EXPECT_EQ(Write(Si(1), 0, 0, "x").status().code(), Code::kReadOnly);
  EXPECT_EQ(Rtw(Si(2), {WriteAt(0, 0, "x")}).status().code(), Code::kReadOnly);
  EXPECT_EQ(StatusCall([&](auto cb) { store->AddLease(Si(1), Lease('a'), std::move(cb)); }).code(), Code::kReadOnly);
  EXPECT_EQ(StatusCall([&](auto cb) { store->Abort(Si(1), 0, "s", std::move(cb)); }).code(), Code::kReadOnly);
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 4), "data");
  EXPECT_EQ(*ReadMut(Si(2), 0, 0, 4), "slot");
  auto info = Sync<Result<SpaceInfo>>([&](auto cb) { store->Space(std::move(cb)); });
  EXPECT_EQ(info->available_bytes, 0u);
}

TEST_F(Space, FullQueueRefusesAndSignalsRoom) {
  CloseStore();
  options.queue_ops = 4;
  Reopen();
  int ok = 0, busy = 0;
  for (int i = 0; i < 10; ++i) {
    store->ReadTestWrite(Si(1), std::string(32, 'W'), Lease('a'), {WriteAt(static_cast<ShareNum>(i), 0, "x")}, {},
                         [&](Result<RtwResult> r) {
                           ok += r.ok();
                           busy += r.status().code() == Code::kResourceExhausted;
                         });
  }
  EXPECT_TRUE(store->queue_full());
  bool room = false;
  store->WhenRoom([&] { room = true; });
  EXPECT_FALSE(room);
  ASSERT_TRUE(loop.RunUntil([&] { return ok + busy == 10 && room; }, 20000));
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(busy, 6);
  EXPECT_FALSE(store->queue_full());
}

TEST_F(Space, CloseRefusesNewWorkAndFinishesQueuedWrites) {
  bool written = false;
  store->ReadTestWrite(Si(1), std::string(32, 'W'), Lease('a'), {WriteAt(0, 0, "x")}, {},
                       [&](Result<RtwResult> r) { written = r.ok(); });
  bool closed = false;
  store->Close([&] { closed = true; });
  std::optional<Status> late;
  store->AddLease(Si(1), Lease('a'), [&](Status st) { late = st; });
  ASSERT_TRUE(loop.RunUntil([&] { return closed && late; }, 20000));
  EXPECT_TRUE(written);
  EXPECT_EQ(late->code(), Code::kShuttingDown);
  store.reset();
}

}  // namespace
}  // namespace cairn::store
