// The eventual-send scheduler: the ONLY way a completion reaches application
// code in cairn.
//
// THE CONTRACT (Tahoe-LAFS #877). Every asynchronous function in cairn returns
// before its completion runs, also when it fails at once (a dead connection, a
// bad argument, a closed store). It delivers the completion with Post(), so it
// runs on a later turn of the loop, on the loop thread, exactly once. A
// synchronous errback inside a send loop is how Tahoe's publisher re-entered
// itself, sent duplicate writes and reported a false UncoordinatedWriteError;
// this interface makes that shape impossible to write by accident, and
// ReentryGuard (below) aborts debug builds that try.
//
// Turns: a drain runs the callbacks that were queued when it began, in FIFO
// order; whatever they post waits for the next turn, so timers and socket
// reads are never starved by a chain of posts.
//
// Loop thread only, except PostFromAnyThread.
#pragma once

#include <cstdint>

#include "cairn/core/callback.h"

namespace cairn {

using Task = Callback<void()>;

class Scheduler {
 public:
  virtual ~Scheduler() = default;

  // Queues `fn` to run on a later turn, after everything posted before it.
  virtual void Post(Task fn) = 0;
  // Any thread. Like Post, ordered among this thread's posts; the loop thread
  // picks the task up on a later turn. Used by thread-pool work.
  virtual void PostFromAnyThread(Task fn) = 0;
  // Milliseconds on a monotonic clock, cached per loop iteration.
  virtual std::uint64_t NowMs() const = 0;
  // The number of the turn now running (or last run); a drain starts a new turn.
  virtual std::uint64_t turn() const = 0;
};

// Debug tripwire for asynchronous operations. Construct one when an operation
// starts (records the current turn); call Deliver() where its completion runs.
// If the completion runs in the same turn the operation started in, it was
// delivered synchronously (or before the initiator could have returned), and
// debug builds abort with the operation's name. Release builds check nothing.
class ReentryGuard {
 public:
  ReentryGuard(const Scheduler& scheduler, const char* op) : scheduler_(&scheduler), op_(op),
                                                              start_turn_(scheduler.turn()) {}
  void Deliver() const;

 private:
  const Scheduler* scheduler_;
  const char* op_;
  std::uint64_t start_turn_;
};

}  // namespace cairn
