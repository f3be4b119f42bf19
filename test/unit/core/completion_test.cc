// Completion (core/completion.h) on ManualScheduler: a completion posted from the call that
// started its operation runs on the next turn, exactly once; an empty one
// does nothing; and one run inside the starting turn trips the #877 wire.
#include "cairn/core/completion.h"

#include <gtest/gtest.h>

#include "cairn/core/loop.h"
#include "support/manual_scheduler.h"

namespace cairn {
namespace {

TEST(CompletionTest, PostedRunsOnceOnTheNextTurn) {
  test::ManualScheduler s;
  int calls = 0;
  Status got;
  Completion<Status> c(s, "TestOp", [&](Status st) {
    ++calls;
    got = st;
  });
  EXPECT_TRUE(static_cast<bool>(c));
  c.Post(s, Status::Unavailable("failed at once"));
  EXPECT_FALSE(static_cast<bool>(c)) << "posting empties it";
  c.Post(s, Status());  // empty now: nothing more is queued
  EXPECT_EQ(calls, 0);
  EXPECT_EQ(s.RunOneTurn(), 1u);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(got.code(), Code::kUnavailable);
  EXPECT_EQ(s.RunUntilIdle(), 0u);
}

TEST(CompletionTest, RunsAtMostOnce) {
  test::ManualScheduler s;
  int calls = 0;
  Completion<> c(s, "TestOp", [&] { ++calls; });
  s.RunOneTurn();
  c();
  c();
  EXPECT_EQ(calls, 1);
}

TEST(CompletionTest, EmptyDoesNothing) {
  test::ManualScheduler s;
  Completion<Status> c;
  EXPECT_FALSE(static_cast<bool>(c));
  c(Status());
  c.Post(s, Status());
  EXPECT_EQ(s.pending(), 0u);
}

TEST(CompletionDeathTest, RunInTheStartingTurnAbortsInDebugBuilds) {
#ifdef NDEBUG
  GTEST_SKIP() << "the re-entry tripwire is compiled only into debug builds";
#else
  GTEST_FLAG_SET(death_test_style, "fast");
  EXPECT_DEATH(
      {
        Loop loop;
        Completion<Status> c(loop, "tls::Connection::Write", [](Status) {});
        c(Status::Unavailable("failed at once"));  // wrong: must be posted
      },
      "re-entry: the completion of 'tls::Connection::Write'");
#endif
}

}  // namespace
}  // namespace cairn
