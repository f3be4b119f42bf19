// The store's "full" state (StoreStats::full_reason): what sets it (an
// allocation that does not fit, a slot's growth that does not fit, ENOSPC
// from a body write), what clears it (an allocation that allocates, a write
// as large as the refused one, a Space() reading that covers it) and what
// does not (a smaller write, a slot over the largest mutable share size).
// Loop thread (the fixture's real Loop).
#include "unit/store/store_fixture.h"

namespace cairn::store {
namespace {

using FullState = StoreTest;

TEST_F(FullState, AnAllocationThatDoesNotFitSetsItAndOneThatAllocatesClearsIt) {
  fault.SetAvailBytes(1000);
  EXPECT_TRUE(store->stats().full_reason.empty());
  auto a = Allocate(Si(1), {0}, 5000);
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->allocated.empty());
  EXPECT_TRUE(a->out_of_space);
  StoreStats s = store->stats();
  EXPECT_NE(s.full_reason.find("do not fit"), std::string::npos) << s.full_reason;
  EXPECT_EQ(s.full_since_ms, 1700000000ull * 1000);
  EXPECT_EQ(s.full_needed_bytes, 5000u);
  EXPECT_EQ(s.no_space_refusals, 1u);
  // Still full later: `since` stays at the first refusal.
  fault.AdvanceWallSeconds(60);
  ASSERT_TRUE(Allocate(Si(2), {0}, 5000).ok());
  EXPECT_EQ(store->stats().full_since_ms, 1700000000ull * 1000);
  EXPECT_EQ(store->stats().no_space_refusals, 2u);
  // A small write that fits says nothing about the refused size.
  EXPECT_TRUE(Rtw(Si(3), {WriteAt(0, 0, "small")})->success);
  EXPECT_FALSE(store->stats().full_reason.empty());
  auto b = Allocate(Si(4), {0}, 500);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->allocated, (std::vector<ShareNum>{0}));
  EXPECT_TRUE(store->stats().full_reason.empty());
  EXPECT_EQ(store->stats().full_since_ms, 0u);
}

TEST_F(FullState, FreeSpaceThatCoversTheRefusedWriteClearsIt) {
  fault.SetAvailBytes(1000);
  ASSERT_TRUE(Allocate(Si(1), {0}, 8192).ok());
  ASSERT_FALSE(store->stats().full_reason.empty());
  fault.SetAvailBytes(8000);  // not enough yet
  ASSERT_TRUE(Sync<Result<SpaceInfo>>([&](auto cb) { store->Space(std::move(cb)); }).ok());
  EXPECT_FALSE(store->stats().full_reason.empty());
  fault.SetAvailBytes(9000);
  ASSERT_TRUE(Sync<Result<SpaceInfo>>([&](auto cb) { store->Space(std::move(cb)); }).ok());
  EXPECT_TRUE(store->stats().full_reason.empty());
}

TEST_F(FullState, EnospcFromABodyWriteSetsIt) {
  ASSERT_TRUE(Allocate(Si(1), {0}, 10000).ok());
  fault.FailWrites(1);
  EXPECT_EQ(Write(Si(1), 0, 0, std::string(6000, 'x')).status().code(), Code::kNoSpace);
  StoreStats s = store->stats();
  EXPECT_FALSE(s.full_reason.empty());
  EXPECT_EQ(s.full_needed_bytes, 6000u);
  EXPECT_TRUE(s.sticky_error.empty());
  // The same write once there is room again clears it.
  auto w = Write(Si(1), 0, 0, std::string(6000, 'x'));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  EXPECT_TRUE(store->stats().full_reason.empty());
}

TEST_F(FullState, MutableGrowthThatDoesNotFitSetsItButTheSizeLimitDoesNot) {
  CloseStore();
  options.max_mutable_share_bytes = 100000;
  Reopen();
  EXPECT_EQ(Rtw(Si(1), {WriteAt(0, 0, std::string(100001, 'a'))}).status().code(), Code::kNoSpace);
  EXPECT_TRUE(store->stats().full_reason.empty());
  EXPECT_EQ(store->stats().no_space_refusals, 0u);
  fault.SetAvailBytes(100);
  EXPECT_EQ(Rtw(Si(1), {WriteAt(0, 0, std::string(5000, 'a'))}).status().code(), Code::kNoSpace);
  EXPECT_NE(store->stats().full_reason.find("do not fit"), std::string::npos) << store->stats().full_reason;
}

}  // namespace
}  // namespace cairn::store
