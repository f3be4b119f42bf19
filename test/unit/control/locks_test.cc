// LockTable on the real loop: FIFO grants, shared/exclusive, no overtaking,
// grants never inside Submit/Release (R10), bounds.
#include "control/locks.h"

#include <gtest/gtest.h>

#include <vector>

#include "cairn/core/loop.h"

namespace cairn::control {
namespace {

LockKey X(const char* name) { return LockKey{name, LockMode::kExclusive}; }
LockKey S(const char* name) { return LockKey{name, LockMode::kShared}; }

class LocksTest : public ::testing::Test {
 protected:
  // Submits `id` and records when it is granted.
  void Submit(TaskId id, std::vector<LockKey> keys) {
    Status st = locks.Submit(id, std::move(keys), [this, id] {
      grants.push_back(id);
      grant_turns.push_back(loop.turn());
    });
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
  void Settle() { loop.RunUntil([this] { return loop.pending() == 0; }, 2000); }

  Loop loop;
  LockTable locks{loop, 64, 16};
  std::vector<TaskId> grants;
  std::vector<std::uint64_t> grant_turns;
};

TEST_F(LocksTest, GrantIsNeverDeliveredInsideSubmit) {
  Submit(1, {X("alias/a")});
  EXPECT_TRUE(grants.empty());
  Settle();
  EXPECT_EQ(grants, std::vector<TaskId>{1});
}

TEST_F(LocksTest, ExclusiveHoldersRunOneAtATimeInSubmitOrder) {
  for (TaskId id = 1; id <= 5; ++id) Submit(id, {X("alias/a")});
  Settle();
  EXPECT_EQ(grants, std::vector<TaskId>{1});
  for (TaskId id = 1; id <= 4; ++id) {
    locks.Release(id);
    EXPECT_EQ(grants.size(), id) << "a grant ran inside Release()";
    Settle();
    ASSERT_EQ(grants.size(), id + 1);
    EXPECT_EQ(grants.back(), id + 1);
  }
}

TEST_F(LocksTest, SharedHoldersShareAndExclusiveWaitsForThem) {
  Submit(1, {S("slot/s")});
  Submit(2, {S("slot/s")});
  Submit(3, {X("slot/s")});
  Submit(4, {S("slot/s")});  // must not overtake the exclusive writer
  Settle();
  EXPECT_EQ(grants, (std::vector<TaskId>{1, 2}));
  locks.Release(1);
  Settle();
  EXPECT_EQ(grants.size(), 2u);
  locks.Release(2);
  Settle();
  EXPECT_EQ(grants.back(), 3u);
  EXPECT_FALSE(locks.IsGranted(4));
  auto waits = locks.WaitingOn(4);
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_EQ(waits[0].key, "slot/s");
  EXPECT_EQ(waits[0].held_by, 3u);
  locks.Release(3);
  Settle();
  EXPECT_EQ(grants.back(), 4u);
  locks.Release(4);
}

TEST_F(LocksTest, LaterTaskDoesNotOvertakeOnAFreeKey) {
  // 2 needs a and b; 3 needs only b, which is free now, but 2 came first.
  Submit(1, {X("a")});
  Submit(2, {X("a"), X("b")});
  Submit(3, {X("b")});
  Settle();
  EXPECT_EQ(grants, std::vector<TaskId>{1});
  locks.Release(1);
  Settle();
  EXPECT_EQ(grants, (std::vector<TaskId>{1, 2}));
  locks.Release(2);
  Settle();
  EXPECT_EQ(grants, (std::vector<TaskId>{1, 2, 3}));
  locks.Release(3);
  EXPECT_EQ(locks.size(), 0u);
}

TEST_F(LocksTest, ImmediateFailureReleasesOnceAndQueuedTasksRunOnLaterTurnsInFifo) {
  // R10: the holder fails in its first step; three tasks wait on the same key.
  std::uint64_t release_turn = 0;
  ASSERT_TRUE(locks
                  .Submit(1, {X("alias/a")},
                          [&] {
                            release_turn = loop.turn();
                            locks.Release(1);  // fails at once
                            EXPECT_TRUE(grants.empty()) << "next task ran inside the failing call";
                          })
                  .ok());
  for (TaskId id = 2; id <= 4; ++id) Submit(id, {X("alias/a")});
  Settle();
  ASSERT_EQ(grants, std::vector<TaskId>{2});
  EXPECT_GT(grant_turns[0], release_turn);
  EXPECT_FALSE(locks.IsGranted(1));
  EXPECT_FALSE(locks.IsWaiting(1));
  locks.Release(2);
  Settle();
  locks.Release(3);
  Settle();
  EXPECT_EQ(grants, (std::vector<TaskId>{2, 3, 4}));
  locks.Release(4);
}

TEST_F(LocksTest, WithdrawnTaskIsNeverGranted) {
  Submit(1, {X("a")});
  Submit(2, {X("a")});
  Submit(3, {X("a")});
  Settle();
  EXPECT_TRUE(locks.Withdraw(2));
  EXPECT_FALSE(locks.Withdraw(1)) << "a granted task cannot be withdrawn";
  EXPECT_FALSE(locks.Withdraw(99));
  locks.Release(1);
  Settle();
  EXPECT_EQ(grants, (std::vector<TaskId>{1, 3}));
  locks.Release(3);
}

TEST_F(LocksTest, DuplicateKeysMergeToTheStrongerMode) {
  Submit(1, {S("k"), X("k")});
  Submit(2, {S("k")});
  Settle();
  EXPECT_EQ(grants, std::vector<TaskId>{1});
  locks.Release(1);
  Settle();
  EXPECT_EQ(grants.back(), 2u);
  locks.Release(2);
}

TEST_F(LocksTest, BoundsAndBadSubmissions) {
  LockTable small(loop, 3, 2);
  auto nop = [] {};
  EXPECT_TRUE(small.Submit(1, {X("k")}, nop).ok());
  EXPECT_TRUE(small.Submit(2, {X("k")}, nop).ok());
  Status per_key = small.Submit(3, {X("k")}, nop);
  EXPECT_EQ(per_key.code(), Code::kBusy);
  EXPECT_TRUE(small.Submit(3, {X("other")}, nop).ok());
  EXPECT_EQ(small.Submit(4, {X("third")}, nop).code(), Code::kBusy);
  EXPECT_EQ(small.Submit(1, {X("z")}, nop).code(), Code::kInvalidArgument);
  EXPECT_EQ(small.Submit(9, {}, nop).code(), Code::kInvalidArgument);
  Settle();
  small.Release(1);
  small.Release(3);
  Settle();
  small.Release(2);
  Settle();
  EXPECT_EQ(small.size(), 0u);
}

TEST_F(LocksTest, DoubleReleaseIsAProgrammingError) {
  GTEST_FLAG_SET(death_test_style, "fast");  // no re-exec: works under qemu-user too
  EXPECT_DEATH(
      {
        Loop l;
        LockTable t(l, 4, 4);
        (void)t.Submit(1, {X("k")}, [] {});
        l.RunUntil([&] { return t.IsGranted(1); }, 1000);
        t.Release(1);
        t.Release(1);
      },
      "released twice");
}

}  // namespace
}  // namespace cairn::control

namespace cairn::control {
namespace {

TEST_F(LocksTest, RefuseIfBusyKeyIsRefusedWhileHeldOrAwaitedAndQueuesNothing) {
  LockKey refuse = X("alias/a");
  refuse.refuse_if_busy = true;
  Submit(1, {X("alias/a")});
  Settle();
  Status st = locks.Submit(2, {X("alias/b"), refuse}, [] {});
  EXPECT_EQ(st.code(), Code::kInUse);
  EXPECT_NE(st.message().find("task 1"), std::string_view::npos) << st.ToString();
  EXPECT_FALSE(locks.IsWaiting(2));  // nothing queued, not even on alias/b
  Submit(3, {X("alias/b")});
  Settle();
  EXPECT_EQ(grants, (std::vector<TaskId>{1, 3}));
  locks.Release(1);
  locks.Release(3);
  Settle();
  Submit(4, {refuse});  // free now
  Settle();
  EXPECT_EQ(grants.back(), 4u);
}

}  // namespace
}  // namespace cairn::control
