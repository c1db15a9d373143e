#include "plugin_worker.hpp"

namespace bai::core {

PluginWorker::PluginWorker(std::string name) : name_(std::move(name)), queue_(std::make_shared<Queue>()) {
  thread_ = std::thread(&PluginWorker::loop, queue_);
}

PluginWorker::~PluginWorker() {
  bool detach = false;
  {
    std::lock_guard<std::mutex> lock(queue_->mutex);
    queue_->stopping = true;
    detach = queue_->hung;
  }
  queue_->wake.notify_all();
  if (detach) {
    thread_.detach();  // it holds its own reference to the queue
  } else {
    thread_.join();
  }
}

void PluginWorker::loop(std::shared_ptr<Queue> queue) {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock<std::mutex> lock(queue->mutex);
      queue->wake.wait(lock, [&] { return queue->stopping || !queue->tasks.empty(); });
      if (queue->tasks.empty()) return;  // stopping and drained
      job = std::move(queue->tasks.front());
      queue->tasks.pop_front();
    }
    job();
  }
}

bool PluginWorker::post(std::function<void()> job) {
  {
    std::lock_guard<std::mutex> lock(queue_->mutex);
    if (queue_->hung || queue_->stopping) return false;
    queue_->tasks.push_back(std::move(job));
  }
  queue_->wake.notify_one();
  return true;
}

void PluginWorker::markHung(std::string_view what) {
  std::lock_guard<std::mutex> lock(queue_->mutex);
  if (!queue_->hung) queue_->hungCall = what;
  queue_->hung = true;
  queue_->tasks.clear();
}

bool PluginWorker::hung() const {
  std::lock_guard<std::mutex> lock(queue_->mutex);
  return queue_->hung;
}

std::string PluginWorker::hungCall() const {
  std::lock_guard<std::mutex> lock(queue_->mutex);
  return queue_->hungCall;
}

}  // namespace bai::core
