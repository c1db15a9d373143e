#include "admission.hpp"

#include <bai/image_reference.hpp>
#include <bai/protocol.hpp>

#include <algorithm>

namespace bai::manager {
namespace {

bool isIntrinsic(const std::string& slot) { return slot.find('.') == std::string::npos; }

// The amount scheduler.default-session-slots gives `slot`; nullopt when it names none.
Outcome<std::optional<Quantity>> clusterDefault(const ClusterState& state, const std::string& slot) {
  const auto& defaults = state.tunables.defaultSessionSlots;
  auto entry = std::find_if(defaults.begin(), defaults.end(), [&](const auto& d) { return d.first == slot; });
  if (entry == defaults.end()) return std::optional<Quantity>();
  auto parsed = ResourceSlot::parseUserInput({*entry}, state.registry.table());
  if (!parsed) {
    return refuse(ErrorKind::InvalidResource, "scheduler.default-session-slots of the manager: " + parsed.error().message);
  }
  return std::optional<Quantity>(parsed->get(slot));
}

// "2 or 3" for 2.5 in whole units; "0.01" for 0.005 in steps of 0.01 (zero is no amount).
std::string nearestValid(Quantity amount, Quantity quantum) {
  const __int128 steps = amount.raw() / quantum.raw();
  const Quantity below = Quantity::fromRaw(steps * quantum.raw());
  const Quantity above = Quantity::fromRaw((steps + 1) * quantum.raw());
  return below.isZero() ? above.toString() : below.toString() + " or " + above.toString();
}

// " (plugin acme withdrawn on agent x: ...)" for each live agent of `group` on which the
// plugin serving `slot` is withdrawn: why no agent offers it.
std::string withdrawnOn(const ClusterState& state, const std::string& group, const SlotName& slot) {
  std::string out;
  for (const auto& [id, agent] : state.agents) {
    if (!agent.alive() || agent.record.scalingGroup != group) continue;
    if (auto it = agent.withdrawnPlugins.find(std::string(slot.device())); it != agent.withdrawnPlugins.end()) {
      out += " (" + it->second + ")";
    }
  }
  return out;
}

// One slot of checkServed: some live agent of `group` offers it in a quantum `amount` is
// a multiple of.
Outcome<void> checkSlotServed(const ClusterState& state, const std::string& group, const std::string& slot,
                              Quantity amount) {
  std::optional<Quantity> finest;  // the smallest quantum of the agents that offer it
  for (const auto& [id, agent] : state.agents) {
    if (!agent.alive() || agent.record.scalingGroup != group || agent.capacity(slot).isZero()) continue;
    const Quantity quantum = slotQuantum(agent, slot, state.registry);
    if (quantum.isZero() || amount.raw() % quantum.raw() == 0) return {};
    if (!finest || quantum < *finest) finest = quantum;
  }
  if (!finest) return refuse(ErrorKind::SlotNotServed, "no live agent of scaling group '" + group + "' offers " + slot +
                                                      withdrawnOn(state, group, SlotName::of(slot)));
  const std::string rule = *finest == Quantity(1) ? "in whole numbers" : "in multiples of " + finest->toString();
  return refuse(ErrorKind::InvalidResource, slot + " " + amount.toString() + ": agents of scaling group '" + group +
                                                "' grant " + slot + " only " + rule +
                                                " (nearest valid amounts: " + nearestValid(amount, *finest) + ")");
}

}  // namespace

bool scalingGroupExists(const ClusterState& state, const std::string& group) {
  if (state.scalingGroup(group) != nullptr) return true;
  return std::any_of(state.agents.begin(), state.agents.end(),
                     [&](const auto& entry) { return entry.second.record.scalingGroup == group; });
}

Outcome<ResourceSlot> withDefaultSlots(const ClusterState& state, const ResourcePolicyRecord* policy,
                                       ResourceSlot requested) {
  for (const auto& [slot, type] : state.registry.all()) {
    if (!isIntrinsic(slot) || type == SlotType::Unified || !requested.get(slot).isZero()) continue;
    std::optional<Quantity> amount;
    if (policy != nullptr && policy->defaultSessionSlots.contains(slot)) {
      amount = policy->defaultSessionSlots.get(slot);
    } else {
      auto configured = clusterDefault(state, slot);
      if (!configured) return Failure{configured.error()};
      amount = *configured;
    }
    if (amount && !amount->isZero()) requested.set(SlotName::of(slot), *amount);
  }
  return requested;
}

Outcome<void> checkImageAllowed(const ClusterState& state, const std::string& group,
                                const std::optional<std::string>& image) {
  const ScalingGroupRecord* record = state.scalingGroup(group);
  if (!image || record == nullptr || record->allowedImages.empty()) return {};
  const auto& patterns = record->allowedImages;
  if (std::any_of(patterns.begin(), patterns.end(),
                  [&](const std::string& pattern) { return protocol::imageAllowed(*image, pattern); })) {
    return {};
  }
  std::string list;
  for (const auto& pattern : patterns) list += (list.empty() ? "'" : ", '") + pattern + "'";
  return refuse(ErrorKind::ImageNotAllowed,
                "image '" + *image + "' is not allowed in scaling group '" + group + "' (allowed: " + list + ")", "image");
}

Outcome<void> checkRuntimeOffered(const ClusterState& state, const std::string& group,
                                  const std::optional<std::string>& image) {
  const std::string kind = image ? protocol::kContainerRuntime : protocol::kProcessRuntime;
  std::vector<const AgentView*> agents;
  for (const auto& [id, agent] : state.agents) agents.push_back(&agent);
  if (const std::string missing = missingRuntime(agents, group, kind); !missing.empty()) {
    return refuse(ErrorKind::NoRuntime, missing);
  }
  return {};
}

Quantity slotQuantum(const AgentView& agent, const std::string& slot, const SlotRegistry& registry) {
  if (auto reported = agent.quanta.find(slot); reported != agent.quanta.end()) return reported->second;
  const SlotType* type = registry.find(slot);
  const bool whole = type != nullptr && (*type == SlotType::Count || *type == SlotType::Bytes || *type == SlotType::Unique);
  return whole ? Quantity(1) : Quantity();
}

Outcome<void> checkServed(const ClusterState& state, const std::string& group, const ResourceSlot& requested) {
  for (const auto& [slot, amount] : requested) {
    if (amount.isZero()) continue;
    if (auto served = checkSlotServed(state, group, slot.str(), amount); !served) return served;
  }
  return {};
}

}  // namespace bai::manager
