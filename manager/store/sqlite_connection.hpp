// The SQLite connection the store runs on: prepared statements that reset themselves,
// one connection with its statement cache, and the typed column readers the store's
// rows are made of. Internal to the SQLite store.
#pragma once

#include "parse_json.hpp"
#include "store.hpp"

#include <bai/result.hpp>
#include <bai/slots.hpp>

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace bai::manager::sqlite {

using Json = nlohmann::json;

inline Error sqliteError(sqlite3* db, int rc, std::string_view context) {
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

inline Error corrupt(std::string_view where, const Error& cause) {
  return Error{ErrorCode::Internal, "corrupt store data in " + std::string(where) + ": " + cause.message};
}

inline Result<Quantity> quantityColumn(const Statement& stmt, int column, std::string_view where) {
  Result<Quantity> parsed = Quantity::parse(stmt.text(column));
  if (!parsed.ok()) return Failure{corrupt(where, parsed.error())};
  return parsed;
}

inline Result<ResourceSlot> slotsColumn(const Statement& stmt, int column, std::string_view where) {
  Result<ResourceSlot> parsed = ResourceSlot::fromJson(stmt.text(column));
  if (!parsed.ok()) return Failure{corrupt(where, parsed.error())};
  return parsed;
}

// Strict dump: text that is not UTF-8 is refused rather than stored mangled.
inline Result<std::string> dumpJson(const Json& value, std::string_view what) {
  try {
    return value.dump();
  } catch (const Json::exception&) {
    return fail(ErrorCode::InvalidArgument, std::string(what) + " is not valid UTF-8 text");
  }
}

inline Result<Json> parseJson(const std::string& text, std::string_view where) {
  auto value = bai::parseJson(text);
  if (!value)
    return fail(ErrorCode::Internal, "corrupt store data in " + std::string(where) + ": " + value.error().message);
  return value;
}

inline Result<void> requireId(std::string_view kind, const std::string& id) {
  if (id.empty()) return fail(ErrorCode::InvalidArgument, std::string(kind) + " id is empty");
  return {};
}

// The store's reads and writes inside a transaction that `connection` has begun
// (sqlite_transaction.cpp); valid until it ends. `identity` allocates keypairs' uids.
std::unique_ptr<StoreTransaction> makeTransaction(Connection& connection, bool writable, const IdentityPolicy& identity);

}  // namespace bai::manager::sqlite
