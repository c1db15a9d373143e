// The manager's in-memory view of its agents, which placement reads: capacity and the
// manager's own reservations per slot, liveness, and what each agent has not yet seen
// of the manager's placements (so its largest-allocatable figures are never used stale).
#pragma once

#include "manager_config.hpp"
#include "store/store.hpp"

#include <bai/slots.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

namespace bai::manager {

struct AgentView {
  AgentRecord record;
  std::chrono::steady_clock::time_point lastSeen;
  bool fullReportSinceStart = false;      // the manager has this agent's session list
  std::set<std::string> reportedSessions;  // running or preparing, per its last full report
  // Placed here by this manager but not in the agent's last report: the agent's
  // largest-allocatable figures do not account for them yet.
  std::map<std::string, ResourceSlot> unseenPlacements;

  bool alive() const { return record.status == AgentStatus::Alive; }
  Quantity capacity(const std::string& slot) const;
  Quantity used(const std::string& slot) const;
  Quantity remaining(const std::string& slot) const;  // capacity - used
  // The reported largest-allocatable less what unseen placements took; infinite when
  // the agent reports none for the slot.
  Quantity largestAllocatable(const std::string& slot) const;
  // Whether every non-zero amount of `request` fits; otherwise the first slot short.
  bool fits(const ResourceSlot& request, std::string* shortSlot = nullptr) const;
  void addUsed(const ResourceSlot& amount);
  void subtractUsed(const ResourceSlot& amount);  // never below zero
};

// Chooses among agents that all fit a request. Behind this interface so the next step
// can load policies from plugins.
class AgentSelector {
 public:
  virtual ~AgentSelector() = default;
  virtual const char* name() const = 0;
  // `candidates` is not empty; returns an index into it.
  virtual std::size_t select(const SessionRecord& session, std::span<const AgentView* const> candidates) const = 0;
};

std::unique_ptr<AgentSelector> makeSelector(SelectorKind kind);

// Slots in the order selectors weigh them: accelerators first (cuda, rocm, others'
// devices), then cpu, then mem, then the rest by name.
std::vector<std::string> slotPriorityOrder(std::set<std::string> slots);

struct PlacementChoice {
  const AgentView* agent = nullptr;  // null: nothing fits now
  std::string reason;                // why nothing fits, naming the slot and the best offer
};

// Filters the live agents of the session's scaling group that fit it (except those in
// `excluded`) and lets `selector` pick one.
PlacementChoice choosePlacement(const SessionRecord& session, const std::map<std::string, AgentView>& agents,
                                const AgentSelector& selector, const std::set<std::string>& excluded = {});

}  // namespace bai::manager
