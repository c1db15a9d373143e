// The admin's records: keypairs (and their resource policy), scaling groups and
// resource policies. Each change is written to the store first, then kept in the
// ledger, and wakes placement (a lifted limit or an activated group may place sessions).
//
// Threads: API threads. Keeps no state of its own.
// Keypair changes that decide who sessions run as are logged (the admin and the ids).
#pragma once

#include "domain_error.hpp"
#include "ledger.hpp"
#include "policy/policy_host.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace bai::manager {

// The uid/gid an admin gives a keypair; an id left 0 is the manager's to give: the
// lowest free uid of identity.session-uid-range, the gid of identity.session-gid.
struct KeypairIdentity {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};

// Makes the record to store from the stored one (a blank one, name unset, for a create)
// and the cluster's slot types; an error names the field that was wrong.
template <class Record>
using RecordEdit = std::function<Result<Record>(const Record& stored, const SlotTypeTable& types)>;

class AdminService {
 public:
  using Guard = Ledger::Guard;

  // `policies` (must outlive the service) are what a scaling group may name.
  AdminService(Ledger& ledger, const PolicyCatalog& policies, LogSink log = {});

  // UnknownResourcePolicy when `resourcePolicy` (empty: none) is not defined; UidInUse
  // when another keypair holds the uid; UidRangeExhausted when none is left to give.
  // `by` (the admin's access key) is for the log.
  Outcome<KeypairRecord> createKeypair(bool admin, const std::string& resourcePolicy = "", KeypairIdentity identity = {},
                                       const std::string& by = "");
  // Any uid/gid from 1 to kMaxSessionId, in the range or not (an LDAP uid, say): the
  // agents' own allowed ranges are the last guard. UnknownKeypair, UidInUse.
  Outcome<KeypairRecord> setKeypairIdentity(const std::string& accessKey, KeypairIdentity identity,
                                            const std::string& by = "");
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
  void audit(const std::string& by, const std::string& what) const;

  Ledger& ledger_;
  const PolicyCatalog& policies_;
  LogSink log_;
};

}  // namespace bai::manager
