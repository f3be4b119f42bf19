// Tests of grid::Operation: exactly once, never in the starting turn, and
// only after the operation's side work has ended.
#include "cairn/grid/operation.h"

#include <gtest/gtest.h>

#include <string>

#include "cairn/core/loop.h"
#include "support/manual_scheduler.h"

namespace cairn::grid {
namespace {

// An operation that answers from a later turn, or fails inside its start.
void StartOp(Loop& loop, bool fail_at_once, Callback<void(Result<int>)> done) {
  Operation<int> op(loop, "StartOp", std::move(done));
  if (fail_at_once) return op.FinishSoon(Status::Unavailable("no servers"));
  loop.Post([op] { op.Finish(42); });
}

TEST(OperationTest, DeliversOnceOnALaterTurn) {
  Loop loop;
  for (bool fail : {false, true}) {
    int calls = 0;
    Result<int> got = Status::Internal("not yet");
    StartOp(loop, fail, [&](Result<int> r) {
      ++calls;
      got = std::move(r);
    });
    EXPECT_EQ(calls, 0) << "completion ran inside the initiating call";
    ASSERT_TRUE(loop.RunUntil([&] { return calls > 0; }, 5000));
    loop.RunOnce();
    EXPECT_EQ(calls, 1);
    if (fail) {
      EXPECT_EQ(got.status().code(), Code::kUnavailable);
    } else {
      ASSERT_TRUE(got.ok());
      EXPECT_EQ(*got, 42);
    }
  }
}

TEST(OperationTest, FirstResultStandsAndWaitsForSideWork) {
  Loop loop;
  int calls = 0;
  Result<int> got = Status::Internal("not yet");
  Operation<int> op(loop, "Sided", [&](Result<int> r) {
    ++calls;
    got = std::move(r);
  });
  op.SideStarted();
  loop.Post([op] {
    op.Finish(Status::NotEnoughServers("a server failed"));
    op.Finish(7);  // ignored: the first result stands
  });
  loop.RunOnce();
  loop.RunOnce();
  EXPECT_TRUE(op.finished());
  EXPECT_FALSE(op.delivered());
  EXPECT_EQ(calls, 0) << "delivered while side work was outstanding";
  loop.Post([op] { op.SideEnded(); });
  ASSERT_TRUE(loop.RunUntil([&] { return calls > 0; }, 5000));
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got.status().code(), Code::kNotEnoughServers);
  EXPECT_TRUE(op.delivered());
  op.Finish(1);  // after delivery: nothing happens
  loop.RunOnce();
  EXPECT_EQ(calls, 1);
}

// Turn by turn on the deterministic scheduler: a start-time failure is
// delivered in the next turn, not in the starting one.
TEST(OperationTest, FinishSoonDeliversInTheNextTurn) {
  test::ManualScheduler s;
  int calls = 0;
  Operation<int> op(s, "Soon", [&](Result<int>) { ++calls; });
  op.FinishSoon(Status::Unavailable("no servers"));
  EXPECT_TRUE(op.finished());
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(s.RunOneTurn(), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(s.RunUntilIdle(), 0u);
}

// The tripwire is live: an operation completed inside the call that started
// it (Tahoe-LAFS #877's shape) aborts debug and sanitizer builds.
TEST(OperationDeathTest, SynchronousFinishAbortsInDebugBuilds) {
#ifdef NDEBUG
  GTEST_SKIP() << "the re-entry tripwire is compiled only into debug builds";
#else
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_DEATH(
      {
        Loop loop;
        Operation<int> op(loop, "SyncOp", [](Result<int>) {});
        op.Finish(Status::Unavailable("failed at once"));  // wrong: must be FinishSoon
      },
      "re-entry: the completion of 'SyncOp'");
#endif
}

}  // namespace
}  // namespace cairn::grid
