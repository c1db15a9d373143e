// One transaction's typed reads and writes of the manager's records over SQLite: the
// records' SQL lives here, beside the SELECTs and row readers of sqlite_rows.hpp.
#include "sqlite_connection.hpp"
#include "sqlite_rows.hpp"
#include "sqlite_vfolders.hpp"
#include "store.hpp"

#include <nlohmann/json.hpp>

namespace bai::manager::sqlite {
namespace {

class SqliteTransaction final : public StoreTransaction {
 public:
  SqliteTransaction(Connection& connection, bool writable, const IdentityPolicy& identity)
      : db_(connection), writable_(writable), identity_(identity) {}

  Result<void> insertKeypair(const KeypairRecord& keypair) override {
    if (Result<void> ok = checkWrite("keypair", keypair.accessKey); !ok.ok()) return ok;
    if (Result<void> known = requirePolicy(keypair.resourcePolicy); !known.ok()) return known;
    std::uint32_t uid = keypair.uid;
    if (uid == 0) {
      Result<std::uint32_t> free = lowestFreeUid();
      if (!free.ok()) return Failure{free.error()};
      uid = *free;
    }
    const std::uint32_t gid = keypair.gid == 0 ? identity_.gidFor(uid) : keypair.gid;
    if (Result<void> ok = checkIdentity(keypair.accessKey, uid, gid); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO keypairs (access_key, secret_key, is_admin, is_active, created_at_ms, resource_policy, uid, gid) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(keypair.accessKey).bind(keypair.secretKey).bind(keypair.admin).bind(keypair.active);
    stmt->bind(keypair.createdAtMillis).bind(keypair.resourcePolicy);
    stmt->bind(std::int64_t{uid}).bind(std::int64_t{gid});
    return conflictAs(stmt->run(), "keypair '" + keypair.accessKey + "' already exists");
  }

  Result<std::optional<KeypairRecord>> keypair(const std::string& accessKey) override {
    Result<std::vector<KeypairRecord>> found = readKeypairs(" WHERE access_key = ?", accessKey);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<KeypairRecord>();
    return std::optional<KeypairRecord>(std::move(found->front()));
  }

  Result<std::vector<KeypairRecord>> keypairs() override { return readKeypairs(" ORDER BY access_key", std::nullopt); }

  Result<void> setKeypairResourcePolicy(const std::string& accessKey, const std::string& name) override {
    if (Result<void> ok = checkWrite("keypair", accessKey); !ok.ok()) return ok;
    if (Result<void> known = requirePolicy(name); !known.ok()) return known;
    Result<Statement> stmt = db_.prepare("UPDATE keypairs SET resource_policy = ? WHERE access_key = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(name).bind(accessKey);
    return requireChange(stmt->run(), "keypair '" + accessKey + "' not found");
  }

  Result<void> setKeypairIdentity(const std::string& accessKey, std::uint32_t uid, std::uint32_t gid) override {
    if (Result<void> ok = checkWrite("keypair", accessKey); !ok.ok()) return ok;
    if (gid == 0) gid = identity_.gidFor(uid);
    if (Result<void> ok = checkIdentity(accessKey, uid, gid); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare("UPDATE keypairs SET uid = ?, gid = ? WHERE access_key = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(std::int64_t{uid}).bind(std::int64_t{gid}).bind(accessKey);
    return requireChange(stmt->run(), "keypair '" + accessKey + "' not found");
  }

  Result<void> upsertScalingGroup(const ScalingGroupRecord& group) override {
    if (Result<void> ok = checkWrite("scaling group", group.name); !ok.ok()) return ok;
    Result<std::string> priority =
        dumpJson(Json(group.slotPriority), "the slot priority of scaling group '" + group.name + "'");
    if (!priority.ok()) return Failure{priority.error()};
    Result<std::string> allowed =
        dumpJson(Json(group.allowedImages), "the allowed images of scaling group '" + group.name + "'");
    if (!allowed.ok()) return Failure{allowed.error()};
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO scaling_groups (name, description, sequencer, selector, options_json, slot_priority_json, "
        "hol_max_passes, hol_max_wait_ms, is_active, created_at_ms, image_pull_policy, allowed_images_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET description = excluded.description, sequencer = excluded.sequencer, "
        "selector = excluded.selector, options_json = excluded.options_json, "
        "slot_priority_json = excluded.slot_priority_json, hol_max_passes = excluded.hol_max_passes, "
        "hol_max_wait_ms = excluded.hol_max_wait_ms, is_active = excluded.is_active, "
        "image_pull_policy = excluded.image_pull_policy, allowed_images_json = excluded.allowed_images_json");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(group.name).bind(group.description).bind(group.sequencer).bind(group.selector);
    stmt->bind(group.optionsJson).bind(*priority).bind(std::int64_t{group.holMaxPasses});
    stmt->bind(group.holMaxWaitMillis).bind(group.active).bind(group.createdAtMillis);
    stmt->bind(group.imagePullPolicy).bind(*allowed);
    return stmt->run();
  }

  Result<std::optional<ScalingGroupRecord>> scalingGroup(const std::string& name) override {
    Result<std::vector<ScalingGroupRecord>> found = readScalingGroupRows(db_, " WHERE name = ?", name);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<ScalingGroupRecord>();
    return std::optional<ScalingGroupRecord>(std::move(found->front()));
  }

  Result<std::vector<ScalingGroupRecord>> scalingGroups() override {
    return readScalingGroupRows(db_, " ORDER BY name", std::nullopt);
  }

  Result<void> upsertResourcePolicy(const ResourcePolicyRecord& policy) override {
    if (Result<void> ok = checkWrite("resource policy", policy.name); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO resource_policies (name, total_resource_slots_json, default_unlimited, max_concurrent_sessions, "
        "max_pending_sessions, created_at_ms, default_session_slots_json, max_vfolder_count, max_vfolder_size) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET total_resource_slots_json = excluded.total_resource_slots_json, "
        "default_unlimited = excluded.default_unlimited, max_concurrent_sessions = excluded.max_concurrent_sessions, "
        "max_pending_sessions = excluded.max_pending_sessions, "
        "default_session_slots_json = excluded.default_session_slots_json, "
        "max_vfolder_count = excluded.max_vfolder_count, max_vfolder_size = excluded.max_vfolder_size");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(policy.name).bind(policy.totalResourceSlots.toJson()).bind(policy.defaultUnlimited);
    stmt->bind(std::int64_t{policy.maxConcurrentSessions}).bind(std::int64_t{policy.maxPendingSessions});
    stmt->bind(policy.createdAtMillis).bind(policy.defaultSessionSlots.toJson());
    stmt->bind(policy.maxVfolderCount).bind(static_cast<std::int64_t>(policy.maxVfolderSize));
    return stmt->run();
  }

  Result<std::optional<ResourcePolicyRecord>> resourcePolicy(const std::string& name) override {
    Result<std::vector<ResourcePolicyRecord>> found = readResourcePolicyRows(db_, " WHERE name = ?", name);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<ResourcePolicyRecord>();
    return std::optional<ResourcePolicyRecord>(std::move(found->front()));
  }

  Result<std::vector<ResourcePolicyRecord>> resourcePolicies() override {
    return readResourcePolicyRows(db_, " ORDER BY name", std::nullopt);
  }

  Result<std::map<std::string, SlotType>> slotTypes() override {
    Result<Statement> stmt = db_.prepare("SELECT slot, type FROM slot_types");
    if (!stmt.ok()) return Failure{stmt.error()};
    std::map<std::string, SlotType> types;
    for (;;) {
      Result<bool> row = stmt->step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) return types;
      std::string slot = stmt->text(0);
      Result<SlotType> type = parseSlotType(stmt->text(1));
      if (!type.ok()) return Failure{corrupt("slot_types for '" + slot + "'", type.error())};
      types.emplace(std::move(slot), *type);
    }
  }

  Result<void> insertSlotType(const std::string& slot, SlotType type) override {
    if (Result<void> ok = checkWrite("slot", slot); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare("INSERT INTO slot_types (slot, type) VALUES (?, ?)");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(slot).bind(slotTypeName(type));
    return conflictAs(stmt->run(), "slot type '" + slot + "' is already known");
  }

  Result<void> refineSlotType(const std::string& slot, SlotType type) override {
    if (Result<void> ok = checkWrite("slot", slot); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare("UPDATE slot_types SET type = ? WHERE slot = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(slotTypeName(type)).bind(slot);
    if (Result<void> ran = stmt->run(); !ran.ok()) return ran;
    if (sqlite3_changes(db_.handle()) == 0) return fail(ErrorCode::NotFound, "slot type '" + slot + "' is not known");
    return {};
  }

  Result<std::optional<AgentRecord>> agent(const std::string& id) override {
    Result<std::vector<AgentRecord>> found = readAgentRows(db_, " WHERE id = ?", id);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<AgentRecord>();
    return std::optional<AgentRecord>(std::move(found->front()));
  }

  Result<std::vector<AgentRecord>> agents() override { return readAgentRows(db_, " ORDER BY id", std::nullopt); }

  Result<void> upsertAgent(const AgentRecord& agent) override {
    if (Result<void> ok = checkWrite("agent", agent.id); !ok.ok()) return ok;
    // An upsert, not INSERT OR REPLACE: replacing would delete the row first and cascade.
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO agents (id, status, rpc_url, region, scaling_group, architecture, version, digest, "
        "plugins_json, device_health_json, last_event_seq, registered_at_ms, status_changed_at_ms, runtimes_json, "
        "images_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "status = excluded.status, rpc_url = excluded.rpc_url, region = excluded.region, "
        "scaling_group = excluded.scaling_group, architecture = excluded.architecture, "
        "version = excluded.version, digest = excluded.digest, plugins_json = excluded.plugins_json, "
        "device_health_json = excluded.device_health_json, last_event_seq = excluded.last_event_seq, "
        "registered_at_ms = excluded.registered_at_ms, status_changed_at_ms = excluded.status_changed_at_ms, "
        "runtimes_json = excluded.runtimes_json, images_json = excluded.images_json");
    if (!stmt.ok()) return Failure{stmt.error()};
    Result<std::string> runtimes = runtimesText(agent);
    if (!runtimes.ok()) return Failure{runtimes.error()};
    Result<std::string> images = imagesText(agent);
    if (!images.ok()) return Failure{images.error()};
    // Unsigned counters are stored bit for bit in SQLite's signed 64-bit integers.
    stmt->bind(agent.id).bind(agentStatusName(agent.status)).bind(agent.rpcUrl).bind(agent.region);
    stmt->bind(agent.scalingGroup).bind(agent.architecture).bind(agent.version);
    stmt->bind(static_cast<std::int64_t>(agent.digest)).bind(agent.pluginsJson).bind(agent.deviceHealthJson);
    stmt->bind(static_cast<std::int64_t>(agent.lastEventSeq)).bind(agent.registeredAtMillis);
    stmt->bind(agent.statusChangedAtMillis).bind(*runtimes).bind(*images);
    if (Result<void> ran = stmt->run(); !ran.ok()) return ran;

    Result<Statement> clear = db_.prepare("DELETE FROM agent_resources WHERE agent_id = ?");
    if (!clear.ok()) return Failure{clear.error()};
    clear->bind(agent.id);
    if (Result<void> ran = clear->run(); !ran.ok()) return ran;
    for (const auto& [slot, figures] : agent.slots) {
      Result<Statement> insert =
          db_.prepare("INSERT INTO agent_resources (agent_id, slot, capacity, used, largest) VALUES (?, ?, ?, ?, ?)");
      if (!insert.ok()) return Failure{insert.error()};
      insert->bind(agent.id).bind(slot).bind(figures.capacity.toString()).bind(figures.used.toString());
      insert->bind(figures.largest.toString());
      if (Result<void> ran = insert->run(); !ran.ok()) return ran;
    }
    return {};
  }

  Result<void> setAgentStatus(const std::string& id, AgentStatus status, std::int64_t atMillis) override {
    if (Result<void> ok = checkWrite("agent", id); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare("UPDATE agents SET status = ?, status_changed_at_ms = ? WHERE id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(agentStatusName(status)).bind(atMillis).bind(id);
    return requireChange(stmt->run(), "agent '" + id + "' not found");
  }

  Result<void> setAgentUsed(const std::string& id, const ResourceSlot& used) override {
    if (Result<void> ok = checkWrite("agent", id); !ok.ok()) return ok;
    if (Result<void> known = requireAgent(id); !known.ok()) return known;
    for (const auto& [slot, amount] : used) {
      Result<Statement> stmt = db_.prepare(
          "INSERT INTO agent_resources (agent_id, slot, capacity, used, largest) VALUES (?, ?, '0', ?, '0') "
          "ON CONFLICT (agent_id, slot) DO UPDATE SET used = excluded.used");
      if (!stmt.ok()) return Failure{stmt.error()};
      stmt->bind(id).bind(slot.str()).bind(amount.toString());
      if (Result<void> ran = stmt->run(); !ran.ok()) return ran;
    }
    return {};
  }

  Result<void> setAgentLastEventSeq(const std::string& id, std::uint64_t seq) override {
    if (Result<void> ok = checkWrite("agent", id); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare("UPDATE agents SET last_event_seq = ? WHERE id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(static_cast<std::int64_t>(seq)).bind(id);
    return requireChange(stmt->run(), "agent '" + id + "' not found");
  }

  Result<std::uint64_t> insertSession(const SessionRecord& session) override {
    if (Result<void> ok = checkWrite("session", session.id); !ok.ok()) return Failure{ok.error()};
    Result<std::string> command = dumpJson(Json(session.command), "the command of session '" + session.id + "'");
    if (!command.ok()) return Failure{command.error()};
    Result<std::string> env = dumpJson(Json(session.env), "the environment of session '" + session.id + "'");
    if (!env.ok()) return Failure{env.error()};
    Result<std::string> servicePorts = servicePortsText(session);
    if (!servicePorts.ok()) return Failure{servicePorts.error()};
    Result<std::string> mounts = mountsText(session);
    if (!mounts.ok()) return Failure{mounts.error()};
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO sessions (id, name, owner, scaling_group, command_json, env_json, requested_json, status, "
        "status_reason, agent_id, exit_code, created_at_ms, scheduled_at_ms, started_at_ms, ended_at_ms, "
        "idempotency_key, request_digest, image, open_stdin, tty, service_ports_json, mounts_json) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(session.id).bind(session.name).bind(session.owner).bind(session.scalingGroup);
    stmt->bind(*command).bind(*env).bind(session.requested.toJson()).bind(sessionStatusName(session.status));
    stmt->bind(session.statusReason).bind(session.agentId);
    bindExitCode(*stmt, session.exitCode);
    stmt->bind(session.createdAtMillis).bind(session.scheduledAtMillis).bind(session.startedAtMillis);
    stmt->bind(session.endedAtMillis).bind(session.idempotencyKey).bind(session.requestDigest);
    if (session.image) {
      stmt->bind(*session.image);
    } else {
      stmt->bindNull();
    }
    stmt->bind(std::int64_t{session.openStdin}).bind(std::int64_t{session.tty}).bind(*servicePorts).bind(*mounts);
    Result<void> ran = conflictAs(stmt->run(), "session '" + session.id + "' already exists");
    if (!ran.ok()) return Failure{ran.error()};
    return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db_.handle()));
  }

  Result<std::optional<SessionRecord>> session(const std::string& id) override {
    Result<Statement> stmt = db_.prepare(kSessionColumns + " WHERE id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(id);
    Result<std::vector<SessionRecord>> found = readSessionRows(*stmt);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<SessionRecord>();
    return std::optional<SessionRecord>(std::move(found->front()));
  }

  Result<std::optional<SessionRecord>> sessionByIdempotencyKey(const std::string& owner, const std::string& key) override {
    Result<Statement> stmt = db_.prepare(kSessionColumns + " WHERE owner = ? AND idempotency_key = ? AND idempotency_key != ''");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(owner).bind(key);
    Result<std::vector<SessionRecord>> found = readSessionRows(*stmt);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<SessionRecord>();
    return std::optional<SessionRecord>(std::move(found->front()));
  }

  Result<std::vector<SessionRecord>> sessions(const SessionFilter& filter) override {
    // At most 16 shapes of this query, each prepared once.
    std::string sql = kSessionColumns + " WHERE 1";
    if (filter.status) sql += " AND status = ?";
    if (filter.owner) sql += " AND owner = ?";
    if (filter.agentId) sql += " AND agent_id = ?";
    if (filter.activeOnly) {
      sql += " AND status NOT IN (";
      sql += std::string("'") + sessionStatusName(SessionStatus::Terminated) + "', '" +
             sessionStatusName(SessionStatus::Cancelled) + "', '" + sessionStatusName(SessionStatus::Error) + "')";
    }
    sql += " ORDER BY enqueue_seq";
    Result<Statement> stmt = db_.prepare(sql);
    if (!stmt.ok()) return Failure{stmt.error()};
    if (filter.status) stmt->bind(sessionStatusName(*filter.status));
    if (filter.owner) stmt->bind(*filter.owner);
    if (filter.agentId) stmt->bind(*filter.agentId);
    return readSessionRows(*stmt);
  }

  Result<void> updateSession(const SessionRecord& session) override {
    if (Result<void> ok = checkWrite("session", session.id); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare(
        "UPDATE sessions SET status = ?, status_reason = ?, agent_id = ?, exit_code = ?, created_at_ms = ?, "
        "scheduled_at_ms = ?, started_at_ms = ?, ended_at_ms = ? WHERE id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(sessionStatusName(session.status)).bind(session.statusReason).bind(session.agentId);
    bindExitCode(*stmt, session.exitCode);
    stmt->bind(session.createdAtMillis).bind(session.scheduledAtMillis).bind(session.startedAtMillis);
    stmt->bind(session.endedAtMillis).bind(session.id);
    return requireChange(stmt->run(), "session '" + session.id + "' not found");
  }

  Result<void> insertAllocation(const AllocationRecord& allocation) override {
    if (Result<void> ok = checkWrite("session", allocation.sessionId); !ok.ok()) return ok;
    if (Result<void> ok = requireId("agent", allocation.agentId); !ok.ok()) return ok;
    // Checked here so that a missing row reads as NotFound, not as a foreign key failure.
    Result<std::optional<SessionRecord>> owner = session(allocation.sessionId);
    if (!owner.ok()) return Failure{owner.error()};
    if (!owner->has_value()) return fail(ErrorCode::NotFound, "session '" + allocation.sessionId + "' not found");
    if (Result<void> known = requireAgent(allocation.agentId); !known.ok()) return known;
    Result<Statement> stmt =
        db_.prepare("INSERT INTO allocations (session_id, agent_id, slots_json, released) VALUES (?, ?, ?, ?)");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(allocation.sessionId).bind(allocation.agentId).bind(allocation.slots.toJson());
    stmt->bind(allocation.released);
    return conflictAs(stmt->run(), "session '" + allocation.sessionId + "' already has an allocation");
  }

  Result<std::optional<AllocationRecord>> allocation(const std::string& sessionId) override {
    Result<Statement> stmt =
        db_.prepare(kAllocationColumns + " WHERE session_id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(sessionId);
    Result<std::vector<AllocationRecord>> found = readAllocationRows(*stmt);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<AllocationRecord>();
    return std::optional<AllocationRecord>(std::move(found->front()));
  }

  Result<std::vector<AllocationRecord>> allocations(const std::string& agentId) override {
    Result<Statement> stmt = db_.prepare(kAllocationColumns + " WHERE agent_id = ? ORDER BY session_id");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(agentId);
    return readAllocationRows(*stmt);
  }

  Result<void> setAllocationReleased(const std::string& sessionId, bool released) override {
    if (Result<void> ok = checkWrite("session", sessionId); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare("UPDATE allocations SET released = ? WHERE session_id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(released).bind(sessionId);
    return requireChange(stmt->run(), "allocation of session '" + sessionId + "' not found");
  }

  Result<void> deleteAllocation(const std::string& sessionId) override {
    if (Result<void> ok = checkWrite("session", sessionId); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare("DELETE FROM allocations WHERE session_id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(sessionId);
    return requireChange(stmt->run(), "allocation of session '" + sessionId + "' not found");
  }

  Result<void> insertVfolder(const VfolderRecord& folder) override {
    if (Result<void> ok = checkWrite("folder", folder.id); !ok.ok()) return ok;
    return sqlite::vfolders::insert(db_, folder);
  }
  Result<std::optional<VfolderRecord>> vfolder(const std::string& id) override { return sqlite::vfolders::byId(db_, id); }
  Result<std::optional<VfolderRecord>> vfolderByName(const std::string& owner, const std::string& name) override {
    return sqlite::vfolders::byName(db_, owner, name);
  }
  Result<std::vector<VfolderRecord>> vfoldersOwnedBy(const std::string& owner) override {
    return sqlite::vfolders::ownedBy(db_, owner);
  }
  Result<std::vector<VfolderRecord>> vfoldersSharedWith(const std::string& accessKey) override {
    return sqlite::vfolders::sharedWith(db_, accessKey);
  }
  Result<std::vector<VfolderRecord>> vfolders() override { return sqlite::vfolders::all(db_); }
  Result<std::int64_t> countVfoldersOwnedBy(const std::string& owner) override { return sqlite::vfolders::countOwnedBy(db_, owner); }
  Result<void> deleteVfolder(const std::string& id) override {
    if (Result<void> ok = checkWrite("folder", id); !ok.ok()) return ok;
    return sqlite::vfolders::remove(db_, id);
  }
  Result<void> setVfolderShare(const VfolderShareRecord& share) override {
    if (Result<void> ok = checkWrite("folder", share.folderId); !ok.ok()) return ok;
    return sqlite::vfolders::setShare(db_, share);
  }
  Result<void> removeVfolderShare(const std::string& folderId, const std::string& accessKey) override {
    if (Result<void> ok = checkWrite("folder", folderId); !ok.ok()) return ok;
    return sqlite::vfolders::removeShare(db_, folderId, accessKey);
  }
  Result<std::vector<VfolderShareRecord>> vfolderShares(const std::string& folderId) override {
    return sqlite::vfolders::shares(db_, folderId);
  }
  Result<bool> vfolderMountedByActiveSession(const std::string& folderId) override {
    return sqlite::vfolders::mountedByActiveSession(db_, folderId);
  }

  Result<void> insertRequestNonce(const std::string& key, std::int64_t expiresAtMillis) override {
    if (Result<void> ok = checkWrite("request nonce", key); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare("INSERT INTO request_nonces (nonce_key, expires_at_ms) VALUES (?, ?)");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(key).bind(expiresAtMillis);
    return conflictAs(stmt->run(), "the request nonce is already kept");
  }

  Result<void> deleteRequestNoncesExpiredBefore(std::int64_t atMillis) override {
    if (!writable_) return fail(ErrorCode::InvalidArgument, "write in a read transaction");
    Result<Statement> stmt = db_.prepare("DELETE FROM request_nonces WHERE expires_at_ms < ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(atMillis);
    return stmt->run();
  }

  Result<std::map<std::string, std::int64_t>> requestNonces(std::int64_t atMillis) override {
    Result<Statement> stmt = db_.prepare("SELECT nonce_key, expires_at_ms FROM request_nonces WHERE expires_at_ms >= ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(atMillis);
    std::map<std::string, std::int64_t> found;
    for (;;) {
      Result<bool> row = stmt->step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) return found;
      found.emplace(stmt->text(0), stmt->integer(1));
    }
  }

 private:
  Result<void> checkWrite(std::string_view kind, const std::string& id) const {
    if (!writable_) return fail(ErrorCode::InvalidArgument, "write in a read transaction");
    return requireId(kind, id);
  }

  static Result<void> conflictAs(Result<void> ran, std::string message) {
    if (!ran.ok() && ran.error().code == ErrorCode::Conflict) return fail(ErrorCode::Conflict, std::move(message));
    return ran;
  }

  Result<void> requireChange(Result<void> ran, std::string notFound) const {
    if (!ran.ok()) return ran;
    if (sqlite3_changes(db_.handle()) == 0) return fail(ErrorCode::NotFound, std::move(notFound));
    return {};
  }

  Result<void> requireAgent(const std::string& id) {
    Result<Statement> stmt = db_.prepare("SELECT 1 FROM agents WHERE id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(id);
    Result<bool> row = stmt->step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row) return fail(ErrorCode::NotFound, "agent '" + id + "' not found");
    return {};
  }

  static void bindExitCode(Statement& stmt, std::optional<int> exitCode) {
    if (exitCode) {
      stmt.bind(static_cast<std::int64_t>(*exitCode));
    } else {
      stmt.bindNull();
    }
  }

  // The lowest uid of the range that no keypair holds: the range's first, or the one
  // after a held uid whose successor is free (the unique index keeps both probes cheap).
  Result<std::uint32_t> lowestFreeUid() {
    Result<Statement> stmt = db_.prepare(
        "SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM keypairs WHERE uid = ?1) THEN ?1 ELSE "
        "(SELECT MIN(held.uid + 1) FROM keypairs AS held WHERE held.uid >= ?1 AND held.uid < ?2 "
        "AND NOT EXISTS (SELECT 1 FROM keypairs AS next WHERE next.uid = held.uid + 1)) END");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(std::int64_t{identity_.firstUid}).bind(std::int64_t{identity_.lastUid});
    Result<bool> row = stmt->step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row || stmt->isNull(0)) {
      return fail(ErrorCode::OutOfRange, "every uid of the session uid range " + identity_.rangeText() +
                                             " (identity.session-uid-range) is held; give the keypair a uid or widen the range");
    }
    return static_cast<std::uint32_t>(stmt->integer(0));
  }

  // Ids the kernel can run a session under, and a uid no other keypair holds.
  Result<void> checkIdentity(const std::string& accessKey, std::uint32_t uid, std::uint32_t gid) {
    for (auto [name, id] : {std::pair{"uid", uid}, std::pair{"gid", gid}}) {
      if (id == 0 || id > kMaxSessionId) {
        return fail(ErrorCode::InvalidArgument,
                    std::string(name) + " " + std::to_string(id) + " is not from 1 to " + std::to_string(kMaxSessionId));
      }
    }
    Result<Statement> stmt = db_.prepare("SELECT access_key FROM keypairs WHERE uid = ? AND access_key != ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(std::int64_t{uid}).bind(accessKey);
    Result<bool> row = stmt->step();
    if (!row.ok()) return Failure{row.error()};
    if (*row) return fail(ErrorCode::Conflict, "uid " + std::to_string(uid) + " is held by keypair '" + stmt->text(0) + "'");
    return {};
  }

  Result<std::vector<KeypairRecord>> readKeypairs(const std::string& tail, const std::optional<std::string>& key) {
    Result<Statement> stmt = db_.prepare(
        "SELECT access_key, secret_key, is_admin, is_active, created_at_ms, resource_policy, uid, gid FROM keypairs" +
        tail);
    if (!stmt.ok()) return Failure{stmt.error()};
    if (key) stmt->bind(*key);
    std::vector<KeypairRecord> found;
    for (;;) {
      Result<bool> row = stmt->step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) return found;
      found.push_back(KeypairRecord{stmt->text(0), stmt->text(1), stmt->integer(2) != 0, stmt->integer(3) != 0,
                                    stmt->integer(4), stmt->text(5), static_cast<std::uint32_t>(stmt->integer(6)),
                                    static_cast<std::uint32_t>(stmt->integer(7))});
    }
  }

  Result<void> requirePolicy(const std::string& name) {
    if (name.empty()) return {};
    Result<Statement> stmt = db_.prepare("SELECT 1 FROM resource_policies WHERE name = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(name);
    Result<bool> row = stmt->step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row) return fail(ErrorCode::NotFound, "resource policy '" + name + "' not found");
    return {};
  }

  Connection& db_;
  bool writable_;
  const IdentityPolicy& identity_;
};

}  // namespace

std::unique_ptr<StoreTransaction> makeTransaction(Connection& connection, bool writable, const IdentityPolicy& identity) {
  return std::make_unique<SqliteTransaction>(connection, writable, identity);
}

}  // namespace bai::manager::sqlite
