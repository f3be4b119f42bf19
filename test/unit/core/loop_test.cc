// Tests of the eventual-send contract on the real libuv Loop.
#include "cairn/core/loop.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <thread>
#include <vector>

namespace cairn {
namespace {

// An asynchronous operation written the cairn way: even its immediate failure
// is delivered through Post.
void StartOp(Loop& loop, bool fail_at_once, Callback<void(Status)> done) {
  ReentryGuard guard(loop, "StartOp");
  if (fail_at_once) {
    loop.Post([guard, done = std::move(done)]() mutable {
      guard.Deliver();
      done(Status::Unavailable("peer is gone"));
    });
    return;
  }
  loop.Offload([] { return Status(); },
               [guard, done = std::move(done)](Status st) mutable {
                 guard.Deliver();
                 done(std::move(st));
               });
}

TEST(LoopTest, CompletionNeverRunsInsideTheInitiatingCall) {
  Loop loop;
  for (bool fail : {true, false}) {
    int calls = 0;
    Status got;
    StartOp(loop, fail, [&](Status st) {
      ++calls;
      got = std::move(st);
    });
    EXPECT_EQ(calls, 0) << "completion ran before the initiator returned (fail_at_once=" << fail << ")";
    ASSERT_TRUE(loop.RunUntil([&] { return calls > 0; }, 5000));
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(got.ok(), !fail);
    if (fail) {
      EXPECT_EQ(got.code(), Code::kUnavailable);
    }
  }
}

TEST(LoopTest, PostIsFifo) {
  Loop loop;
  std::vector<int> order;
  for (int i = 0; i < 100; ++i) loop.Post([&order, i] { order.push_back(i); });
  EXPECT_TRUE(order.empty());
  loop.RunOnce();
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(LoopTest, TaskPostedDuringDrainRunsOnNextTurn) {
  Loop loop;
  int a = 0, b = 0;
  std::uint64_t a_turn = 0, b_turn = 0;
  loop.Post([&] {
    ++a;
    a_turn = loop.turn();
    loop.Post([&] {
      ++b;
      b_turn = loop.turn();
    });
    EXPECT_EQ(b, 0);
  });
  loop.RunOnce();
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 0) << "a task posted while draining ran in the same turn";
  loop.RunOnce();
  EXPECT_EQ(b, 1);
  EXPECT_GT(b_turn, a_turn);
}

TEST(LoopTest, EndlessPostChainDoesNotStarveTimersOrSockets) {
  Loop loop;
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  uv_pipe_t pipe;
  ASSERT_EQ(uv_pipe_init(loop.uv(), &pipe, 0), 0);
  ASSERT_EQ(uv_pipe_open(&pipe, fds[0]), 0);
  bool read_fired = false;
  pipe.data = &read_fired;
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&pipe),
      [](uv_handle_t*, size_t, uv_buf_t* buf) {
        static char storage[64];
        *buf = uv_buf_init(storage, sizeof storage);
      },
      [](uv_stream_t* s, ssize_t n, const uv_buf_t*) {
        if (n > 0) *static_cast<bool*>(s->data) = true;
      });
  ASSERT_EQ(write(fds[1], "x", 1), 1);

  bool timer_fired = false;
  auto timer = loop.PostAfter(1, [&] { timer_fired = true; });

  // A chain that re-posts itself until both events have been seen.
  int spins = 0;
  Callback<void()>* chain_ptr = nullptr;
  Callback<void()> chain = [&] {
    ++spins;
    if (!(timer_fired && read_fired)) loop.Post([&] { (*chain_ptr)(); });
  };
  chain_ptr = &chain;
  loop.Post([&] { chain(); });
  EXPECT_TRUE(loop.RunUntil([&] { return timer_fired && read_fired; }, 5000))
      << "timer=" << timer_fired << " read=" << read_fired << " after " << spins << " spins";
  uv_close(reinterpret_cast<uv_handle_t*>(&pipe), nullptr);
  close(fds[1]);
  loop.RunUntil([&] { return loop.pending() == 0; }, 1000);
  timer.reset();
  loop.RunOnce();
}

TEST(LoopTest, PostFromWorkerThreadRunsOnLoopThread) {
  Loop loop;
  std::thread::id ran_on;
  bool done = false;
  std::thread worker([&] {
    loop.PostFromAnyThread([&] {
      ran_on = std::this_thread::get_id();
      done = true;
    });
  });
  worker.join();
  EXPECT_FALSE(done);
  ASSERT_TRUE(loop.RunUntil([&] { return done; }, 5000));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(LoopTest, OffloadRunsWorkOffTheLoopThreadAndCompletesOnIt) {
  Loop loop;
  std::thread::id work_on, done_on;
  int calls = 0;
  loop.Offload(
      [&] {
        work_on = std::this_thread::get_id();
        return Status::NoSpace("disk full");
      },
      [&](Status st) {
        done_on = std::this_thread::get_id();
        ++calls;
        EXPECT_EQ(st.code(), Code::kNoSpace);
      });
  EXPECT_EQ(calls, 0);
  ASSERT_TRUE(loop.RunUntil([&] { return calls == 1; }, 5000));
  EXPECT_NE(work_on, std::this_thread::get_id());
  EXPECT_EQ(done_on, std::this_thread::get_id());
}

TEST(LoopTest, CancelledTimerNeverRuns) {
  Loop loop;
  bool a = false, b = false;
  auto ta = loop.PostAfter(1, [&] { a = true; });
  auto tb = loop.PostAfter(2, [&] { b = true; });
  ta->Cancel();
  ASSERT_TRUE(loop.RunUntil([&] { return b; }, 5000));
  EXPECT_FALSE(a);
}

TEST(LoopDeathTest, SynchronousCompletionAbortsInDebugBuilds) {
#ifdef NDEBUG
  GTEST_SKIP() << "the re-entry tripwire is compiled only into debug builds";
#else
  GTEST_FLAG_SET(death_test_style, "fast");  // no re-exec: works under qemu-user too
  EXPECT_DEATH(
      {
        Loop loop;
        ReentryGuard guard(loop, "BadOp");
        guard.Deliver();  // a completion delivered inside the initiating call
      },
      "re-entry: the completion of 'BadOp'");
#endif
}

}  // namespace
}  // namespace cairn
