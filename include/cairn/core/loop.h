// Loop: owns the libuv loop and implements the eventual-send Scheduler on it.
//
// The drain runs from a uv_check handle (after poll, so I/O callbacks of this
// iteration are drained in it); a uv_idle handle is active only while the
// queue is non-empty, so poll does not block while work is pending and does
// not spin when there is none. Other threads post through a mutex-protected
// queue and uv_async_send (sends coalesce; nothing counts wake-ups).
//
// Loop thread only, except PostFromAnyThread.
#pragma once

#include <cstdint>
#include <memory>

#include "cairn/core/scheduler.h"
#include "cairn/core/status.h"

struct uv_loop_s;

namespace cairn {

// Per-iteration timing, from libuv's idle-time metric: "busy" is the time an
// iteration spent outside the poll wait, i.e. how long the loop was stalled.
struct LoopStats {
  std::uint64_t iterations = 0;
  std::uint64_t turns = 0;          // drains that ran at least one task
  std::uint64_t tasks_run = 0;
  std::uint64_t max_busy_us = 0;    // the longest single iteration, wall clock
  // The most CPU the loop thread used in one iteration: unlike the wall
  // clock, not inflated when the thread was preempted on a loaded machine,
  // so it is the stall the loop's own work caused.
  std::uint64_t max_busy_cpu_us = 0;
  // Of that, the most spent running posted tasks in one turn, and how many
  // tasks that turn ran (the rest of an iteration is I/O and timers).
  std::uint64_t max_drain_cpu_us = 0;
  std::uint64_t max_drain_tasks = 0;
  std::uint64_t total_busy_us = 0;
  std::uint64_t queue_high_water = 0;
};

class Timer;

class Loop final : public Scheduler {
 public:
  Loop();
  ~Loop() override;  // REQUIRES: Run() has returned or never ran; closes every handle.
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  void Post(Task fn) override;
  void PostFromAnyThread(Task fn) override;
  std::uint64_t NowMs() const override;
  std::uint64_t turn() const override { return turn_; }

  // Runs until Stop() is called or nothing keeps the loop alive.
  void Run();
  // Runs one iteration without blocking; for tests. Returns true if more
  // work is pending.
  bool RunOnce();
  // Runs iterations (blocking in poll) until `done()` returns true or
  // `timeout_ms` passes; for tests. Returns true if `done()` became true.
  bool RunUntil(Callback<bool()> done, std::uint64_t timeout_ms);
  // Makes Run() return after the current iteration.
  void Stop();

  // Runs `work` on libuv's thread pool (it must not touch loop-owned state),
  // then `done` on the loop thread on a later turn, exactly once, with the
  // work's status — Cancelled if the loop closed before the work started.
  void Offload(Callback<Status()> work, Callback<void(Status)> done);

  // Runs `fn` on a later turn, at least `delay_ms` from now. Returns a timer
  // the caller may cancel; dropping the returned pointer cancels it.
  std::unique_ptr<Timer> PostAfter(std::uint64_t delay_ms, Task fn);

  LoopStats stats() const;
  std::size_t pending() const;

  // The raw libuv loop, for layers that own libuv handles (http, control).
  uv_loop_s* uv() { return loop_; }

  struct Impl;

 private:
  void Drain();

  uv_loop_s* loop_ = nullptr;
  std::uint64_t turn_ = 0;
  std::unique_ptr<Impl> impl_;
};

// A pending PostAfter. Destroying it (or Cancel()) before it fires means the
// task never runs. Loop thread only.
class Timer {
 public:
  ~Timer();
  void Cancel();
  bool pending() const;

 private:
  friend class Loop;
  struct Rep;
  explicit Timer(Rep* rep) : rep_(rep) {}
  Rep* rep_;
};

}  // namespace cairn
