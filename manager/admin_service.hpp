// The admin's records: keypairs (and their resource policy), scaling groups and
// resource policies. Each change is written to the store first, then kept in the
// ledger, and wakes placement (a lifted limit or an activated group may place sessions).
//
// Threads: API threads. Keeps no state of its own.
#pragma once

#include "domain_error.hpp"
#include "ledger.hpp"
#include "policy/policy_host.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bai::manager {

// Makes the record to store from the stored one (a blank one, name unset, for a create)
// and the cluster's slot types; an error names the field that was wrong.
template <class Record>
using RecordEdit = std::function<Result<Record>(const Record& stored, const SlotTypeTable& types)>;

class AdminService {
 public:
  using Guard = Ledger::Guard;

  // `policies` (must outlive the service) are what a scaling group may name.
  AdminService(Ledger& ledger, const PolicyCatalog& policies);

  // UnknownResourcePolicy when `resourcePolicy` (empty: none) is not defined.
  Outcome<KeypairRecord> createKeypair(bool admin, const std::string& resourcePolicy = "");
  Outcome<KeypairRecord> setKeypairResourcePolicy(const std::string& accessKey, const std::string& resourcePolicy);
  std::vector<KeypairRecord> keypairs() const;
  std::optional<KeypairRecord> keypair(const std::string& accessKey) const;

  // Create refuses a name in use; patch applies `edit` to the stored record; both refuse
  // a sequencer or selector that is not installed or refuses its options. Upsert stores
  // a record as it is. The creation time is always the first one's.
  Outcome<ScalingGroupRecord> createScalingGroup(const RecordEdit<ScalingGroupRecord>& make);
  Outcome<ScalingGroupRecord> patchScalingGroup(const std::string& name, const RecordEdit<ScalingGroupRecord>& edit);
  Outcome<ScalingGroupRecord> upsertScalingGroup(ScalingGroupRecord group);
  std::vector<ScalingGroupRecord> scalingGroups() const;
  std::optional<ScalingGroupRecord> scalingGroup(const std::string& name) const;

  Outcome<ResourcePolicyRecord> createResourcePolicy(const RecordEdit<ResourcePolicyRecord>& make);
  Outcome<ResourcePolicyRecord> patchResourcePolicy(const std::string& name, const RecordEdit<ResourcePolicyRecord>& edit);
  Outcome<ResourcePolicyRecord> upsertResourcePolicy(ResourcePolicyRecord policy);
  std::vector<ResourcePolicyRecord> resourcePolicies() const;
  std::optional<ResourcePolicyRecord> resourcePolicy(const std::string& name) const;

 private:
  Ledger& ledger_;
  const PolicyCatalog& policies_;
};

}  // namespace bai::manager
