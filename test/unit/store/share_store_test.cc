// The facade's promise for every call: its completion runs exactly once, on a
// later turn, also when the call fails at once (a closed store, a bad
// argument, a read-only store). Counted: zero calls right after the call,
// one after the next turn, still one once the loop is idle.
#include <gtest/gtest.h>

#include "unit/store/store_fixture.h"

namespace cairn::store {
namespace {

class ShareStoreTest : public StoreTest {
 protected:
  // Counts completions into `calls`, and the statuses they carried.
  Callback<void(Status)> CountStatus() {
    return [this](Status st) {
      ++calls;
      codes.push_back(st.code());
    };
  }
  template <typename T>
  Callback<void(Result<T>)> Count() {
    return [this](Result<T> r) {
      ++calls;
      codes.push_back(r.status().code());
    };
  }
  void RunUntilIdle() {
    ASSERT_TRUE(loop.RunUntil([&] { return loop.pending() == 0 && store->stats().queued_ops == 0; }, 20000));
  }

  int calls = 0;
  std::vector<Code> codes;
};

TEST_F(ShareStoreTest, EveryCallOnAClosingStoreFailsOnALaterTurn) {
  bool closed = false;
  store->Close([&] { closed = true; });
  const std::string s = "upload-secret";
  store->Allocate(Si(1), {0}, 4, s, Lease('a'), Count<AllocateResult>());
  store->WriteChunk(Si(1), 0, s, 0, "abcd", Count<WriteResult>());
  store->CloseBucket(Si(1), 0, s, CountStatus());
  store->Abort(Si(1), 0, s, CountStatus());
  store->ListImmutable(Si(1), Count<std::vector<ShareNum>>());
  store->ReadImmutable(Si(1), 0, 0, 4, Count<std::string>());
  store->ImmutableSize(Si(1), 0, Count<std::uint64_t>());
  store->ReadTestWrite(Si(1), std::string(32, 'W'), Lease('a'), {WriteAt(0, 0, "x")}, {}, Count<RtwResult>());
  store->ListMutable(Si(1), Count<std::vector<ShareNum>>());
  store->ReadMutable(Si(1), 0, 0, 4, Count<std::string>());
  store->AdviseCorrupt(false, Si(1), 0, "bad", CountStatus());
  store->AddLease(Si(1), Lease('a'), CountStatus());
  store->CancelLease(Si(1), std::string(32, 'b'), CountStatus());
  constexpr int kCalls = 13;
  EXPECT_EQ(calls, 0) << "a completion ran inside its call";
  EXPECT_FALSE(closed);
  loop.RunOnce();
  EXPECT_EQ(calls, kCalls);
  for (Code c : codes) EXPECT_EQ(c, Code::kShuttingDown);
  ASSERT_TRUE(loop.RunUntil([&] { return closed; }, 20000));
  EXPECT_EQ(calls, kCalls);  // exactly once
  store.reset();
}

TEST_F(ShareStoreTest, ABadArgumentFailsOnALaterTurn) {
  store->ReadTestWrite(Si(1), std::string(32, 'W'), Lease('a'), {WriteAt(0, 0, "x"), WriteAt(0, 4, "y")}, {},
                       Count<RtwResult>());
  EXPECT_EQ(calls, 0);
  loop.RunOnce();
  ASSERT_EQ(calls, 1);
  EXPECT_EQ(codes[0], Code::kInvalidArgument);
  RunUntilIdle();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(ListMut(Si(1))->size(), 0u);  // nothing was written
}

TEST_F(ShareStoreTest, AReadOnlyStoreRefusesOnALaterTurn) {
  CloseStore();
  options.read_only = true;
  Reopen();
  store->Allocate(Si(1), {0}, 4, "s", Lease('a'), Count<AllocateResult>());
  store->AddLease(Si(1), Lease('a'), CountStatus());
  EXPECT_EQ(calls, 0);
  loop.RunOnce();
  EXPECT_EQ(calls, 2);
  for (Code c : codes) EXPECT_EQ(c, Code::kReadOnly);
  RunUntilIdle();
  EXPECT_EQ(calls, 2);
}

TEST_F(ShareStoreTest, AFullQueueRefusesOnALaterTurn) {
  CloseStore();
  options.queue_ops = 1;
  Reopen();
  store->AddLease(Si(1), Lease('a'), CountStatus());  // queued (NotFound once committed)
  store->AddLease(Si(2), Lease('a'), CountStatus());  // refused at once
  EXPECT_EQ(calls, 0);
  loop.RunOnce();
  ASSERT_EQ(calls, 1);
  EXPECT_EQ(codes[0], Code::kResourceExhausted);
  ASSERT_TRUE(loop.RunUntil([&] { return calls == 2; }, 20000));
  EXPECT_EQ(codes[1], Code::kNotFound);
}

TEST_F(ShareStoreTest, ReadsAndNotificationsCompleteOnALaterTurn) {
  bool room = false, swept = false;
  store->ReadMutable(Si(1), 0, 0, 4, Count<std::string>());  // NotFound, found at once
  store->ReadImmutable(Si(1), 0, 0, 4, Count<std::string>());
  store->Space([&](Result<SpaceInfo> r) {
    ++calls;
    codes.push_back(r.status().code());
  });
  store->WhenRoom([&] { room = true; });
  store->TEST_Sweep([&] { swept = true; });
  EXPECT_EQ(calls, 0);
  EXPECT_FALSE(room);
  EXPECT_FALSE(swept);
  ASSERT_TRUE(loop.RunUntil([&] { return calls == 3 && room && swept; }, 20000));
  EXPECT_EQ(codes[0], Code::kNotFound);
  EXPECT_EQ(codes[1], Code::kNotFound);
  EXPECT_EQ(codes[2], Code::kOk);
}

}  // namespace
}  // namespace cairn::store
