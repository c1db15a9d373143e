// The SQLite schema as a list of migration steps, for tests that build a database the
// way an older bai-manager left it. Only the SQLite store and its tests include this.
#pragma once

#include <vector>

namespace bai::manager {

// Step i (0-based) brings a database from schema version i to i + 1.
const std::vector<std::vector<const char*>>& sqliteMigrations();

}  // namespace bai::manager
