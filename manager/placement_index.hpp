// The free-capacity index of one scaling group: its agents ordered by remaining capacity
// per slot, so a placement looks at the few agents that can fit instead of scanning the
// group (sub-linear in agents), and the struct-of-arrays view selector policies read.
#pragma once

#include "cluster.hpp"

#include <bai/scheduler.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace bai::manager {

// A candidate view and the storage it points into.
struct CandidateWindow {
  std::vector<const AgentView*> agents;
  bai_candidate_view view{};

  std::vector<const char*> slotNames, agentIds;
  std::vector<std::vector<double>> capacity, remaining, largest;
  std::vector<const double*> capacityRows, remainingRows, largestRows;
  std::vector<std::uint32_t> sharedDevices;
  std::vector<std::uint8_t> slotIsFraction;
};

class PlacementIndex {
 public:
  // `priority`: slot names weighed first, in order; the other slots follow by the
  // default rule of slotPriorityOrder over `types` (may be null; must outlive the index).
  explicit PlacementIndex(std::vector<std::string> priority = {}, const SlotRegistry* types = nullptr);

  // Adds or refreshes an agent (call after any change of its figures or liveness); a
  // lost agent is kept out.
  void update(const AgentView& agent);
  void remove(const std::string& agentId);
  std::size_t size() const { return agents_.size(); }

  // Slots of the group in priority order (what views and pending views use).
  const std::vector<std::string>& slotOrder() const { return slotOrder_; }

  // Up to `limit` agents that offer the session's runtime available (runtimeKindOf) and
  // fit its request exactly (remaining and largest-allocatable on every slot), not in
  // `excluded`, taken in the order `preference` (BAI_PREFER_*) asks. When none fits,
  // `reason` says what was short, or which runtime no agent offers and why.
  std::vector<const AgentView*> candidates(const SessionRecord& session, std::uint32_t preference, std::size_t limit,
                                           const std::set<std::string>& excluded, std::string* reason);

  // Why `session`'s slots are short beyond the figures: the plugins serving them that
  // are withdrawn on agents of the group ("acme.npu: plugin acme withdrawn on agent X:
  // health did not return within 5000 ms"), joined by "; "; empty when none is.
  std::string withdrawnPlugins(const SessionRecord& session) const;

  // Total capacity of the group's live agents.
  Quantity capacity(const std::string& slot) const;
  // Whether some agent of the group could hold `session` on each slot if it were empty,
  // and offers its runtime now: a session that never could must not hold back the queue.
  bool couldEverFit(const SessionRecord& session) const;
  // The slots `session` waits for: those it asks for that no agent of the group has free
  // enough of now (remaining and largest-allocatable); every slot it asks for when each
  // is free somewhere, but on no one agent together.
  std::set<std::string> shortSlots(const SessionRecord& session) const;

  // Fills `window` with the view of `agents` for a selector.
  void describe(const std::vector<const AgentView*>& agents, const std::map<std::string, std::uint32_t>& sharedDevices,
                CandidateWindow& window) const;

 private:
  using Key = std::pair<Quantity, std::string>;  // (remaining on the slot, agent id)

  void rebuildSlotOrder();
  // missingRuntime over the group's live agents.
  std::string missingRuntimeReason(const std::string& group, const std::string& kind) const;
  std::string primarySlot(const SessionRecord& session) const;

  std::vector<std::string> priority_;
  const SlotRegistry* types_;
  std::vector<std::string> slotOrder_;
  std::map<std::string, const AgentView*> agents_;            // live agents of the group, by id
  std::map<std::string, std::map<std::string, Quantity>> keys_;  // agent -> slot -> remaining as indexed
  std::map<std::string, std::set<Key>> bySlot_;                // slot -> agents by remaining
  std::map<std::string, std::multiset<Quantity>> capacities_;  // slot -> the agents' capacities
  std::map<std::string, std::map<std::string, Quantity>> capacityOf_;  // agent -> slot -> capacity as indexed
  std::map<std::string, Quantity> totals_;                      // slot -> sum of the capacities
  std::map<std::string, Key> rotation_;  // slot -> where the last BAI_PREFER_ANY window began
  std::map<std::string, std::map<std::string, std::string>> withdrawn_;  // plugin key -> agent -> why
  std::map<std::string, std::set<std::string>> runtimeAgents_;  // runtime kind -> agents offering it available
};

// Where to place `session` among the window's candidates, given the selector's pick
// `chosen`: that agent, unless the session has an image it lacks and another candidate
// has the image (by protocol::imageKey) and shows the selector exactly the same figures
// (capacity, remaining and largest-allocatable of every slot, and shared devices). The
// first such candidate is taken: equal by every measure a policy takes of the view, it
// saves a pull, and the policy's choice among agents that differ is never overridden.
std::size_t preferImageHolder(const CandidateWindow& window, const SessionRecord& session, std::size_t chosen);

}  // namespace bai::manager
