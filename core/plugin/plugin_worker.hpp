// The thread every call into one plugin runs on, with a deadline per call, so that a
// plugin that hangs cannot stall the agent's RPC or heartbeat threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace bai::core {

class PluginWorker {
 public:
  explicit PluginWorker(std::string name);
  // Joins the thread; a hung thread is detached instead (it may never return).
  ~PluginWorker();
  PluginWorker(const PluginWorker&) = delete;
  PluginWorker& operator=(const PluginWorker&) = delete;

  // Runs `task` on the worker and returns its result, or nullopt when the deadline
  // passed or the worker hung earlier. The task owns everything it touches: after a
  // timeout it may still finish later, when the caller is long gone. `what` names the
  // call for hungCall().
  template <class T>
  std::optional<T> call(std::function<T()> task, std::chrono::milliseconds deadline, std::string_view what = "");

  bool hung() const;
  // What the call that hung was named; empty while none has.
  std::string hungCall() const;
  const std::string& name() const { return name_; }

 private:
  struct Queue {
    std::mutex mutex;
    std::condition_variable wake;
    std::deque<std::function<void()>> tasks;
    bool stopping = false;
    bool hung = false;
    std::string hungCall;  // the first call past its deadline
  };
  static void loop(std::shared_ptr<Queue> queue);
  bool post(std::function<void()> job);
  void markHung(std::string_view what);

  std::string name_;
  std::shared_ptr<Queue> queue_;
  std::thread thread_;
};

template <class T>
std::optional<T> PluginWorker::call(std::function<T()> task, std::chrono::milliseconds deadline, std::string_view what) {
  struct Slot {
    std::mutex mutex;
    std::condition_variable done;
    std::optional<T> result;
  };
  auto slot = std::make_shared<Slot>();
  const bool posted = post([slot, task = std::move(task)] {
    T value = task();
    std::lock_guard<std::mutex> lock(slot->mutex);
    slot->result = std::move(value);
    slot->done.notify_all();
  });
  if (!posted) return std::nullopt;
  std::unique_lock<std::mutex> lock(slot->mutex);
  if (!slot->done.wait_for(lock, deadline, [&] { return slot->result.has_value(); })) {
    markHung(what);
    return std::nullopt;
  }
  return std::move(slot->result);
}

}  // namespace bai::core
