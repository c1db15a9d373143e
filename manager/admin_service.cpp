#include "admin_service.hpp"

#include "admin_records.hpp"
#include "auth/keypair_generator.hpp"
#include "group_scheduler.hpp"

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

// What a failed keypair write means to the caller. The ledger is checked first; the
// store's unique uid index is the backstop, its Conflict another keypair holding the uid.
Failure<DomainError> keypairWriteFailed(const Error& error, std::uint32_t uid) {
  if (error.code == ErrorCode::OutOfRange) return refuse(ErrorKind::UidRangeExhausted, error.message, "uid");
  if (error.code == ErrorCode::Conflict && uid != 0) return refuse(ErrorKind::UidInUse, error.message, "uid");
  if (error.code == ErrorCode::InvalidArgument) return refuse(ErrorKind::InvalidRequest, error.message);
  return refuse(ErrorKind::StoreFailed, error.message);
}

// The keypair of `state` other than `accessKey` that holds `uid`, if any.
const KeypairRecord* uidHolder(const ClusterState& state, std::uint32_t uid, const std::string& accessKey) {
  for (const auto& [key, record] : state.keypairs) {
    if (record.uid == uid && key != accessKey) return &record;
  }
  return nullptr;
}

Failure<DomainError> uidInUse(std::uint32_t uid, const KeypairRecord& holder) {
  return refuse(ErrorKind::UidInUse, "uid " + std::to_string(uid) + " is held by keypair " + holder.accessKey, "uid");
}

std::string idsText(const KeypairRecord& record) {
  return "uid " + std::to_string(record.uid) + ", gid " + std::to_string(record.gid);
}

}  // namespace

AdminService::AdminService(Ledger& ledger, const PolicyCatalog& policies, LogSink log)
    : ledger_(ledger), policies_(policies), log_(std::move(log)) {}

void AdminService::audit(const std::string& by, const std::string& what) const {
  if (log_) log_(LogLevel::Info, "admin", (by.empty() ? std::string("an admin") : "admin " + by) + ": " + what);
}

Outcome<KeypairRecord> AdminService::createKeypair(bool admin, const std::string& resourcePolicy, KeypairIdentity identity,
                                                   const std::string& by) {
  const Keypair generated = generateKeypair();
  KeypairRecord record{generated.accessKey, generated.secretKey, admin,        true,
                       nowMillis(),         resourcePolicy,      identity.uid, identity.gid};
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  if (!resourcePolicy.empty() && state.resourcePolicies.count(resourcePolicy) == 0) return unknownPolicy(resourcePolicy);
  if (const KeypairRecord* holder = identity.uid != 0 ? uidHolder(state, identity.uid, record.accessKey) : nullptr) {
    return uidInUse(identity.uid, *holder);
  }
  // The uid is allocated in the insert's own transaction, so two creates never share one.
  auto done = ledger_.store().write([&](StoreTransaction& tx) -> Result<void> {
    if (auto inserted = tx.insertKeypair(record); !inserted) return inserted;
    auto stored = tx.keypair(record.accessKey);
    if (!stored) return Failure{stored.error()};
    if (!*stored) return fail(ErrorCode::Internal, "keypair " + record.accessKey + " vanished after its insert");
    record = **stored;
    return {};
  });
  if (!done) return keypairWriteFailed(done.error(), identity.uid);
  state.keypairs[record.accessKey] = record;
  audit(by, "created keypair " + record.accessKey + (admin ? " (admin)" : "") + " with " + idsText(record));
  return record;
}

Outcome<KeypairRecord> AdminService::setKeypairIdentity(const std::string& accessKey, KeypairIdentity identity,
                                                        const std::string& by) {
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  auto keypair = state.keypairs.find(accessKey);
  if (keypair == state.keypairs.end()) return refuse(ErrorKind::UnknownKeypair, "no keypair '" + accessKey + "'");
  if (identity.uid == 0) return refuse(ErrorKind::InvalidRequest, "a uid is required", "uid");
  if (const KeypairRecord* holder = uidHolder(state, identity.uid, accessKey)) return uidInUse(identity.uid, *holder);
  KeypairRecord stored;
  auto done = ledger_.store().write([&](StoreTransaction& tx) -> Result<void> {
    if (auto set = tx.setKeypairIdentity(accessKey, identity.uid, identity.gid); !set) return set;
    auto read = tx.keypair(accessKey);
    if (!read) return Failure{read.error()};
    if (!*read) return fail(ErrorCode::NotFound, "keypair '" + accessKey + "' not found");
    stored = **read;
    return {};
  });
  if (!done) return keypairWriteFailed(done.error(), identity.uid);
  const std::string before = idsText(keypair->second);
  keypair->second = stored;
  audit(by, "keypair " + accessKey + " now runs sessions as " + idsText(stored) + " (was " + before + ")");
  // Agents that refused this keypair's waiting sessions may take its new identity: the
  // refusals are forgotten now rather than at those agents' next change of state.
  for (const auto& [id, session] : state.active) {
    if (session.owner == accessKey) state.refusals.erase(id);
  }
  ledger_.wantPlacement(guard);
  return stored;
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

namespace {

// What differs between the two kinds of named admin record; the rest is one code path.
template <class Record>
struct RecordKind;

template <>
struct RecordKind<ScalingGroupRecord> {
  static constexpr const char* label = "scaling group";
  static constexpr ErrorKind exists = ErrorKind::ScalingGroupExists;
  static constexpr ErrorKind unknown = ErrorKind::UnknownScalingGroup;
  template <class State>  // ClusterState, const or not
  static auto& records(State& state) { return state.scalingGroups; }
  static Result<void> save(StoreTransaction& tx, const ScalingGroupRecord& group) { return tx.upsertScalingGroup(group); }
};

template <>
struct RecordKind<ResourcePolicyRecord> {
  static constexpr const char* label = "resource policy";
  static constexpr ErrorKind exists = ErrorKind::ResourcePolicyExists;
  static constexpr ErrorKind unknown = ErrorKind::UnknownResourcePolicy;
  template <class State>
  static auto& records(State& state) { return state.resourcePolicies; }
  static Result<void> save(StoreTransaction& tx, const ResourcePolicyRecord& policy) { return tx.upsertResourcePolicy(policy); }
};

// Writes `record` (keeping the first creation time, as the store does), then keeps it
// in the ledger and wakes placement: an activated group, a new order or a raised limit
// may place sessions now.
template <class Record>
Outcome<Record> storeRecord(Ledger& ledger, const Ledger::Guard& guard, Record record) {
  auto& records = RecordKind<Record>::records(ledger.state(guard));
  if (auto stored = records.find(record.name); stored != records.end()) {
    record.createdAtMillis = stored->second.createdAtMillis;
  } else if (record.createdAtMillis == 0) {
    record.createdAtMillis = nowMillis();
  }
  if (auto done = ledger.store().write([&](StoreTransaction& tx) { return RecordKind<Record>::save(tx, record); }); !done) {
    return refuse(ErrorKind::StoreFailed, done.error().message);
  }
  records[record.name] = record;
  ledger.wantPlacement(guard);
  return record;
}

// What a created or patched record must pass besides its own fields; none by default.
template <class Record>
using RecordCheck = std::function<Result<void>(const Record&)>;

template <class Record>
Outcome<void> passes(const RecordCheck<Record>& check, const Record& record) {
  if (!check) return {};
  if (auto valid = check(record); !valid) return refuse(ErrorKind::InvalidRequest, valid.error().message);
  return {};
}

template <class Record>
Outcome<Record> createRecord(Ledger& ledger, const RecordEdit<Record>& make, const RecordCheck<Record>& check = {}) {
  const Ledger::Guard guard = ledger.lock();
  ClusterState& state = ledger.state(guard);
  auto record = edited(make, Record{}, state.registry.table());
  if (!record) return record;
  if (auto valid = passes(check, *record); !valid) return Failure{valid.error()};
  if (RecordKind<Record>::records(state).count(record->name) != 0) {
    return refuse(RecordKind<Record>::exists,
                  std::string(RecordKind<Record>::label) + " '" + record->name + "' exists; PATCH it to change it");
  }
  return storeRecord(ledger, guard, std::move(*record));
}

template <class Record>
Outcome<Record> patchRecord(Ledger& ledger, const std::string& name, const RecordEdit<Record>& edit,
                            const RecordCheck<Record>& check = {}) {
  const Ledger::Guard guard = ledger.lock();
  ClusterState& state = ledger.state(guard);
  auto& records = RecordKind<Record>::records(state);
  auto stored = records.find(name);
  if (stored == records.end()) {
    return refuse(RecordKind<Record>::unknown, std::string("no ") + RecordKind<Record>::label + " '" + name + "'");
  }
  auto record = edited(edit, stored->second, state.registry.table());
  if (!record) return record;
  if (auto valid = passes(check, *record); !valid) return Failure{valid.error()};
  return storeRecord(ledger, guard, std::move(*record));
}

template <class Record>
Outcome<Record> upsertRecord(Ledger& ledger, Record record) {
  if (!isValidRecordName(record.name)) return refuse(ErrorKind::InvalidRequest, "'" + record.name + "' is not a valid name");
  const Ledger::Guard guard = ledger.lock();
  return storeRecord(ledger, guard, std::move(record));
}

template <class Record>
std::vector<Record> listRecords(const Ledger& ledger) {
  const Ledger::Guard guard = ledger.lock();
  return valuesOf(RecordKind<Record>::records(ledger.state(guard)));
}

template <class Record>
std::optional<Record> findRecord(const Ledger& ledger, const std::string& name) {
  const Ledger::Guard guard = ledger.lock();
  return find(RecordKind<Record>::records(ledger.state(guard)), name);
}

}  // namespace

Outcome<ScalingGroupRecord> AdminService::createScalingGroup(const RecordEdit<ScalingGroupRecord>& make) {
  return createRecord<ScalingGroupRecord>(ledger_, make, [this](const auto& group) { return checkPolicies(group, policies_); });
}

Outcome<ScalingGroupRecord> AdminService::patchScalingGroup(const std::string& name, const RecordEdit<ScalingGroupRecord>& edit) {
  return patchRecord<ScalingGroupRecord>(ledger_, name, edit,
                                         [this](const auto& group) { return checkPolicies(group, policies_); });
}

Outcome<ScalingGroupRecord> AdminService::upsertScalingGroup(ScalingGroupRecord group) { return upsertRecord(ledger_, std::move(group)); }

std::vector<ScalingGroupRecord> AdminService::scalingGroups() const { return listRecords<ScalingGroupRecord>(ledger_); }

std::optional<ScalingGroupRecord> AdminService::scalingGroup(const std::string& name) const {
  return findRecord<ScalingGroupRecord>(ledger_, name);
}

Outcome<ResourcePolicyRecord> AdminService::createResourcePolicy(const RecordEdit<ResourcePolicyRecord>& make) {
  return createRecord(ledger_, make);
}

Outcome<ResourcePolicyRecord> AdminService::patchResourcePolicy(const std::string& name,
                                                                const RecordEdit<ResourcePolicyRecord>& edit) {
  return patchRecord(ledger_, name, edit);
}

Outcome<ResourcePolicyRecord> AdminService::upsertResourcePolicy(ResourcePolicyRecord policy) {
  return upsertRecord(ledger_, std::move(policy));
}

std::vector<ResourcePolicyRecord> AdminService::resourcePolicies() const { return listRecords<ResourcePolicyRecord>(ledger_); }

std::optional<ResourcePolicyRecord> AdminService::resourcePolicy(const std::string& name) const {
  return findRecord<ResourcePolicyRecord>(ledger_, name);
}

}  // namespace bai::manager
