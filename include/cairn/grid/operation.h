// grid::Operation<R>: the completion of one asynchronous client operation
// (upload, download, servermap update, publish, retrieve), delivered exactly
// once, never in the turn the operation started (the #877 tripwire), and only
// after the operation's side work has ended.
//
// Side work is what an operation sends besides its main line and must see
// answered before it reports: a bucket abort, a corruption advisory, a job on
// the thread pool that reads the operation's file. The caller hears of the end
// only once none is left, so after its completion nothing of the operation is
// still running.
//
// The handle is cheap to copy; copies share one state. Loop thread only.
#pragma once

#include <memory>
#include <optional>
#include <utility>

#include "cairn/core/callback.h"
#include "cairn/core/scheduler.h"
#include "cairn/core/status.h"

namespace cairn::grid {

template <typename R>
class Operation {
 public:
  using Done = Callback<void(Result<R>)>;

  // Starts the operation's clock: `name` (a string literal) is what the
  // tripwire names if the completion is ever delivered in this turn.
  Operation(Scheduler& scheduler, const char* name, Done done)
      : rep_(std::make_shared<Rep>(scheduler, name, std::move(done))) {}

  // Records the result; the first one recorded stands and later ones are
  // ignored. Delivers it now if no side work is outstanding, else when the
  // last side work ends. REQUIRES: a later turn than the operation's start
  // (debug builds abort otherwise: use FinishSoon where the start itself
  // fails).
  void Finish(Result<R> result) const {
    Rep& r = *rep_;
    if (r.finished) return;
    r.finished = true;
    r.result.emplace(std::move(result));
    MaybeDeliver(rep_);
  }

  // Records the result at once (so a later Finish is ignored) and delivers
  // it from a later turn: for failures found inside the start function.
  void FinishSoon(Result<R> result) const {
    Rep& r = *rep_;
    if (r.finished) return;
    r.finished = true;
    r.result.emplace(std::move(result));
    ++r.side;  // holds delivery until the posted turn
    r.scheduler.Post([rep = rep_] {
      --rep->side;
      MaybeDeliver(rep);
    });
  }

  // Side work began; the completion waits for the matching SideEnded.
  void SideStarted() const { ++rep_->side; }
  // Side work ended. REQUIRES: a matching SideStarted.
  void SideEnded() const {
    --rep_->side;
    MaybeDeliver(rep_);
  }

  // A result has been recorded (it may still wait for side work).
  bool finished() const { return rep_->finished; }
  // The completion has run.
  bool delivered() const { return rep_->delivered; }
  // Side work outstanding.
  std::size_t side_work() const { return rep_->side; }

 private:
  struct Rep {
    Rep(Scheduler& s, const char* name, Done d) : scheduler(s), guard(s, name), done(std::move(d)) {}
    Scheduler& scheduler;
    ReentryGuard guard;
    Done done;
    std::optional<Result<R>> result;
    std::size_t side = 0;
    bool finished = false;
    bool delivered = false;
  };

  static void MaybeDeliver(const std::shared_ptr<Rep>& rep) {
    if (rep->delivered || !rep->finished || rep->side > 0) return;
    rep->delivered = true;
    rep->guard.Deliver();  // Tahoe-LAFS #877: never inside the call that started it.
    Done done = std::move(rep->done);
    Result<R> result = std::move(*rep->result);
    rep->result.reset();
    if (done) done(std::move(result));
  }

  std::shared_ptr<Rep> rep_;
};

}  // namespace cairn::grid
