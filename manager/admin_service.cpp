#include "admin_service.hpp"

#include "admin_records.hpp"
#include "auth/keypair_generator.hpp"

namespace bai::manager {
namespace {

Failure<DomainError> unknownPolicy(const std::string& name) {
  return refuse(ErrorKind::UnknownResourcePolicy, "no resource policy '" + name + "'");
}

// The records of `records` as a list, in name order.
template <class Record>
std::vector<Record> valuesOf(const std::map<std::string, Record>& records) {
  std::vector<Record> out;
  out.reserve(records.size());
  for (const auto& [name, record] : records) out.push_back(record);
  return out;
}

template <class Record>
std::optional<Record> find(const std::map<std::string, Record>& records, const std::string& name) {
  auto it = records.find(name);
  if (it == records.end()) return std::nullopt;
  return it->second;
}

// Runs `edit` and checks that it kept the record's name (a create names it).
template <class Record>
Outcome<Record> edited(const RecordEdit<Record>& edit, const Record& stored, const SlotTypeTable& types) {
  auto record = edit(stored, types);
  if (!record) return refuse(ErrorKind::InvalidRequest, record.error().message);
  if (!stored.name.empty() && record->name != stored.name) {
    return refuse(ErrorKind::InvalidRequest, "name cannot be changed (the path names '" + stored.name + "')");
  }
  if (!isValidRecordName(record->name)) return refuse(ErrorKind::InvalidRequest, "'" + record->name + "' is not a valid name");
  return std::move(*record);
}

}  // namespace

AdminService::AdminService(Ledger& ledger) : ledger_(ledger) {}

Outcome<KeypairRecord> AdminService::createKeypair(bool admin, const std::string& resourcePolicy) {
  const Keypair generated = generateKeypair();
  KeypairRecord record{generated.accessKey, generated.secretKey, admin, true, nowMillis(), resourcePolicy};
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  if (!resourcePolicy.empty() && state.resourcePolicies.count(resourcePolicy) == 0) return unknownPolicy(resourcePolicy);
  if (auto done = ledger_.store().write([&](StoreTransaction& tx) { return tx.insertKeypair(record); }); !done) {
    return refuse(ErrorKind::StoreFailed, done.error().message);
  }
  state.keypairs[record.accessKey] = record;
  return record;
}

Outcome<KeypairRecord> AdminService::setKeypairResourcePolicy(const std::string& accessKey, const std::string& resourcePolicy) {
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  auto keypair = state.keypairs.find(accessKey);
  if (keypair == state.keypairs.end()) return refuse(ErrorKind::UnknownKeypair, "no keypair '" + accessKey + "'");
  if (!resourcePolicy.empty() && state.resourcePolicies.count(resourcePolicy) == 0) return unknownPolicy(resourcePolicy);
  auto done = ledger_.store().write([&](StoreTransaction& tx) { return tx.setKeypairResourcePolicy(accessKey, resourcePolicy); });
  if (!done) return refuse(ErrorKind::StoreFailed, done.error().message);
  keypair->second.resourcePolicy = resourcePolicy;
  ledger_.wantPlacement(guard);  // a lifted limit may place sessions now
  return keypair->second;
}

std::vector<KeypairRecord> AdminService::keypairs() const {
  const Guard guard = ledger_.lock();
  return valuesOf(ledger_.state(guard).keypairs);
}

std::optional<KeypairRecord> AdminService::keypair(const std::string& accessKey) const {
  const Guard guard = ledger_.lock();
  return find(ledger_.state(guard).keypairs, accessKey);
}

Outcome<ScalingGroupRecord> AdminService::createScalingGroup(const RecordEdit<ScalingGroupRecord>& make) {
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  auto group = edited(make, ScalingGroupRecord{}, state.registry.table());
  if (!group) return group;
  if (state.scalingGroups.count(group->name) != 0) {
    return refuse(ErrorKind::ScalingGroupExists, "scaling group '" + group->name + "' exists; PATCH it to change it");
  }
  return store(guard, std::move(*group));
}

Outcome<ScalingGroupRecord> AdminService::patchScalingGroup(const std::string& name, const RecordEdit<ScalingGroupRecord>& edit) {
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  const ScalingGroupRecord* stored = state.scalingGroup(name);
  if (stored == nullptr) return refuse(ErrorKind::UnknownScalingGroup, "no scaling group '" + name + "'");
  auto group = edited(edit, *stored, state.registry.table());
  if (!group) return group;
  return store(guard, std::move(*group));
}

Outcome<ScalingGroupRecord> AdminService::upsertScalingGroup(ScalingGroupRecord group) {
  if (!isValidRecordName(group.name)) return refuse(ErrorKind::InvalidRequest, "'" + group.name + "' is not a valid name");
  const Guard guard = ledger_.lock();
  return store(guard, std::move(group));
}

Outcome<ScalingGroupRecord> AdminService::store(const Guard& guard, ScalingGroupRecord group) {
  ClusterState& state = ledger_.state(guard);
  // An existing record keeps its creation time, as the store does.
  if (const ScalingGroupRecord* stored = state.scalingGroup(group.name); stored != nullptr) {
    group.createdAtMillis = stored->createdAtMillis;
  } else if (group.createdAtMillis == 0) {
    group.createdAtMillis = nowMillis();
  }
  if (auto done = ledger_.store().write([&](StoreTransaction& tx) { return tx.upsertScalingGroup(group); }); !done) {
    return refuse(ErrorKind::StoreFailed, done.error().message);
  }
  state.scalingGroups[group.name] = group;
  ledger_.wantPlacement(guard);  // an activated group or a new order may place sessions now
  return group;
}

std::vector<ScalingGroupRecord> AdminService::scalingGroups() const {
  const Guard guard = ledger_.lock();
  return valuesOf(ledger_.state(guard).scalingGroups);
}

std::optional<ScalingGroupRecord> AdminService::scalingGroup(const std::string& name) const {
  const Guard guard = ledger_.lock();
  return find(ledger_.state(guard).scalingGroups, name);
}

Outcome<ResourcePolicyRecord> AdminService::createResourcePolicy(const RecordEdit<ResourcePolicyRecord>& make) {
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  auto policy = edited(make, ResourcePolicyRecord{}, state.registry.table());
  if (!policy) return policy;
  if (state.resourcePolicies.count(policy->name) != 0) {
    return refuse(ErrorKind::ResourcePolicyExists, "resource policy '" + policy->name + "' exists; PATCH it to change it");
  }
  return store(guard, std::move(*policy));
}

Outcome<ResourcePolicyRecord> AdminService::patchResourcePolicy(const std::string& name,
                                                                const RecordEdit<ResourcePolicyRecord>& edit) {
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  auto stored = state.resourcePolicies.find(name);
  if (stored == state.resourcePolicies.end()) return unknownPolicy(name);
  auto policy = edited(edit, stored->second, state.registry.table());
  if (!policy) return policy;
  return store(guard, std::move(*policy));
}

Outcome<ResourcePolicyRecord> AdminService::upsertResourcePolicy(ResourcePolicyRecord policy) {
  if (!isValidRecordName(policy.name)) return refuse(ErrorKind::InvalidRequest, "'" + policy.name + "' is not a valid name");
  const Guard guard = ledger_.lock();
  return store(guard, std::move(policy));
}

Outcome<ResourcePolicyRecord> AdminService::store(const Guard& guard, ResourcePolicyRecord policy) {
  ClusterState& state = ledger_.state(guard);
  if (auto stored = state.resourcePolicies.find(policy.name); stored != state.resourcePolicies.end()) {
    policy.createdAtMillis = stored->second.createdAtMillis;
  } else if (policy.createdAtMillis == 0) {
    policy.createdAtMillis = nowMillis();
  }
  if (auto done = ledger_.store().write([&](StoreTransaction& tx) { return tx.upsertResourcePolicy(policy); }); !done) {
    return refuse(ErrorKind::StoreFailed, done.error().message);
  }
  state.resourcePolicies[policy.name] = policy;
  ledger_.wantPlacement(guard);  // a raised limit may place sessions now
  return policy;
}

std::vector<ResourcePolicyRecord> AdminService::resourcePolicies() const {
  const Guard guard = ledger_.lock();
  return valuesOf(ledger_.state(guard).resourcePolicies);
}

std::optional<ResourcePolicyRecord> AdminService::resourcePolicy(const std::string& name) const {
  const Guard guard = ledger_.lock();
  return find(ledger_.state(guard).resourcePolicies, name);
}

}  // namespace bai::manager
