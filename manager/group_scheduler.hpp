// What placement keeps per scaling group: its configuration, its policy instances (a
// sequencer and a selector from plugins), its free-capacity index and the head-of-line
// bookkeeping. Touched by the scheduler thread only (PlacementRound).
#pragma once

#include "placement_index.hpp"
#include "policy/policy_host.hpp"
#include "slot_registry.hpp"
#include "store/store.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <string>

namespace bai::manager {

struct GroupScheduler {
  ScalingGroupRecord config;
  std::unique_ptr<Sequencer> sequencer;
  std::unique_ptr<Selector> selector;
  std::string policyError;  // why its policies could not be made: sessions wait with it
  PlacementIndex index;
  std::map<std::string, int> passedBy;  // waiting session -> how many later ones were placed meanwhile

  // Whether `record` asks for other policies, options or priorities than `config`.
  bool differsFrom(const ScalingGroupRecord& record) const;
};

// The group's policies from the catalog; on failure the group keeps none and says why.
// `slots` (the cluster's slot types) orders the slots the record does not rank; it must
// outlive the group.
void configureGroup(GroupScheduler& group, const ScalingGroupRecord& record, const PolicyCatalog& catalog,
                    const SlotRegistry& slots);

// Whether `catalog` has the sequencer and the selector `record` names and each takes
// its options; the error names the policy and what is installed.
Result<void> checkPolicies(const ScalingGroupRecord& record, const PolicyCatalog& catalog);

}  // namespace bai::manager
