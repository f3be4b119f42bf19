// Loop and the eventual-send queue on libuv. Loop thread only, except
// PostFromAnyThread and the Offload work functions (thread pool).
#include "cairn/core/loop.h"

#include <uv.h>

#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "cairn/core/clock.h"
#include "cairn/core/completion.h"

namespace cairn {

struct Loop::Impl {
  uv_loop_t loop;
  uv_check_t check;      // drains the queue once per iteration (unref'd)
  uv_idle_t idle;        // active only while the queue is non-empty
  uv_prepare_t prepare;  // iteration timing (unref'd)
  uv_async_t async;      // wake-up for PostFromAnyThread (unref'd)
  bool idle_active = false;
  bool stopping = false;
  std::deque<Task> queue;
  std::mutex remote_mu;
  std::vector<Task> remote;  // guarded by remote_mu
  std::thread::id loop_thread;
  LoopStats stats;
  std::uint64_t last_prepare_ns = 0;
  std::uint64_t last_idle_ns = 0;
  std::uint64_t last_cpu_ns = 0;
};

namespace {

Loop* LoopOf(uv_handle_t* h) { return static_cast<Loop*>(h->data); }

}  // namespace

void ReentryGuard::Deliver() const {
#ifndef NDEBUG
  if (scheduler_->turn() == start_turn_) {
    CheckFailed(__FILE__, __LINE__, "completion turn != start turn",
                std::string("re-entry: the completion of '") + op_ +
                    "' ran in the turn that started it; completions must be delivered with Post()");
  }
#endif
}

Loop::Loop() : impl_(std::make_unique<Impl>()) {
  loop_ = &impl_->loop;
  CAIRN_CHECK(uv_loop_init(loop_) == 0, "uv_loop_init");
  // Idle-time metrics give the true busy time per iteration (libuv >= 1.39).
  uv_loop_configure(loop_, UV_METRICS_IDLE_TIME);
  impl_->loop_thread = std::this_thread::get_id();

  uv_check_init(loop_, &impl_->check);
  impl_->check.data = this;
  uv_check_start(&impl_->check, [](uv_check_t* h) { LoopOf(reinterpret_cast<uv_handle_t*>(h))->Drain(); });
  uv_unref(reinterpret_cast<uv_handle_t*>(&impl_->check));

  uv_idle_init(loop_, &impl_->idle);
  impl_->idle.data = this;

  uv_prepare_init(loop_, &impl_->prepare);
  impl_->prepare.data = this;
  uv_prepare_start(&impl_->prepare, [](uv_prepare_t* h) {
    Loop* self = LoopOf(reinterpret_cast<uv_handle_t*>(h));
    Impl& im = *self->impl_;
    std::uint64_t now = uv_hrtime();
    std::uint64_t idle = uv_metrics_idle_time(self->loop_);
    std::uint64_t cpu = clock::ThreadCpuNs();
    if (im.last_prepare_ns != 0) {
      std::uint64_t cpu_us = (cpu - im.last_cpu_ns) / 1000;
      if (cpu_us > im.stats.max_busy_cpu_us) im.stats.max_busy_cpu_us = cpu_us;
      std::uint64_t wall = now - im.last_prepare_ns;
      std::uint64_t waited = idle - im.last_idle_ns;
      std::uint64_t busy_us = (wall > waited ? wall - waited : 0) / 1000;
      im.stats.total_busy_us += busy_us;
      if (busy_us > im.stats.max_busy_us) im.stats.max_busy_us = busy_us;
    }
    im.stats.iterations++;
    im.last_prepare_ns = now;
    im.last_idle_ns = idle;
    im.last_cpu_ns = cpu;
  });
  uv_unref(reinterpret_cast<uv_handle_t*>(&impl_->prepare));

  uv_async_init(loop_, &impl_->async, [](uv_async_t* h) {
    Loop* self = LoopOf(reinterpret_cast<uv_handle_t*>(h));
    std::vector<Task> batch;
    {
      std::lock_guard<std::mutex> lock(self->impl_->remote_mu);
      batch.swap(self->impl_->remote);
    }
    for (Task& t : batch) self->Post(std::move(t));
  });
  impl_->async.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&impl_->async));
}

Loop::~Loop() {
  // Tasks never run once the loop is gone; drop them (they may own handles'
  // owners, so release them before closing the loop's own handles).
  impl_->queue.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->check), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->idle), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->prepare), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&impl_->async), nullptr);
  uv_run(loop_, UV_RUN_DEFAULT);
  int rc = uv_loop_close(loop_);
  CAIRN_CHECK(rc == 0, "a libuv handle or request is still open when the Loop is destroyed");
}

void Loop::Post(Task fn) {
  CAIRN_CHECK(std::this_thread::get_id() == impl_->loop_thread, "Post() from a thread other than the loop's");
  impl_->queue.push_back(std::move(fn));
  if (impl_->queue.size() > impl_->stats.queue_high_water) impl_->stats.queue_high_water = impl_->queue.size();
  if (!impl_->idle_active) {
    uv_idle_start(&impl_->idle, [](uv_idle_t*) {});
    impl_->idle_active = true;
  }
}

void Loop::PostFromAnyThread(Task fn) {
  {
    std::lock_guard<std::mutex> lock(impl_->remote_mu);
    impl_->remote.push_back(std::move(fn));
  }
  uv_async_send(&impl_->async);
}

std::uint64_t Loop::NowMs() const { return uv_now(loop_); }

void Loop::Drain() {
  ++turn_;
  Impl& im = *impl_;
  // Run only the snapshot queued before this drain began: what these tasks
  // post waits for the next turn, so I/O and timers are never starved.
  std::size_t n = im.queue.size();
  if (n > 0) im.stats.turns++;
  std::uint64_t cpu0 = n > 0 ? clock::ThreadCpuNs() : 0;
  for (std::size_t i = 0; i < n; ++i) {
    Task t = std::move(im.queue.front());
    im.queue.pop_front();
    im.stats.tasks_run++;
    t();
  }
  if (n > 0) {
    std::uint64_t us = (clock::ThreadCpuNs() - cpu0) / 1000;
    if (us > im.stats.max_drain_cpu_us) {
      im.stats.max_drain_cpu_us = us;
      im.stats.max_drain_tasks = n;
    }
  }
  if (im.queue.empty() && im.idle_active) {
    uv_idle_stop(&im.idle);
    im.idle_active = false;
  }
  if (im.stopping) uv_stop(loop_);
}

void Loop::Run() {
  impl_->stopping = false;
  uv_run(loop_, UV_RUN_DEFAULT);
}

bool Loop::RunOnce() {
  uv_run(loop_, UV_RUN_NOWAIT);
  return !impl_->queue.empty();
}

bool Loop::RunUntil(Callback<bool()> done, std::uint64_t timeout_ms) {
  if (done()) return true;
  uv_timer_t deadline;
  bool expired = false;
  uv_timer_init(loop_, &deadline);
  deadline.data = &expired;
  uv_timer_start(
      &deadline, [](uv_timer_t* t) { *static_cast<bool*>(t->data) = true; }, timeout_ms, 0);
  bool ok = false;
  while (!expired) {
    uv_run(loop_, UV_RUN_ONCE);
    if (done()) {
      ok = true;
      break;
    }
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline), nullptr);
  uv_run(loop_, UV_RUN_NOWAIT);  // completes the close; the handle lives on this frame
  return ok;
}

void Loop::Stop() {
  impl_->stopping = true;
  uv_stop(loop_);
}

LoopStats Loop::stats() const { return impl_->stats; }
std::size_t Loop::pending() const { return impl_->queue.size(); }

// --- Offload ---------------------------------------------------------------

namespace {

struct OffloadReq {
  uv_work_t req;
  Loop* loop;
  Callback<Status()> work;
  Completion<Status> done;  // armed in Offload: the tripwire names "Loop::Offload"
  Status result;
};

}  // namespace

void Loop::Offload(Callback<Status()> work, Callback<void(Status)> done) {
  auto* r = new OffloadReq{};
  r->req.data = r;
  r->loop = this;
  r->work = std::move(work);
  r->done = Completion<Status>(*this, "Loop::Offload", std::move(done));
  int rc = uv_queue_work(
      loop_, &r->req, [](uv_work_t* req) {
        auto* op = static_cast<OffloadReq*>(req->data);
        op->result = op->work();
      },
      [](uv_work_t* req, int status) {
        auto* op = static_cast<OffloadReq*>(req->data);
        Status st = status == UV_ECANCELED ? Status::Cancelled("offloaded work was cancelled") : std::move(op->result);
        op->loop->Post([done = std::move(op->done), st = std::move(st)]() mutable { done(std::move(st)); });
        delete op;
      });
  if (rc != 0) {
    // Even an immediate failure completes on a later turn.
    Post([done = std::move(r->done), rc]() mutable {
      done(Status::Internal(std::string("uv_queue_work: ") + uv_strerror(rc)));
    });
    delete r;
  }
}

// --- Timers ----------------------------------------------------------------

struct Timer::Rep {
  uv_timer_t timer;
  Loop* loop;
  Task fn;
  std::shared_ptr<bool> cancelled = std::make_shared<bool>(false);
  bool fired = false;
};

std::unique_ptr<Timer> Loop::PostAfter(std::uint64_t delay_ms, Task fn) {
  auto* rep = new Timer::Rep{};
  rep->loop = this;
  rep->fn = std::move(fn);
  uv_timer_init(loop_, &rep->timer);
  rep->timer.data = rep;
  uv_timer_start(
      &rep->timer,
      [](uv_timer_t* t) {
        auto* self = static_cast<Timer::Rep*>(t->data);
        self->fired = true;
        // Adapter only: the task runs from the queue, and only if not cancelled meanwhile.
        self->loop->Post([fn = std::move(self->fn), cancelled = self->cancelled]() mutable {
          if (!*cancelled) fn();
        });
      },
      delay_ms, 0);
  return std::unique_ptr<Timer>(new Timer(rep));
}

void Timer::Cancel() {
  if (!rep_) return;
  *rep_->cancelled = true;
  uv_timer_stop(&rep_->timer);
}

bool Timer::pending() const { return rep_ && !*rep_->cancelled && !rep_->fired; }

Timer::~Timer() {
  if (!rep_) return;
  Cancel();
  uv_close(reinterpret_cast<uv_handle_t*>(&rep_->timer),
           [](uv_handle_t* h) { delete static_cast<Timer::Rep*>(h->data); });
  rep_ = nullptr;
}

}  // namespace cairn
