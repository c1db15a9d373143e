#include "waiters.hpp"

#include <vector>

namespace bai::manager {

Waiters::Waiters(Lookup lookup) : lookup_(std::move(lookup)) {}

Waiters::~Waiters() { stop(); }

void Waiters::start() {
  thread_ = std::thread([this] { loop(); });
}

void Waiters::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

bool Waiters::add(const std::string& id, Caller caller, std::chrono::steady_clock::time_point deadline, SessionCallback& done) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (stopping_) return false;
  waiting_.emplace(id, Waiter{std::move(caller), deadline, std::move(done)});
  wake_.notify_one();
  return true;
}

void Waiters::finished(const SessionRecord& session) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto [first, last] = waiting_.equal_range(session.id);
  if (first == last) return;
  for (auto it = first; it != last; ++it) answers_.emplace_back(std::move(it->second.done), session);
  waiting_.erase(first, last);
  wake_.notify_one();
}

void Waiters::loop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    auto ready = std::exchange(answers_, {});
    std::vector<std::pair<std::string, Waiter>> expired;
    auto next = std::chrono::steady_clock::time_point::max();
    const auto now = std::chrono::steady_clock::now();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second.deadline <= now || stopping_) {
        expired.emplace_back(it->first, std::move(it->second));
        it = waiting_.erase(it);
      } else {
        next = std::min(next, it->second.deadline);
        ++it;
      }
    }
    const bool stop = stopping_;
    if (!ready.empty() || !expired.empty()) {
      lock.unlock();
      for (auto& [callback, session] : ready) callback(std::move(session));
      for (auto& [id, waiter] : expired) {
        waiter.done(stop ? Outcome<SessionRecord>(refuse(ErrorKind::ShuttingDown, "retry against the restarted manager"))
                         : lookup_(waiter.caller, id));
      }
      lock.lock();
      continue;
    }
    if (stop) return;
    if (next == std::chrono::steady_clock::time_point::max()) {
      wake_.wait(lock);
    } else {
      wake_.wait_until(lock, next);
    }
  }
}

}  // namespace bai::manager
