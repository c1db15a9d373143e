// The SQLite schema as a list of migration steps, for tests that build a database the
// way an older bai-manager left it. Only the SQLite store and its tests include this.
#pragma once

#include "session_identity.hpp"

#include <bai/result.hpp>

#include <vector>

namespace bai::manager {

namespace sqlite {
class Connection;
}

// Step i (0-based) brings a database from schema version i to i + 1.
const std::vector<std::vector<const char*>>& sqliteMigrations();

// What a step writes that its SQL cannot know (the configured uid range): run after the
// SQL of the step that produces `version`, in its transaction.
Result<void> fillMigrationData(sqlite::Connection& db, int version, const IdentityPolicy& identity);

}  // namespace bai::manager
