#include "ledger.hpp"

#include <algorithm>
#include <cassert>

namespace bai::manager {

const ResourcePolicyRecord* ClusterState::policyOfOwner(const std::string& accessKey) const {
  auto keypair = keypairs.find(accessKey);
  if (keypair == keypairs.end() || keypair->second.resourcePolicy.empty()) return nullptr;
  auto policy = resourcePolicies.find(keypair->second.resourcePolicy);
  return policy == resourcePolicies.end() ? nullptr : &policy->second;
}

const ScalingGroupRecord* ClusterState::scalingGroup(const std::string& name) const {
  auto group = scalingGroups.find(name);
  return group == scalingGroups.end() ? nullptr : &group->second;
}

namespace {

enum class AllocationChange { Release, Suspend, Resume };

// The reservation side of one transaction: agents' used figures as this transaction
// leaves them, each agent row read once.
class ReservationWriter {
 public:
  explicit ReservationWriter(StoreTransaction& tx) : tx_(tx) {}

  // Checked here, against the stored figures, under the store's write lock: two
  // managers (or a retry after a crash) can never push an agent past its capacity.
  Result<void> reserve(const SessionRecord& session) {
    auto row = rowOf(session.agentId);
    if (!row) return Failure{row.error()};
    if (!(*row)->has_value() || (**row)->status != AgentStatus::Alive) {
      return fail(ErrorCode::Conflict, "agent '" + session.agentId + "' is not alive");
    }
    const AgentRecord& agent = **(*row);
    auto used = usedOf(session.agentId);
    if (!used) return Failure{used.error()};
    for (const auto& [slot, amount] : session.requested) {
      auto figures = agent.slots.find(slot.str());
      const Quantity capacity = figures == agent.slots.end() ? Quantity() : figures->second.capacity;
      if ((*used)->get(slot) + amount > capacity) {
        return fail(ErrorCode::Conflict,
                    "agent '" + session.agentId + "' has no " + slot.str() + " " + amount.toString() + " free");
      }
    }
    **used = **used + session.requested;
    return tx_.insertAllocation({session.id, session.agentId, session.requested, false});
  }

  Result<void> change(const std::string& id, AllocationChange change) {
    auto allocation = tx_.allocation(id);
    if (!allocation) return Failure{allocation.error()};
    if (!allocation->has_value()) return {};
    const AllocationRecord& a = **allocation;
    auto used = usedOf(a.agentId);
    if (!used) return {};  // the agent row is gone: nothing to count against
    if (change == AllocationChange::Resume && a.released) **used = **used + a.slots;
    if (change != AllocationChange::Resume && !a.released) {
      ResourceSlot after;
      for (const auto& [slot, value] : **used) after.set(slot, value < a.slots.get(slot) ? Quantity() : value - a.slots.get(slot));
      **used = after;
    }
    if (change == AllocationChange::Release) return tx_.deleteAllocation(id);
    return tx_.setAllocationReleased(id, change == AllocationChange::Suspend);
  }

  Result<void> saveUsed() {
    for (const auto& [agentId, used] : newUsed_) {
      if (auto done = tx_.setAgentUsed(agentId, used); !done) return done;
    }
    return {};
  }

  const std::map<std::string, ResourceSlot>& newUsed() const { return newUsed_; }

 private:
  Result<const std::optional<AgentRecord>*> rowOf(const std::string& agentId) {
    if (auto it = rows_.find(agentId); it != rows_.end()) return &it->second;
    auto row = tx_.agent(agentId);
    if (!row) return Failure{row.error()};
    return &rows_.emplace(agentId, std::move(*row)).first->second;
  }

  Result<ResourceSlot*> usedOf(const std::string& agentId) {
    if (auto it = newUsed_.find(agentId); it != newUsed_.end()) return &it->second;
    auto row = rowOf(agentId);
    if (!row) return Failure{row.error()};
    if (!(*row)->has_value()) return fail(ErrorCode::NotFound, "agent '" + agentId + "' is not registered");
    ResourceSlot used;
    for (const auto& [slot, figures] : (**row)->slots) {
      if (auto name = SlotName::parse(slot)) used.set(*name, figures.used);
    }
    return &newUsed_.emplace(agentId, used).first->second;
  }

  StoreTransaction& tx_;
  std::map<std::string, std::optional<AgentRecord>> rows_;
  std::map<std::string, ResourceSlot> newUsed_;  // agent -> used after this transaction
};

Result<void> writeTransition(StoreTransaction& tx, const Transition& t, ReservationWriter& reservations) {
  if (t.extra) {
    if (auto done = t.extra(tx); !done) return done;
  }
  for (const auto& id : t.reserve) {
    auto session = std::find_if(t.sessions.begin(), t.sessions.end(), [&](const auto& s) { return s.id == id; });
    if (session == t.sessions.end()) return fail(ErrorCode::Internal, "reservation without its session");
    if (auto done = reservations.reserve(*session); !done) return done;
  }
  for (const auto& [ids, change] : {std::pair{&t.release, AllocationChange::Release}, std::pair{&t.suspend, AllocationChange::Suspend},
                                    std::pair{&t.resume, AllocationChange::Resume}}) {
    for (const auto& id : *ids) {
      if (auto done = reservations.change(id, change); !done) return done;
    }
  }
  if (auto done = reservations.saveUsed(); !done) return done;
  for (const auto& session : t.sessions) {
    if (auto done = tx.updateSession(session); !done) return done;
  }
  return {};
}

}  // namespace

Ledger::Ledger(std::unique_ptr<Store> store, Tunables tunables, Metrics& metrics, LogSink log)
    : store_(std::move(store)), metrics_(metrics), log_(std::move(log)) {
  state_.tunables = tunables;
}

ClusterState& Ledger::state(const Guard& guard) {
  assert(guard.owns_lock() && guard.mutex() == &mutex_);
  (void)guard;
  return state_;
}

const ClusterState& Ledger::state(const Guard& guard) const {
  assert(guard.owns_lock() && guard.mutex() == &mutex_);
  (void)guard;
  return state_;
}

void Ledger::wantPlacement(const Guard& guard) {
  state(guard).placementWanted = true;
  placementWake_.notify_one();
}

void Ledger::waitForPlacementWork(Guard& guard, std::chrono::milliseconds timeout) {
  placementWake_.wait_for(guard, timeout, [this] { return state_.stopping || state_.placementWanted; });
}

Result<void> Ledger::commit(const Guard& guard, Transition transition) {
  (void)state(guard);
  std::map<std::string, ResourceSlot> newUsed;
  auto written = store_->write([&](StoreTransaction& tx) -> Result<void> {
    ReservationWriter reservations(tx);
    auto done = writeTransition(tx, transition, reservations);
    newUsed = reservations.newUsed();
    return done;
  });
  if (!written) {
    if (written.error().code != ErrorCode::Conflict) {
      metrics_.storeErrors.fetch_add(1, std::memory_order_relaxed);
      if (log_) log_(LogLevel::Error, "manager", "store: " + written.error().message);
    }
    return written;
  }
  applyToMemory(transition, newUsed);
  return {};
}

void Ledger::applyToMemory(Transition& t, const std::map<std::string, ResourceSlot>& newUsed) {
  for (const auto& [agentId, used] : newUsed) {
    state_.dirtyAgents.insert(agentId);
    auto agent = state_.agents.find(agentId);
    if (agent == state_.agents.end()) continue;
    for (auto& [slot, figures] : agent->second.record.slots) figures.used = used.get(slot);
    for (const auto& [slot, value] : used) agent->second.record.slots[slot.str()].used = value;
  }
  for (const auto& id : t.reserve) {
    const auto& session = *std::find_if(t.sessions.begin(), t.sessions.end(), [&](const auto& s) { return s.id == id; });
    if (auto agent = state_.agents.find(session.agentId); agent != state_.agents.end()) {
      agent->second.unseenPlacements[id] = session.requested;
    }
  }
  for (const auto* ids : {&t.release, &t.suspend}) {
    for (const auto& id : *ids) {
      auto session = state_.active.find(id);
      if (session == state_.active.end()) continue;
      if (auto agent = state_.agents.find(session->second.agentId); agent != state_.agents.end()) {
        agent->second.unseenPlacements.erase(id);
      }
    }
  }
  for (auto& session : t.sessions) {
    if (isFinal(session.status)) {
      state_.active.erase(session.id);
      state_.pendingReasons.erase(session.id);
      state_.refusals.erase(session.id);
      state_.retryAt.erase(session.id);
      if (sessionEnded_) sessionEnded_(session);
    } else {
      state_.active[session.id] = std::move(session);
    }
  }
}

namespace {

struct StoredState {
  std::map<std::string, SlotType> slotTypes;
  std::vector<KeypairRecord> keypairs;
  std::vector<ScalingGroupRecord> scalingGroups;
  std::vector<ResourcePolicyRecord> resourcePolicies;
  std::vector<AgentRecord> agents;
  std::map<std::string, ResourceSlot> reservedOn;  // agent -> the sum of its unreleased allocations
  std::vector<SessionRecord> sessions;             // active ones
};

template <class T>
Result<void> take(Result<T> read, T& into) {
  if (!read) return Failure{read.error()};
  into = std::move(*read);
  return {};
}

Result<void> readStoredState(StoreTransaction& tx, StoredState& out) {
  if (auto done = take(tx.slotTypes(), out.slotTypes); !done) return done;
  if (auto done = take(tx.keypairs(), out.keypairs); !done) return done;
  if (auto done = take(tx.scalingGroups(), out.scalingGroups); !done) return done;
  if (auto done = take(tx.resourcePolicies(), out.resourcePolicies); !done) return done;
  if (auto done = take(tx.agents(), out.agents); !done) return done;
  for (const auto& agent : out.agents) {
    std::vector<AllocationRecord> allocations;
    if (auto done = take(tx.allocations(agent.id), allocations); !done) return done;
    for (const auto& allocation : allocations) {
      if (!allocation.released) out.reservedOn[agent.id] = out.reservedOn[agent.id] + allocation.slots;
    }
  }
  SessionFilter filter;
  filter.activeOnly = true;
  return take(tx.sessions(filter), out.sessions);
}

}  // namespace

Result<void> Ledger::load() {
  StoredState stored;
  if (auto loaded = store_->read([&](StoreTransaction& tx) { return readStoredState(tx, stored); }); !loaded) {
    return fail(loaded.error().code, "loading the cluster state from " + store_->describe() + ": " + loaded.error().message);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  state_.registry = SlotRegistry(stored.slotTypes);
  for (auto& key : stored.keypairs) state_.keypairs[key.accessKey] = std::move(key);
  for (auto& group : stored.scalingGroups) state_.scalingGroups[group.name] = std::move(group);
  for (auto& policy : stored.resourcePolicies) state_.resourcePolicies[policy.name] = std::move(policy);
  const auto now = std::chrono::steady_clock::now();
  for (auto& record : stored.agents) {
    AgentView view;
    view.lastSeen = now;  // every agent gets a full timeout to report before it is called lost
    const ResourceSlot& counted = stored.reservedOn[record.id];
    bool mismatch = false;
    for (auto& [slot, figures] : record.slots) {
      if (figures.used != counted.get(slot)) mismatch = true;
      figures.used = counted.get(slot);
    }
    if (mismatch) {
      if (log_) log_(LogLevel::Warning, "manager", "agent " + record.id + ": used figures disagreed with its reservations; recounted");
      if (auto fixed = store_->write([&](StoreTransaction& tx) { return tx.setAgentUsed(record.id, counted); }); !fixed) return fixed;
    }
    view.record = std::move(record);
    state_.dirtyAgents.insert(view.record.id);  // placeable at once, not only after its next report
    state_.agents[view.record.id] = std::move(view);
  }
  for (auto& session : stored.sessions) {
    if (session.status == SessionStatus::Scheduled || session.status == SessionStatus::Preparing) {
      if (auto agent = state_.agents.find(session.agentId); agent != state_.agents.end()) {
        agent->second.unseenPlacements[session.id] = session.requested;
      }
    }
    state_.active[session.id] = std::move(session);
  }
  return {};
}

}  // namespace bai::manager
