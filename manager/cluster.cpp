#include "cluster.hpp"

#include <bai/image_reference.hpp>
#include <bai/protocol.hpp>

#include <algorithm>

namespace bai::manager {

bool AgentView::runtimeAvailable(const std::string& kind) const {
  // A record without runtimes is from before them: host processes only.
  if (record.runtimes.empty()) return kind == protocol::kProcessRuntime;
  return std::any_of(record.runtimes.begin(), record.runtimes.end(),
                     [&](const AgentRuntimeRecord& runtime) { return runtime.kind == kind && runtime.available; });
}

bool AgentView::hasImage(const std::string& key) const {
  return std::any_of(record.images.begin(), record.images.end(),
                     [&](const AgentImageRecord& image) { return protocol::imageKey(image.name) == key; });
}

std::string runtimeKindOf(const SessionRecord& session) {
  return session.image ? protocol::kContainerRuntime : protocol::kProcessRuntime;
}

std::string missingRuntime(const std::vector<const AgentView*>& agents, const std::string& group,
                           const std::string& kind) {
  std::string unavailable;
  for (const AgentView* agent : agents) {
    if (!agent->alive() || agent->record.scalingGroup != group) continue;
    if (agent->runtimeAvailable(kind)) return "";
    for (const auto& runtime : agent->record.runtimes) {
      if (runtime.kind != kind) continue;
      unavailable += (unavailable.empty() ? "" : "; ") + std::string("agent ") + agent->record.id + ": " +
                     (runtime.reason.empty() ? "unavailable" : runtime.reason);
    }
  }
  std::string out = "no agent in scaling group '" + group + "' offers the " + kind + " runtime";
  return unavailable.empty() ? out : out + " (" + unavailable + ")";
}

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

bool isAcceleratorSlot(const std::string& slot) { return slot.find('.') != std::string::npos; }

int intrinsicRank(const std::string& slot, const SlotRegistry* types) {
  const SlotType* type = types == nullptr ? nullptr : types->find(slot);
  if (type == nullptr) return 3;
  switch (*type) {
    case SlotType::Count: return 0;
    case SlotType::Bytes: return 1;
    default: return 2;
  }
}

}  // namespace

std::vector<std::string> slotPriorityOrder(std::set<std::string> slots, const SlotRegistry* types) {
  std::vector<std::string> order(slots.begin(), slots.end());  // by name already
  auto rank = [types](const std::string& slot) { return isAcceleratorSlot(slot) ? -1 : intrinsicRank(slot, types); };
  std::stable_sort(order.begin(), order.end(), [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  return order;
}

}  // namespace bai::manager
