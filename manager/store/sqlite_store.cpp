// The SQLite back end of the manager's store. One connection per Store, guarded by a
// mutex; several handles on one file (or several processes) are serialised by SQLite's
// own locks: BEGIN IMMEDIATE for writers, WAL snapshots for readers.
#include "sqlite_migrations.hpp"
#include "store.hpp"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

namespace bai::manager {
namespace {

using Json = nlohmann::json;

// Each migration is one transaction; its index + 1 is the schema version it produces.
// Never edit a released step: add a new one.
const std::vector<std::vector<const char*>> kMigrations = {
    {
        R"sql(CREATE TABLE keypairs (
            access_key TEXT PRIMARY KEY,
            secret_key TEXT NOT NULL,
            is_admin INTEGER NOT NULL,
            is_active INTEGER NOT NULL,
            created_at_ms INTEGER NOT NULL))sql",
        R"sql(CREATE TABLE slot_types (
            slot TEXT PRIMARY KEY,
            type TEXT NOT NULL))sql",
        R"sql(CREATE TABLE agents (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            rpc_url TEXT NOT NULL,
            region TEXT NOT NULL,
            scaling_group TEXT NOT NULL,
            architecture TEXT NOT NULL,
            version TEXT NOT NULL,
            digest INTEGER NOT NULL,
            plugins_json TEXT NOT NULL,
            device_health_json TEXT NOT NULL,
            last_event_seq INTEGER NOT NULL,
            registered_at_ms INTEGER NOT NULL,
            status_changed_at_ms INTEGER NOT NULL))sql",
        R"sql(CREATE TABLE agent_resources (
            agent_id TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
            slot TEXT NOT NULL,
            capacity TEXT NOT NULL,
            used TEXT NOT NULL,
            largest TEXT NOT NULL,
            PRIMARY KEY (agent_id, slot)))sql",
        // AUTOINCREMENT: a deleted session's enqueue_seq is never handed out again.
        R"sql(CREATE TABLE sessions (
            enqueue_seq INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            name TEXT NOT NULL,
            owner TEXT NOT NULL,
            scaling_group TEXT NOT NULL,
            command_json TEXT NOT NULL,
            env_json TEXT NOT NULL,
            requested_json TEXT NOT NULL,
            status TEXT NOT NULL,
            status_reason TEXT NOT NULL,
            agent_id TEXT NOT NULL,
            exit_code INTEGER,
            created_at_ms INTEGER NOT NULL,
            scheduled_at_ms INTEGER NOT NULL,
            started_at_ms INTEGER NOT NULL,
            ended_at_ms INTEGER NOT NULL))sql",
        "CREATE INDEX sessions_by_status ON sessions (status, enqueue_seq)",
        "CREATE INDEX sessions_by_owner ON sessions (owner, enqueue_seq)",
        "CREATE INDEX sessions_by_agent ON sessions (agent_id, enqueue_seq)",
        R"sql(CREATE TABLE allocations (
            session_id TEXT PRIMARY KEY REFERENCES sessions(id),
            agent_id TEXT NOT NULL REFERENCES agents(id),
            slots_json TEXT NOT NULL,
            released INTEGER NOT NULL))sql",
        "CREATE INDEX allocations_by_agent ON allocations (agent_id)",
    },
    {
        R"sql(CREATE TABLE scaling_groups (
            name TEXT PRIMARY KEY,
            description TEXT NOT NULL,
            sequencer TEXT NOT NULL,
            selector TEXT NOT NULL,
            options_json TEXT NOT NULL,
            slot_priority_json TEXT NOT NULL,
            hol_max_passes INTEGER NOT NULL,
            hol_max_wait_ms INTEGER NOT NULL,
            is_active INTEGER NOT NULL,
            created_at_ms INTEGER NOT NULL))sql",
        R"sql(CREATE TABLE resource_policies (
            name TEXT PRIMARY KEY,
            total_resource_slots_json TEXT NOT NULL,
            default_unlimited INTEGER NOT NULL,
            max_concurrent_sessions INTEGER NOT NULL,
            max_pending_sessions INTEGER NOT NULL,
            created_at_ms INTEGER NOT NULL))sql",
        // '' is no policy; a foreign key cannot be added to an existing table in SQLite,
        // so the store checks the name on every write instead.
        "ALTER TABLE keypairs ADD COLUMN resource_policy TEXT NOT NULL DEFAULT ''",
    },
};
const int kSchemaVersion = static_cast<int>(kMigrations.size());

Error sqliteError(sqlite3* db, int rc, std::string_view context) {
  // A duplicate key is the caller's Conflict; anything else is the storage failing.
  bool duplicate = rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE;
  return Error{duplicate ? ErrorCode::Conflict : ErrorCode::Internal,
               std::string(context) + ": " + (db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc))};
}

// A cached prepared statement in use: binds left to right, and is reset when it goes out
// of scope so that an early return never leaves it running.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept
      : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)), next_(other.next_), bindRc_(other.bindRc_) {}
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement() {
    if (stmt_ == nullptr) return;
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }

  Statement& bind(std::string_view text) {
    // A null data pointer would bind SQL NULL instead of ''.
    const char* data = text.data() != nullptr ? text.data() : "";
    return record(sqlite3_bind_text(stmt_, ++next_, data, static_cast<int>(text.size()), SQLITE_TRANSIENT));
  }
  Statement& bind(std::int64_t value) { return record(sqlite3_bind_int64(stmt_, ++next_, value)); }
  Statement& bindNull() { return record(sqlite3_bind_null(stmt_, ++next_)); }

  // True when a row is ready, false when the statement is done.
  Result<bool> step() {
    if (bindRc_ != SQLITE_OK) return Failure{sqliteError(db_, bindRc_, sqlite3_sql(stmt_))};
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return Failure{sqliteError(db_, rc, sqlite3_sql(stmt_))};
  }
  Result<void> run() {
    Result<bool> stepped = step();
    if (!stepped.ok()) return Failure{stepped.error()};
    return {};
  }

  std::string text(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    return data != nullptr ? std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt_, column))) : "";
  }
  std::int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  bool isNull(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }

 private:
  Statement& record(int rc) {
    if (bindRc_ == SQLITE_OK) bindRc_ = rc;
    return *this;
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int next_ = 0;
  int bindRc_ = SQLITE_OK;
};

class Connection {
 public:
  explicit Connection(sqlite3* db) : db_(db) {}
  ~Connection() {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    sqlite3_close_v2(db_);
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  sqlite3* handle() const { return db_; }

  // Prepared once per SQL text: heartbeats run the same few statements all day.
  Result<Statement> prepare(const std::string& sql) {
    auto found = cache_.find(sql);
    if (found != cache_.end()) return Statement(db_, found->second);
    sqlite3_stmt* stmt = nullptr;
    int rc =
        sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
    if (rc != SQLITE_OK) return Failure{sqliteError(db_, rc, "preparing " + sql)};
    cache_.emplace(sql, stmt);
    return Statement(db_, stmt);
  }

  // For statements without parameters or results that run rarely: pragmas, BEGIN, DDL.
  Result<void> exec(const std::string& sql) {
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) return Failure{sqliteError(db_, rc, sql)};
    return {};
  }

  Result<std::string> pragmaText(const std::string& sql) {
    Result<Statement> stmt = prepare(sql);
    if (!stmt.ok()) return Failure{stmt.error()};
    Result<bool> row = stmt->step();
    if (!row.ok()) return Failure{row.error()};
    return *row ? stmt->text(0) : std::string();
  }

  // Rolls back whatever is open; harmless when nothing is.
  void rollback() {
    if (sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }

 private:
  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> cache_;
};

Error corrupt(std::string_view where, const Error& cause) {
  return Error{ErrorCode::Internal, "corrupt store data in " + std::string(where) + ": " + cause.message};
}

Result<Quantity> quantityColumn(const Statement& stmt, int column, std::string_view where) {
  Result<Quantity> parsed = Quantity::parse(stmt.text(column));
  if (!parsed.ok()) return Failure{corrupt(where, parsed.error())};
  return parsed;
}

Result<ResourceSlot> slotsColumn(const Statement& stmt, int column, std::string_view where) {
  Result<ResourceSlot> parsed = ResourceSlot::fromJson(stmt.text(column));
  if (!parsed.ok()) return Failure{corrupt(where, parsed.error())};
  return parsed;
}

// Strict dump: text that is not UTF-8 is refused rather than stored mangled.
Result<std::string> dumpJson(const Json& value, std::string_view what) {
  try {
    return value.dump();
  } catch (const Json::exception&) {
    return fail(ErrorCode::InvalidArgument, std::string(what) + " is not valid UTF-8 text");
  }
}

Result<Json> parseJson(const std::string& text, std::string_view where) {
  Json value = Json::parse(text, nullptr, false);
  if (value.is_discarded())
    return fail(ErrorCode::Internal, "corrupt store data in " + std::string(where) + ": malformed JSON");
  return value;
}

Result<void> requireId(std::string_view kind, const std::string& id) {
  if (id.empty()) return fail(ErrorCode::InvalidArgument, std::string(kind) + " id is empty");
  return {};
}

const std::string kSessionColumns =
    "SELECT id, name, owner, scaling_group, command_json, env_json, requested_json, status, status_reason, "
    "agent_id, exit_code, enqueue_seq, created_at_ms, scheduled_at_ms, started_at_ms, ended_at_ms FROM sessions";

const std::string kAgentColumns =
    "SELECT id, status, rpc_url, region, scaling_group, architecture, version, digest, plugins_json, "
    "device_health_json, last_event_seq, registered_at_ms, status_changed_at_ms FROM agents";

class SqliteTransaction final : public StoreTransaction {
 public:
  SqliteTransaction(Connection& connection, bool writable) : db_(connection), writable_(writable) {}

  Result<void> insertKeypair(const KeypairRecord& keypair) override {
    if (Result<void> ok = checkWrite("keypair", keypair.accessKey); !ok.ok()) return ok;
    if (Result<void> known = requirePolicy(keypair.resourcePolicy); !known.ok()) return known;
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO keypairs (access_key, secret_key, is_admin, is_active, created_at_ms, resource_policy) "
        "VALUES (?, ?, ?, ?, ?, ?)");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(keypair.accessKey).bind(keypair.secretKey).bind(keypair.admin).bind(keypair.active);
    stmt->bind(keypair.createdAtMillis).bind(keypair.resourcePolicy);
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

  Result<void> upsertScalingGroup(const ScalingGroupRecord& group) override {
    if (Result<void> ok = checkWrite("scaling group", group.name); !ok.ok()) return ok;
    Result<std::string> priority =
        dumpJson(Json(group.slotPriority), "the slot priority of scaling group '" + group.name + "'");
    if (!priority.ok()) return Failure{priority.error()};
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO scaling_groups (name, description, sequencer, selector, options_json, slot_priority_json, "
        "hol_max_passes, hol_max_wait_ms, is_active, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET description = excluded.description, sequencer = excluded.sequencer, "
        "selector = excluded.selector, options_json = excluded.options_json, "
        "slot_priority_json = excluded.slot_priority_json, hol_max_passes = excluded.hol_max_passes, "
        "hol_max_wait_ms = excluded.hol_max_wait_ms, is_active = excluded.is_active");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(group.name).bind(group.description).bind(group.sequencer).bind(group.selector);
    stmt->bind(group.optionsJson).bind(*priority).bind(std::int64_t{group.holMaxPasses});
    stmt->bind(group.holMaxWaitMillis).bind(group.active).bind(group.createdAtMillis);
    return stmt->run();
  }

  Result<std::optional<ScalingGroupRecord>> scalingGroup(const std::string& name) override {
    Result<std::vector<ScalingGroupRecord>> found = readScalingGroups(" WHERE name = ?", name);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<ScalingGroupRecord>();
    return std::optional<ScalingGroupRecord>(std::move(found->front()));
  }

  Result<std::vector<ScalingGroupRecord>> scalingGroups() override {
    return readScalingGroups(" ORDER BY name", std::nullopt);
  }

  Result<void> upsertResourcePolicy(const ResourcePolicyRecord& policy) override {
    if (Result<void> ok = checkWrite("resource policy", policy.name); !ok.ok()) return ok;
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO resource_policies (name, total_resource_slots_json, default_unlimited, max_concurrent_sessions, "
        "max_pending_sessions, created_at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
        "total_resource_slots_json = excluded.total_resource_slots_json, "
        "default_unlimited = excluded.default_unlimited, max_concurrent_sessions = excluded.max_concurrent_sessions, "
        "max_pending_sessions = excluded.max_pending_sessions");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(policy.name).bind(policy.totalResourceSlots.toJson()).bind(policy.defaultUnlimited);
    stmt->bind(std::int64_t{policy.maxConcurrentSessions}).bind(std::int64_t{policy.maxPendingSessions});
    stmt->bind(policy.createdAtMillis);
    return stmt->run();
  }

  Result<std::optional<ResourcePolicyRecord>> resourcePolicy(const std::string& name) override {
    Result<std::vector<ResourcePolicyRecord>> found = readResourcePolicies(" WHERE name = ?", name);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<ResourcePolicyRecord>();
    return std::optional<ResourcePolicyRecord>(std::move(found->front()));
  }

  Result<std::vector<ResourcePolicyRecord>> resourcePolicies() override {
    return readResourcePolicies(" ORDER BY name", std::nullopt);
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
    Result<std::vector<AgentRecord>> found = readAgents(" WHERE id = ?", id);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<AgentRecord>();
    return std::optional<AgentRecord>(std::move(found->front()));
  }

  Result<std::vector<AgentRecord>> agents() override { return readAgents(" ORDER BY id", std::nullopt); }

  Result<void> upsertAgent(const AgentRecord& agent) override {
    if (Result<void> ok = checkWrite("agent", agent.id); !ok.ok()) return ok;
    // An upsert, not INSERT OR REPLACE: replacing would delete the row first and cascade.
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO agents (id, status, rpc_url, region, scaling_group, architecture, version, digest, "
        "plugins_json, device_health_json, last_event_seq, registered_at_ms, status_changed_at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
        "status = excluded.status, rpc_url = excluded.rpc_url, region = excluded.region, "
        "scaling_group = excluded.scaling_group, architecture = excluded.architecture, "
        "version = excluded.version, digest = excluded.digest, plugins_json = excluded.plugins_json, "
        "device_health_json = excluded.device_health_json, last_event_seq = excluded.last_event_seq, "
        "registered_at_ms = excluded.registered_at_ms, status_changed_at_ms = excluded.status_changed_at_ms");
    if (!stmt.ok()) return Failure{stmt.error()};
    // Unsigned counters are stored bit for bit in SQLite's signed 64-bit integers.
    stmt->bind(agent.id).bind(agentStatusName(agent.status)).bind(agent.rpcUrl).bind(agent.region);
    stmt->bind(agent.scalingGroup).bind(agent.architecture).bind(agent.version);
    stmt->bind(static_cast<std::int64_t>(agent.digest)).bind(agent.pluginsJson).bind(agent.deviceHealthJson);
    stmt->bind(static_cast<std::int64_t>(agent.lastEventSeq)).bind(agent.registeredAtMillis);
    stmt->bind(agent.statusChangedAtMillis);
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
    Result<Statement> stmt = db_.prepare(
        "INSERT INTO sessions (id, name, owner, scaling_group, command_json, env_json, requested_json, status, "
        "status_reason, agent_id, exit_code, created_at_ms, scheduled_at_ms, started_at_ms, ended_at_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(session.id).bind(session.name).bind(session.owner).bind(session.scalingGroup);
    stmt->bind(*command).bind(*env).bind(session.requested.toJson()).bind(sessionStatusName(session.status));
    stmt->bind(session.statusReason).bind(session.agentId);
    bindExitCode(*stmt, session.exitCode);
    stmt->bind(session.createdAtMillis).bind(session.scheduledAtMillis).bind(session.startedAtMillis);
    stmt->bind(session.endedAtMillis);
    Result<void> ran = conflictAs(stmt->run(), "session '" + session.id + "' already exists");
    if (!ran.ok()) return Failure{ran.error()};
    return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db_.handle()));
  }

  Result<std::optional<SessionRecord>> session(const std::string& id) override {
    Result<Statement> stmt = db_.prepare(kSessionColumns + " WHERE id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(id);
    Result<std::vector<SessionRecord>> found = readSessions(*stmt);
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
    return readSessions(*stmt);
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
        db_.prepare("SELECT session_id, agent_id, slots_json, released FROM allocations WHERE session_id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(sessionId);
    Result<std::vector<AllocationRecord>> found = readAllocations(*stmt);
    if (!found.ok()) return Failure{found.error()};
    if (found->empty()) return std::optional<AllocationRecord>();
    return std::optional<AllocationRecord>(std::move(found->front()));
  }

  Result<std::vector<AllocationRecord>> allocations(const std::string& agentId) override {
    Result<Statement> stmt = db_.prepare(
        "SELECT session_id, agent_id, slots_json, released FROM allocations WHERE agent_id = ? ORDER BY session_id");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(agentId);
    return readAllocations(*stmt);
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

  Result<std::vector<KeypairRecord>> readKeypairs(const std::string& tail, const std::optional<std::string>& key) {
    Result<Statement> stmt = db_.prepare(
        "SELECT access_key, secret_key, is_admin, is_active, created_at_ms, resource_policy FROM keypairs" + tail);
    if (!stmt.ok()) return Failure{stmt.error()};
    if (key) stmt->bind(*key);
    std::vector<KeypairRecord> found;
    for (;;) {
      Result<bool> row = stmt->step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) return found;
      found.push_back(KeypairRecord{stmt->text(0), stmt->text(1), stmt->integer(2) != 0, stmt->integer(3) != 0,
                                    stmt->integer(4), stmt->text(5)});
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

  Result<std::vector<ScalingGroupRecord>> readScalingGroups(const std::string& tail,
                                                            const std::optional<std::string>& name) {
    Result<Statement> stmt = db_.prepare(
        "SELECT name, description, sequencer, selector, options_json, slot_priority_json, hol_max_passes, "
        "hol_max_wait_ms, is_active, created_at_ms FROM scaling_groups" + tail);
    if (!stmt.ok()) return Failure{stmt.error()};
    if (name) stmt->bind(*name);
    std::vector<ScalingGroupRecord> found;
    for (;;) {
      Result<bool> row = stmt->step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) return found;
      ScalingGroupRecord group;
      group.name = stmt->text(0);
      std::string where = "scaling group '" + group.name + "'";
      group.description = stmt->text(1);
      group.sequencer = stmt->text(2);
      group.selector = stmt->text(3);
      group.optionsJson = stmt->text(4);
      Result<Json> priority = parseJson(stmt->text(5), where);
      if (!priority.ok()) return Failure{priority.error()};
      if (!priority->is_array()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": slot priority");
      for (const Json& slot : *priority) {
        if (!slot.is_string()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": slot priority");
        group.slotPriority.push_back(slot.get<std::string>());
      }
      group.holMaxPasses = static_cast<int>(stmt->integer(6));
      group.holMaxWaitMillis = stmt->integer(7);
      group.active = stmt->integer(8) != 0;
      group.createdAtMillis = stmt->integer(9);
      found.push_back(std::move(group));
    }
  }

  Result<std::vector<ResourcePolicyRecord>> readResourcePolicies(const std::string& tail,
                                                                 const std::optional<std::string>& name) {
    Result<Statement> stmt = db_.prepare(
        "SELECT name, total_resource_slots_json, default_unlimited, max_concurrent_sessions, max_pending_sessions, "
        "created_at_ms FROM resource_policies" + tail);
    if (!stmt.ok()) return Failure{stmt.error()};
    if (name) stmt->bind(*name);
    std::vector<ResourcePolicyRecord> found;
    for (;;) {
      Result<bool> row = stmt->step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) return found;
      ResourcePolicyRecord policy;
      policy.name = stmt->text(0);
      Result<ResourceSlot> slots = slotsColumn(*stmt, 1, "resource policy '" + policy.name + "'");
      if (!slots.ok()) return Failure{slots.error()};
      policy.totalResourceSlots = std::move(*slots);
      policy.defaultUnlimited = stmt->integer(2) != 0;
      policy.maxConcurrentSessions = static_cast<int>(stmt->integer(3));
      policy.maxPendingSessions = static_cast<int>(stmt->integer(4));
      policy.createdAtMillis = stmt->integer(5);
      found.push_back(std::move(policy));
    }
  }

  Result<std::vector<AgentRecord>> readAgents(const std::string& tail, const std::optional<std::string>& id) {
    std::vector<AgentRecord> found;
    {
      Result<Statement> stmt = db_.prepare(kAgentColumns + tail);
      if (!stmt.ok()) return Failure{stmt.error()};
      if (id) stmt->bind(*id);
      for (;;) {
        Result<bool> row = stmt->step();
        if (!row.ok()) return Failure{row.error()};
        if (!*row) break;
        AgentRecord agent;
        agent.id = stmt->text(0);
        Result<AgentStatus> status = parseAgentStatus(stmt->text(1));
        if (!status.ok()) return Failure{corrupt("agent '" + agent.id + "'", status.error())};
        agent.status = *status;
        agent.rpcUrl = stmt->text(2);
        agent.region = stmt->text(3);
        agent.scalingGroup = stmt->text(4);
        agent.architecture = stmt->text(5);
        agent.version = stmt->text(6);
        agent.digest = static_cast<std::uint64_t>(stmt->integer(7));
        agent.pluginsJson = stmt->text(8);
        agent.deviceHealthJson = stmt->text(9);
        agent.lastEventSeq = static_cast<std::uint64_t>(stmt->integer(10));
        agent.registeredAtMillis = stmt->integer(11);
        agent.statusChangedAtMillis = stmt->integer(12);
        found.push_back(std::move(agent));
      }
    }
    for (AgentRecord& agent : found) {
      if (Result<void> slots = readAgentSlots(agent); !slots.ok()) return Failure{slots.error()};
    }
    return found;
  }

  Result<void> readAgentSlots(AgentRecord& agent) {
    Result<Statement> stmt =
        db_.prepare("SELECT slot, capacity, used, largest FROM agent_resources WHERE agent_id = ?");
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(agent.id);
    for (;;) {
      Result<bool> row = stmt->step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) return {};
      std::string slot = stmt->text(0);
      std::string where = "agent_resources of agent '" + agent.id + "' slot '" + slot + "'";
      Result<Quantity> capacity = quantityColumn(*stmt, 1, where);
      if (!capacity.ok()) return Failure{capacity.error()};
      Result<Quantity> used = quantityColumn(*stmt, 2, where);
      if (!used.ok()) return Failure{used.error()};
      Result<Quantity> largest = quantityColumn(*stmt, 3, where);
      if (!largest.ok()) return Failure{largest.error()};
      agent.slots[slot] = AgentSlotFigures{*capacity, *used, *largest};
    }
  }

  static Result<std::vector<SessionRecord>> readSessions(Statement& stmt) {
    std::vector<SessionRecord> found;
    for (;;) {
      Result<bool> row = stmt.step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) return found;
      SessionRecord session;
      session.id = stmt.text(0);
      std::string where = "session '" + session.id + "'";
      session.name = stmt.text(1);
      session.owner = stmt.text(2);
      session.scalingGroup = stmt.text(3);
      Result<Json> command = parseJson(stmt.text(4), where);
      if (!command.ok()) return Failure{command.error()};
      Result<Json> env = parseJson(stmt.text(5), where);
      if (!env.ok()) return Failure{env.error()};
      if (!command->is_array() || !env->is_object()) {
        return fail(ErrorCode::Internal, "corrupt store data in " + where + ": command or env has the wrong shape");
      }
      for (const Json& word : *command) {
        if (!word.is_string()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": command");
        session.command.push_back(word.get<std::string>());
      }
      for (const auto& [key, value] : env->items()) {
        if (!value.is_string()) return fail(ErrorCode::Internal, "corrupt store data in " + where + ": env");
        session.env.emplace(key, value.get<std::string>());
      }
      Result<ResourceSlot> requested = slotsColumn(stmt, 6, where);
      if (!requested.ok()) return Failure{requested.error()};
      session.requested = std::move(*requested);
      Result<SessionStatus> status = parseSessionStatus(stmt.text(7));
      if (!status.ok()) return Failure{corrupt(where, status.error())};
      session.status = *status;
      session.statusReason = stmt.text(8);
      session.agentId = stmt.text(9);
      if (!stmt.isNull(10)) session.exitCode = static_cast<int>(stmt.integer(10));
      session.enqueueSeq = static_cast<std::uint64_t>(stmt.integer(11));
      session.createdAtMillis = stmt.integer(12);
      session.scheduledAtMillis = stmt.integer(13);
      session.startedAtMillis = stmt.integer(14);
      session.endedAtMillis = stmt.integer(15);
      found.push_back(std::move(session));
    }
  }

  static Result<std::vector<AllocationRecord>> readAllocations(Statement& stmt) {
    std::vector<AllocationRecord> found;
    for (;;) {
      Result<bool> row = stmt.step();
      if (!row.ok()) return Failure{row.error()};
      if (!*row) return found;
      AllocationRecord allocation;
      allocation.sessionId = stmt.text(0);
      allocation.agentId = stmt.text(1);
      Result<ResourceSlot> slots = slotsColumn(stmt, 2, "allocation of session '" + allocation.sessionId + "'");
      if (!slots.ok()) return Failure{slots.error()};
      allocation.slots = std::move(*slots);
      allocation.released = stmt.integer(3) != 0;
      found.push_back(std::move(allocation));
    }
  }

  Connection& db_;
  bool writable_;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string url) : db_(db), url_(std::move(url)) {}

  Result<void> configure(bool inMemory, const StoreOptions& options) {
    sqlite3_extended_result_codes(db_.handle(), 1);
    sqlite3_busy_timeout(db_.handle(), static_cast<int>(options.busyTimeout.count()));
    if (Result<void> ok = db_.exec("PRAGMA foreign_keys = ON"); !ok.ok()) return ok;
    if (Result<void> ok = db_.exec(options.fullSync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
        !ok.ok()) {
      return ok;
    }
    if (inMemory) return {};
    Result<std::string> mode = db_.pragmaText("PRAGMA journal_mode = WAL");
    if (!mode.ok()) return Failure{mode.error()};
    if (*mode != "wal") return fail(ErrorCode::Internal, url_ + ": cannot use WAL journal mode (got '" + *mode + "')");
    return {};
  }

  // One transaction per step, each re-reading the version: two processes opening the
  // same new file at once apply every step once.
  Result<void> migrate() {
    for (;;) {
      if (Result<void> begun = db_.exec("BEGIN IMMEDIATE"); !begun.ok()) return begun;
      Result<void> stepped = migrateOneStep();
      if (stepped.ok()) stepped = db_.exec("COMMIT");
      if (!stepped.ok()) {
        db_.rollback();
        return stepped;
      }
      if (version_ == kSchemaVersion) return {};
    }
  }

  Result<void> write(const TransactionFn& fn) override { return transact(fn, true); }
  Result<void> read(const TransactionFn& fn) override { return transact(fn, false); }

  int schemaVersion() const override { return version_; }
  std::string describe() const override { return url_; }

 private:
  Result<void> migrateOneStep() {
    Result<std::string> text = db_.pragmaText("PRAGMA user_version");
    if (!text.ok()) return Failure{text.error()};
    int found = std::stoi(text->empty() ? "0" : *text);
    if (found > kSchemaVersion) {
      return fail(ErrorCode::InvalidArgument, url_ + ": database schema version " + std::to_string(found) +
                                                  " is newer than this bai-manager (" + std::to_string(kSchemaVersion) +
                                                  ")");
    }
    version_ = found;
    if (found == kSchemaVersion) return {};
    for (const char* sql : kMigrations[static_cast<std::size_t>(found)]) {
      if (Result<void> ok = db_.exec(sql); !ok.ok()) {
        return fail(ErrorCode::Internal, url_ + ": migration to schema version " + std::to_string(found + 1) +
                                             " failed: " + ok.error().message);
      }
    }
    // PRAGMA takes no parameters; the value is our own integer.
    if (Result<void> ok = db_.exec("PRAGMA user_version = " + std::to_string(found + 1)); !ok.ok()) return ok;
    version_ = found + 1;
    return {};
  }

  Result<void> transact(const TransactionFn& fn, bool writable) {
    // The mutex is not recursive: a nested call would deadlock, so refuse it instead.
    if (owner_.load() == std::this_thread::get_id()) {
      return fail(ErrorCode::InvalidArgument, "store transaction started inside another transaction of the same store");
    }
    std::lock_guard lock(mutex_);
    owner_.store(std::this_thread::get_id());
    struct ClearOwner {
      std::atomic<std::thread::id>& owner;
      ~ClearOwner() { owner.store(std::thread::id()); }
    } clearOwner{owner_};
    return runLocked(fn, writable);
  }

  Result<void> runLocked(const TransactionFn& fn, bool writable) {
    if (Result<void> begun = db_.exec(writable ? "BEGIN IMMEDIATE" : "BEGIN"); !begun.ok()) return begun;
    Result<void> result;
    try {
      SqliteTransaction transaction(db_, writable);
      result = fn(transaction);
    } catch (const std::exception& e) {
      result = fail(ErrorCode::Internal, std::string("store transaction aborted by an exception: ") + e.what());
    } catch (...) {
      result = fail(ErrorCode::Internal, "store transaction aborted by an unknown exception");
    }
    if (result.ok()) result = db_.exec("COMMIT");
    if (!result.ok()) db_.rollback();
    return result;
  }

  Connection db_;
  std::string url_;
  int version_ = 0;
  std::mutex mutex_;
  std::atomic<std::thread::id> owner_;
};

}  // namespace

const std::vector<std::vector<const char*>>& sqliteMigrations() { return kMigrations; }

Result<std::unique_ptr<Store>> openStore(const std::string& url, const StoreOptions& options) {
  std::string_view text = url;
  if (text.starts_with("postgresql://") || text.starts_with("postgres://")) {
    return fail(ErrorCode::InvalidArgument, "PostgreSQL store not built in this bai");
  }
  std::string path;
  if (text == "sqlite::memory:") {
    path = ":memory:";
  } else if (text.starts_with("sqlite://")) {
    path = text.substr(std::string_view("sqlite://").size());
    if (path.empty()) return fail(ErrorCode::InvalidArgument, "store URL '" + url + "' names no database file");
  } else {
    // Name only the scheme: the rest of an unknown URL may hold a password.
    std::size_t colon = text.find(':');
    std::string scheme(colon == std::string_view::npos ? std::string_view("(none)") : text.substr(0, colon));
    return fail(ErrorCode::InvalidArgument,
                "unsupported store URL scheme '" + scheme + "' (expected sqlite:// or postgresql://)");
  }

  bool inMemory = path == ":memory:";
  if (!inMemory) {
    std::filesystem::path directory = std::filesystem::path(path).parent_path();
    std::error_code error;
    if (!directory.empty() && !std::filesystem::is_directory(directory, error)) {
      return fail(ErrorCode::NotFound, url + ": directory '" + directory.string() + "' does not exist");
    }
  }

  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    Error error = sqliteError(db, rc, "cannot open " + url);
    sqlite3_close_v2(db);
    return Failure{error};
  }
  auto store = std::make_unique<SqliteStore>(db, url);
  if (Result<void> ok = store->configure(inMemory, options); !ok.ok()) return Failure{ok.error()};
  if (Result<void> ok = store->migrate(); !ok.ok()) return Failure{ok.error()};
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace bai::manager
