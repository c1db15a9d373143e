// Every call the manager makes to an agent (create, destroy, status, logs, alloc-map)
// runs here, on the dispatcher's own threads: never on an API thread, never under the
// ledger's lock. Calls to one agent run at most `perAgent` at a time and wait in that
// agent's lane, so a hung agent holds at most `perAgent` threads and delays nobody
// else; a call still waiting at its deadline is dropped instead of sent late.
//
// Threads: submit() from any thread; jobs run on the worker threads; the lanes are
// guarded by mutex_, which is never held while a job runs.
#pragma once

#include "agent_client.hpp"
#include "domain_error.hpp"

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bai::manager {

struct Metrics;

struct DispatchOptions {
  int threads = 4;
  int perAgent = 2;               // calls to one agent running at once
  std::size_t queuePerAgent = 256;  // calls waiting for one agent; more are dropped at once
};

class AgentDispatcher {
 public:
  using Clock = std::chrono::steady_clock;
  // Runs a call on a worker thread.
  using Run = std::function<void(const AgentClient& client)>;
  // Says why a call was not sent (its lane is full, or its deadline passed in the queue).
  using Dropped = std::function<void(const std::string& why)>;

  AgentDispatcher(AgentClient client, DispatchOptions options, Metrics& metrics);
  ~AgentDispatcher();
  AgentDispatcher(const AgentDispatcher&) = delete;
  AgentDispatcher& operator=(const AgentDispatcher&) = delete;

  void start();
  // Stops the workers after the calls running now; waiting calls are neither run nor dropped.
  void stop();

  // Queues `run` in agent `agentId`'s lane. `dropped` runs instead (maybe on this thread)
  // when the lane is full or `deadline` passes before a worker takes the call.
  void submit(const std::string& agentId, Run run, Dropped dropped, Clock::time_point deadline = Clock::time_point::max());

  // A GET passed through (logs, alloc-map): the agent's answer whatever its status, or
  // AgentUnreachable when it gave none, a longer one than `maxReplyBytes`, or the call
  // was dropped. `done` runs exactly once, on a worker thread or, when dropped, maybe on
  // this one.
  using ReplyCallback = std::function<void(Outcome<AgentReply>)>;
  void get(const std::string& agentId, const std::string& rpcUrl, const std::string& pathAndQuery, ReplyCallback done,
           std::size_t maxReplyBytes = AgentClient::kMaxReplyBytes);

  std::chrono::milliseconds callTimeout() const { return client_.timeout(); }

 private:
  struct Call {
    Run run;
    Dropped dropped;
    Clock::time_point deadline;
  };
  struct Lane {
    std::deque<Call> waiting;
    int running = 0;
    bool ready = false;  // listed in ready_
  };

  void workerLoop();
  void markReady(const std::string& agentId, Lane& lane);

  AgentClient client_;
  DispatchOptions options_;
  Metrics& metrics_;

  std::mutex mutex_;
  std::condition_variable wake_;
  std::map<std::string, Lane> lanes_;
  std::deque<std::string> ready_;  // agents whose lane has a call to run and room to run it
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace bai::manager
