#include "placement_index.hpp"

#include <bai/image_reference.hpp>
#include <bai/protocol.hpp>

#include <algorithm>

namespace bai::manager {

PlacementIndex::PlacementIndex(std::vector<std::string> priority, const SlotRegistry* types)
    : priority_(std::move(priority)), types_(types) {}

void PlacementIndex::update(const AgentView& agent) {
  const std::string& id = agent.record.id;
  remove(id);
  if (!agent.alive()) return;
  agents_[id] = &agent;
  for (const auto& [key, why] : agent.withdrawnPlugins) withdrawn_[key][id] = why;
  for (const char* kind : {protocol::kProcessRuntime, protocol::kContainerRuntime}) {
    if (agent.runtimeAvailable(kind)) runtimeAgents_[kind].insert(id);
  }
  bool newSlot = false;
  auto& keys = keys_[id];
  for (const auto& [slot, figures] : agent.record.slots) {
    const Quantity remaining = agent.remaining(slot);
    keys[slot] = remaining;
    newSlot |= bySlot_.count(slot) == 0;
    bySlot_[slot].insert({remaining, id});
    capacities_[slot].insert(figures.capacity);
    totals_[slot] += figures.capacity;
    capacityOf_[id][slot] = figures.capacity;
  }
  if (newSlot) rebuildSlotOrder();
}

void PlacementIndex::remove(const std::string& agentId) {
  for (auto& [kind, agents] : runtimeAgents_) agents.erase(agentId);
  for (auto it = withdrawn_.begin(); it != withdrawn_.end();) {
    it->second.erase(agentId);
    it = it->second.empty() ? withdrawn_.erase(it) : std::next(it);
  }
  auto keys = keys_.find(agentId);
  if (keys == keys_.end()) return;
  for (const auto& [slot, remaining] : keys->second) bySlot_[slot].erase({remaining, agentId});
  keys_.erase(keys);
  for (const auto& [slot, capacity] : capacityOf_[agentId]) {
    auto& all = capacities_[slot];
    all.erase(all.find(capacity));
    totals_[slot] -= capacity;
  }
  capacityOf_.erase(agentId);
  agents_.erase(agentId);
}

void PlacementIndex::rebuildSlotOrder() {
  std::set<std::string> others;
  for (const auto& [slot, agents] : bySlot_) others.insert(slot);
  slotOrder_.clear();
  for (const auto& slot : priority_) {
    if (others.erase(slot) != 0) slotOrder_.push_back(slot);
  }
  for (auto& slot : slotPriorityOrder(std::move(others), types_)) slotOrder_.push_back(std::move(slot));
}

// The first requested slot in priority order: the index of that slot is walked.
std::string PlacementIndex::primarySlot(const SessionRecord& session) const {
  for (const auto& slot : slotOrder_) {
    if (!session.requested.get(slot).isZero()) return slot;
  }
  for (const auto& [slot, amount] : session.requested) {
    if (!amount.isZero()) return slot.str();  // a slot no agent of the group has
  }
  return "";
}

std::vector<const AgentView*> PlacementIndex::candidates(const SessionRecord& session, std::uint32_t preference,
                                                         std::size_t limit, const std::set<std::string>& excluded,
                                                         std::string* reason) {
  std::vector<const AgentView*> out;
  if (agents_.empty()) {
    if (reason) *reason = "no live agent in scaling group '" + session.scalingGroup + "'";
    return out;
  }
  const std::string kind = runtimeKindOf(session);
  const std::set<std::string>& offering = runtimeAgents_[kind];
  if (offering.empty()) {
    if (reason) *reason = missingRuntimeReason(session.scalingGroup, kind);
    return out;
  }
  const std::string primary = primarySlot(session);
  std::string firstShort;  // the first agent that fit the primary slot but not all
  std::size_t refused = 0, otherRuntime = 0;
  auto consider = [&](const std::string& id) {
    if (offering.count(id) == 0) {
      ++otherRuntime;
      return;
    }
    if (excluded.count(id) != 0) {
      ++refused;
      return;
    }
    const AgentView* agent = agents_.at(id);
    std::string shortSlot;
    if (agent->fits(session.requested, &shortSlot)) {
      out.push_back(agent);
    } else if (firstShort.empty()) {
      firstShort = id + " is short of " + shortSlot;
    }
  };
  if (primary.empty()) {
    // Nothing requested: every live agent fits.
    for (const auto& [id, agent] : agents_) {
      if (out.size() >= limit) break;
      consider(id);
    }
  } else {
    auto slot = bySlot_.find(primary);
    const Quantity amount = session.requested.get(primary);
    if (slot != bySlot_.end()) {
      const auto& keys = slot->second;
      const auto first = keys.lower_bound({amount, ""});
      if (preference == BAI_PREFER_MOST_REMAINING) {
        for (auto it = keys.rbegin(); it != keys.rend() && it->first >= amount && out.size() < limit; ++it) consider(it->second);
      } else if (preference == BAI_PREFER_ANY && rotation_.count(primary) != 0) {
        // A window that starts after the previous one and wraps round the fitting range.
        auto start = keys.upper_bound(rotation_[primary]);
        if (first == keys.end() || start == keys.end() || *start < *first) start = first;
        for (auto it = start; it != keys.end() && out.size() < limit; ++it) consider(it->second);
        for (auto it = first; it != start && out.size() < limit; ++it) consider(it->second);
      } else {
        for (auto it = first; it != keys.end() && out.size() < limit; ++it) consider(it->second);
      }
      if (preference == BAI_PREFER_ANY && !out.empty()) {
        rotation_[primary] = {out.front()->remaining(primary), out.front()->record.id};
      }
    }
    if (out.empty() && reason != nullptr) {
      const Key* best = slot == bySlot_.end() || slot->second.empty() ? nullptr : &*slot->second.rbegin();
      if (best == nullptr || best->first < amount) {
        *reason = "no agent has " + primary + " " + amount.toString() + " free" +
                  (best ? " (best: " + best->second + " with " + best->first.toString() + ")" : "");
      } else if (!firstShort.empty()) {
        *reason = "no agent has every requested slot free at once (" + firstShort + ")";
      } else if (refused != 0) {
        *reason = "every agent with room refused it";
      } else if (otherRuntime != 0) {
        *reason = "no agent offering the " + kind + " runtime has " + primary + " " + amount.toString() + " free";
      }
    }
  }
  return out;
}

std::string PlacementIndex::withdrawnPlugins(const SessionRecord& session) const {
  std::string out;
  for (const auto& [slot, amount] : session.requested) {
    auto plugins = withdrawn_.find(std::string(slot.device()));
    if (amount.isZero() || plugins == withdrawn_.end()) continue;
    for (const auto& [agentId, why] : plugins->second) out += (out.empty() ? "" : "; ") + slot.str() + ": " + why;
  }
  return out;
}

std::string PlacementIndex::missingRuntimeReason(const std::string& group, const std::string& kind) const {
  std::vector<const AgentView*> agents;
  for (const auto& [id, agent] : agents_) agents.push_back(agent);
  return missingRuntime(agents, group, kind);
}

Quantity PlacementIndex::capacity(const std::string& slot) const {
  auto it = totals_.find(slot);
  return it == totals_.end() ? Quantity() : it->second;
}

bool PlacementIndex::couldEverFit(const SessionRecord& session) const {
  auto offering = runtimeAgents_.find(runtimeKindOf(session));
  if (offering == runtimeAgents_.end() || offering->second.empty()) return false;
  for (const auto& [slot, amount] : session.requested) {
    auto it = capacities_.find(slot.str());
    if (!amount.isZero() && (it == capacities_.end() || it->second.empty() || *it->second.rbegin() < amount)) return false;
  }
  return true;
}

std::set<std::string> PlacementIndex::shortSlots(const SessionRecord& session) const {
  // Agents by remaining, most first: only those with room are looked at.
  auto freeSomewhere = [this](const std::string& slot, Quantity amount) {
    auto keys = bySlot_.find(slot);
    if (keys == bySlot_.end()) return false;
    for (auto it = keys->second.rbegin(); it != keys->second.rend() && it->first >= amount; ++it) {
      if (agents_.at(it->second)->largestAllocatable(slot) >= amount) return true;
    }
    return false;
  };
  std::set<std::string> shortOf, asked;
  for (const auto& [slot, amount] : session.requested) {
    if (amount.isZero()) continue;
    asked.insert(slot.str());
    if (!freeSomewhere(slot.str(), amount)) shortOf.insert(slot.str());
  }
  return shortOf.empty() ? asked : shortOf;
}

void PlacementIndex::describe(const std::vector<const AgentView*>& agents,
                              const std::map<std::string, std::uint32_t>& sharedDevices, CandidateWindow& w) const {
  const std::size_t slots = slotOrder_.size();
  w.agents = agents;
  w.slotNames.clear();
  w.slotIsFraction.clear();
  for (const auto& slot : slotOrder_) {
    w.slotNames.push_back(slot.c_str());
    const SlotType* type = types_ == nullptr ? nullptr : types_->find(slot);
    w.slotIsFraction.push_back(type != nullptr && *type == SlotType::Fraction);
  }
  w.agentIds.clear();
  w.sharedDevices.clear();
  for (auto* columns : {&w.capacity, &w.remaining, &w.largest}) {
    columns->assign(slots, std::vector<double>(agents.size()));
  }
  for (std::size_t a = 0; a < agents.size(); ++a) {
    const AgentView& agent = *agents[a];
    w.agentIds.push_back(agent.record.id.c_str());
    auto shared = sharedDevices.find(agent.record.id);
    w.sharedDevices.push_back(shared == sharedDevices.end() ? 0 : shared->second);
    for (std::size_t s = 0; s < slots; ++s) {
      const std::string& slot = slotOrder_[s];
      w.capacity[s][a] = agent.capacity(slot).toDouble();
      w.remaining[s][a] = agent.remaining(slot).toDouble();
      w.largest[s][a] = agent.largestAllocatable(slot).toDouble();
    }
  }
  w.capacityRows.clear();
  w.remainingRows.clear();
  w.largestRows.clear();
  for (std::size_t s = 0; s < slots; ++s) {
    w.capacityRows.push_back(w.capacity[s].data());
    w.remainingRows.push_back(w.remaining[s].data());
    w.largestRows.push_back(w.largest[s].data());
  }
  w.view = bai_candidate_view{sizeof(bai_candidate_view),
                              static_cast<std::uint32_t>(agents.size()),
                              static_cast<std::uint32_t>(slots),
                              w.slotNames.data(),
                              w.agentIds.data(),
                              w.capacityRows.data(),
                              w.remainingRows.data(),
                              w.largestRows.data(),
                              w.sharedDevices.data(),
                              w.slotIsFraction.data()};
}

}  // namespace bai::manager

namespace bai::manager {

std::size_t preferImageHolder(const CandidateWindow& window, const SessionRecord& session, std::size_t chosen) {
  if (!session.image || chosen >= window.agents.size()) return chosen;
  const std::string key = protocol::imageKey(*session.image);
  if (window.agents[chosen]->hasImage(key)) return chosen;
  auto sameView = [&](std::size_t a, std::size_t b) {
    if (window.sharedDevices[a] != window.sharedDevices[b]) return false;
    for (const auto* column : {&window.capacity, &window.remaining, &window.largest}) {
      for (const auto& row : *column) {
        if (row[a] != row[b]) return false;
      }
    }
    return true;
  };
  for (std::size_t other = 0; other < window.agents.size(); ++other) {
    if (other != chosen && window.agents[other]->hasImage(key) && sameView(other, chosen)) return other;
  }
  return chosen;
}

}  // namespace bai::manager
