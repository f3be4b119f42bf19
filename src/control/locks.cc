// The lock table. Loop thread only.
#include "control/locks.h"

#include <algorithm>

#include "cairn/core/base32.h"

namespace cairn::control {

LockKey LockKeys::Servers(LockMode mode) { return LockKey{"servers", mode}; }

LockKey LockKeys::Alias(const std::string& name, LockMode mode) { return LockKey{"alias/" + name, mode}; }

LockKey LockKeys::Slot(const std::string& storage_index, LockMode mode) {
  return LockKey{"slot/" + Base32Encode(storage_index), mode};
}

LockKey LockKeys::Backup(const std::string& target) { return LockKey{"backup/" + target, LockMode::kExclusive}; }

LockKey LockKeys::DeepCheck() { return LockKey{"deep-check", LockMode::kShared}; }

LockKey LockKeys::Maintenance() { return LockKey{"maintenance", LockMode::kExclusive}; }

Status LockTable::Submit(TaskId task, std::vector<LockKey> keys, Task granted) {
  if (keys.empty()) return Status::InvalidArgument("a task must name at least one lock key");
  if (tasks_.count(task)) return Status::InvalidArgument("task " + std::to_string(task) + " is already in the lock table");
  // One entry per key name; exclusive wins over shared.
  std::sort(keys.begin(), keys.end(), [](const LockKey& a, const LockKey& b) { return a.name < b.name; });
  std::vector<LockKey> merged;
  for (LockKey& k : keys) {
    if (!merged.empty() && merged.back().name == k.name) {
      if (k.mode == LockMode::kExclusive) merged.back().mode = LockMode::kExclusive;
      merged.back().refuse_if_busy = merged.back().refuse_if_busy || k.refuse_if_busy;
    } else {
      merged.push_back(std::move(k));
    }
  }
  if (tasks_.size() >= max_tasks_) {
    return Status::Busy("too many control tasks queued (limit " + std::to_string(max_tasks_) + ")");
  }
  for (const LockKey& k : merged) {
    auto it = queues_.find(k.name);
    if (it != queues_.end() && it->second.size() >= max_per_key_) {
      return Status::Busy("too many tasks queued on " + k.name + " (limit " + std::to_string(max_per_key_) + ")");
    }
    if (k.refuse_if_busy && it != queues_.end() && !it->second.empty()) {
      return Status::InUse(k.name + " is in use by task " + std::to_string(it->second.front().task));
    }
  }
  std::uint64_t ticket = next_ticket_++;
  for (const LockKey& k : merged) queues_[k.name].push_back(Waiter{task, k.mode, ticket});
  Entry& e = tasks_[task];
  e.keys = std::move(merged);
  e.granted = std::move(granted);
  e.ticket = ticket;
  ScheduleEvaluate();
  return Status();
}

bool LockTable::Withdraw(TaskId task) {
  auto it = tasks_.find(task);
  if (it == tasks_.end() || it->second.is_granted) return false;
  RemoveFromQueues(task, it->second.keys);
  tasks_.erase(it);
  // Tasks behind it may now be grantable.
  ScheduleEvaluate();
  return true;
}

void LockTable::Release(TaskId task) {
  auto it = tasks_.find(task);
  CAIRN_CHECK(it != tasks_.end() && it->second.is_granted,
              "LockTable::Release of task " + std::to_string(task) + " that holds no locks (released twice?)");
  RemoveFromQueues(task, it->second.keys);
  tasks_.erase(it);
  ScheduleEvaluate();
}

void LockTable::RemoveFromQueues(TaskId task, const std::vector<LockKey>& keys) {
  for (const LockKey& k : keys) {
    auto q = queues_.find(k.name);
    if (q == queues_.end()) continue;
    auto& v = q->second;
    v.erase(std::remove_if(v.begin(), v.end(), [task](const Waiter& w) { return w.task == task; }), v.end());
    if (v.empty()) queues_.erase(q);
  }
}

bool LockTable::GrantableOn(const std::string& key, TaskId task) const {
  const std::vector<Waiter>& q = queues_.at(key);
  for (const Waiter& w : q) {
    if (w.task == task) return w.mode == LockMode::kShared || &w == &q.front();
    // Anyone ahead blocks an exclusive request; only shared holders ahead
    // let a shared request through.
    if (w.mode == LockMode::kExclusive) return false;
  }
  return false;
}

void LockTable::ScheduleEvaluate() {
  if (evaluate_posted_) return;
  evaluate_posted_ = true;
  scheduler_.Post([this] {
    evaluate_posted_ = false;
    Evaluate();
  });
}

void LockTable::Evaluate() {
  // Ticket order: the earliest waiting task is considered first.
  std::vector<std::pair<std::uint64_t, TaskId>> waiting;
  for (const auto& [id, e] : tasks_) {
    if (!e.is_granted) waiting.emplace_back(e.ticket, id);
  }
  std::sort(waiting.begin(), waiting.end());
  for (const auto& waiter : waiting) {
    TaskId id = waiter.second;
    Entry& e = tasks_.at(id);
    bool ok = std::all_of(e.keys.begin(), e.keys.end(), [&](const LockKey& k) { return GrantableOn(k.name, id); });
    if (!ok) continue;
    e.is_granted = true;
    // The grant runs from the queue, never inside Submit/Release/Evaluate's caller.
    scheduler_.Post(std::move(e.granted));
    e.granted = nullptr;
  }
}

bool LockTable::IsGranted(TaskId task) const {
  auto it = tasks_.find(task);
  return it != tasks_.end() && it->second.is_granted;
}

bool LockTable::IsWaiting(TaskId task) const {
  auto it = tasks_.find(task);
  return it != tasks_.end() && !it->second.is_granted;
}

std::vector<LockWait> LockTable::WaitingOn(TaskId task) const {
  std::vector<LockWait> out;
  auto it = tasks_.find(task);
  if (it == tasks_.end() || it->second.is_granted) return out;
  for (const LockKey& k : it->second.keys) {
    if (!GrantableOn(k.name, task)) out.push_back(LockWait{k.name, queues_.at(k.name).front().task});
  }
  return out;
}

}  // namespace cairn::control
