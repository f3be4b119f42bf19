// ManualScheduler: a deterministic Scheduler for loop logic in unit tests
// (Pigweed's FakeDispatcher, foolscap's flushEventualQueue). Nothing runs
// until the test turns the crank: RunOneTurn runs what was queued when it
// began (what those tasks post waits for the next turn, as on the real Loop),
// RunUntilIdle turns until the queue is empty, AdvanceTime moves the clock.
// One thread only; PostFromAnyThread is accepted from that thread too.
#pragma once

#include <cstdint>
#include <deque>
#include <utility>

#include "cairn/core/scheduler.h"

namespace cairn::test {

class ManualScheduler final : public Scheduler {
 public:
  void Post(Task fn) override { queue_.push_back(std::move(fn)); }
  void PostFromAnyThread(Task fn) override { queue_.push_back(std::move(fn)); }
  std::uint64_t NowMs() const override { return now_ms_; }
  std::uint64_t turn() const override { return turn_; }

  // Runs one turn: the tasks queued now, in order. Returns how many ran.
  std::size_t RunOneTurn() {
    ++turn_;
    std::deque<Task> batch;
    batch.swap(queue_);
    std::size_t ran = 0;
    for (Task& t : batch) {
      t();
      ++ran;
    }
    return ran;
  }
  // Turns until nothing is queued (at most `max_turns`). Returns the turns run.
  std::size_t RunUntilIdle(std::size_t max_turns = 10000) {
    std::size_t turns = 0;
    while (!queue_.empty() && turns < max_turns) {
      RunOneTurn();
      ++turns;
    }
    return turns;
  }
  void AdvanceTime(std::uint64_t ms) { now_ms_ += ms; }
  std::size_t pending() const { return queue_.size(); }

 private:
  std::deque<Task> queue_;
  std::uint64_t now_ms_ = 0;
  std::uint64_t turn_ = 0;
};

}  // namespace cairn::test
