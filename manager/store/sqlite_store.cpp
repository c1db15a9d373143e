// The SQLite back end of the manager's store. One connection per Store, guarded by a
// mutex; several handles on one file (or several processes) are serialised by SQLite's
// own locks: BEGIN IMMEDIATE for writers, WAL snapshots for readers.
#include "file_lock.hpp"
#include "sqlite_connection.hpp"
#include "sqlite_migrations.hpp"
#include "store.hpp"

#include <nlohmann/json.hpp>
#include <sqlite3.h>

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <utility>

namespace bai::manager {
namespace {

using namespace sqlite;
using Json = nlohmann::json;

// SQLite writes the database, its -wal and -shm files beside it: say which is not
// writable, rather than SQLite's "unable to open database file" on the first PRAGMA.
Result<void> checkWritable(const std::string& url, const std::string& path) {
  const std::filesystem::path file(path);
  const std::filesystem::path directory = file.parent_path().empty() ? "." : file.parent_path();
  std::error_code error;
  if (!std::filesystem::is_directory(directory, error)) {
    return fail(ErrorCode::NotFound, url + ": directory '" + directory.string() + "' does not exist");
  }
  if (::access(directory.c_str(), W_OK | X_OK) != 0) {
    return fail(ErrorCode::InvalidArgument,
                url + ": the folder '" + directory.string() + "' is not writable by this user (" + std::strerror(errno) +
                    "); SQLite keeps its -wal and -shm files beside the database");
  }
  if (::access(file.c_str(), F_OK) == 0 && ::access(file.c_str(), R_OK | W_OK) != 0) {
    return fail(ErrorCode::InvalidArgument,
                url + ": the database file '" + file.string() + "' is not writable by this user (" + std::strerror(errno) + ")");
  }
  return {};
}

// The schema version this bai-manager writes: one per migration step.
int latestSchemaVersion() { return static_cast<int>(sqliteMigrations().size()); }

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string url, std::optional<FileLock> lock, IdentityPolicy identity)
      : lock_(std::move(lock)), db_(db), url_(std::move(url)), identity_(identity) {}

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
      if (version_ == latestSchemaVersion()) return {};
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
    if (found > latestSchemaVersion()) {
      return fail(ErrorCode::InvalidArgument, url_ + ": database schema version " + std::to_string(found) +
                                                  " is newer than this bai-manager (" + std::to_string(latestSchemaVersion()) +
                                                  ")");
    }
    version_ = found;
    if (found == latestSchemaVersion()) return {};
    for (const char* sql : sqliteMigrations()[static_cast<std::size_t>(found)]) {
      if (Result<void> ok = db_.exec(sql); !ok.ok()) {
        return fail(ErrorCode::Internal, url_ + ": migration to schema version " + std::to_string(found + 1) +
                                             " failed: " + ok.error().message);
      }
    }
    if (Result<void> ok = fillMigrationData(db_, found + 1, identity_); !ok.ok()) {
      return fail(ok.error().code, url_ + ": migration to schema version " + std::to_string(found + 1) +
                                       " failed: " + ok.error().message);
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
      auto transaction = makeTransaction(db_, writable, identity_);
      result = fn(*transaction);
    } catch (const std::exception& e) {
      result = fail(ErrorCode::Internal, std::string("store transaction aborted by an exception: ") + e.what());
    } catch (...) {
      result = fail(ErrorCode::Internal, "store transaction aborted by an unknown exception");
    }
    if (result.ok()) result = db_.exec("COMMIT");
    if (!result.ok()) db_.rollback();
    return result;
  }

  std::optional<FileLock> lock_;  // released after the connection closes
  Connection db_;
  std::string url_;
  const IdentityPolicy identity_;
  int version_ = 0;
  std::mutex mutex_;
  std::atomic<std::thread::id> owner_;
};

}  // namespace


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
  std::optional<FileLock> lock;
  if (!inMemory) {
    if (Result<void> usable = checkWritable(url, path); !usable.ok()) return Failure{usable.error()};
    if (options.exclusive) {
      auto locked = FileLock::take(url, path + ".lock");
      if (!locked.ok()) return Failure{locked.error()};
      lock.emplace(std::move(*locked));
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
  auto store = std::make_unique<SqliteStore>(db, url, std::move(lock), options.identity);
  if (Result<void> ok = store->configure(inMemory, options); !ok.ok()) return Failure{ok.error()};
  if (Result<void> ok = store->migrate(); !ok.ok()) return Failure{ok.error()};
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace bai::manager
