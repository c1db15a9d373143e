// Agents: registration and heartbeats, session events, liveness, and reconciliation
// when an agent comes back.
#include "manager.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <future>
#include <tuple>

namespace bai::manager {
namespace {

// Written at every changed report, so built as text: a plugin's extra_info is JSON text
// already, spliced in after a validity check instead of parsed into a tree and dumped.
std::string pluginsJson(const protocol::AgentState& state) {
  std::string out = "[";
  for (const auto& plugin : state.plugins) {
    if (out.size() > 1) out += ',';
    out += R"({"name":)" + nlohmann::json(plugin.name).dump() + R"(,"version":)" + nlohmann::json(plugin.version).dump() +
           R"(,"key":)" + nlohmann::json(plugin.key).dump() + R"(,"extra_info":)" +
           (nlohmann::json::accept(plugin.extraInfoJson) ? plugin.extraInfoJson : "null") + "}";
  }
  return out + "]";
}

std::string deviceHealthJson(const protocol::AgentState& state) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& device : state.deviceHealth) {
    out.push_back({{"plugin", device.pluginKey}, {"device", device.deviceId}, {"health", device.health}, {"reason", device.reason}});
  }
  return out.dump();
}

// Whether saving `next` would leave `stored`'s row as it is. The digest does not count:
// a restarted manager asks every agent for its full state whatever digest it stored.
bool sameStoredRow(const AgentRecord& stored, const AgentRecord& next) {
  auto fields = [](const AgentRecord& r) {
    return std::tie(r.status, r.rpcUrl, r.region, r.scalingGroup, r.architecture, r.version, r.pluginsJson,
                    r.deviceHealthJson, r.lastEventSeq, r.registeredAtMillis, r.statusChangedAtMillis);
  };
  auto sameFigures = [](const auto& a, const auto& b) {
    return a.first == b.first && a.second.capacity == b.second.capacity && a.second.used == b.second.used &&
           a.second.largest == b.second.largest;
  };
  return fields(stored) == fields(next) &&
         std::equal(stored.slots.begin(), stored.slots.end(), next.slots.begin(), next.slots.end(), sameFigures);
}

bool validRpcUrl(const std::string& url) {
  return (url.rfind("http://", 0) == 0 && url.size() > 7) || (url.rfind("https://", 0) == 0 && url.size() > 8);
}

}  // namespace

void Manager::heartbeat(const std::string& agentId, const protocol::Heartbeat& heartbeat, HeartbeatCallback done) {
  std::optional<ApiResult<protocol::HeartbeatReply>> answer;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    answer = applyHeartbeat(agentId, heartbeat, done);
  }
  if (answer) done(std::move(*answer));
}

ApiResult<protocol::HeartbeatReply> Manager::heartbeat(const std::string& agentId, const protocol::Heartbeat& heartbeat) {
  std::promise<ApiResult<protocol::HeartbeatReply>> answer;
  auto answered = answer.get_future();
  this->heartbeat(agentId, heartbeat, [&answer](ApiResult<protocol::HeartbeatReply> reply) { answer.set_value(std::move(reply)); });
  return answered.get();
}

std::optional<ApiResult<protocol::HeartbeatReply>> Manager::applyHeartbeat(const std::string& agentId,
                                                                           const protocol::Heartbeat& heartbeat,
                                                                           HeartbeatCallback& done) {
  if (heartbeat.agentId != agentId) {
    return apiFailure(400, "invalid-request", "Agent id mismatch",
                      "the URL names agent '" + agentId + "' but the heartbeat '" + heartbeat.agentId + "'");
  }
  metrics_.heartbeats.fetch_add(1, std::memory_order_relaxed);
  const auto now = std::chrono::steady_clock::now();
  auto known = agents_.find(agentId);
  if (!heartbeat.state) {
    // Liveness lives in memory: a heartbeat that changes nothing writes nothing.
    if (known == agents_.end()) return protocol::HeartbeatReply{true};
    AgentView& agent = known->second;
    const bool stale = !agent.fullReportSinceStart || !agent.alive() || agent.record.digest != heartbeat.digest;
    if (agent.alive()) agent.lastSeen = now;
    return protocol::HeartbeatReply{stale};
  }
  metrics_.fullHeartbeats.fetch_add(1, std::memory_order_relaxed);
  const protocol::AgentState& state = *heartbeat.state;
  if (!validRpcUrl(state.rpcAddress)) {
    return apiFailure(400, "invalid-request", "Invalid RPC address",
                      "rpc address '" + state.rpcAddress + "' is not an http:// or https:// URL");
  }
  if (state.scalingGroup.empty()) return apiFailure(400, "invalid-request", "Invalid heartbeat", "scaling group is empty");

  LearnedSlots learned = registry_.compare(state.slotTypes);
  std::set<std::string> refused;
  for (const auto& conflict : learned.conflicts) {
    refused.insert(conflict.slot);
    metrics_.slotTypeConflicts.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::Error, "agent " + agentId + " reports slot " + conflict.slot + " as " + slotTypeName(conflict.reported) +
                             " but the cluster knows it as " + slotTypeName(conflict.known) + "; not offering it");
  }
  for (const auto& [slot, amount] : state.available) {
    if (state.slotTypes.count(slot.str()) == 0 && registry_.find(slot.str()) == nullptr) {
      refused.insert(slot.str());
      log(LogLevel::Error, "agent " + agentId + " offers slot " + slot.str() + " without its type; not offering it");
    }
  }

  const bool isNew = known == agents_.end();
  const bool revived = !isNew && !known->second.alive();
  AgentRecord record = isNew ? AgentRecord{} : known->second.record;
  record.id = agentId;
  record.status = AgentStatus::Alive;
  record.rpcUrl = state.rpcAddress;
  record.region = state.region;
  record.scalingGroup = state.scalingGroup;
  record.architecture = state.architecture;
  record.version = state.version;
  record.digest = heartbeat.digest;
  record.pluginsJson = pluginsJson(state);
  record.deviceHealthJson = deviceHealthJson(state);
  if (isNew) record.registeredAtMillis = nowMillis();
  if (isNew || revived) record.statusChangedAtMillis = nowMillis();
  std::map<std::string, AgentSlotFigures> slots;
  for (const auto& [slot, amount] : state.available) {
    if (refused.count(slot.str()) != 0) continue;
    AgentSlotFigures figures;
    figures.capacity = amount;
    figures.largest = state.largestAllocatable.contains(slot.str()) ? state.largestAllocatable.get(slot) : amount;
    if (auto old = record.slots.find(slot.str()); old != record.slots.end()) figures.used = old->second.used;
    slots[slot.str()] = figures;
  }
  // Reservations on slots the agent no longer offers stay counted until they end.
  for (const auto& [slot, figures] : record.slots) {
    if (slots.count(slot) == 0 && !figures.used.isZero()) slots[slot] = {Quantity(), figures.used, Quantity()};
  }
  record.slots = std::move(slots);

  Transition t;
  t.extra = [&](StoreTransaction& tx) -> Result<void> {
    for (const auto& [slot, type] : learned.added) {
      if (auto done = tx.insertSlotType(slot, type); !done) return done;
    }
    return tx.upsertAgent(record);
  };
  std::set<std::string> reported;
  for (const auto& summary : state.sessions) reported.insert(summary.id);
  if (revived) {
    // Its running processes are the truth for what runs: reservations of sessions it
    // still runs count again.
    for (const auto& [id, session] : active_) {
      if (session.agentId != agentId || reported.count(id) == 0) continue;
      SessionRecord updated = session;
      updated.statusReason.clear();
      t.sessions.push_back(updated);
      t.resume.push_back(id);
    }
  }
  // A report that only changes a known agent's row is saved by the state writer with the
  // reports of other agents, in one transaction; the rest is saved here and now.
  const bool rowOnly = !isNew && !revived && learned.added.empty();
  const bool changed = !rowOnly || known->second.rowUnsaved || !sameStoredRow(known->second.record, record);
  // Once shutdown has begun the writer takes no more rows: they are saved here like the rest.
  const bool saveLater = rowOnly && changed && !stopping_;
  const bool saveNow = changed && !saveLater;
  if (saveNow) {
    if (auto saved = commit(std::move(t)); !saved) {
      return apiFailure(500, "store-error", "The agent's state could not be saved", saved.error().message);
    }
  }
  registry_.add(learned.added);
  for (const auto& [slot, type] : learned.added) log(LogLevel::Info, "slot " + slot + " (" + slotTypeName(type) + ") learned from agent " + agentId);
  AgentView& agent = agents_[agentId];
  // commit() already refreshed the used figures of agents whose reservations changed.
  for (auto& [slot, figures] : record.slots) {
    if (auto current = agent.record.slots.find(slot); current != agent.record.slots.end()) figures.used = current->second.used;
  }
  agent.record = std::move(record);
  if (saveNow) agent.rowUnsaved = false;
  dirtyAgents_.insert(agentId);
  agent.lastSeen = now;
  agent.fullReportSinceStart = true;
  agent.reportedSessions = reported;
  for (const auto& id : reported) agent.unseenPlacements.erase(id);
  for (auto& [sessionId, byAgent] : refusals_) byAgent.erase(agentId);
  if (isNew) log(LogLevel::Info, "agent " + agentId + " registered (" + agent.record.rpcUrl + ", group " + agent.record.scalingGroup + ")");
  if (revived) log(LogLevel::Warning, "agent " + agentId + " is back after being lost");
  reconcile(agent, state, revived);
  notifyScheduler();
  if (!saveLater) return protocol::HeartbeatReply{false};
  unsavedAgents_[agentId].push_back(std::move(done));
  stateWriterWake_.notify_one();
  return std::nullopt;
}

// Group commit of the agents' rows changed by full reports. The writer takes the rows
// from memory under mutex_, then takes the store's write lock *before* letting mutex_
// go: a transaction that saw later memory (a reservation, a lost agent) can only commit
// after this batch, so the batch never overwrites newer figures. Heartbeats are applied
// in memory meanwhile, so the batch grows while the previous one is being written.
void Manager::stateWriterLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    stateWriterWake_.wait(lock, [this] { return stopping_ || !unsavedAgents_.empty(); });
    if (unsavedAgents_.empty()) return;  // stopping, and everything queued is saved
    auto batch = std::exchange(unsavedAgents_, {});
    std::vector<AgentRecord> rows;
    rows.reserve(batch.size());
    for (const auto& [agentId, answers] : batch) rows.push_back(agents_.at(agentId).record);
    auto saved = store_->write([&](StoreTransaction& tx) -> Result<void> {
      lock.unlock();
      for (const auto& row : rows) {
        if (auto done = tx.upsertAgent(row); !done) return done;
      }
      return {};
    });
    if (!lock.owns_lock()) lock.lock();
    metrics_.agentRowBatches.fetch_add(1, std::memory_order_relaxed);
    metrics_.agentRowsSaved.fetch_add(saved ? rows.size() : 0, std::memory_order_relaxed);
    for (const auto& [agentId, answers] : batch) {
      // Unsaved but applied: the agent sends its full state again, and it will be written.
      AgentView& agent = agents_.at(agentId);
      agent.rowUnsaved = !saved;
      if (!saved) agent.fullReportSinceStart = false;
    }
    if (!saved) {
      log(LogLevel::Error, "saving the state of " + std::to_string(rows.size()) + " agents failed: " + saved.error().message);
    }
    lock.unlock();
    const ApiResult<protocol::HeartbeatReply> outcome =
        saved ? ApiResult<protocol::HeartbeatReply>(protocol::HeartbeatReply{false})
              : apiFailure(500, "store-error", "The agent's state could not be saved", saved.error().message);
    for (auto& [agentId, answers] : batch) {
      for (auto& answer : answers) answer(outcome);
    }
    lock.lock();
  }
}

// The agent's list of running sessions against the manager's: sessions the manager
// has ended (or cancelled while the agent was away) are stopped there; sessions the
// manager thinks run but the agent no longer lists are asked about.
void Manager::reconcile(AgentView& agent, const protocol::AgentState& state, bool revived) {
  const std::string& agentId = agent.record.id;
  for (const auto& summary : state.sessions) {
    auto it = active_.find(summary.id);
    if (it != active_.end() && it->second.agentId == agentId) {
      if (it->second.status == SessionStatus::Terminating && inFlight_.count(summary.id) == 0) {
        inFlight_.insert(summary.id);
        dispatch([this, id = summary.id] { destroyOnAgent(id); });
      }
      continue;
    }
    if (it != active_.end()) continue;  // placed elsewhere now; the agent's copy is stopped below
    // Not active here: ended (or never known). Ended ones must not run.
    std::optional<SessionRecord> stored;
    (void)store_->read([&](StoreTransaction& tx) -> Result<void> {
      auto row = tx.session(summary.id);
      if (row && *row) stored = **row;
      return {};
    });
    if (!stored) {
      if (unknownSessionsLogged_.insert(summary.id).second) {
        log(LogLevel::Warning, "agent " + agentId + " runs session " + summary.id + ", which this manager never placed");
      }
      continue;
    }
    if (inFlight_.insert(summary.id).second) {
      log(LogLevel::Info, "agent " + agentId + " still runs ended session " + summary.id + "; stopping it");
      dispatch([this, id = summary.id, rpcUrl = agent.record.rpcUrl] {
        (void)agentClient_.destroySession(rpcUrl, id);
        std::lock_guard<std::mutex> lock(mutex_);
        inFlight_.erase(id);
      });
    }
  }
  if (!revived) return;
  std::set<std::string> reported;
  for (const auto& summary : state.sessions) reported.insert(summary.id);
  for (const auto& [id, session] : active_) {
    if (session.agentId != agentId || reported.count(id) != 0 || inFlight_.count(id) != 0) continue;
    if (session.status == SessionStatus::Running || session.status == SessionStatus::Terminating) {
      inFlight_.insert(id);
      dispatch([this, id = id] { verifyOnAgent(id); });
    }
  }
}

ApiResult<protocol::EventAck> Manager::events(const std::string& agentId, const protocol::EventBatch& batch) {
  if (batch.agentId != agentId) {
    return apiFailure(400, "invalid-request", "Agent id mismatch",
                      "the URL names agent '" + agentId + "' but the batch '" + batch.agentId + "'");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  auto agent = agents_.find(agentId);
  if (agent == agents_.end()) {
    return apiFailure(409, "unknown-agent", "Agent not registered", "agent '" + agentId + "' must send a full heartbeat first");
  }
  std::uint64_t last = agent->second.record.lastEventSeq;
  std::vector<protocol::SessionEvent> events = batch.events;
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) { return a.seq < b.seq; });
  Transition t;
  std::map<std::string, SessionRecord> changed;
  std::uint64_t applied = 0, duplicates = 0;
  for (const auto& event : events) {
    if (event.seq <= last) {
      ++duplicates;  // delivered before; the agent did not get our acknowledgement
      continue;
    }
    last = event.seq;
    ++applied;
    auto current = changed.count(event.sessionId) != 0 ? changed.find(event.sessionId) : changed.end();
    if (current == changed.end()) {
      auto it = active_.find(event.sessionId);
      if (it == active_.end() || it->second.agentId != agentId) continue;  // over already, or not placed there
      current = changed.emplace(event.sessionId, it->second).first;
    }
    SessionRecord& session = current->second;
    if (isFinal(session.status)) continue;
    switch (event.kind) {
      case protocol::EventKind::Started:
        if (session.status == SessionStatus::Scheduled || session.status == SessionStatus::Preparing) {
          session.status = SessionStatus::Running;
        }
        session.startedAtMillis = event.atMillis;
        break;
      case protocol::EventKind::Exited:
        session.statusReason = session.status == SessionStatus::Terminating ? "destroyed" : "exited";
        session.status = SessionStatus::Terminated;
        session.exitCode = event.exitCode;
        session.endedAtMillis = event.atMillis;
        t.release.push_back(session.id);
        break;
      case protocol::EventKind::Failed:
        session.status = SessionStatus::Error;
        session.statusReason = event.reason;
        session.endedAtMillis = event.atMillis;
        t.release.push_back(session.id);
        break;
    }
  }
  for (auto& [id, session] : changed) t.sessions.push_back(std::move(session));
  t.extra = [&](StoreTransaction& tx) { return tx.setAgentLastEventSeq(agentId, last); };
  if (auto done = commit(std::move(t)); !done) {
    return apiFailure(500, "store-error", "The events could not be saved", done.error().message);
  }
  agent->second.record.lastEventSeq = last;
  metrics_.events.fetch_add(applied, std::memory_order_relaxed);
  metrics_.duplicateEvents.fetch_add(duplicates, std::memory_order_relaxed);
  if (applied != 0) notifyScheduler();
  return protocol::EventAck{last};
}

// Agents silent past the timeout are LOST: sessions that had not started there fail,
// running ones keep their state (marked) but stop counting against its capacity.
void Manager::detectLostAgents() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& [agentId, agent] : agents_) {
    if (!agent.alive() || now - agent.lastSeen <= settings_.heartbeatTimeout) continue;
    Transition t;
    const std::int64_t at = nowMillis();
    for (const auto& [id, session] : active_) {
      if (session.agentId != agentId) continue;
      SessionRecord updated = session;
      if (session.status == SessionStatus::Scheduled || session.status == SessionStatus::Preparing) {
        updated.status = SessionStatus::Error;
        updated.statusReason = "agent " + agentId + " was lost before the session started";
        updated.endedAtMillis = at;
        t.release.push_back(id);
      } else {
        updated.statusReason = "agent " + agentId + " lost";
        t.suspend.push_back(id);
      }
      t.sessions.push_back(updated);
    }
    t.extra = [&, id = agentId](StoreTransaction& tx) { return tx.setAgentStatus(id, AgentStatus::Lost, at); };
    if (auto done = commit(std::move(t)); !done) continue;  // logged; tried again next round
    agent.record.status = AgentStatus::Lost;
    dirtyAgents_.insert(agentId);
    agent.record.statusChangedAtMillis = at;
    agent.unseenPlacements.clear();
    agent.fullReportSinceStart = false;
    metrics_.agentsLost.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::Warning, "agent " + agentId + " is LOST: no heartbeat for " +
                               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - agent.lastSeen).count()) + " s");
  }
}

}  // namespace bai::manager
