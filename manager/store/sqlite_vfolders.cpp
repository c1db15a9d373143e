#include "sqlite_vfolders.hpp"

namespace bai::manager::sqlite::vfolders {
namespace {

using storage_protocol::Permission;

const std::string kColumns =
    "SELECT v.id, v.name, v.owner, v.host, v.host_path, v.quota_bytes, v.permission, v.created_at_ms FROM vfolders AS v";

Result<Permission> permissionColumn(const Statement& stmt, int column, std::string_view where) {
  Result<Permission> parsed = storage_protocol::parsePermission(stmt.text(column));
  if (!parsed.ok()) return Failure{corrupt(where, parsed.error())};
  return parsed;
}

// Every folder `stmt` (kColumns + a tail, bound) yields.
Result<std::vector<VfolderRecord>> readRows(Statement& stmt) {
  std::vector<VfolderRecord> found;
  for (;;) {
    Result<bool> row = stmt.step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row) return found;
    VfolderRecord folder;
    folder.id = stmt.text(0);
    folder.name = stmt.text(1);
    folder.owner = stmt.text(2);
    folder.host = stmt.text(3);
    folder.hostPath = stmt.text(4);
    if (!stmt.isNull(5)) folder.quotaBytes = static_cast<std::uint64_t>(stmt.integer(5));
    Result<Permission> permission = permissionColumn(stmt, 6, "folder '" + folder.id + "'");
    if (!permission.ok()) return Failure{permission.error()};
    folder.permission = *permission;
    folder.createdAtMillis = stmt.integer(7);
    found.push_back(std::move(folder));
  }
}

Result<std::vector<VfolderRecord>> select(Connection& db, const std::string& tail, std::initializer_list<std::string> binds) {
  Result<Statement> stmt = db.prepare(kColumns + tail);
  if (!stmt.ok()) return Failure{stmt.error()};
  for (const std::string& value : binds) stmt->bind(value);
  return readRows(*stmt);
}

Result<std::optional<VfolderRecord>> first(Result<std::vector<VfolderRecord>> found) {
  if (!found.ok()) return Failure{found.error()};
  if (found->empty()) return std::optional<VfolderRecord>();
  return std::optional<VfolderRecord>(std::move(found->front()));
}

Result<void> requireRow(Connection& db, const std::string& sql, const std::string& key, const std::string& notFound) {
  Result<Statement> stmt = db.prepare(sql);
  if (!stmt.ok()) return Failure{stmt.error()};
  stmt->bind(key);
  Result<bool> row = stmt->step();
  if (!row.ok()) return Failure{row.error()};
  if (!*row) return fail(ErrorCode::NotFound, notFound);
  return {};
}

}  // namespace

Result<void> insert(Connection& db, const VfolderRecord& folder) {
  Result<Statement> stmt = db.prepare(
      "INSERT INTO vfolders (id, name, owner, host, host_path, quota_bytes, permission, created_at_ms) "
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  if (!stmt.ok()) return Failure{stmt.error()};
  stmt->bind(folder.id).bind(folder.name).bind(folder.owner).bind(folder.host).bind(folder.hostPath);
  if (folder.quotaBytes) {
    stmt->bind(static_cast<std::int64_t>(*folder.quotaBytes));
  } else {
    stmt->bindNull();
  }
  stmt->bind(storage_protocol::permissionName(folder.permission)).bind(folder.createdAtMillis);
  Result<void> ran = stmt->run();
  if (!ran.ok() && ran.error().code == ErrorCode::Conflict) {
    return fail(ErrorCode::Conflict, "a folder with id '" + folder.id + "' or keypair '" + folder.owner +
                                         "''s folder named '" + folder.name + "' already exists");
  }
  return ran;
}

Result<std::optional<VfolderRecord>> byId(Connection& db, const std::string& id) {
  return first(select(db, " WHERE v.id = ?", {id}));
}

Result<std::optional<VfolderRecord>> byName(Connection& db, const std::string& owner, const std::string& name) {
  return first(select(db, " WHERE v.owner = ? AND v.name = ?", {owner, name}));
}

Result<std::vector<VfolderRecord>> ownedBy(Connection& db, const std::string& owner) {
  return select(db, " WHERE v.owner = ? ORDER BY v.name", {owner});
}

Result<std::vector<VfolderRecord>> sharedWith(Connection& db, const std::string& accessKey) {
  return select(db, " JOIN vfolder_shares AS s ON s.folder_id = v.id WHERE s.access_key = ? ORDER BY v.name, v.id",
                {accessKey});
}

Result<std::vector<VfolderRecord>> all(Connection& db) { return select(db, " ORDER BY v.owner, v.name", {}); }

Result<std::int64_t> countOwnedBy(Connection& db, const std::string& owner) {
  Result<Statement> stmt = db.prepare("SELECT COUNT(*) FROM vfolders WHERE owner = ?");
  if (!stmt.ok()) return Failure{stmt.error()};
  stmt->bind(owner);
  Result<bool> row = stmt->step();
  if (!row.ok()) return Failure{row.error()};
  return *row ? stmt->integer(0) : std::int64_t{0};
}

Result<void> remove(Connection& db, const std::string& id) {
  Result<void> known = requireRow(db, "SELECT 1 FROM vfolders WHERE id = ?", id, "folder '" + id + "' not found");
  if (!known.ok()) return known;
  for (const char* sql : {"DELETE FROM vfolder_shares WHERE folder_id = ?", "DELETE FROM vfolders WHERE id = ?"}) {
    Result<Statement> stmt = db.prepare(sql);
    if (!stmt.ok()) return Failure{stmt.error()};
    stmt->bind(id);
    if (Result<void> ran = stmt->run(); !ran.ok()) return ran;
  }
  return {};
}

Result<void> setShare(Connection& db, const VfolderShareRecord& share) {
  Result<void> folder = requireRow(db, "SELECT 1 FROM vfolders WHERE id = ?", share.folderId,
                                   "folder '" + share.folderId + "' not found");
  if (!folder.ok()) return folder;
  Result<void> keypair = requireRow(db, "SELECT 1 FROM keypairs WHERE access_key = ?", share.accessKey,
                                    "keypair '" + share.accessKey + "' not found");
  if (!keypair.ok()) return keypair;
  Result<Statement> stmt = db.prepare(
      "INSERT INTO vfolder_shares (folder_id, access_key, permission) VALUES (?, ?, ?) "
      "ON CONFLICT (folder_id, access_key) DO UPDATE SET permission = excluded.permission");
  if (!stmt.ok()) return Failure{stmt.error()};
  stmt->bind(share.folderId).bind(share.accessKey).bind(storage_protocol::permissionName(share.permission));
  return stmt->run();
}

Result<void> removeShare(Connection& db, const std::string& folderId, const std::string& accessKey) {
  Result<Statement> stmt = db.prepare("DELETE FROM vfolder_shares WHERE folder_id = ? AND access_key = ?");
  if (!stmt.ok()) return Failure{stmt.error()};
  stmt->bind(folderId).bind(accessKey);
  if (Result<void> ran = stmt->run(); !ran.ok()) return ran;
  if (sqlite3_changes(db.handle()) == 0) {
    return fail(ErrorCode::NotFound, "folder '" + folderId + "' is not shared with keypair '" + accessKey + "'");
  }
  return {};
}

Result<std::vector<VfolderShareRecord>> shares(Connection& db, const std::string& folderId) {
  Result<Statement> stmt =
      db.prepare("SELECT folder_id, access_key, permission FROM vfolder_shares WHERE folder_id = ? ORDER BY access_key");
  if (!stmt.ok()) return Failure{stmt.error()};
  stmt->bind(folderId);
  std::vector<VfolderShareRecord> found;
  for (;;) {
    Result<bool> row = stmt->step();
    if (!row.ok()) return Failure{row.error()};
    if (!*row) return found;
    Result<Permission> permission = permissionColumn(*stmt, 2, "a share of folder '" + folderId + "'");
    if (!permission.ok()) return Failure{permission.error()};
    found.push_back(VfolderShareRecord{stmt->text(0), stmt->text(1), *permission});
  }
}

Result<bool> mountedByActiveSession(Connection& db, const std::string& folderId) {
  const std::string sql = std::string(
                              "SELECT 1 FROM sessions, json_each(sessions.mounts_json) AS m "
                              "WHERE json_extract(m.value, '$.id') = ? AND sessions.status NOT IN ('") +
                          sessionStatusName(SessionStatus::Terminated) + "', '" + sessionStatusName(SessionStatus::Cancelled) +
                          "', '" + sessionStatusName(SessionStatus::Error) + "') LIMIT 1";
  Result<Statement> stmt = db.prepare(sql);
  if (!stmt.ok()) return Failure{stmt.error()};
  stmt->bind(folderId);
  return stmt->step();
}

}  // namespace bai::manager::sqlite::vfolders
