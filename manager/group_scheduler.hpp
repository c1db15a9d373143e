// What placement keeps per scaling group: its configuration, its policy instances (a
// sequencer and a selector from plugins), its free-capacity index and the head-of-line
// bookkeeping. Guarded by the manager's state lock.
#pragma once

#include "placement_index.hpp"
#include "policy/policy_host.hpp"
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
void configureGroup(GroupScheduler& group, const ScalingGroupRecord& record, const PolicyCatalog& catalog);

}  // namespace bai::manager
