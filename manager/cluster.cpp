#include "cluster.hpp"

#include <algorithm>

namespace bai::manager {

Quantity AgentView::capacity(const std::string& slot) const {
  auto it = record.slots.find(slot);
  return it == record.slots.end() ? Quantity() : it->second.capacity;
}

Quantity AgentView::used(const std::string& slot) const {
  auto it = record.slots.find(slot);
  return it == record.slots.end() ? Quantity() : it->second.used;
}

Quantity AgentView::remaining(const std::string& slot) const { return capacity(slot) - used(slot); }

Quantity AgentView::largestAllocatable(const std::string& slot) const {
  auto it = record.slots.find(slot);
  if (it == record.slots.end()) return Quantity();
  Quantity largest = it->second.largest;
  for (const auto& [session, amounts] : unseenPlacements) largest -= amounts.get(slot);
  return largest.isNegative() ? Quantity() : largest;
}

bool AgentView::fits(const ResourceSlot& request, std::string* shortSlot) const {
  for (const auto& [slot, amount] : request) {
    if (amount.isZero()) continue;
    if (remaining(slot.str()) < amount || largestAllocatable(slot.str()) < amount) {
      if (shortSlot != nullptr) *shortSlot = slot.str();
      return false;
    }
  }
  return true;
}

void AgentView::addUsed(const ResourceSlot& amount) {
  for (const auto& [slot, value] : amount) record.slots[slot.str()].used += value;
}

void AgentView::subtractUsed(const ResourceSlot& amount) {
  for (const auto& [slot, value] : amount) {
    Quantity& used = record.slots[slot.str()].used;
    used = used < value ? Quantity() : used - value;
  }
}

namespace {

int slotRank(const std::string& slot) {
  const std::string device = slot.substr(0, slot.find('.'));
  if (device == "cuda") return 0;
  if (device == "rocm") return 1;
  if (slot == "cpu") return 3;
  if (slot == "mem") return 4;
  return slot.find('.') != std::string::npos ? 2 : 5;  // another vendor's device before plain extras
}

// The agent's remaining capacity over every slot it has, in priority order.
std::vector<Quantity> remainingVector(const AgentView& agent, const std::vector<std::string>& order) {
  std::vector<Quantity> out;
  out.reserve(order.size());
  for (const auto& slot : order) out.push_back(agent.remaining(slot));
  return out;
}

std::vector<std::string> slotsOf(std::span<const AgentView* const> agents) {
  std::set<std::string> slots;
  for (const AgentView* agent : agents) {
    for (const auto& [slot, figures] : agent->record.slots) slots.insert(slot);
  }
  return slotPriorityOrder(std::move(slots));
}

int idleSlotKinds(const AgentView& agent) {
  int idle = 0;
  for (const auto& [slot, figures] : agent.record.slots) idle += figures.used.isZero() && !figures.capacity.isZero();
  return idle;
}

// Packs sessions: the agent with the fewest untouched slot kinds, then the least
// remaining (accelerators weigh first), so whole nodes stay free for big sessions.
class ConcentratedSelector final : public AgentSelector {
 public:
  const char* name() const override { return "concentrated"; }
  std::size_t select(const SessionRecord&, std::span<const AgentView* const> candidates) const override {
    const auto order = slotsOf(candidates);
    std::size_t best = 0;
    auto key = [&](std::size_t i) {
      return std::tuple(idleSlotKinds(*candidates[i]), remainingVector(*candidates[i], order), candidates[i]->record.id);
    };
    auto bestKey = key(0);
    for (std::size_t i = 1; i < candidates.size(); ++i) {
      auto k = key(i);
      if (k < bestKey) best = i, bestKey = std::move(k);
    }
    return best;
  }
};

// Spreads sessions: the agent with the most remaining (accelerators weigh first).
class DispersedSelector final : public AgentSelector {
 public:
  const char* name() const override { return "dispersed"; }
  std::size_t select(const SessionRecord&, std::span<const AgentView* const> candidates) const override {
    const auto order = slotsOf(candidates);
    std::size_t best = 0;
    auto bestRemaining = remainingVector(*candidates[0], order);
    for (std::size_t i = 1; i < candidates.size(); ++i) {
      auto remaining = remainingVector(*candidates[i], order);
      const bool better = remaining > bestRemaining ||
                          (remaining == bestRemaining && candidates[i]->record.id < candidates[best]->record.id);
      if (better) best = i, bestRemaining = std::move(remaining);
    }
    return best;
  }
};

}  // namespace

std::unique_ptr<AgentSelector> makeSelector(SelectorKind kind) {
  if (kind == SelectorKind::Dispersed) return std::make_unique<DispersedSelector>();
  return std::make_unique<ConcentratedSelector>();
}

std::vector<std::string> slotPriorityOrder(std::set<std::string> slots) {
  std::vector<std::string> order(slots.begin(), slots.end());
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return slotRank(a) < slotRank(b); });
  return order;
}

PlacementChoice choosePlacement(const SessionRecord& session, const std::map<std::string, AgentView>& agents,
                                const AgentSelector& selector, const std::set<std::string>& excluded) {
  std::vector<const AgentView*> candidates;
  std::map<std::string, std::pair<Quantity, std::string>> bestOffer;  // slot short -> best (amount, agent)
  int liveInGroup = 0;
  for (const auto& [id, agent] : agents) {
    if (!agent.alive() || agent.record.scalingGroup != session.scalingGroup) continue;
    ++liveInGroup;
    if (excluded.count(id) != 0) continue;
    std::string shortSlot;
    if (agent.fits(session.requested, &shortSlot)) {
      candidates.push_back(&agent);
      continue;
    }
    const Quantity offer = std::min(agent.remaining(shortSlot), agent.largestAllocatable(shortSlot));
    auto [it, inserted] = bestOffer.try_emplace(shortSlot, offer, id);
    if (!inserted && offer > it->second.first) it->second = {offer, id};
  }
  if (!candidates.empty()) return {candidates[selector.select(session, candidates)], ""};
  if (liveInGroup == 0) return {nullptr, "no live agent in scaling group '" + session.scalingGroup + "'"};
  if (bestOffer.empty()) return {nullptr, "every live agent of scaling group '" + session.scalingGroup + "' refused it"};
  // The first short slot by name, with the best offer any agent has for it.
  const auto& [slot, offer] = *bestOffer.begin();
  return {nullptr, "no agent has " + slot + " " + session.requested.get(slot).toString() + " free (best: " + offer.second +
                       " with " + offer.first.toString() + ")"};
}

}  // namespace bai::manager
