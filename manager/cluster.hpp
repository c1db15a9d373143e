// The manager's in-memory view of its agents, which placement reads: capacity and the
// manager's own reservations per slot, liveness, and what each agent has not yet seen
// of the manager's placements (so its largest-allocatable figures are never used stale).
#pragma once

#include "slot_registry.hpp"
#include "store/store.hpp"

#include <bai/slots.hpp>

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace bai::manager {

struct AgentView {
  AgentRecord record;
  std::chrono::steady_clock::time_point lastSeen;
  bool fullReportSinceStart = false;      // the manager has this agent's session list
  bool rowUnsaved = false;                // a group commit of its row failed: memory is newer than the store
  std::set<std::string> reportedSessions;  // running or preparing, per its last full report
  // Placed here by this manager but not in the agent's last report: the agent's
  // largest-allocatable figures do not account for them yet.
  std::map<std::string, ResourceSlot> unseenPlacements;
  // Plugins withdrawn on the agent (a call into them hung), per its last full report:
  // plugin key -> "plugin <name> withdrawn on agent <id>: <why>", for pending reasons.
  std::map<std::string, std::string> withdrawnPlugins;
  // slot -> the smallest step the agent grants it in, per its last full report (not stored).
  std::map<std::string, Quantity> quanta;

  bool alive() const { return record.status == AgentStatus::Alive; }
  // Whether it reported runtime `kind` ("process", "container") and that it can run
  // sessions now.
  bool runtimeAvailable(const std::string& kind) const;
  // Whether its engine has the image whose protocol::imageKey is `key`.
  bool hasImage(const std::string& key) const;
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

// The runtime a session needs: "container" with an image, "process" without.
std::string runtimeKindOf(const SessionRecord& session);

// Why no live agent of `group` offers runtime `kind` available, for refusals and pending
// reasons: "no agent in scaling group 'g' offers the container runtime", followed by each
// agent's reason when it reported the runtime unavailable; empty when one does offer it.
std::string missingRuntime(const std::vector<const AgentView*>& agents, const std::string& group,
                           const std::string& kind);

// Slots in the order placement weighs them when a scaling group names none: first the
// accelerator slots, those a plugin reports under its own key ("<key>.<name>"), by name;
// then the node's intrinsic slots (no namespace) by type, counts before byte sizes before
// the rest, and by name within a type. `types` (may be null) are the cluster's slot
// types; a slot of unknown type comes last. No slot name is special.
std::vector<std::string> slotPriorityOrder(std::set<std::string> slots, const SlotRegistry* types);

}  // namespace bai::manager
