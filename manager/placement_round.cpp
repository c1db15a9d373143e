#include "placement_round.hpp"

#include <algorithm>

namespace bai::manager {
namespace {

std::string joined(const std::set<std::string>& slots) {
  std::string out;
  for (const auto& slot : slots) out += (out.empty() ? "" : ", ") + slot;
  return out;
}

}  // namespace

PlacementRound::PlacementRound(Ledger& ledger, SessionLifecycle& lifecycle, const PolicyCatalog& policies,
                               ScalingGroupRecord defaults, Metrics& metrics, LogSink log)
    : ledger_(ledger),
      lifecycle_(lifecycle),
      policies_(policies),
      defaults_(std::move(defaults)),
      metrics_(metrics),
      log_(std::move(log)) {}

void PlacementRound::log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, "manager", message);
}

void PlacementRound::run(const Guard& guard) {
  ClusterState& state = ledger_.state(guard);
  syncGroups(state);
  refreshIndexes(state);
  Usage round = usage(state);
  // Each group's pending sessions in submission order: sorted by their sequence numbers,
  // not by looking every comparison up in `active` (a round runs at every submission).
  std::map<std::string, std::vector<std::pair<std::uint64_t, const std::string*>>> pendingByGroup;
  lastPending_ = 0;
  for (const auto& [id, session] : state.active) {
    if (session.status != SessionStatus::Pending) continue;
    pendingByGroup[session.scalingGroup].emplace_back(session.enqueueSeq, &id);
    ++lastPending_;
  }
  for (auto& [groupName, bySeq] : pendingByGroup) {
    std::sort(bySeq.begin(), bySeq.end());
    std::vector<std::string> ids;
    ids.reserve(bySeq.size());
    for (const auto& [seq, id] : bySeq) ids.push_back(*id);
    GroupScheduler& group = groupFor(state, groupName);
    if (!group.policyError.empty()) {
      for (const auto& id : ids) state.pendingReasons[id] = group.policyError;
      continue;
    }
    for (const auto& id : sequence(state, group, ids, round)) {
      auto it = state.active.find(id);
      if (it == state.active.end() || it->second.status != SessionStatus::Pending) continue;
      placeOne(guard, group, it->second, round);
    }
    // Sessions that left the queue need no head-of-line count.
    for (auto it = group.passedBy.begin(); it != group.passedBy.end();) {
      auto session = state.active.find(it->first);
      const bool left = session == state.active.end() || session->second.status != SessionStatus::Pending;
      it = left ? group.passedBy.erase(it) : std::next(it);
    }
  }
}

// The group's pending sessions (`ids`, in submission order) in the order its sequencer
// wants (submission order if it fails).
std::vector<std::string> PlacementRound::sequence(const ClusterState& state, GroupScheduler& group,
                                                  std::vector<std::string> ids, const Usage& round) {
  const auto& slots = group.index.slotOrder();
  std::vector<const char*> slotNames, sessionIds, owners;
  std::vector<std::uint64_t> seqs;
  std::vector<std::vector<double>> requested(slots.size()), allocated(slots.size());
  std::vector<double> capacity;
  for (const auto& slot : slots) {
    slotNames.push_back(slot.c_str());
    capacity.push_back(group.index.capacity(slot).toDouble());
  }
  const auto held = round.heldInGroup.find(group.config.name);
  for (const auto& id : ids) {
    const SessionRecord& session = state.active.at(id);
    sessionIds.push_back(session.id.c_str());
    owners.push_back(session.owner.c_str());
    seqs.push_back(session.enqueueSeq);
    const ResourceSlot* ownerHeld = nullptr;
    if (held != round.heldInGroup.end()) {
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

void PlacementRound::placeOne(const Guard& guard, GroupScheduler& group, const SessionRecord& session, Usage& round) {
  ClusterState& state = ledger_.state(guard);
  if (const auto* blocker = round.blocker(group.config.name, session)) {
    state.pendingReasons[session.id] = "waiting behind session " + blocker->first + " (head of line, for " +
                                       joined(blocker->second) + ")";
    return;
  }
  if (const ResourcePolicyRecord* policy = state.policyOfOwner(session.owner)) {
    if (auto shortfall = quotaShortfall(*policy, round.byOwner[session.owner], session.requested)) {
      state.pendingReasons[session.id] = *shortfall;  // over quota: waits, but blocks nobody
      return;
    }
  }
  std::set<std::string> excluded;
  const auto refused = state.refusals.find(session.id);
  if (refused != state.refusals.end()) {
    for (const auto& [agentId, why] : refused->second) excluded.insert(agentId);
  }
  std::string reason;
  const auto started = std::chrono::steady_clock::now();
  auto candidates =
      group.index.candidates(session, group.selector->preference(), state.tunables.candidateWindow, excluded, &reason);
  if (candidates.empty()) {
    if (const std::string withdrawn = group.index.withdrawnPlugins(session); !withdrawn.empty()) {
      reason = withdrawn + "; " + reason;
    }
    if (refused != state.refusals.end() && !refused->second.empty()) {
      reason += "; refused by " + refused->second.begin()->first + ": " + refused->second.begin()->second;
    }
    if (hasPriority(group, session)) {
      auto waitsFor = group.index.shortSlots(session);
      reason += "; it now has priority over the sessions behind it that need " + joined(waitsFor);
      round.blockedBy[group.config.name].emplace_back(session.id, std::move(waitsFor));
    }
    state.pendingReasons[session.id] = reason;
    return;
  }
  group.index.describe(candidates, round.sharedDevices, window_);
  std::vector<double> requested;
  for (const auto& slot : group.index.slotOrder()) requested.push_back(session.requested.get(slot).toDouble());
  const bai_session_view sessionView{sizeof(bai_session_view), session.id.c_str(), session.owner.c_str(), requested.data()};
  auto chosen = group.selector->select(sessionView, window_.view);
  if (!chosen) {
    metrics_.policyErrors.fetch_add(1, std::memory_order_relaxed);
    log(LogLevel::Error, "scaling group '" + group.config.name + "': selector " + group.config.selector + ": " +
                             chosen.error().message + "; taking the first candidate");
  }
  const std::size_t placed = preferImageHolder(window_, session, chosen ? *chosen : 0);
  if (reserve(guard, group, session, candidates[placed]->record.id, round)) {
    metrics_.placements.fetch_add(1, std::memory_order_relaxed);
    metrics_.placementLatency.observe(std::chrono::steady_clock::now() - started);
  }
}

bool PlacementRound::reserve(const Guard& guard, GroupScheduler& group, const SessionRecord& session,
                             const std::string& agentId, Usage& round) {
  ClusterState& state = ledger_.state(guard);
  SessionRecord scheduled = session;
  scheduled.status = SessionStatus::Scheduled;
  scheduled.agentId = agentId;
  scheduled.scheduledAtMillis = nowMillis();
  scheduled.statusReason.clear();
  Transition t;
  t.sessions.push_back(scheduled);
  t.reserve.push_back(scheduled.id);
  if (auto done = ledger_.commit(guard, std::move(t)); !done) {
    state.pendingReasons[session.id] = "reservation failed: " + done.error().message;
    return false;
  }
  refreshIndexes(state);
  state.pendingReasons.erase(scheduled.id);
  round.hold(scheduled, state.registry);
  --round.byOwner[scheduled.owner].pending;
  for (auto& [waiting, passes] : group.passedBy) ++passes;
  group.passedBy.erase(scheduled.id);
  lifecycle_.start(guard, scheduled.id);
  return true;
}

bool PlacementRound::hasPriority(GroupScheduler& group, const SessionRecord& session) {
  const int passes = group.passedBy.try_emplace(session.id, 0).first->second;
  const bool waitedLong = nowMillis() - session.createdAtMillis >= group.config.holMaxWaitMillis;
  return (passes >= group.config.holMaxPasses || waitedLong) && group.index.couldEverFit(session);
}

const std::pair<std::string, std::set<std::string>>* PlacementRound::Usage::blocker(const std::string& group,
                                                                                   const SessionRecord& session) const {
  auto heads = blockedBy.find(group);
  if (heads == blockedBy.end()) return nullptr;
  for (const auto& head : heads->second) {
    for (const auto& slot : head.second) {
      if (!session.requested.get(slot).isZero()) return &head;
    }
  }
  return nullptr;
}

PlacementRound::Usage PlacementRound::usage(const ClusterState& state) const {
  Usage round;
  for (const auto& [id, session] : state.active) {
    if (session.status == SessionStatus::Pending) {
      ++round.byOwner[session.owner].pending;
    } else {
      round.hold(session, state.registry);
    }
  }
  return round;
}

void PlacementRound::Usage::hold(const SessionRecord& session, const SlotRegistry& registry) {
  OwnerUsage& owner = byOwner[session.owner];
  owner.held = owner.held + session.requested;
  ++owner.active;
  ResourceSlot& inGroup = heldInGroup[session.scalingGroup][session.owner];
  inGroup = inGroup + session.requested;
  // Sessions on fraction slots share devices: selectors that fight fragmentation read how many.
  for (const auto& [slot, amount] : session.requested) {
    const SlotType* type = registry.find(slot.str());
    if (!amount.isZero() && type != nullptr && *type == SlotType::Fraction) {
      ++sharedDevices[session.agentId];
      break;
    }
  }
}

// A group without a record of its own runs the manager's default policies.
ScalingGroupRecord PlacementRound::groupRecord(const ClusterState& state, const std::string& name) const {
  if (const ScalingGroupRecord* record = state.scalingGroup(name)) return *record;
  ScalingGroupRecord record = defaults_;
  record.name = name;
  return record;
}

GroupScheduler& PlacementRound::groupFor(const ClusterState& state, const std::string& name) {
  auto [it, inserted] = groups_.try_emplace(name);
  if (inserted) {
    it->second.index = PlacementIndex({}, &state.registry);
    configureGroup(it->second, groupRecord(state, name), policies_, state.registry);
  }
  return it->second;
}

// Picks up changed scaling group records: new policies, options or slot priorities.
void PlacementRound::syncGroups(ClusterState& state) {
  for (auto& [name, group] : groups_) {
    const ScalingGroupRecord record = groupRecord(state, name);
    if (!group.differsFrom(record)) continue;
    const bool newPriority = record.slotPriority != group.config.slotPriority;
    configureGroup(group, record, policies_, state.registry);
    if (group.policyError.empty()) {
      log(LogLevel::Info, "scaling group '" + name + "': " + record.sequencer + " / " + record.selector);
    } else {
      log(LogLevel::Error, group.policyError);
    }
    if (!newPriority) continue;
    for (const auto& [agentId, groupName] : indexedGroup_) {
      if (groupName == name) state.dirtyAgents.insert(agentId);
    }
  }
}

void PlacementRound::refreshIndexes(ClusterState& state) {
  for (const auto& id : state.dirtyAgents) {
    auto agent = state.agents.find(id);
    auto indexed = indexedGroup_.find(id);
    if (indexed != indexedGroup_.end() &&
        (agent == state.agents.end() || indexed->second != agent->second.record.scalingGroup)) {
      groupFor(state, indexed->second).index.remove(id);
      indexedGroup_.erase(indexed);
    }
    if (agent == state.agents.end()) continue;
    groupFor(state, agent->second.record.scalingGroup).index.update(agent->second);
    indexedGroup_[id] = agent->second.record.scalingGroup;
  }
  state.dirtyAgents.clear();
}

}  // namespace bai::manager
