// Agents: registration and heartbeats, session events, liveness, and reconciliation
// when an agent comes back.
#include "agent_tracker.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
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
           (nlohmann::json::accept(plugin.extraInfoJson) ? plugin.extraInfoJson : "null") +
           (plugin.withdrawn ? R"(,"withdrawn":)" + nlohmann::json(*plugin.withdrawn).dump() : "") + "}";
  }
  return out + "]";
}

std::map<std::string, std::string> withdrawnPlugins(const std::string& agentId, const protocol::AgentState& state) {
  std::map<std::string, std::string> out;
  for (const auto& plugin : state.plugins) {
    if (plugin.withdrawn) out[plugin.key] = "plugin " + plugin.name + " withdrawn on agent " + agentId + ": " + *plugin.withdrawn;
  }
  return out;
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
                    r.deviceHealthJson, r.lastEventSeq, r.registeredAtMillis, r.statusChangedAtMillis, r.runtimes,
                    r.images);
  };
  auto sameFigures = [](const auto& a, const auto& b) {
    return a.first == b.first && a.second.capacity == b.second.capacity && a.second.used == b.second.used &&
           a.second.largest == b.second.largest;
  };
  return fields(stored) == fields(next) &&
         std::equal(stored.slots.begin(), stored.slots.end(), next.slots.begin(), next.slots.end(), sameFigures);
}

// One event of a session placed on the reporting agent.
void applyEvent(SessionRecord& session, const protocol::SessionEvent& event) {
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
      break;
    case protocol::EventKind::Failed:
      session.status = SessionStatus::Error;
      session.statusReason = event.reason;
      session.endedAtMillis = event.atMillis;
      break;
  }
}

bool validRpcUrl(const std::string& url) {
  return (url.rfind("http://", 0) == 0 && url.size() > 7) || (url.rfind("https://", 0) == 0 && url.size() > 8);
}

}  // namespace

AgentTracker::AgentTracker(Ledger& ledger, SessionLifecycle& lifecycle, Metrics& metrics, LogSink log)
    : ledger_(ledger), lifecycle_(lifecycle), metrics_(metrics), log_(std::move(log)) {}

AgentTracker::~AgentTracker() { stop(); }

void AgentTracker::log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, "manager", message);
}

void AgentTracker::start() {
  writer_ = std::thread([this] { writerLoop(); });
}

void AgentTracker::stop() {
  writerWake_.notify_all();
  if (writer_.joinable()) writer_.join();
}

void AgentTracker::heartbeat(const std::string& agentId, const protocol::Heartbeat& heartbeat, HeartbeatCallback done) {
  Applied applied;
  {
    const Guard guard = ledger_.lock();
    applied = apply(guard, agentId, heartbeat, done);
  }
  if (!applied.notActive.empty()) stopEnded(agentId, applied.rpcUrl, applied.notActive);
  if (applied.answer) done(std::move(*applied.answer));
}

AgentTracker::Applied AgentTracker::apply(const Guard& guard, const std::string& agentId,
                                          const protocol::Heartbeat& heartbeat, HeartbeatCallback& done) {
  Applied out;
  if (heartbeat.agentId != agentId) {
    out.answer = refuse(ErrorKind::InvalidRequest,
                        "the URL names agent '" + agentId + "' but the heartbeat '" + heartbeat.agentId + "'");
    return out;
  }
  metrics_.heartbeats.fetch_add(1, std::memory_order_relaxed);
  ClusterState& state = ledger_.state(guard);
  auto known = state.agents.find(agentId);
  if (!heartbeat.state) {
    // Liveness lives in memory: a heartbeat that changes nothing writes nothing.
    if (known == state.agents.end()) {
      out.answer = protocol::HeartbeatReply{true};
      return out;
    }
    AgentView& agent = known->second;
    const bool stale = !agent.fullReportSinceStart || !agent.alive() || agent.record.digest != heartbeat.digest;
    if (agent.alive()) agent.lastSeen = std::chrono::steady_clock::now();
    out.answer = protocol::HeartbeatReply{stale};
    return out;
  }
  bool saveLater = false;
  auto reply = applyFullReport(guard, agentId, heartbeat, saveLater, out.notActive);
  out.rpcUrl = heartbeat.state->rpcAddress;
  if (!saveLater) {
    out.answer = std::move(reply);
    return out;
  }
  unsaved_[agentId].push_back(std::move(done));
  writerWake_.notify_one();
  return out;
}

namespace {

// The row a full report makes of the agent's stored one (`record`, empty when new):
// slots the report refuses are left out; reservations on slots it no longer offers stay
// counted until they end.
void takeReport(AgentRecord& record, const protocol::Heartbeat& heartbeat, const std::set<std::string>& refused) {
  const protocol::AgentState& state = *heartbeat.state;
  record.status = AgentStatus::Alive;
  record.rpcUrl = state.rpcAddress;
  record.region = state.region;
  record.scalingGroup = state.scalingGroup;
  record.architecture = state.architecture;
  record.version = state.version;
  record.digest = heartbeat.digest;
  record.pluginsJson = pluginsJson(state);
  record.deviceHealthJson = deviceHealthJson(state);
  takeInventory(record, protocol::RuntimeInventory{state.runtimes, state.images});
  std::map<std::string, AgentSlotFigures> slots;
  for (const auto& [slot, amount] : state.available) {
    if (refused.count(slot.str()) != 0) continue;
    AgentSlotFigures figures;
    figures.capacity = amount;
    figures.largest = state.largestAllocatable.contains(slot.str()) ? state.largestAllocatable.get(slot) : amount;
    if (auto old = record.slots.find(slot.str()); old != record.slots.end()) figures.used = old->second.used;
    slots[slot.str()] = figures;
  }
  for (const auto& [slot, figures] : record.slots) {
    if (slots.count(slot) == 0 && !figures.used.isZero()) slots[slot] = {Quantity(), figures.used, Quantity()};
  }
  record.slots = std::move(slots);
}

}  // namespace

void takeInventory(AgentRecord& record, const protocol::RuntimeInventory& inventory) {
  record.runtimes.clear();
  for (const auto& runtime : inventory.runtimes) record.runtimes.push_back({runtime.kind, runtime.available, runtime.reason});
  // An agent from before runtimes sends an empty list, never one without any runtime: it
  // runs host processes, as one that sends no list does.
  if (record.runtimes.empty()) record.runtimes.push_back({protocol::kProcessRuntime, true, ""});
  record.images.clear();
  for (const auto& image : inventory.images) record.images.push_back({image.name, image.id, image.sizeBytes});
}

Outcome<AgentRecord> AgentTracker::takeRefresh(const std::string& agentId, const protocol::RuntimeInventory& inventory) {
  const Guard guard = ledger_.lock();
  ClusterState& cluster = ledger_.state(guard);
  auto known = cluster.agents.find(agentId);
  if (known == cluster.agents.end()) return refuse(ErrorKind::UnknownAgent, "no agent '" + agentId + "'");
  AgentRecord record = known->second.record;
  takeInventory(record, inventory);
  if (record.runtimes == known->second.record.runtimes && record.images == known->second.record.images) return record;
  Transition t;
  t.extra = [&](StoreTransaction& tx) { return tx.upsertAgent(record); };
  if (auto saved = ledger_.commit(guard, std::move(t)); !saved) return refuse(ErrorKind::StoreFailed, saved.error().message);
  AgentView& agent = known->second;
  agent.record.runtimes = record.runtimes;
  agent.record.images = record.images;
  cluster.dirtyAgents.insert(agentId);
  ledger_.wantPlacement(guard);
  return agent.record;
}

Outcome<protocol::HeartbeatReply> AgentTracker::applyFullReport(const Guard& guard, const std::string& agentId,
                                                                const protocol::Heartbeat& heartbeat, bool& saveLater,
                                                                std::vector<std::string>& notActive) {
  metrics_.fullHeartbeats.fetch_add(1, std::memory_order_relaxed);
  ClusterState& cluster = ledger_.state(guard);
  const protocol::AgentState& state = *heartbeat.state;
  if (!validRpcUrl(state.rpcAddress)) {
    return refuse(ErrorKind::InvalidRequest, "rpc address '" + state.rpcAddress + "' is not an http:// or https:// URL");
  }
  if (state.scalingGroup.empty()) return refuse(ErrorKind::InvalidRequest, "scaling group is empty");
  const LearnedSlots learned = cluster.registry.compare(state.slotTypes);
  const std::set<std::string> refused = refusedSlots(cluster.registry, learned, agentId, state);
  auto known = cluster.agents.find(agentId);
  const bool isNew = known == cluster.agents.end();
  const bool revived = !isNew && !known->second.alive();
  AgentRecord record = isNew ? AgentRecord{} : known->second.record;
  record.id = agentId;
  takeReport(record, heartbeat, refused);
  if (isNew) record.registeredAtMillis = nowMillis();
  if (isNew || revived) record.statusChangedAtMillis = nowMillis();

  Transition t;
  t.extra = [&](StoreTransaction& tx) -> Result<void> {
    for (const auto& [slot, type] : learned.added) {
      if (auto done = tx.insertSlotType(slot, type); !done) return done;
    }
    for (const auto& [slot, type] : learned.refined) {
      if (auto done = tx.refineSlotType(slot, type); !done) return done;
    }
    return tx.upsertAgent(record);
  };
  std::set<std::string> reported;
  for (const auto& summary : state.sessions) reported.insert(summary.id);
  if (revived) {
    // Its running processes are the truth for what runs: reservations of sessions it
    // still runs count again.
    for (const auto& [id, session] : cluster.active) {
      if (session.agentId != agentId || reported.count(id) == 0) continue;
      SessionRecord updated = session;
      updated.statusReason.clear();
      t.sessions.push_back(updated);
      t.resume.push_back(id);
    }
  }
  // A report that only changes a known agent's row is saved by the state writer with the
  // reports of other agents, in one transaction; the rest is saved here and now.
  const bool rowOnly = !isNew && !revived && learned.added.empty() && learned.refined.empty();
  const bool changed = !rowOnly || known->second.rowUnsaved || !sameStoredRow(known->second.record, record);
  // Once shutdown has begun the writer takes no more rows: they are saved here like the rest.
  saveLater = rowOnly && changed && !cluster.stopping;
  const bool saveNow = changed && !saveLater;
  if (saveNow) {
    if (auto saved = ledger_.commit(guard, std::move(t)); !saved) return refuse(ErrorKind::StoreFailed, saved.error().message);
  }
  cluster.registry.add(learned);
  for (const auto& [slot, type] : learned.added) log(LogLevel::Info, "slot " + slot + " (" + slotTypeName(type) + ") learned from agent " + agentId);
  AgentView& agent = cluster.agents[agentId];
  // commit() already refreshed the used figures of agents whose reservations changed.
  for (auto& [slot, figures] : record.slots) {
    if (auto current = agent.record.slots.find(slot); current != agent.record.slots.end()) figures.used = current->second.used;
  }
  agent.record = std::move(record);
  agent.quanta = state.slotQuanta;
  if (saveNow) agent.rowUnsaved = false;
  cluster.dirtyAgents.insert(agentId);
  agent.lastSeen = std::chrono::steady_clock::now();
  agent.fullReportSinceStart = true;
  agent.reportedSessions = reported;
  agent.withdrawnPlugins = withdrawnPlugins(agentId, state);
  for (const auto& id : reported) agent.unseenPlacements.erase(id);
  for (auto& [sessionId, byAgent] : cluster.refusals) byAgent.erase(agentId);
  if (isNew) log(LogLevel::Info, "agent " + agentId + " registered (" + agent.record.rpcUrl + ", group " + agent.record.scalingGroup + ")");
  if (revived) log(LogLevel::Warning, "agent " + agentId + " is back after being lost");
  notActive = reconcile(guard, agent, state, revived);
  ledger_.wantPlacement(guard);
  return protocol::HeartbeatReply{false};
}

// Slots of a report that are not offered: another type than the cluster knows, or no type.
std::set<std::string> AgentTracker::refusedSlots(const SlotRegistry& registry, const LearnedSlots& learned,
                                                 const std::string& agentId, const protocol::AgentState& state) const {
  std::set<std::string> refused;
  for (const auto& conflict : learned.conflicts) {
    refused.insert(conflict.slot);
    metrics_.slotTypeConflicts.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::Error, "agent " + agentId + " reports slot " + conflict.slot + " as " + slotTypeName(conflict.reported) +
                             " but the cluster knows it as " + slotTypeName(conflict.known) + "; not offering it");
  }
  for (const auto& [slot, amount] : state.available) {
    if (state.slotTypes.count(slot.str()) == 0 && registry.find(slot.str()) == nullptr) {
      refused.insert(slot.str());
      log(LogLevel::Error, "agent " + agentId + " offers slot " + slot.str() + " without its type; not offering it");
    }
  }
  return refused;
}

// Group commit of the agents' rows changed by full reports. The writer takes the rows
// from memory under the ledger's lock, then takes the store's write lock *before*
// letting the ledger's lock go: a transaction that saw later memory (a reservation, a
// lost agent) can only commit after this batch, so the batch never overwrites newer
// figures. Heartbeats are applied in memory meanwhile, so the batch grows while the
// previous one is being written.
void AgentTracker::writerLoop() {
  Guard guard = ledger_.lock();
  while (true) {
    writerWake_.wait(guard, [this, &guard] { return ledger_.state(guard).stopping || !unsaved_.empty(); });
    if (unsaved_.empty()) return;  // stopping, and everything queued is saved
    auto batch = std::exchange(unsaved_, {});
    std::vector<AgentRecord> rows;
    rows.reserve(batch.size());
    for (const auto& [agentId, answers] : batch) rows.push_back(ledger_.state(guard).agents.at(agentId).record);
    auto saved = ledger_.store().write([&](StoreTransaction& tx) -> Result<void> {
      guard.unlock();
      for (const auto& row : rows) {
        if (auto done = tx.upsertAgent(row); !done) return done;
      }
      return {};
    });
    if (!guard.owns_lock()) guard.lock();
    metrics_.agentRowBatches.fetch_add(1, std::memory_order_relaxed);
    metrics_.agentRowsSaved.fetch_add(saved ? rows.size() : 0, std::memory_order_relaxed);
    for (const auto& [agentId, answers] : batch) {
      // Unsaved but applied: the agent sends its full state again, and it will be written.
      AgentView& agent = ledger_.state(guard).agents.at(agentId);
      agent.rowUnsaved = !saved;
      if (!saved) agent.fullReportSinceStart = false;
    }
    if (!saved) log(LogLevel::Error, "saving the state of " + std::to_string(rows.size()) + " agents failed: " + saved.error().message);
    guard.unlock();
    const Outcome<protocol::HeartbeatReply> outcome =
        saved ? Outcome<protocol::HeartbeatReply>(protocol::HeartbeatReply{false})
              : refuse(ErrorKind::StoreFailed, saved.error().message);
    for (auto& [agentId, answers] : batch) {
      for (auto& answer : answers) answer(outcome);
    }
    guard.lock();
  }
}

// The agent's list of running sessions against the ledger's: sessions the manager has
// ended (or cancelled while the agent was away) are stopped there; sessions the manager
// thinks run but the agent no longer lists are asked about. Returns the sessions the
// agent runs that are not active here, to be looked up in the store without the lock.
std::vector<std::string> AgentTracker::reconcile(const Guard& guard, AgentView& agent, const protocol::AgentState& state,
                                                 bool revived) {
  ClusterState& cluster = ledger_.state(guard);
  const std::string& agentId = agent.record.id;
  std::vector<std::string> notActive;
  for (const auto& summary : state.sessions) {
    auto it = cluster.active.find(summary.id);
    if (it == cluster.active.end()) {
      if (cluster.inFlight.count(summary.id) == 0) notActive.push_back(summary.id);
      continue;
    }
    // Placed elsewhere now: the agent's copy is not this manager's to stop here.
    if (it->second.agentId != agentId) continue;
    if (it->second.status == SessionStatus::Terminating && cluster.inFlight.count(summary.id) == 0) {
      lifecycle_.destroy(guard, summary.id);
    }
  }
  if (!revived) return notActive;
  std::set<std::string> reported;
  for (const auto& summary : state.sessions) reported.insert(summary.id);
  for (const auto& [id, session] : cluster.active) {
    if (session.agentId != agentId || reported.count(id) != 0 || cluster.inFlight.count(id) != 0) continue;
    if (session.status == SessionStatus::Running || session.status == SessionStatus::Terminating) {
      lifecycle_.verify(guard, id);
    }
  }
  return notActive;
}

void AgentTracker::stopEnded(const std::string& agentId, const std::string& rpcUrl, const std::vector<std::string>& ids) {
  std::set<std::string> stored;
  (void)ledger_.store().read([&](StoreTransaction& tx) -> Result<void> {
    for (const auto& id : ids) {
      auto row = tx.session(id);
      if (row && *row) stored.insert(id);
    }
    return {};
  });
  const Guard guard = ledger_.lock();
  ClusterState& cluster = ledger_.state(guard);
  for (const auto& id : ids) {
    if (cluster.active.count(id) != 0) continue;  // placed again meanwhile
    if (stored.count(id) == 0) {
      if (unknownLogged_.insert(id).second) {
        log(LogLevel::Warning, "agent " + agentId + " runs session " + id + ", which this manager never placed");
      }
      continue;
    }
    if (cluster.inFlight.count(id) != 0) continue;
    log(LogLevel::Info, "agent " + agentId + " still runs ended session " + id + "; stopping it");
    lifecycle_.stopStray(guard, id, agentId, rpcUrl);
  }
}

Outcome<protocol::EventAck> AgentTracker::events(const std::string& agentId, const protocol::EventBatch& batch) {
  if (batch.agentId != agentId) {
    return refuse(ErrorKind::InvalidRequest, "the URL names agent '" + agentId + "' but the batch '" + batch.agentId + "'");
  }
  const Guard guard = ledger_.lock();
  ClusterState& cluster = ledger_.state(guard);
  auto agent = cluster.agents.find(agentId);
  if (agent == cluster.agents.end()) {
    return refuse(ErrorKind::AgentNotRegistered, "agent '" + agentId + "' must send a full heartbeat first");
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
    auto current = changed.find(event.sessionId);
    if (current == changed.end()) {
      auto it = cluster.active.find(event.sessionId);
      if (it == cluster.active.end() || it->second.agentId != agentId) continue;  // over already, or not placed there
      current = changed.emplace(event.sessionId, it->second).first;
    }
    SessionRecord& session = current->second;
    if (isFinal(session.status)) continue;
    applyEvent(session, event);
    if (isFinal(session.status)) t.release.push_back(session.id);
  }
  for (auto& [id, session] : changed) t.sessions.push_back(std::move(session));
  t.extra = [&](StoreTransaction& tx) { return tx.setAgentLastEventSeq(agentId, last); };
  if (auto done = ledger_.commit(guard, std::move(t)); !done) return refuse(ErrorKind::StoreFailed, done.error().message);
  agent->second.record.lastEventSeq = last;
  metrics_.events.fetch_add(applied, std::memory_order_relaxed);
  metrics_.duplicateEvents.fetch_add(duplicates, std::memory_order_relaxed);
  if (applied != 0) ledger_.wantPlacement(guard);
  return protocol::EventAck{last};
}

void AgentTracker::detectLost(const Guard& guard) {
  ClusterState& cluster = ledger_.state(guard);
  const auto now = std::chrono::steady_clock::now();
  for (auto& [agentId, agent] : cluster.agents) {
    if (!agent.alive() || now - agent.lastSeen <= cluster.tunables.heartbeatTimeout) continue;
    Transition t;
    const std::int64_t at = nowMillis();
    for (const auto& [id, session] : cluster.active) {
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
    if (auto done = ledger_.commit(guard, std::move(t)); !done) continue;  // logged; tried again next round
    agent.record.status = AgentStatus::Lost;
    cluster.dirtyAgents.insert(agentId);
    agent.record.statusChangedAtMillis = at;
    agent.unseenPlacements.clear();
    agent.fullReportSinceStart = false;
    metrics_.agentsLost.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::Warning, "agent " + agentId + " is LOST: no heartbeat for " +
                               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - agent.lastSeen).count()) + " s");
  }
}

}  // namespace bai::manager
