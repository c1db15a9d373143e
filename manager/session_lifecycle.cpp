#include "session_lifecycle.hpp"

namespace bai::manager {
namespace {

constexpr auto kRetryDelay = std::chrono::seconds(2);

bool agentSessionOver(protocol::SessionState state) {
  return state == protocol::SessionState::Exited || state == protocol::SessionState::Failed ||
         state == protocol::SessionState::Destroyed;
}

SessionStatus endStatusOf(const protocol::SessionInfo& info) {
  return info.state == protocol::SessionState::Failed ? SessionStatus::Error : SessionStatus::Terminated;
}

// Who the session runs as: its keypair's uid/gid as they are now (an admin's set-uid
// applies to the sessions started after it), named by the access key.
std::optional<protocol::SessionOwner> ownerOf(const ClusterState& state, const SessionRecord& session) {
  auto keypair = state.keypairs.find(session.owner);
  if (keypair == state.keypairs.end() || keypair->second.uid == 0) return std::nullopt;
  // Keypairs have no user name yet (the users issue adds one): the access key is the name.
  const KeypairRecord& record = keypair->second;
  const std::string name = protocol::isOwnerName(record.accessKey) ? record.accessKey : "bai-" + std::to_string(record.uid);
  return protocol::SessionOwner{record.uid, record.gid, name};
}

}  // namespace

SessionLifecycle::SessionLifecycle(Ledger& ledger, AgentDispatcher& dispatcher, Metrics& metrics, LogSink log)
    : ledger_(ledger), dispatcher_(dispatcher), metrics_(metrics), log_(std::move(log)) {}

void SessionLifecycle::log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, "manager", message);
}

void SessionLifecycle::queue(const Guard& guard, const std::string& id, SessionCall call, Finish finish, bool onlyIfScheduled) {
  ClusterState& state = ledger_.state(guard);
  auto session = state.active.find(id);
  const std::string lane = session == state.active.end() ? std::string() : session->second.agentId;
  state.inFlight.insert(id);
  auto run = [this, id, call = std::move(call), finish = std::move(finish), onlyIfScheduled](const AgentClient& client) {
    const std::optional<Target> target = targetNow(id, onlyIfScheduled);
    if (!target) return;
    auto answer = call(client, target->rpcUrl);
    const Guard after = ledger_.lock();
    ledger_.state(after).inFlight.erase(id);
    finish(after, *target, std::move(answer));
  };
  auto dropped = [this, id](const std::string& why) {
    const Guard after = ledger_.lock();
    ledger_.state(after).inFlight.erase(id);
    log(LogLevel::Warning, "session " + id + ": agent call not sent (" + why + "); retrying");
    retryLater(after, id);
  };
  dispatcher_.submit(lane, std::move(run), std::move(dropped));
}

std::optional<SessionLifecycle::Target> SessionLifecycle::targetNow(const std::string& id, bool onlyIfScheduled) {
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  auto session = state.active.find(id);
  auto agent = session == state.active.end() ? state.agents.end() : state.agents.find(session->second.agentId);
  if (agent == state.agents.end()) {
    state.inFlight.erase(id);
    return std::nullopt;
  }
  if (onlyIfScheduled && session->second.status != SessionStatus::Scheduled) {
    state.inFlight.erase(id);
    // Destroyed while the start was queued: destroy left the stop to us (the id was in
    // flight). The agent answers 404 if it never got it, and the session is over.
    if (session->second.status == SessionStatus::Terminating) destroy(guard, id);
    return std::nullopt;
  }
  return Target{agent->first, agent->second.record.rpcUrl};
}

protocol::PullPolicy SessionLifecycle::pullPolicyOf(const ClusterState& state, const std::string& group) const {
  const ScalingGroupRecord* record = state.scalingGroup(group);
  if (record == nullptr) return protocol::PullPolicy::Never;
  auto policy = protocol::parsePullPolicy(record->imagePullPolicy);
  if (policy) return *policy;
  // The admin API never stores another: only a hand-edited database gets here.
  log(LogLevel::Error, "scaling group '" + group + "': image_pull_policy: " + policy.error().message + "; using never");
  return protocol::PullPolicy::Never;
}

void SessionLifecycle::start(const Guard& guard, const std::string& id) {
  const ClusterState& state = ledger_.state(guard);
  const SessionRecord& session = state.active.at(id);
  protocol::CreateSessionRequest request;
  request.sessionId = id;
  request.command = session.command;
  request.env = session.env;
  request.slots = session.requested;
  request.owner = ownerOf(state, session);
  request.image = session.image;
  request.pullPolicy = pullPolicyOf(state, session.scalingGroup);
  request.openStdin = session.openStdin;
  request.tty = session.tty;
  request.servicePorts = session.servicePorts;
  for (const auto& mount : session.mounts) request.mounts.push_back(mount.mount);
  // The agent refuses a session without an owner and says so; the log says why here.
  if (!request.owner) log(LogLevel::Error, "session " + id + ": keypair " + session.owner + " has no uid; the agent will refuse it");
  queue(
      guard, id, [request](const AgentClient& client, const std::string& url) { return client.createSession(url, request); },
      [this, id](const Guard& after, const Target& target, auto created) { finishStart(after, id, target, std::move(created)); },
      true);
}

void SessionLifecycle::destroy(const Guard& guard, const std::string& id) {
  queue(
      guard, id, [id](const AgentClient& client, const std::string& url) { return client.destroySession(url, id); },
      [this, id](const Guard& after, const Target&, auto destroyed) { finishDestroy(after, id, std::move(destroyed)); });
}

void SessionLifecycle::verify(const Guard& guard, const std::string& id) {
  queue(
      guard, id, [id](const AgentClient& client, const std::string& url) { return client.session(url, id); },
      [this, id](const Guard& after, const Target&, auto info) { finishVerify(after, id, std::move(info)); });
}

void SessionLifecycle::stopStray(const Guard& guard, const std::string& id, const std::string& agentId,
                                 const std::string& rpcUrl) {
  if (!ledger_.state(guard).inFlight.insert(id).second) return;
  auto clear = [this, id] {
    const Guard after = ledger_.lock();
    ledger_.state(after).inFlight.erase(id);
  };
  dispatcher_.submit(
      agentId,
      [id, rpcUrl, clear](const AgentClient& client) {
        (void)client.destroySession(rpcUrl, id);
        clear();
      },
      [clear](const std::string&) { clear(); });  // the next report lists it again
}

void SessionLifecycle::finishStart(const Guard& guard, const std::string& id, const Target& target,
                                   AgentCall<protocol::SessionInfo> created) {
  ClusterState& state = ledger_.state(guard);
  auto it = state.active.find(id);
  if (it == state.active.end()) {
    // Over meanwhile (cancelled and found absent on the agent): make sure it does not run.
    if (created) stopStray(guard, id, target.agentId, target.rpcUrl);
    return;
  }
  const SessionRecord session = it->second;
  if (!created) {
    const AgentCallError& error = created.error();
    if (error.transport() || error.httpStatus == 503) {
      metrics_.agentCallFailures.fetch_add(1, std::memory_order_relaxed);
      log(LogLevel::Warning, "session " + id + ": agent " + target.agentId + " did not answer the start (" +
                                 error.describe() + "); retrying");
      return retryLater(guard, id);
    }
    return refused(guard, session, target, error);
  }
  state.retryAt.erase(id);
  const protocol::SessionInfo& info = *created;
  if (session.status == SessionStatus::Terminating) return destroy(guard, id);
  if (session.status != SessionStatus::Scheduled) return;
  if (agentSessionOver(info.state)) {
    // A retried create found the session already over: take its result now.
    return end(guard, session, endStatusOf(info), info.reason, info.exitCode, info.endedAtMillis);
  }
  SessionRecord updated = session;
  if (info.state == protocol::SessionState::Running) {
    updated.status = SessionStatus::Running;
    updated.startedAtMillis = info.startedAtMillis != 0 ? info.startedAtMillis : nowMillis();
  } else {
    updated.status = SessionStatus::Preparing;
  }
  Transition t;
  t.sessions.push_back(updated);
  (void)ledger_.commit(guard, std::move(t));  // a store failure is logged; the next report corrects it
}

void SessionLifecycle::refused(const Guard& guard, const SessionRecord& session, const Target& target,
                               const AgentCallError& error) {
  metrics_.agentRefusals.fetch_add(1, std::memory_order_relaxed);
  const std::string reason = "agent " + target.agentId + " refused: " + error.describe();
  log(LogLevel::Info, "session " + session.id + ": " + reason);
  if (session.status == SessionStatus::Terminating) {
    return end(guard, session, SessionStatus::Cancelled, "destroyed before it started");
  }
  // A malformed request (a bad combination of slots, say): no other agent would take it.
  if (error.httpStatus == 400) return end(guard, session, SessionStatus::Error, reason);
  // Busy or failing: try another agent; this one again after its next report.
  SessionRecord updated = session;
  updated.status = SessionStatus::Pending;
  updated.statusReason = reason;
  updated.agentId.clear();
  updated.scheduledAtMillis = 0;
  ledger_.state(guard).refusals[session.id][target.agentId] = error.describe();
  Transition t;
  t.release.push_back(session.id);
  t.sessions.push_back(updated);
  (void)ledger_.commit(guard, std::move(t));
  ledger_.wantPlacement(guard);
}

void SessionLifecycle::finishDestroy(const Guard& guard, const std::string& id, AgentCall<protocol::SessionInfo> destroyed) {
  ClusterState& state = ledger_.state(guard);
  auto it = state.active.find(id);
  if (it == state.active.end()) return;
  if (!destroyed && destroyed.error().httpStatus == 404) {
    return end(guard, it->second, SessionStatus::Cancelled, "destroyed before it started");  // nothing runs there
  }
  if (!destroyed) {
    metrics_.agentCallFailures.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::Warning, "session " + id + ": destroy on its agent failed (" + destroyed.error().describe() + "); retrying");
    return retryLater(guard, id);
  }
  const protocol::SessionInfo& info = *destroyed;
  // Already over on the agent: its exit event may still come, but the answer is here.
  if (agentSessionOver(info.state)) end(guard, it->second, SessionStatus::Terminated, "destroyed", info.exitCode, info.endedAtMillis);
}

// After an agent came back, a session it no longer lists ended while nobody listened:
// its result is asked for (its exit event may also still come and is then a duplicate).
void SessionLifecycle::finishVerify(const Guard& guard, const std::string& id, AgentCall<protocol::SessionInfo> info) {
  ClusterState& state = ledger_.state(guard);
  auto it = state.active.find(id);
  if (it == state.active.end()) return;
  if (info && !agentSessionOver(info->state)) return;  // runs after all: the next report says so
  if (!info && info.error().httpStatus != 404) return retryLater(guard, id);
  if (!info) return end(guard, it->second, SessionStatus::Error, "agent " + it->second.agentId + " no longer knows this session");
  end(guard, it->second, endStatusOf(*info), info->reason, info->exitCode, info->endedAtMillis);
}

void SessionLifecycle::retryLater(const Guard& guard, const std::string& id) {
  ledger_.state(guard).retryAt[id] = std::chrono::steady_clock::now() + kRetryDelay;
}

void SessionLifecycle::retryStalled(const Guard& guard) {
  ClusterState& state = ledger_.state(guard);
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, SessionStatus>> due;
  for (auto it = state.retryAt.begin(); it != state.retryAt.end();) {
    auto session = state.active.find(it->first);
    if (session == state.active.end()) {
      it = state.retryAt.erase(it);
      continue;
    }
    auto agent = state.agents.find(session->second.agentId);
    if (it->second > now || state.inFlight.count(it->first) != 0 || agent == state.agents.end() || !agent->second.alive()) {
      ++it;
      continue;
    }
    due.emplace_back(it->first, session->second.status);
    it = state.retryAt.erase(it);
  }
  for (const auto& [id, status] : due) {
    switch (status) {
      case SessionStatus::Scheduled: start(guard, id); break;
      case SessionStatus::Terminating: destroy(guard, id); break;
      default: verify(guard, id); break;
    }
  }
}

void SessionLifecycle::end(const Guard& guard, SessionRecord session, SessionStatus status, std::string reason,
                           std::optional<int> exitCode, std::int64_t endedAtMillis) {
  session.status = status;
  session.statusReason = std::move(reason);
  if (exitCode) session.exitCode = exitCode;
  session.endedAtMillis = endedAtMillis != 0 ? endedAtMillis : nowMillis();
  Transition t;
  t.sessions.push_back(std::move(session));
  t.release.push_back(t.sessions.back().id);
  (void)ledger_.commit(guard, std::move(t));  // a store failure is logged and counted; the session stays as it was
  ledger_.wantPlacement(guard);
}

}  // namespace bai::manager
