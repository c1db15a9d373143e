// The SQL of storage folders and their shares (StoreTransaction's vfolder calls), apart
// from the session and agent records of sqlite_transaction.cpp. Callers have checked
// that the transaction may write.
#pragma once

#include "sqlite_connection.hpp"
#include "store.hpp"

#include <optional>
#include <string>
#include <vector>

namespace bai::manager::sqlite::vfolders {

Result<void> insert(Connection& db, const VfolderRecord& folder);
Result<std::optional<VfolderRecord>> byId(Connection& db, const std::string& id);
Result<std::optional<VfolderRecord>> byName(Connection& db, const std::string& owner, const std::string& name);
Result<std::vector<VfolderRecord>> ownedBy(Connection& db, const std::string& owner);
Result<std::vector<VfolderRecord>> sharedWith(Connection& db, const std::string& accessKey);
Result<std::vector<VfolderRecord>> all(Connection& db);
Result<std::int64_t> countOwnedBy(Connection& db, const std::string& owner);
Result<void> remove(Connection& db, const std::string& id);
Result<void> setShare(Connection& db, const VfolderShareRecord& share);
Result<void> removeShare(Connection& db, const std::string& folderId, const std::string& accessKey);
Result<std::vector<VfolderShareRecord>> shares(Connection& db, const std::string& folderId);
Result<bool> mountedByActiveSession(Connection& db, const std::string& folderId);

}  // namespace bai::manager::sqlite::vfolders
