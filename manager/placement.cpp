// The placement loop and the calls that carry its decisions to agents.
#include "manager.hpp"

namespace bai::manager {
namespace {

constexpr auto kRetryDelay = std::chrono::seconds(2);

bool agentSessionOver(protocol::SessionState state) {
  return state == protocol::SessionState::Exited || state == protocol::SessionState::Failed ||
         state == protocol::SessionState::Destroyed;
}

}  // namespace

template <class Call>
auto Manager::callSessionAgent(std::unique_lock<std::mutex>& lock, const std::string& id, Call call)
    -> std::optional<decltype(call(std::string()))> {
  auto session = active_.find(id);
  auto agent = session == active_.end() ? agents_.end() : agents_.find(session->second.agentId);
  if (session == active_.end() || agent == agents_.end()) {
    inFlight_.erase(id);
    return std::nullopt;
  }
  const std::string rpcUrl = agent->second.record.rpcUrl;
  lock.unlock();
  auto result = call(rpcUrl);
  lock.lock();
  inFlight_.erase(id);
  return result;
}

void Manager::schedulerLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    // Lost agents are looked for at least four times per timeout.
    const auto period = std::min(settings_.schedulerPeriod, settings_.heartbeatTimeout / 4);
    schedulerWake_.wait_for(lock, period, [this] { return stopping_ || schedulerDirty_; });
    if (stopping_) break;
    schedulerDirty_ = false;
    detectLostAgents();
    retryStalled();
    placePending();
  }
}

// FIFO per scaling group: sessions are tried in the order they came; one that fits
// nowhere waits (with its reason) without holding back those behind it.
void Manager::placePending() {
  std::vector<std::string> pending;
  for (const auto& [id, session] : active_) {
    if (session.status == SessionStatus::Pending) pending.push_back(id);
  }
  std::sort(pending.begin(), pending.end(),
            [this](const auto& a, const auto& b) { return active_.at(a).enqueueSeq < active_.at(b).enqueueSeq; });
  for (const auto& id : pending) {
    auto it = active_.find(id);
    if (it == active_.end() || it->second.status != SessionStatus::Pending) continue;
    SessionRecord session = it->second;
    placeOne(session);
  }
}

void Manager::placeOne(SessionRecord& session) {
  const auto started = std::chrono::steady_clock::now();
  std::set<std::string> excluded;
  if (auto refused = refusals_.find(session.id); refused != refusals_.end()) {
    for (const auto& [agentId, refusal] : refused->second) excluded.insert(agentId);
  }
  PlacementChoice choice = choosePlacement(session, agents_, *selector_, excluded);
  if (choice.agent == nullptr) {
    std::string reason = choice.reason;
    if (auto refused = refusals_.find(session.id); refused != refusals_.end() && !refused->second.empty()) {
      reason += "; refused by " + refused->second.begin()->first + ": " + refused->second.begin()->second.reason;
    }
    pendingReasons_[session.id] = reason;
    return;
  }
  SessionRecord scheduled = session;
  scheduled.status = SessionStatus::Scheduled;
  scheduled.agentId = choice.agent->record.id;
  scheduled.scheduledAtMillis = nowMillis();
  scheduled.statusReason.clear();
  Transition t;
  t.sessions.push_back(scheduled);
  t.reserve.push_back(scheduled.id);
  if (auto done = commit(std::move(t)); !done) {
    pendingReasons_[session.id] = "reservation failed: " + done.error().message;
    return;
  }
  pendingReasons_.erase(session.id);
  metrics_.placements.fetch_add(1, std::memory_order_relaxed);
  metrics_.placementLatency.observe(std::chrono::steady_clock::now() - started);
  inFlight_.insert(scheduled.id);
  dispatch([this, id = scheduled.id] { startOnAgent(id); });
}

void Manager::dispatch(std::function<void()> job) {
  jobs_.push_back(std::move(job));
  dispatchWake_.notify_one();
}

void Manager::dispatchLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    dispatchWake_.wait(lock, [this] { return stopping_ || !jobs_.empty(); });
    if (stopping_) return;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    job();
    lock.lock();
  }
}

// Asks the chosen agent to start the session (idempotent by id, so retrying after a
// timeout or a manager restart cannot start it twice).
void Manager::startOnAgent(const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = active_.find(id);
  if (it == active_.end() || it->second.status != SessionStatus::Scheduled) {
    inFlight_.erase(id);
    return;
  }
  const protocol::CreateSessionRequest request{id, it->second.command, it->second.env, it->second.requested};
  const std::string agentId = it->second.agentId;
  std::string rpcUrl;
  auto call = callSessionAgent(lock, id, [&](const std::string& url) {
    rpcUrl = url;
    return agentClient_.createSession(url, request);
  });
  if (!call) return;
  auto& created = *call;
  it = active_.find(id);
  if (it == active_.end()) {
    // Over meanwhile (cancelled and found absent on the agent): make sure it does not run.
    if (created) {
      inFlight_.insert(id);
      dispatch([this, id, rpcUrl] {
        (void)agentClient_.destroySession(rpcUrl, id);
        std::lock_guard<std::mutex> relock(mutex_);
        inFlight_.erase(id);
      });
    }
    return;
  }
  SessionRecord session = it->second;
  if (!created) {
    const AgentCallError& error = created.error();
    if (error.transport() || error.httpStatus == 503) {
      metrics_.agentCallFailures.fetch_add(1, std::memory_order_relaxed);
      log(LogLevel::Warning, "session " + id + ": agent " + agentId + " did not answer the start (" + error.describe() +
                                 "); retrying");
      retryAt_[id] = std::chrono::steady_clock::now() + kRetryDelay;
      return;
    }
    metrics_.agentRefusals.fetch_add(1, std::memory_order_relaxed);
    const std::string reason = "agent " + agentId + " refused: " + error.describe();
    log(LogLevel::Info, "session " + id + ": " + reason);
    if (session.status == SessionStatus::Terminating) return endSession(session, SessionStatus::Cancelled, "destroyed before it started");
    // A malformed request (a bad combination of slots, say): no other agent would take it.
    if (error.httpStatus == 400) return endSession(session, SessionStatus::Error, reason);
    // Busy or failing: try another agent; this one again after its next report.
    SessionRecord updated = session;
    updated.status = SessionStatus::Pending;
    updated.statusReason = reason;
    updated.agentId.clear();
    updated.scheduledAtMillis = 0;
    refusals_[id][agentId] = Refusal{error.describe()};
    Transition t;
    t.release.push_back(id);
    t.sessions.push_back(updated);
    (void)commit(std::move(t));
    notifyScheduler();
    return;
  }
  retryAt_.erase(id);
  const protocol::SessionInfo& info = *created;
  SessionRecord updated = session;
  if (session.status == SessionStatus::Terminating) {
    inFlight_.insert(id);
    dispatch([this, id] { destroyOnAgent(id); });
    return;
  }
  if (session.status != SessionStatus::Scheduled) return;
  if (agentSessionOver(info.state)) {
    // A retried create found the session already over: take its result now.
    return endSession(session, info.state == protocol::SessionState::Failed ? SessionStatus::Error : SessionStatus::Terminated,
                      info.reason, info.exitCode, info.endedAtMillis);
  }
  if (info.state == protocol::SessionState::Running) {
    updated.status = SessionStatus::Running;
    updated.startedAtMillis = info.startedAtMillis != 0 ? info.startedAtMillis : nowMillis();
  } else {
    updated.status = SessionStatus::Preparing;
  }
  Transition t;
  t.sessions.push_back(updated);
  (void)commit(std::move(t));
}

void Manager::destroyOnAgent(const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto destroyed = callSessionAgent(lock, id, [&](const std::string& rpcUrl) { return agentClient_.destroySession(rpcUrl, id); });
  auto it = active_.find(id);
  if (!destroyed || it == active_.end()) return;
  if (!*destroyed && destroyed->error().httpStatus == 404) {
    return endSession(it->second, SessionStatus::Cancelled, "destroyed before it started");  // nothing runs there
  }
  if (!*destroyed) {
    metrics_.agentCallFailures.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::Warning, "session " + id + ": destroy on its agent failed (" + destroyed->error().describe() + "); retrying");
    retryAt_[id] = std::chrono::steady_clock::now() + kRetryDelay;
    return;
  }
  const protocol::SessionInfo& info = **destroyed;
  // Already over on the agent: its exit event may still come, but the answer is here.
  if (agentSessionOver(info.state)) endSession(it->second, SessionStatus::Terminated, "destroyed", info.exitCode, info.endedAtMillis);
}

// After an agent came back, a session it no longer lists ended while nobody listened:
// ask it for the result (its exit event may also still come and is then a duplicate).
void Manager::verifyOnAgent(const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto info = callSessionAgent(lock, id, [&](const std::string& rpcUrl) { return agentClient_.session(rpcUrl, id); });
  auto it = active_.find(id);
  if (!info || it == active_.end()) return;
  if (*info && !agentSessionOver((*info)->state)) return;  // runs after all: the next report says so
  if (!*info && info->error().httpStatus != 404) {
    retryAt_[id] = std::chrono::steady_clock::now() + kRetryDelay;
    return;
  }
  if (!*info) return endSession(it->second, SessionStatus::Error, "agent " + it->second.agentId + " no longer knows this session");
  const protocol::SessionInfo& over = **info;
  endSession(it->second, over.state == protocol::SessionState::Failed ? SessionStatus::Error : SessionStatus::Terminated,
             over.reason, over.exitCode, over.endedAtMillis);
}

// Calls that got no answer are tried again while their agent is alive.
void Manager::retryStalled() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = retryAt_.begin(); it != retryAt_.end();) {
    const std::string id = it->first;
    auto session = active_.find(id);
    if (session == active_.end()) {
      it = retryAt_.erase(it);
      continue;
    }
    auto agent = agents_.find(session->second.agentId);
    if (it->second > now || inFlight_.count(id) != 0 || agent == agents_.end() || !agent->second.alive()) {
      ++it;
      continue;
    }
    it = retryAt_.erase(it);
    inFlight_.insert(id);
    switch (session->second.status) {
      case SessionStatus::Scheduled: dispatch([this, id] { startOnAgent(id); }); break;
      case SessionStatus::Terminating: dispatch([this, id] { destroyOnAgent(id); }); break;
      default: dispatch([this, id] { verifyOnAgent(id); }); break;
    }
  }
}

}  // namespace bai::manager
