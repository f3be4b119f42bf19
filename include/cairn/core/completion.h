// Completion: a completion that carries the #877 tripwire from the call that
// started its operation (a tls Connect, Write or Close; an http request or
// body read; an offloaded job; a task's submit or wait) to where it runs. Running it aborts debug
// builds if that is still the starting turn (see ReentryGuard in
// cairn/core/scheduler.h); it runs at most once. Loop thread only.
#pragma once

#include <optional>
#include <tuple>
#include <utility>

#include "cairn/core/callback.h"
#include "cairn/core/scheduler.h"

namespace cairn {

template <typename... Args>
class Completion {
 public:
  // Empty: running or posting it does nothing.
  Completion() = default;
  // Arms the tripwire now: construct it inside the call that starts the
  // operation. `op` is a string literal naming the operation.
  Completion(const Scheduler& scheduler, const char* op, Callback<void(Args...)> fn)
      : fn_(std::move(fn)), guard_(std::in_place, scheduler, op) {}
  Completion(Completion&&) noexcept = default;
  Completion& operator=(Completion&&) noexcept = default;

  explicit operator bool() const { return static_cast<bool>(fn_); }

  // Runs the completion and leaves this empty. Debug builds abort if this
  // is the turn the operation started in. Nothing happens when empty.
  // Kept out of line: inlined into Guarded's wrapper, GCC 12 at -O2 takes
  // the moved-from Result's destructor for a use after free and fails the
  // release build (-Werror=use-after-free); one call per completion costs
  // nothing that matters.
  [[gnu::noinline]] void operator()(Args... args) {
    if (!fn_) return;
    Callback<void(Args...)> fn = std::move(fn_);
    fn_ = nullptr;
    guard_->Deliver();  // Tahoe-LAFS #877: never inside the call that started it.
    fn(std::forward<Args>(args)...);
  }

  // Runs it with `args` on a later turn (nothing if empty); leaves this empty.
  void Post(Scheduler& scheduler, Args... args) {
    if (!fn_) return;
    scheduler.Post([c = std::move(*this), a = std::make_tuple(std::move(args)...)]() mutable {
      std::apply(c, std::move(a));
    });
    fn_ = nullptr;
  }

 private:
  Callback<void(Args...)> fn_;
  std::optional<ReentryGuard> guard_;
};

// Wraps `fn` in a plain Callback that checks, when run, the tripwire armed
// now: for operations that keep their completions as Callbacks (in lists of
// waiters, say). A null `fn` stays null.
template <typename... Args>
Callback<void(Args...)> Guarded(const Scheduler& scheduler, const char* op, Callback<void(Args...)> fn) {
  if (!fn) return nullptr;
  return [c = Completion<Args...>(scheduler, op, std::move(fn))](Args... args) mutable {
    c(std::forward<Args>(args)...);
  };
}

}  // namespace cairn
