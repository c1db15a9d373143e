#include "agent_dispatcher.hpp"

#include "metrics.hpp"

namespace bai::manager {

AgentDispatcher::AgentDispatcher(AgentClient client, DispatchOptions options, Metrics& metrics)
    : client_(std::move(client)), options_(options), metrics_(metrics) {}

AgentDispatcher::~AgentDispatcher() { stop(); }

void AgentDispatcher::start() {
  for (int i = 0; i < options_.threads; ++i) workers_.emplace_back([this] { workerLoop(); });
}

void AgentDispatcher::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& worker : workers_) {
    if (worker.joinable()) worker.join();
  }
  workers_.clear();
}

void AgentDispatcher::markReady(const std::string& agentId, Lane& lane) {
  if (lane.ready || lane.waiting.empty() || lane.running >= options_.perAgent) return;
  lane.ready = true;
  ready_.push_back(agentId);
  wake_.notify_one();
}

void AgentDispatcher::submit(const std::string& agentId, Run run, Dropped dropped, Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  Lane& lane = lanes_[agentId];
  if (lane.waiting.size() >= options_.queuePerAgent) {
    const std::size_t waiting = lane.waiting.size();
    lock.unlock();
    metrics_.agentCallsDropped.fetch_add(1, std::memory_order_relaxed);
    dropped(std::to_string(waiting) + " calls to agent " + agentId + " are already waiting");
    return;
  }
  lane.waiting.push_back(Call{std::move(run), std::move(dropped), deadline});
  markReady(agentId, lane);
}

void AgentDispatcher::get(const std::string& agentId, const std::string& rpcUrl, const std::string& pathAndQuery,
                          ReplyCallback done, std::size_t maxReplyBytes) {
  // Waiting longer than one call may take would answer later than a direct call would.
  const auto deadline = Clock::now() + client_.timeout();
  submit(
      agentId,
      [rpcUrl, pathAndQuery, done, maxReplyBytes](const AgentClient& client) {
        auto reply = client.get(rpcUrl, pathAndQuery, maxReplyBytes);
        if (!reply) return done(refuse(ErrorKind::AgentUnreachable, reply.error().describe()));
        done(std::move(*reply));
      },
      [done](const std::string& why) { done(refuse(ErrorKind::AgentUnreachable, "not sent: " + why)); },
      deadline);
}

void AgentDispatcher::workerLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
    if (stopping_) return;
    const std::string agentId = std::move(ready_.front());
    ready_.pop_front();
    Lane& lane = lanes_[agentId];
    lane.ready = false;
    Call call = std::move(lane.waiting.front());
    lane.waiting.pop_front();
    ++lane.running;
    markReady(agentId, lane);
    lock.unlock();
    if (Clock::now() > call.deadline) {
      metrics_.agentCallsDropped.fetch_add(1, std::memory_order_relaxed);
      call.dropped("it waited past its deadline behind other calls to agent " + agentId);
    } else {
      call.run(client_);
    }
    lock.lock();
    Lane& after = lanes_[agentId];  // lanes_ never erases while a call of the lane runs
    --after.running;
    markReady(agentId, after);
    if (after.running == 0 && after.waiting.empty()) lanes_.erase(agentId);
  }
}

}  // namespace bai::manager
