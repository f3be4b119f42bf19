// Leases: add/renew, cancel, the expiry sweep (age mode and off), abandoned
// uploads.
#include "unit/store/store_fixture.h"

namespace cairn::store {
namespace {

constexpr std::uint64_t kDay = 24 * 3600;

class Leases : public StoreTest {
 protected:
  void UseAgeExpiry() {
    CloseStore();
    options.expiry = LeaseExpiry::kAge;
    Reopen();
  }
  Status AddLease(const StorageIndex& si, char c) {
    return StatusCall([&](auto cb) { store->AddLease(si, Lease(c), std::move(cb)); });
  }
  Status CancelLease(const StorageIndex& si, char c) {
    return StatusCall([&](auto cb) { store->CancelLease(si, std::string(32, c), std::move(cb)); });
  }
};

TEST_F(Leases, AddLeaseNeedsShares) {
  EXPECT_EQ(AddLease(Si(1), 'x').code(), Code::kNotFound);
  ASSERT_TRUE(Allocate(Si(1), {0}, 4).ok());
  EXPECT_EQ(AddLease(Si(1), 'x').code(), Code::kNotFound);  // an upload in progress is not a share yet
  ASSERT_TRUE(Write(Si(1), 0, 0, "abcd")->complete);
  EXPECT_TRUE(AddLease(Si(1), 'x').ok());
  ASSERT_TRUE(Rtw(Si(2), {WriteAt(0, 0, "m")})->success);
  EXPECT_TRUE(AddLease(Si(2), 'x').ok());
}

TEST_F(Leases, AgeExpiryDeletesSharesWhoseLeasesAllExpired) {
  UseAgeExpiry();
  PutImmutable(Si(1), 0, "immutable");
  ASSERT_TRUE(Rtw(Si(2), {WriteAt(0, 0, "mutable")})->success);
  fault.AdvanceWallSeconds(30 * kDay);
  Sweep();
  EXPECT_EQ(store->stats().shares, 2u);  // 31 days not over yet
  fault.AdvanceWallSeconds(2 * kDay);
  Sweep();
  EXPECT_EQ(ListImm(Si(1))->size(), 0u);
  EXPECT_EQ(ListMut(Si(2))->size(), 0u);
  EXPECT_EQ(ReadImm(Si(1), 0, 0, 9).status().code(), Code::kNotFound);
  EXPECT_EQ(store->stats().shares, 0u);
  EXPECT_EQ(store->stats().expired_shares, 2u);
  // The slot is gone entirely: any write enabler may create it again.
  EXPECT_TRUE(Rtw(Si(2), {WriteAt(0, 0, "again")}, {}, std::string(32, 'Z'))->success);
}

TEST_F(Leases, RenewalKeepsASharePastItsFirstExpiry) {
  UseAgeExpiry();
  PutImmutable(Si(1), 0, "kept");
  fault.AdvanceWallSeconds(20 * kDay);
  ASSERT_TRUE(AddLease(Si(1), 'a').ok());  // same renew secret: renewed to now + 31 d
  fault.AdvanceWallSeconds(20 * kDay);
  Sweep();
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 4), "kept");
  fault.AdvanceWallSeconds(12 * kDay);
  Sweep();
  EXPECT_EQ(ReadImm(Si(1), 0, 0, 4).status().code(), Code::kNotFound);
}

TEST_F(Leases, AnyUnexpiredLeaseKeepsTheShare) {
  UseAgeExpiry();
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 0, "two owners")}, {}, std::string(32, 'W'), 'a')->success);
  fault.AdvanceWallSeconds(10 * kDay);
  ASSERT_TRUE(AddLease(Si(1), 'q').ok());  // a second owner's lease
  fault.AdvanceWallSeconds(25 * kDay);      // the first lease has expired
  Sweep();
  EXPECT_EQ(*ReadMut(Si(1), 0, 0, 100), "two owners");
}

TEST_F(Leases, ExpiryOffKeepsEverything) {
  PutImmutable(Si(1), 0, "kept");
  fault.AdvanceWallSeconds(400 * kDay);
  Sweep();
  EXPECT_EQ(*ReadImm(Si(1), 0, 0, 4), "kept");
}

TEST_F(Leases, CancelRemovesTheLeaseWithThatSecret) {
  UseAgeExpiry();
  ASSERT_TRUE(Rtw(Si(1), {WriteAt(0, 0, "data")}, {}, std::string(32, 'W'), 'a')->success);
  EXPECT_EQ(CancelLease(Si(1), 'z').code(), Code::kNotFound);
  EXPECT_EQ(CancelLease(Si(1), 'a').code(), Code::kNotFound);  // that is the renew secret, not the cancel one
  EXPECT_TRUE(CancelLease(Si(1), 'b').ok());                    // Lease('a') cancels with 'b'
  Sweep();  // no lease left: expired at once
  EXPECT_EQ(ListMut(Si(1))->size(), 0u);
}

TEST_F(Leases, AbandonedUploadsAreAbortedEvenWithExpiryOff) {
  ASSERT_TRUE(Allocate(Si(1), {0, 1}, 4).ok());
  ASSERT_TRUE(Write(Si(1), 0, 0, "ab").ok());
  fault.AdvanceWallSeconds(20 * 60);
  ASSERT_TRUE(Write(Si(1), 1, 0, "ab").ok());  // activity keeps share 1's upload
  fault.AdvanceWallSeconds(15 * 60);
  Sweep();
  EXPECT_EQ(Write(Si(1), 0, 2, "cd").status().code(), Code::kNotFound);
  EXPECT_TRUE(Write(Si(1), 1, 2, "cd")->complete);
  auto a = Allocate(Si(1), {0}, 4, "fresh");
  EXPECT_EQ(a->allocated, (std::vector<ShareNum>{0}));
}

TEST_F(Leases, SweepVisitsManyExpiredSharesInSlices) {
  UseAgeExpiry();
  int done = 0;
  for (int i = 0; i < 300; ++i) {
    store->ReadTestWrite(Si(i % 256), std::string(32, 'W'), Lease('a'), {WriteAt(i / 256, 0, "x")}, {},
                         [&](Result<RtwResult> r) { done += r.ok(); });
  }
  ASSERT_TRUE(loop.RunUntil([&] { return done == 300; }, 30000));
  EXPECT_EQ(store->stats().shares, 300u);
  fault.AdvanceWallSeconds(32 * kDay);
  std::uint64_t commits_before = store->stats().commits;
  Sweep();
  EXPECT_EQ(store->stats().shares, 0u);
  EXPECT_EQ(store->stats().expired_shares, 300u);
  // 128 entries a slice at most: at least three slices, each its own commit.
  EXPECT_GE(store->stats().commits - commits_before, 3u);
}

}  // namespace
}  // namespace cairn::store
