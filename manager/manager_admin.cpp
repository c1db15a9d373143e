// The manager's admin records: scaling groups, keypair resource policies and the
// policy of each keypair, cached in memory under mutex_ (written to the store first),
// and the checks they impose when a session is enqueued.
#include "admin_records.hpp"
#include "auth/keypair_generator.hpp"
#include "manager.hpp"
#include "quota.hpp"

#include <nlohmann/json.hpp>

namespace bai::manager {
namespace {

ApiFailure storeFailure(const Error& error) {
  return ApiFailure{500, {"store-error", "The cluster state could not be saved", error.message}};
}

Failure<ApiFailure> invalidRecord(const std::string& kind, const Error& error) {
  return apiFailure(400, "invalid-request", "Invalid " + kind, error.message);
}

Failure<ApiFailure> unknownPolicy(const std::string& name) {
  return apiFailure(404, "unknown-resource-policy", "No such resource policy", "no resource policy '" + name + "'");
}

// A PATCH: the stored record's JSON with the given fields replacing whole fields. The
// name is the one in the path; created_at_ms is the manager's.
Result<nlohmann::json> overlay(nlohmann::json stored, const nlohmann::json& fields, const std::string& name) {
  if (!fields.is_object()) return fail(ErrorCode::InvalidArgument, "the body is not a JSON object");
  stored.erase("created_at_ms");
  for (const auto& [key, value] : fields.items()) {
    if (key == "name" && value != name) {
      return fail(ErrorCode::InvalidArgument, "name cannot be changed (the path names '" + name + "')");
    }
    stored[key] = value;
  }
  return stored;
}

}  // namespace

Result<void> Manager::loadAdminRecords(StoreTransaction& tx) {
  auto groups = tx.scalingGroups();
  if (!groups) return fail(groups.error().code, groups.error().message);
  for (auto& group : *groups) scalingGroups_[group.name] = std::move(group);
  auto policies = tx.resourcePolicies();
  if (!policies) return fail(policies.error().code, policies.error().message);
  for (auto& policy : *policies) resourcePolicies_[policy.name] = std::move(policy);
  return {};
}

const ResourcePolicyRecord* Manager::policyOfOwnerLocked(const std::string& accessKey) const {
  auto keypair = keypairs_.find(accessKey);
  if (keypair == keypairs_.end() || keypair->second.resourcePolicy.empty()) return nullptr;
  auto policy = resourcePolicies_.find(keypair->second.resourcePolicy);
  return policy == resourcePolicies_.end() ? nullptr : &policy->second;
}

const ScalingGroupRecord* Manager::scalingGroupLocked(const std::string& name) const {
  auto group = scalingGroups_.find(name);
  return group == scalingGroups_.end() ? nullptr : &group->second;
}

std::optional<ApiFailure> Manager::admissionRefusalLocked(const std::string& owner, const std::string& group) const {
  if (const ScalingGroupRecord* record = scalingGroupLocked(group); record != nullptr && !record->active) {
    return ApiFailure{400, {"inactive-scaling-group", "Scaling group not active",
                            "scaling group '" + group + "' is not active"}};
  }
  if (const ResourcePolicyRecord* policy = policyOfOwnerLocked(owner); policy != nullptr) {
    if (auto why = pendingShortfall(*policy, ownerUsage(active_, owner))) {
      return ApiFailure{429, {"too-many-pending", "Too many pending sessions", *why}};
    }
  }
  return std::nullopt;
}

// ---- Keypairs ------------------------------------------------------------------------

ApiResult<KeypairRecord> Manager::createKeypair(bool admin, const std::string& resourcePolicy) {
  const Keypair generated = generateKeypair();
  KeypairRecord record{generated.accessKey, generated.secretKey, admin, true, nowMillis(), resourcePolicy};
  std::lock_guard<std::mutex> lock(mutex_);
  if (!resourcePolicy.empty() && resourcePolicies_.count(resourcePolicy) == 0) return unknownPolicy(resourcePolicy);
  if (auto done = store_->write([&](StoreTransaction& tx) { return tx.insertKeypair(record); }); !done) {
    return Failure{storeFailure(done.error())};
  }
  keypairs_[record.accessKey] = record;
  return record;
}

ApiResult<KeypairRecord> Manager::setKeypairResourcePolicy(const std::string& accessKey,
                                                           const std::string& resourcePolicy) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto keypair = keypairs_.find(accessKey);
  if (keypair == keypairs_.end()) {
    return apiFailure(404, "unknown-keypair", "No such keypair", "no keypair '" + accessKey + "'");
  }
  if (!resourcePolicy.empty() && resourcePolicies_.count(resourcePolicy) == 0) return unknownPolicy(resourcePolicy);
  auto done = store_->write([&](StoreTransaction& tx) { return tx.setKeypairResourcePolicy(accessKey, resourcePolicy); });
  if (!done) return Failure{storeFailure(done.error())};
  keypair->second.resourcePolicy = resourcePolicy;
  notifyScheduler();  // a lifted limit may place sessions now
  return keypair->second;
}

// ---- Scaling groups ------------------------------------------------------------------

ApiResult<ScalingGroupRecord> Manager::createScalingGroup(const nlohmann::json& doc) {
  auto group = scalingGroupFromJson(doc);
  if (!group) return invalidRecord("scaling group", group.error());
  std::lock_guard<std::mutex> lock(mutex_);
  if (scalingGroups_.count(group->name) != 0) {
    return apiFailure(409, "scaling-group-exists", "The scaling group exists",
                      "scaling group '" + group->name + "' exists; PATCH it to change it");
  }
  return storeScalingGroupLocked(std::move(*group));
}

ApiResult<ScalingGroupRecord> Manager::patchScalingGroup(const std::string& name, const nlohmann::json& fields) {
  std::lock_guard<std::mutex> lock(mutex_);
  const ScalingGroupRecord* stored = scalingGroupLocked(name);
  if (stored == nullptr) {
    return apiFailure(404, "unknown-scaling-group", "No such scaling group", "no scaling group '" + name + "'");
  }
  auto merged = overlay(scalingGroupToJson(*stored), fields, name);
  if (!merged) return invalidRecord("scaling group", merged.error());
  auto group = scalingGroupFromJson(*merged);
  if (!group) return invalidRecord("scaling group", group.error());
  return storeScalingGroupLocked(std::move(*group));
}

ApiResult<ScalingGroupRecord> Manager::upsertScalingGroup(ScalingGroupRecord group) {
  if (!isValidRecordName(group.name)) {
    return apiFailure(400, "invalid-request", "Invalid scaling group", "'" + group.name + "' is not a valid name");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return storeScalingGroupLocked(std::move(group));
}

ApiResult<ScalingGroupRecord> Manager::storeScalingGroupLocked(ScalingGroupRecord group) {
  // An existing record keeps its creation time, as the store does.
  if (const ScalingGroupRecord* stored = scalingGroupLocked(group.name); stored != nullptr) {
    group.createdAtMillis = stored->createdAtMillis;
  } else if (group.createdAtMillis == 0) {
    group.createdAtMillis = nowMillis();
  }
  if (auto done = store_->write([&](StoreTransaction& tx) { return tx.upsertScalingGroup(group); }); !done) {
    return Failure{storeFailure(done.error())};
  }
  scalingGroups_[group.name] = group;
  notifyScheduler();  // an activated group or a new order may place sessions now
  return group;
}

std::vector<ScalingGroupRecord> Manager::scalingGroups() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ScalingGroupRecord> out;
  for (const auto& [name, group] : scalingGroups_) out.push_back(group);
  return out;
}

std::optional<ScalingGroupRecord> Manager::scalingGroup(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const ScalingGroupRecord* group = scalingGroupLocked(name);
  if (group == nullptr) return std::nullopt;
  return *group;
}

// ---- Resource policies ---------------------------------------------------------------

ApiResult<ResourcePolicyRecord> Manager::createResourcePolicy(const nlohmann::json& doc) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto policy = resourcePolicyFromJson(doc, registry_.table());
  if (!policy) return invalidRecord("resource policy", policy.error());
  if (resourcePolicies_.count(policy->name) != 0) {
    return apiFailure(409, "resource-policy-exists", "The resource policy exists",
                      "resource policy '" + policy->name + "' exists; PATCH it to change it");
  }
  return storeResourcePolicyLocked(std::move(*policy));
}

ApiResult<ResourcePolicyRecord> Manager::patchResourcePolicy(const std::string& name, const nlohmann::json& fields) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto stored = resourcePolicies_.find(name);
  if (stored == resourcePolicies_.end()) return unknownPolicy(name);
  auto merged = overlay(resourcePolicyToJson(stored->second), fields, name);
  if (!merged) return invalidRecord("resource policy", merged.error());
  auto policy = resourcePolicyFromJson(*merged, registry_.table());
  if (!policy) return invalidRecord("resource policy", policy.error());
  return storeResourcePolicyLocked(std::move(*policy));
}

ApiResult<ResourcePolicyRecord> Manager::upsertResourcePolicy(ResourcePolicyRecord policy) {
  if (!isValidRecordName(policy.name)) {
    return apiFailure(400, "invalid-request", "Invalid resource policy", "'" + policy.name + "' is not a valid name");
  }
  std::lock_guard<std::mutex> lock(mutex_);
  return storeResourcePolicyLocked(std::move(policy));
}

ApiResult<ResourcePolicyRecord> Manager::storeResourcePolicyLocked(ResourcePolicyRecord policy) {
  if (auto stored = resourcePolicies_.find(policy.name); stored != resourcePolicies_.end()) {
    policy.createdAtMillis = stored->second.createdAtMillis;
  } else if (policy.createdAtMillis == 0) {
    policy.createdAtMillis = nowMillis();
  }
  if (auto done = store_->write([&](StoreTransaction& tx) { return tx.upsertResourcePolicy(policy); }); !done) {
    return Failure{storeFailure(done.error())};
  }
  resourcePolicies_[policy.name] = policy;
  notifyScheduler();  // a raised limit may place sessions now
  return policy;
}

std::vector<ResourcePolicyRecord> Manager::resourcePolicies() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<ResourcePolicyRecord> out;
  for (const auto& [name, policy] : resourcePolicies_) out.push_back(policy);
  return out;
}

std::optional<ResourcePolicyRecord> Manager::resourcePolicy(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto policy = resourcePolicies_.find(name);
  if (policy == resourcePolicies_.end()) return std::nullopt;
  return policy->second;
}

}  // namespace bai::manager
