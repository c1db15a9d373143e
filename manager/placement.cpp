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
    // Lost agents are looked for four times per timeout: not at every wake-up, which
    // under heavy heartbeat load would scan every agent thousands of times a second.
    const auto lostCheckEvery = settings_.heartbeatTimeout / 4;
    const auto period = std::min(settings_.schedulerPeriod, lostCheckEvery);
    schedulerWake_.wait_for(lock, period, [this] { return stopping_ || schedulerDirty_; });
    if (stopping_) break;
    // With a long queue, submissions arriving faster than one a millisecond share a round
    // instead of each sequencing the whole queue again; with a short one a round is cheap,
    // and a new session is placed at once.
    constexpr auto kRoundSpacing = std::chrono::milliseconds(1);
    constexpr std::size_t kLongQueue = 32;
    if (const auto since = std::chrono::steady_clock::now() - lastRound_; since < kRoundSpacing && lastRoundPending_ >= kLongQueue) {
      schedulerWake_.wait_for(lock, kRoundSpacing - since, [this] { return stopping_; });
      if (stopping_) break;
    }
    lastRound_ = std::chrono::steady_clock::now();
    schedulerDirty_ = false;
    if (lastRound_ >= nextLostCheck_) {
      detectLostAgents();
      nextLostCheck_ = lastRound_ + lostCheckEvery;
    }
    retryStalled();
    placePending();
  }
}

// One placement round: per scaling group, the group's sequencer orders its pending
// sessions; for each, quotas are checked, the free-capacity index offers the agents
// that fit, the group's selector picks one, and the reservation is committed. A session
// that fits nowhere lets others pass it only up to the group's head-of-line bound.
void Manager::placePending() {
  syncGroups();
  refreshIndexes();
  RoundUsage usage = roundUsage();
  // Each group's pending sessions in submission order: sorted by their sequence numbers,
  // not by looking every comparison up in active_ (a round runs at every submission).
  std::map<std::string, std::vector<std::pair<std::uint64_t, const std::string*>>> pendingByGroup;
  lastRoundPending_ = 0;
  for (const auto& [id, session] : active_) {
    if (session.status != SessionStatus::Pending) continue;
    pendingByGroup[session.scalingGroup].emplace_back(session.enqueueSeq, &id);
    ++lastRoundPending_;
  }
  for (auto& [groupName, bySeq] : pendingByGroup) {
    std::sort(bySeq.begin(), bySeq.end());
    std::vector<std::string> ids;
    ids.reserve(bySeq.size());
    for (const auto& [seq, id] : bySeq) ids.push_back(*id);
    GroupScheduler& group = groupFor(groupName);
    if (!group.policyError.empty()) {
      for (const auto& id : ids) pendingReasons_[id] = group.policyError;
      continue;
    }
    for (const auto& id : sequence(group, ids, usage)) {
      auto it = active_.find(id);
      if (it == active_.end() || it->second.status != SessionStatus::Pending) continue;
      placeOne(group, it->second, usage);
    }
    // Sessions that left the queue need no head-of-line count.
    for (auto it = group.passedBy.begin(); it != group.passedBy.end();) {
      auto session = active_.find(it->first);
      it = session == active_.end() || session->second.status != SessionStatus::Pending ? group.passedBy.erase(it) : std::next(it);
    }
  }
}

// The group's pending sessions (`ids`, in submission order) in the order its sequencer
// wants (submission order if it fails).
std::vector<std::string> Manager::sequence(GroupScheduler& group, std::vector<std::string> ids, const RoundUsage& usage) {
  const auto& slots = group.index.slotOrder();
  std::vector<const char*> slotNames, sessionIds, owners;
  std::vector<std::uint64_t> seqs;
  std::vector<std::vector<double>> requested(slots.size()), allocated(slots.size());
  std::vector<double> capacity;
  for (const auto& slot : slots) {
    slotNames.push_back(slot.c_str());
    capacity.push_back(group.index.capacity(slot).toDouble());
  }
  const auto held = usage.heldInGroup.find(group.config.name);
  for (const auto& id : ids) {
    const SessionRecord& session = active_.at(id);
    sessionIds.push_back(session.id.c_str());
    owners.push_back(session.owner.c_str());
    seqs.push_back(session.enqueueSeq);
    const ResourceSlot* ownerHeld = nullptr;
    if (held != usage.heldInGroup.end()) {
      if (auto it = held->second.find(session.owner); it != held->second.end()) ownerHeld = &it->second;
    }
    for (std::size_t s = 0; s < slots.size(); ++s) {
      requested[s].push_back(session.requested.get(slots[s]).toDouble());
      allocated[s].push_back(ownerHeld ? ownerHeld->get(slots[s]).toDouble() : 0.0);
    }
  }
  std::vector<const double*> requestedRows, allocatedRows;
  for (std::size_t s = 0; s < slots.size(); ++s) {
    requestedRows.push_back(requested[s].data());
    allocatedRows.push_back(allocated[s].data());
  }
  const bai_pending_view view{sizeof(bai_pending_view), static_cast<std::uint32_t>(ids.size()),
                              static_cast<std::uint32_t>(slots.size()), slotNames.data(), sessionIds.data(),
                              owners.data(), seqs.data(), requestedRows.data(), capacity.data(), allocatedRows.data()};
  auto order = group.sequencer->order(view);
  if (!order) {
    metrics_.policyErrors.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::Error, "scaling group '" + group.config.name + "': sequencer " + group.config.sequencer + ": " +
                             order.error().message + "; using submission order");
    return ids;
  }
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (std::uint32_t i : *order) out.push_back(ids[i]);
  return out;
}

void Manager::placeOne(GroupScheduler& group, const SessionRecord& session, RoundUsage& usage) {
  const auto started = std::chrono::steady_clock::now();
  if (!usage.blockedBy[group.config.name].empty()) {
    pendingReasons_[session.id] = "waiting behind session " + usage.blockedBy[group.config.name] + " (head of line)";
    return;
  }
  if (const ResourcePolicyRecord* policy = policyOfOwnerLocked(session.owner)) {
    if (auto shortfall = quotaShortfall(*policy, usage.byOwner[session.owner], session.requested)) {
      pendingReasons_[session.id] = *shortfall;  // over quota: waits, but blocks nobody
      return;
    }
  }
  std::set<std::string> excluded;
  if (auto refused = refusals_.find(session.id); refused != refusals_.end()) {
    for (const auto& [agentId, refusal] : refused->second) excluded.insert(agentId);
  }
  std::string reason;
  auto candidates = group.index.candidates(session, group.selector->preference(), settings_.candidateWindow, excluded, &reason);
  if (candidates.empty()) {
    if (auto refused = refusals_.find(session.id); refused != refusals_.end() && !refused->second.empty()) {
      reason += "; refused by " + refused->second.begin()->first + ": " + refused->second.begin()->second.reason;
    }
    if (hasPriority(group, session)) {
      usage.blockedBy[group.config.name] = session.id;
      reason += "; it now has priority over the sessions behind it";
    }
    pendingReasons_[session.id] = reason;
    return;
  }
  group.index.describe(candidates, usage.sharedDevices, window_);
  std::vector<double> requested;
  for (const auto& slot : group.index.slotOrder()) requested.push_back(session.requested.get(slot).toDouble());
  const bai_session_view sessionView{sizeof(bai_session_view), session.id.c_str(), session.owner.c_str(), requested.data()};
  auto chosen = group.selector->select(sessionView, window_.view);
  if (!chosen) {
    metrics_.policyErrors.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::Error, "scaling group '" + group.config.name + "': selector " + group.config.selector + ": " +
                             chosen.error().message + "; taking the first candidate");
  }
  const AgentView& agent = *candidates[chosen ? *chosen : 0];

  SessionRecord scheduled = session;
  scheduled.status = SessionStatus::Scheduled;
  scheduled.agentId = agent.record.id;
  scheduled.scheduledAtMillis = nowMillis();
  scheduled.statusReason.clear();
  Transition t;
  t.sessions.push_back(scheduled);
  t.reserve.push_back(scheduled.id);
  if (auto done = commit(std::move(t)); !done) {
    pendingReasons_[session.id] = "reservation failed: " + done.error().message;
    return;
  }
  refreshIndexes();
  pendingReasons_.erase(session.id);
  usage.hold(scheduled);
  --usage.byOwner[scheduled.owner].pending;
  for (auto& [waiting, passes] : group.passedBy) ++passes;
  group.passedBy.erase(scheduled.id);
  metrics_.placements.fetch_add(1, std::memory_order_relaxed);
  metrics_.placementLatency.observe(std::chrono::steady_clock::now() - started);
  inFlight_.insert(scheduled.id);
  dispatch([this, id = scheduled.id] { startOnAgent(id); });
}

bool Manager::hasPriority(GroupScheduler& group, const SessionRecord& session) {
  const int passes = group.passedBy.try_emplace(session.id, 0).first->second;
  const bool waitedLong = nowMillis() - session.createdAtMillis >= group.config.holMaxWaitMillis;
  return (passes >= group.config.holMaxPasses || waitedLong) && group.index.couldEverFit(session);
}

Manager::RoundUsage Manager::roundUsage() const {
  RoundUsage usage;
  for (const auto& [id, session] : active_) {
    if (session.status == SessionStatus::Pending) {
      ++usage.byOwner[session.owner].pending;
    } else {
      usage.hold(session);
    }
  }
  return usage;
}

void Manager::RoundUsage::hold(const SessionRecord& session) {
  OwnerUsage& owner = byOwner[session.owner];
  owner.held = owner.held + session.requested;
  ++owner.active;
  ResourceSlot& inGroup = heldInGroup[session.scalingGroup][session.owner];
  inGroup = inGroup + session.requested;
  for (const auto& [slot, amount] : session.requested) {
    const std::string& name = slot.str();
    if (!amount.isZero() && name.size() > 7 && name.compare(name.size() - 7, 7, ".shares") == 0) {
      ++sharedDevices[session.agentId];
      break;
    }
  }
}

// A group without a record of its own runs the manager's default policies.
ScalingGroupRecord Manager::groupRecord(const std::string& name) const {
  if (const ScalingGroupRecord* record = scalingGroupLocked(name)) return *record;
  ScalingGroupRecord record;
  record.name = name;
  record.sequencer = settings_.sequencer;
  record.selector = settings_.selector;
  return record;
}

GroupScheduler& Manager::groupFor(const std::string& name) {
  auto [it, inserted] = groups_.try_emplace(name);
  if (inserted) configureGroup(it->second, groupRecord(name), *policies_);
  return it->second;
}

// Picks up changed scaling group records: new policies, options or slot priorities.
void Manager::syncGroups() {
  for (auto& [name, group] : groups_) {
    const ScalingGroupRecord record = groupRecord(name);
    if (!group.differsFrom(record)) continue;
    const bool newPriority = record.slotPriority != group.config.slotPriority;
    configureGroup(group, record, *policies_);
    if (group.policyError.empty()) {
      log(LogLevel::Info, "scaling group '" + name + "': " + record.sequencer + " / " + record.selector);
    } else {
      log(LogLevel::Error, group.policyError);
    }
    if (!newPriority) continue;
    for (const auto& [agentId, groupName] : indexedGroup_) {
      if (groupName == name) dirtyAgents_.insert(agentId);
    }
  }
}

void Manager::refreshIndexes() {
  for (const auto& id : dirtyAgents_) {
    auto agent = agents_.find(id);
    auto indexed = indexedGroup_.find(id);
    if (indexed != indexedGroup_.end() && (agent == agents_.end() || indexed->second != agent->second.record.scalingGroup)) {
      groupFor(indexed->second).index.remove(id);
      indexedGroup_.erase(indexed);
    }
    if (agent == agents_.end()) continue;
    groupFor(agent->second.record.scalingGroup).index.update(agent->second);
    indexedGroup_[id] = agent->second.record.scalingGroup;
  }
  dirtyAgents_.clear();
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
    // Destroyed while this call was queued: destroySession left the stop to us (the id
    // was in flight). The agent answers 404 if it never got it, and the session is over.
    if (it != active_.end() && it->second.status == SessionStatus::Terminating) {
      inFlight_.insert(id);
      dispatch([this, id] { destroyOnAgent(id); });
    }
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
