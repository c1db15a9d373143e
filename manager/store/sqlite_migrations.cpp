#include "sqlite_migrations.hpp"

#include "sqlite_connection.hpp"

namespace bai::manager {
namespace {

using sqlite::Connection;
using sqlite::Statement;

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
    {
        // A client's Idempotency-Key, kept with the session it created: a retried POST
        // finds it instead of creating another. '' is no key.
        "ALTER TABLE sessions ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE sessions ADD COLUMN request_digest TEXT NOT NULL DEFAULT ''",
        "CREATE UNIQUE INDEX sessions_by_idempotency_key ON sessions (owner, idempotency_key) WHERE idempotency_key != ''",
    },
    {
        // What a session of the policy's keypairs gets of an intrinsic slot it names no
        // amount of; '{}': the manager's scheduler.default-session-slots.
        "ALTER TABLE resource_policies ADD COLUMN default_session_slots_json TEXT NOT NULL DEFAULT '{}'",
    },
    {
        // Nonces of accepted API requests, kept while their date is still accepted, so that
        // a restarted manager refuses a request captured before the restart.
        R"sql(CREATE TABLE request_nonces (
            nonce_key TEXT PRIMARY KEY,
            expires_at_ms INTEGER NOT NULL) WITHOUT ROWID)sql",
        "CREATE INDEX request_nonces_by_expiry ON request_nonces (expires_at_ms)",
    },
    {
        // The uid/gid a keypair's sessions run under; fillMigrationData gives the existing
        // keypairs theirs. A column added to a table with rows cannot be NOT NULL without
        // a default, so triggers refuse a keypair without both ids instead.
        "ALTER TABLE keypairs ADD COLUMN uid INTEGER",
        "ALTER TABLE keypairs ADD COLUMN gid INTEGER",
        "CREATE UNIQUE INDEX keypairs_by_uid ON keypairs (uid)",
      R"sql(CREATE TRIGGER keypairs_insert_needs_identity BEFORE INSERT ON keypairs
            WHEN NEW.uid IS NULL OR NEW.gid IS NULL OR NEW.uid < 1 OR NEW.gid < 1
            BEGIN SELECT RAISE(ABORT, 'a keypair needs a uid and a gid'); END)sql",
      R"sql(CREATE TRIGGER keypairs_update_needs_identity BEFORE UPDATE OF uid, gid ON keypairs
            WHEN NEW.uid IS NULL OR NEW.gid IS NULL OR NEW.uid < 1 OR NEW.gid < 1
            BEGIN SELECT RAISE(ABORT, 'a keypair needs a uid and a gid'); END)sql",
    },
    {
        // Container sessions: a session's image (NULL: a host process), what each agent
        // can run and the images it has, and each group's pull policy and allow-list
        // ('[]': every image). Agents stored before this ran host processes only.
        "ALTER TABLE sessions ADD COLUMN image TEXT",
        R"sql(ALTER TABLE agents ADD COLUMN runtimes_json TEXT NOT NULL
              DEFAULT '[{"kind":"process","available":true,"reason":""}]')sql",
        "ALTER TABLE agents ADD COLUMN images_json TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE scaling_groups ADD COLUMN image_pull_policy TEXT NOT NULL DEFAULT 'never'",
        "ALTER TABLE scaling_groups ADD COLUMN allowed_images_json TEXT NOT NULL DEFAULT '[]'",
    },
    {
        // Interactive sessions: stdin kept open, a terminal, declared service ports
        // ([{name, protocol, port}]). Sessions stored before this had none of them.
        "ALTER TABLE sessions ADD COLUMN open_stdin INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN tty INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE sessions ADD COLUMN service_ports_json TEXT NOT NULL DEFAULT '[]'",
    },
    {
        // Storage folders, the keypairs each is shared with, the folders a session binds
        // ([{folder, id, source, target, read_only}]) and the policies' folder limits
        // (0: unlimited). Sessions stored before this mount nothing.
      R"sql(CREATE TABLE vfolders (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            owner TEXT NOT NULL,
            host TEXT NOT NULL,
            host_path TEXT NOT NULL,
            quota_bytes INTEGER,
            permission TEXT NOT NULL,
            created_at_ms INTEGER NOT NULL,
            UNIQUE (owner, name)))sql",
      R"sql(CREATE TABLE vfolder_shares (
            folder_id TEXT NOT NULL REFERENCES vfolders(id) ON DELETE CASCADE,
            access_key TEXT NOT NULL REFERENCES keypairs(access_key),
            permission TEXT NOT NULL,
            PRIMARY KEY (folder_id, access_key)))sql",
        "CREATE INDEX vfolder_shares_by_access_key ON vfolder_shares (access_key)",
        "ALTER TABLE sessions ADD COLUMN mounts_json TEXT NOT NULL DEFAULT '[]'",
        "ALTER TABLE resource_policies ADD COLUMN max_vfolder_count INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE resource_policies ADD COLUMN max_vfolder_size INTEGER NOT NULL DEFAULT 0",
    },
};

// Version 6: each existing keypair gets the next uid of the range in access-key order,
// and the policy's gid for it.
Result<void> assignFirstIdentities(Connection& db, const IdentityPolicy& identity) {
  Result<std::string> count = db.pragmaText("SELECT COUNT(*) FROM keypairs");
  if (!count.ok()) return Failure{count.error()};
  const std::int64_t keypairs = std::stoll(count->empty() ? "0" : *count);
  const std::int64_t room = std::int64_t{identity.lastUid} - identity.firstUid + 1;
  if (keypairs > room) {
    return fail(ErrorCode::OutOfRange, "the database holds " + std::to_string(keypairs) +
                                           " keypairs but identity.session-uid-range " + identity.rangeText() +
                                           " only " + std::to_string(room) + " uids; widen the range");
  }
  Result<Statement> stmt = db.prepare(
      "UPDATE keypairs SET uid = numbered.uid, gid = COALESCE(?2, numbered.uid) FROM "
      "(SELECT access_key, ?1 + ROW_NUMBER() OVER (ORDER BY access_key) - 1 AS uid FROM keypairs) AS numbered "
      "WHERE keypairs.access_key = numbered.access_key");
  if (!stmt.ok()) return Failure{stmt.error()};
  stmt->bind(std::int64_t{identity.firstUid});
  if (identity.sessionGid) {
    stmt->bind(std::int64_t{*identity.sessionGid});
  } else {
    stmt->bindNull();
  }
  return stmt->run();
}

}  // namespace

const std::vector<std::vector<const char*>>& sqliteMigrations() { return kMigrations; }

Result<void> fillMigrationData(sqlite::Connection& db, int version, const IdentityPolicy& identity) {
  if (version == 6) return assignFirstIdentities(db, identity);
  return {};
}

}  // namespace bai::manager
