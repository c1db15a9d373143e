// The manager's store on real SQLite files: migrations, exact round trips, transactions
// and two connections racing for the same capacity.
#include "store/sqlite_migrations.hpp"
#include "store/store.hpp"
#include "manager_test_support.hpp"

#include "../support/temp_dir.hpp"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

namespace bai::manager {
namespace {

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    const auto& result_ = (expr);                         \
    ASSERT_TRUE(result_.ok()) << result_.error().message; \
  } while (0)

using test_support::q;
using test_support::slots;

std::unique_ptr<Store> open(const std::string& url, const StoreOptions& options = {}) {
  Result<std::unique_ptr<Store>> store = openStore(url, options);
  if (!store.ok()) throw std::runtime_error(store.error().message);
  return std::move(*store);
}

// Runs `fn` in the transaction `open` runs it in (Store::read or Store::write) and
// returns its value, or the error.
template <class T>
Result<T> valueIn(const std::function<Result<void>(const Store::TransactionFn&)>& open,
                  const std::function<Result<T>(StoreTransaction&)>& fn) {
  std::optional<T> out;
  Result<void> done = open([&](StoreTransaction& tx) -> Result<void> {
    Result<T> value = fn(tx);
    if (!value.ok()) return Failure{value.error()};
    out = std::move(*value);
    return {};
  });
  if (!done.ok()) return Failure{done.error()};
  return std::move(*out);
}

// Runs `fn` in a read transaction and returns its value; a failure throws, which
// GoogleTest reports as a failed test.
template <class T>
T readValue(Store& store, const std::function<Result<T>(StoreTransaction&)>& fn) {
  Result<T> value = valueIn<T>([&](const Store::TransactionFn& body) { return store.read(body); }, fn);
  if (!value.ok()) throw std::runtime_error(value.error().message);
  return std::move(*value);
}

// Runs `fn` in a write transaction and returns its value, or the error.
template <class T>
Result<T> writeValue(Store& store, const std::function<Result<T>(StoreTransaction&)>& fn) {
  return valueIn<T>([&](const Store::TransactionFn& body) { return store.write(body); }, fn);
}

Result<void> writeOne(Store& store, const std::function<Result<void>(StoreTransaction&)>& fn) {
  return store.write(fn);
}

void execRaw(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  std::string text = message != nullptr ? message : "";
  sqlite3_free(message);
  sqlite3_close(db);
  ASSERT_EQ(rc, SQLITE_OK) << text;
}

// The error of `sql` run on `file` outside the store; "" when it succeeded.
std::string execRawError(const std::filesystem::path& file, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + file.string());
  char* message = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message);
  std::string text = rc == SQLITE_OK ? "" : message != nullptr ? message : "failed";
  sqlite3_free(message);
  sqlite3_close(db);
  return text;
}

int userVersion(const std::filesystem::path& file) {
  sqlite3* db = nullptr;
  if (sqlite3_open(file.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot open " + file.string());
  sqlite3_stmt* stmt = nullptr;
  sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr);
  int version = sqlite3_step(stmt) == SQLITE_ROW ? sqlite3_column_int(stmt, 0) : -1;
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return version;
}

AgentRecord sampleAgent(const std::string& id) {
  AgentRecord agent;
  agent.id = id;
  agent.rpcUrl = "http://127.0.0.1:6001";
  agent.region = "local";
  agent.scalingGroup = "default";
  agent.architecture = "x86_64";
  agent.version = "0.1.0";
  agent.digest = 0xfedcba9876543210ULL;  // above INT64_MAX: stored bit for bit
  agent.slots["cpu"] = AgentSlotFigures{q("16"), q("0.000001"), q("15.999999")};
  agent.slots["mem"] = AgentSlotFigures{q("1152921504606846976"), q("0"), q("1152921504606846976")};
  agent.pluginsJson = R"([{"name":"cpu","ok":true}])";
  agent.deviceHealthJson = R"([{"device":"0","healthy":true}])";
  agent.lastEventSeq = 42;
  agent.registeredAtMillis = 1'700'000'000'000;
  agent.statusChangedAtMillis = 1'700'000'000'001;
  return agent;
}

SessionRecord sampleSession(const std::string& id, const std::string& owner = "AKOWNER") {
  SessionRecord session;
  session.id = id;
  session.name = "name-" + id;
  session.owner = owner;
  session.scalingGroup = "default";
  session.command = {"python3", "-c", "print(\"héllo ✓\") # 'quoted' \\ back"};
  session.env = {{"GREETING", "こんにちは \"world\""}, {"EMPTY", ""}, {"PATH", "/usr/bin:/bin"}};
  session.requested = slots({{"cpu", "0.5"}, {"mem", "1152921504606846976"}, {"cuda.shares", "0.000001"}});
  session.createdAtMillis = 1'700'000'000'123;
  return session;
}

class StoreTest : public ::testing::Test {
 protected:
  std::filesystem::path file() const { return dir_.path() / "manager.db"; }
  std::string url() const { return "sqlite://" + file().string(); }

  test::TempDir dir_;
};

TEST_F(StoreTest, MigratesAFreshFileAndKeepsDataAcrossReopen) {
  int version = 0;
  {
    auto store = open(url());
    version = store->schemaVersion();
    EXPECT_GE(version, 1);
    EXPECT_EQ(store->describe(), url());
    ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) {
      return tx.insertKeypair(KeypairRecord{"AKREOPEN", "secret", true, true, 5});
    }));
  }
  EXPECT_EQ(userVersion(file()), version);
  auto store = open(url());
  EXPECT_EQ(store->schemaVersion(), version);
  auto keypair =
      readValue<std::optional<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypair("AKREOPEN"); });
  ASSERT_TRUE(keypair.has_value());
  EXPECT_EQ(keypair->secretKey, "secret");
}

TEST_F(StoreTest, UsesWalOnFiles) {
  auto store = open(url());
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &stmt, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), "wal");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(StoreTest, RefusesADatabaseFromANewerManager) {
  execRaw(file(), "PRAGMA user_version = 99");
  Result<std::unique_ptr<Store>> store = openStore(url());
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("database schema version 99 is newer than this bai-manager"), std::string::npos)
      << store.error().message;
  EXPECT_EQ(userVersion(file()), 99);  // left untouched
}

TEST_F(StoreTest, RoundTripsKeypairsAndSlotTypes) {
  auto store = open("sqlite::memory:");
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.insertKeypair(KeypairRecord{"AKB", "sb", false, false, 2}); !r.ok()) return r;
    if (auto r = tx.insertKeypair(KeypairRecord{"AKA", "sa", true, true, 1}); !r.ok()) return r;
    if (auto r = tx.insertSlotType("cpu", SlotType::Count); !r.ok()) return r;
    if (auto r = tx.insertSlotType("mem", SlotType::Bytes); !r.ok()) return r;
    if (auto r = tx.insertSlotType("cuda.device:1g.10gb-mig", SlotType::Unique); !r.ok()) return r;
    return tx.insertSlotType("cuda.shares", SlotType::Unified);
  }));
  auto keypairs = readValue<std::vector<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypairs(); });
  ASSERT_EQ(keypairs.size(), 2u);
  EXPECT_EQ(keypairs[0].accessKey, "AKA");
  EXPECT_EQ(keypairs[0].secretKey, "sa");
  EXPECT_TRUE(keypairs[0].admin);
  EXPECT_TRUE(keypairs[0].active);
  EXPECT_EQ(keypairs[0].createdAtMillis, 1);
  EXPECT_EQ(keypairs[1].accessKey, "AKB");
  EXPECT_FALSE(keypairs[1].admin);
  EXPECT_FALSE(keypairs[1].active);
  auto missing =
      readValue<std::optional<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypair("AKX"); });
  EXPECT_FALSE(missing.has_value());

  auto types = readValue<std::map<std::string, SlotType>>(*store, [](StoreTransaction& tx) { return tx.slotTypes(); });
  std::map<std::string, SlotType> expected{{"cpu", SlotType::Count},
                                           {"mem", SlotType::Bytes},
                                           {"cuda.device:1g.10gb-mig", SlotType::Unique},
                                           {"cuda.shares", SlotType::Unified}};
  EXPECT_EQ(types, expected);
}

TEST_F(StoreTest, RoundTripsAgentsExactly) {
  auto store = open(url());
  AgentRecord agent = sampleAgent("agent-1");
  agent.slots["unlimited"] = AgentSlotFigures{Quantity::infinity(), q("0"), Quantity::infinity()};
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) { return tx.upsertAgent(agent); }));
  store.reset();
  store = open(url());
  auto got = readValue<std::optional<AgentRecord>>(*store, [](StoreTransaction& tx) { return tx.agent("agent-1"); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, agent.id);
  EXPECT_EQ(got->status, AgentStatus::Alive);
  EXPECT_EQ(got->rpcUrl, agent.rpcUrl);
  EXPECT_EQ(got->region, agent.region);
  EXPECT_EQ(got->scalingGroup, agent.scalingGroup);
  EXPECT_EQ(got->architecture, agent.architecture);
  EXPECT_EQ(got->version, agent.version);
  EXPECT_EQ(got->digest, 0xfedcba9876543210ULL);
  EXPECT_EQ(got->pluginsJson, agent.pluginsJson);
  EXPECT_EQ(got->deviceHealthJson, agent.deviceHealthJson);
  EXPECT_EQ(got->lastEventSeq, 42u);
  EXPECT_EQ(got->registeredAtMillis, agent.registeredAtMillis);
  EXPECT_EQ(got->statusChangedAtMillis, agent.statusChangedAtMillis);
  ASSERT_EQ(got->slots.size(), 3u);
  EXPECT_EQ(got->slots.at("cpu").used.toString(), "0.000001");
  EXPECT_EQ(got->slots.at("cpu").largest.toString(), "15.999999");
  EXPECT_EQ(got->slots.at("mem").capacity.toString(), "1152921504606846976");
  EXPECT_EQ(got->slots.at("mem").capacity, q("1152921504606846976"));
  EXPECT_EQ(got->slots.at("unlimited").capacity, Quantity::infinity());

  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.setAgentStatus("agent-1", AgentStatus::Lost, 99); !r.ok()) return r;
    return tx.setAgentLastEventSeq("agent-1", 43);
  }));
  auto agents = readValue<std::vector<AgentRecord>>(*store, [](StoreTransaction& tx) { return tx.agents(); });
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].status, AgentStatus::Lost);
  EXPECT_EQ(agents[0].statusChangedAtMillis, 99);
  EXPECT_EQ(agents[0].lastEventSeq, 43u);
  EXPECT_EQ(agents[0].slots.size(), 3u);
}

TEST_F(StoreTest, UpsertAgentReplacesItsSlots) {
  auto store = open(url());
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.upsertAgent(sampleAgent("agent-1")); }));
  AgentRecord newer = sampleAgent("agent-1");
  newer.rpcUrl = "http://127.0.0.1:6002";
  newer.slots.clear();
  newer.slots["cuda.device"] = AgentSlotFigures{q("4"), q("1"), q("3")};
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) { return tx.upsertAgent(newer); }));
  auto got = readValue<std::optional<AgentRecord>>(*store, [](StoreTransaction& tx) { return tx.agent("agent-1"); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->rpcUrl, "http://127.0.0.1:6002");
  ASSERT_EQ(got->slots.size(), 1u);
  EXPECT_EQ(got->slots.at("cuda.device").capacity, q("4"));
  EXPECT_EQ(got->slots.at("cuda.device").used, q("1"));
  EXPECT_EQ(got->slots.at("cuda.device").largest, q("3"));
}

TEST_F(StoreTest, SetAgentUsedUpdatesAndAddsSlots) {
  auto store = open(url());
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.upsertAgent(sampleAgent("agent-1")); }));
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) {
    return tx.setAgentUsed("agent-1", slots({{"cpu", "2.5"}, {"cuda.shares", "0.000001"}}));
  }));
  auto got = readValue<std::optional<AgentRecord>>(*store, [](StoreTransaction& tx) { return tx.agent("agent-1"); });
  ASSERT_TRUE(got.has_value());
  ASSERT_EQ(got->slots.size(), 3u);
  EXPECT_EQ(got->slots.at("cpu").capacity, q("16"));  // untouched
  EXPECT_EQ(got->slots.at("cpu").used, q("2.5"));
  EXPECT_EQ(got->slots.at("cpu").largest, q("15.999999"));
  EXPECT_EQ(got->slots.at("mem").used, q("0"));  // not in the update: kept
  EXPECT_EQ(got->slots.at("cuda.shares").capacity, q("0"));
  EXPECT_EQ(got->slots.at("cuda.shares").used, q("0.000001"));
  EXPECT_EQ(got->slots.at("cuda.shares").largest, q("0"));

  Result<void> unknown = writeOne(*store, [](StoreTransaction& tx) {
    return tx.setAgentUsed("nope", slots({{"cpu", "1"}}));
  });
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::NotFound);
  EXPECT_NE(unknown.error().message.find("agent 'nope' not found"), std::string::npos) << unknown.error().message;
  Result<void> status =
      writeOne(*store, [](StoreTransaction& tx) { return tx.setAgentStatus("nope", AgentStatus::Lost, 1); });
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.error().code, ErrorCode::NotFound);
}

TEST_F(StoreTest, RoundTripsSessionsWithUnicodeAndQuotes) {
  auto store = open(url());
  SessionRecord session = sampleSession("s-1");
  Result<std::uint64_t> seq =
      writeValue<std::uint64_t>(*store, [&](StoreTransaction& tx) { return tx.insertSession(session); });
  ASSERT_OK(seq);
  store.reset();
  store = open(url());
  auto got = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("s-1"); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id, "s-1");
  EXPECT_EQ(got->name, session.name);
  EXPECT_EQ(got->owner, session.owner);
  EXPECT_EQ(got->scalingGroup, session.scalingGroup);
  EXPECT_EQ(got->command, session.command);
  EXPECT_EQ(got->env, session.env);
  EXPECT_EQ(got->requested, session.requested);
  EXPECT_EQ(got->requested.get("cuda.shares").toString(), "0.000001");
  EXPECT_EQ(got->requested.get("mem").toString(), "1152921504606846976");
  EXPECT_EQ(got->status, SessionStatus::Pending);
  EXPECT_EQ(got->agentId, "");
  EXPECT_FALSE(got->exitCode.has_value());
  EXPECT_EQ(got->enqueueSeq, *seq);
  EXPECT_EQ(got->createdAtMillis, session.createdAtMillis);
  EXPECT_EQ(got->scheduledAtMillis, 0);

  SessionRecord later = *got;
  later.status = SessionStatus::Error;
  later.statusReason = "exited: \"oops\" ✗";
  later.agentId = "agent-1";
  later.exitCode = -9;
  later.scheduledAtMillis = 10;
  later.startedAtMillis = 11;
  later.endedAtMillis = 12;
  later.name = "renamed";  // not a field that changes: ignored
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) { return tx.updateSession(later); }));
  got = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("s-1"); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->status, SessionStatus::Error);
  EXPECT_EQ(got->statusReason, later.statusReason);
  EXPECT_EQ(got->agentId, "agent-1");
  EXPECT_EQ(got->exitCode, std::optional<int>(-9));
  EXPECT_EQ(got->scheduledAtMillis, 10);
  EXPECT_EQ(got->startedAtMillis, 11);
  EXPECT_EQ(got->endedAtMillis, 12);
  EXPECT_EQ(got->name, session.name);
  EXPECT_EQ(got->enqueueSeq, *seq);
}

TEST_F(StoreTest, RefusesTextThatIsNotUtf8) {
  auto store = open("sqlite::memory:");
  SessionRecord session = sampleSession("s-bad");
  session.command = {"echo", std::string("\xff\xfe")};
  Result<std::uint64_t> seq =
      writeValue<std::uint64_t>(*store, [&](StoreTransaction& tx) { return tx.insertSession(session); });
  ASSERT_FALSE(seq.ok());
  EXPECT_EQ(seq.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(seq.error().message.find("s-bad"), std::string::npos) << seq.error().message;
}

TEST_F(StoreTest, AnIdempotencyKeyFindsItsSessionAndIsUniquePerOwner) {
  auto store = open("sqlite::memory:");
  auto insert = [&](const std::string& id, const std::string& owner, const std::string& key) {
    SessionRecord session = sampleSession(id, owner);
    session.idempotencyKey = key;
    session.requestDigest = key.empty() ? "" : "digest-" + id;
    return writeValue<std::uint64_t>(*store, [&](StoreTransaction& tx) { return tx.insertSession(session); });
  };
  ASSERT_OK(insert("s-1", "AKONE", "key-1"));
  ASSERT_OK(insert("s-2", "AKTWO", "key-1"));  // another owner's key is another key
  ASSERT_OK(insert("s-3", "AKONE", ""));
  ASSERT_OK(insert("s-4", "AKONE", ""));  // no key is never a duplicate
  Result<std::uint64_t> again = insert("s-5", "AKONE", "key-1");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::Conflict);

  auto found = readValue<std::optional<SessionRecord>>(
      *store, [](StoreTransaction& tx) { return tx.sessionByIdempotencyKey("AKONE", "key-1"); });
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, "s-1");
  EXPECT_EQ(found->idempotencyKey, "key-1");
  EXPECT_EQ(found->requestDigest, "digest-s-1");
  EXPECT_FALSE(readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) {
                 return tx.sessionByIdempotencyKey("AKONE", "");
               }).has_value());
}

TEST_F(StoreTest, EnqueueSeqIsMonotonicAcrossReopenAndNeverReused) {
  std::uint64_t last = 0;
  {
    auto store = open(url());
    for (int i = 0; i < 3; ++i) {
      Result<std::uint64_t> seq = writeValue<std::uint64_t>(
          *store, [&](StoreTransaction& tx) { return tx.insertSession(sampleSession("s-" + std::to_string(i))); });
      ASSERT_OK(seq);
      EXPECT_GT(*seq, last);
      last = *seq;
    }
  }
  // The manager never deletes sessions today; a later cleanup might, and FIFO order
  // must not hand a deleted session's place to a new one.
  execRaw(file(), "DELETE FROM sessions WHERE id = 's-2'");
  auto store = open(url());
  Result<std::uint64_t> seq =
      writeValue<std::uint64_t>(*store, [&](StoreTransaction& tx) { return tx.insertSession(sampleSession("s-3")); });
  ASSERT_OK(seq);
  EXPECT_GT(*seq, last);

  auto all = readValue<std::vector<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.sessions({}); });
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].id, "s-0");
  EXPECT_EQ(all[1].id, "s-1");
  EXPECT_EQ(all[2].id, "s-3");
  EXPECT_LT(all[0].enqueueSeq, all[1].enqueueSeq);
  EXPECT_LT(all[1].enqueueSeq, all[2].enqueueSeq);
}

TEST_F(StoreTest, FiltersSessions) {
  auto store = open("sqlite::memory:");
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    struct Row {
      const char* id;
      const char* owner;
      SessionStatus status;
      const char* agent;
    };
    for (const Row& row :
         {Row{"a", "AK1", SessionStatus::Pending, ""}, Row{"b", "AK2", SessionStatus::Running, "ag1"},
          Row{"c", "AK1", SessionStatus::Running, "ag2"}, Row{"d", "AK1", SessionStatus::Terminated, "ag1"},
          Row{"e", "AK2", SessionStatus::Cancelled, ""}, Row{"f", "AK1", SessionStatus::Error, "ag2"}}) {
      SessionRecord session = sampleSession(row.id, row.owner);
      session.status = row.status;
      session.agentId = row.agent;
      if (auto seq = tx.insertSession(session); !seq.ok()) return Failure{seq.error()};
    }
    return {};
  }));
  // The ids of the sessions that a filter, shaped by `shape`, selects, in order.
  auto ids = [&](const std::function<void(SessionFilter&)>& shape) {
    SessionFilter filter;
    shape(filter);
    std::string joined;
    for (const SessionRecord& s :
         readValue<std::vector<SessionRecord>>(*store, [&](StoreTransaction& tx) { return tx.sessions(filter); })) {
      joined += s.id;
    }
    return joined;
  };
  EXPECT_EQ(ids([](SessionFilter&) {}), "abcdef");
  EXPECT_EQ(ids([](SessionFilter& f) { f.status = SessionStatus::Running; }), "bc");
  EXPECT_EQ(ids([](SessionFilter& f) { f.owner = "AK1"; }), "acdf");
  EXPECT_EQ(ids([](SessionFilter& f) { f.agentId = "ag1"; }), "bd");
  EXPECT_EQ(ids([](SessionFilter& f) { f.activeOnly = true; }), "abc");
  EXPECT_EQ(ids([](SessionFilter& f) {
              f.owner = "AK1";
              f.activeOnly = true;
            }),
            "ac");
  EXPECT_EQ(ids([](SessionFilter& f) {
              f.status = SessionStatus::Running;
              f.owner = "AK1";
              f.agentId = "ag2";
            }),
            "c");
  EXPECT_EQ(ids([](SessionFilter& f) {
              f.status = SessionStatus::Terminated;
              f.activeOnly = true;
            }),
            "");
}

TEST_F(StoreTest, AllocationsInsertReleaseAndDelete) {
  auto store = open(url());
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.upsertAgent(sampleAgent("ag1")); !r.ok()) return r;
    for (const char* id : {"s1", "s2"}) {
      if (auto seq = tx.insertSession(sampleSession(id)); !seq.ok()) return Failure{seq.error()};
    }
    if (auto r = tx.insertAllocation({"s2", "ag1", slots({{"cpu", "1"}}), false}); !r.ok()) return r;
    return tx.insertAllocation({"s1", "ag1", slots({{"cpu", "0.000001"}, {"mem", "1152921504606846976"}}), false});
  }));
  auto one =
      readValue<std::optional<AllocationRecord>>(*store, [](StoreTransaction& tx) { return tx.allocation("s1"); });
  ASSERT_TRUE(one.has_value());
  EXPECT_EQ(one->agentId, "ag1");
  EXPECT_EQ(one->slots, slots({{"cpu", "0.000001"}, {"mem", "1152921504606846976"}}));
  EXPECT_FALSE(one->released);

  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.setAllocationReleased("s1", true); }));
  auto all =
      readValue<std::vector<AllocationRecord>>(*store, [](StoreTransaction& tx) { return tx.allocations("ag1"); });
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].sessionId, "s1");
  EXPECT_TRUE(all[0].released);
  EXPECT_EQ(all[1].sessionId, "s2");
  EXPECT_FALSE(all[1].released);
  EXPECT_TRUE(readValue<std::vector<AllocationRecord>>(*store, [](StoreTransaction& tx) {
                return tx.allocations("ag2");
              }).empty());

  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.deleteAllocation("s1"); }));
  EXPECT_FALSE(readValue<std::optional<AllocationRecord>>(*store, [](StoreTransaction& tx) {
                 return tx.allocation("s1");
               }).has_value());
  Result<void> again = writeOne(*store, [](StoreTransaction& tx) { return tx.deleteAllocation("s1"); });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::NotFound);

  Result<void> orphan = writeOne(*store, [](StoreTransaction& tx) {
    return tx.insertAllocation({"no-such-session", "ag1", slots({{"cpu", "1"}}), false});
  });
  ASSERT_FALSE(orphan.ok());
  EXPECT_EQ(orphan.error().code, ErrorCode::NotFound);
  EXPECT_NE(orphan.error().message.find("no-such-session"), std::string::npos);
}

TEST_F(StoreTest, DuplicatesAreConflicts) {
  auto store = open(url());
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.insertKeypair({"AKDUP", "top-secret-key", false, true, 0}); !r.ok()) return r;
    if (auto r = tx.insertSlotType("cpu", SlotType::Count); !r.ok()) return r;
    if (auto r = tx.upsertAgent(sampleAgent("ag1")); !r.ok()) return r;
    if (auto seq = tx.insertSession(sampleSession("s1")); !seq.ok()) return Failure{seq.error()};
    return tx.insertAllocation({"s1", "ag1", slots({{"cpu", "1"}}), false});
  }));
  auto expectConflict = [&](const std::function<Result<void>(StoreTransaction&)>& fn, const std::string& needle) {
    Result<void> result = writeOne(*store, fn);
    ASSERT_FALSE(result.ok()) << needle;
    EXPECT_EQ(result.error().code, ErrorCode::Conflict) << result.error().message;
    EXPECT_NE(result.error().message.find(needle), std::string::npos) << result.error().message;
    EXPECT_EQ(result.error().message.find("top-secret-key"), std::string::npos) << result.error().message;
  };
  expectConflict(
      [](StoreTransaction& tx) {
        return tx.insertKeypair({"AKDUP", "top-secret-key", true, true, 1});
      },
      "keypair 'AKDUP' already exists");
  expectConflict([](StoreTransaction& tx) { return tx.insertSlotType("cpu", SlotType::Bytes); }, "'cpu'");
  expectConflict(
      [](StoreTransaction& tx) -> Result<void> {
        if (auto seq = tx.insertSession(sampleSession("s1")); !seq.ok()) return Failure{seq.error()};
        return {};
      },
      "session 's1' already exists");
  expectConflict(
      [](StoreTransaction& tx) {
        return tx.insertAllocation({"s1", "ag1", slots({{"cpu", "2"}}), false});
      },
      "'s1'");
  // The first keypair is intact.
  auto keypair =
      readValue<std::optional<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypair("AKDUP"); });
  ASSERT_TRUE(keypair.has_value());
  EXPECT_FALSE(keypair->admin);
}

TEST_F(StoreTest, UpdatingAnUnknownSessionIsNotFound) {
  auto store = open("sqlite::memory:");
  Result<void> result = writeOne(*store, [](StoreTransaction& tx) { return tx.updateSession(sampleSession("ghost")); });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::NotFound);
  EXPECT_EQ(result.error().message, "session 'ghost' not found");
}

TEST_F(StoreTest, AFailedWriteLeavesNothing) {
  auto store = open(url());
  Result<void> result = writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.insertKeypair({"AK1", "s", false, true, 0}); !r.ok()) return r;
    if (auto seq = tx.insertSession(sampleSession("s1")); !seq.ok()) return Failure{seq.error()};
    return fail(ErrorCode::OutOfRange, "no room");
  });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::OutOfRange);
  EXPECT_EQ(result.error().message, "no room");
  store.reset();
  store = open(url());
  EXPECT_TRUE(
      readValue<std::vector<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypairs(); }).empty());
  EXPECT_TRUE(
      readValue<std::vector<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.sessions({}); }).empty());
}

TEST_F(StoreTest, AThrowingWriteRollsBackAndReportsTheException) {
  auto store = open(url());
  Result<void> result = writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.insertKeypair({"AK1", "s", false, true, 0}); !r.ok()) return r;
    throw std::runtime_error("scheduler bug");
  });
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().code, ErrorCode::Internal);
  EXPECT_NE(result.error().message.find("scheduler bug"), std::string::npos) << result.error().message;
  EXPECT_TRUE(
      readValue<std::vector<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypairs(); }).empty());
  // The store is usable afterwards.
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.insertKeypair({"AK1", "s", false, true, 0}); }));
}

TEST_F(StoreTest, AReadTransactionRefusesWrites) {
  auto store = open(url());
  Result<void> insert;
  Result<void> result = store->read([&](StoreTransaction& tx) -> Result<void> {
    insert = tx.insertKeypair({"AK1", "s", false, true, 0});
    return {};
  });
  ASSERT_OK(result);
  ASSERT_FALSE(insert.ok());
  EXPECT_EQ(insert.error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(insert.error().message, "write in a read transaction");
  EXPECT_TRUE(
      readValue<std::vector<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypairs(); }).empty());
}

TEST_F(StoreTest, ANestedTransactionFailsInsteadOfDeadlocking) {
  auto store = open("sqlite::memory:");
  Result<void> inner;
  ASSERT_OK(store->write([&](StoreTransaction&) -> Result<void> {
    inner = store->read([](StoreTransaction&) -> Result<void> { return {}; });
    return {};
  }));
  ASSERT_FALSE(inner.ok());
  EXPECT_NE(inner.error().message.find("inside another transaction"), std::string::npos) << inner.error().message;
  ASSERT_OK(store->read([](StoreTransaction&) -> Result<void> { return {}; }));  // not left locked
}

// Check-then-write through two connections: BEGIN IMMEDIATE must serialise them so
// that no reservation is lost and none goes past capacity.
TEST_F(StoreTest, TwoConnectionsNeverOverbook) {
  auto first = open(url());
  auto second = open(url());
  AgentRecord agent = sampleAgent("ag1");
  agent.slots.clear();
  agent.slots["cpu"] = AgentSlotFigures{q("10"), q("0"), q("10")};
  ASSERT_OK(writeOne(*first, [&](StoreTransaction& tx) { return tx.upsertAgent(agent); }));

  std::atomic<int> successes{0};
  std::atomic<int> errors{0};
  std::string firstError;
  std::mutex errorMutex;
  auto reserve = [&](Store& store) {
    for (int attempt = 0; attempt < 50; ++attempt) {
      bool reserved = false;
      Result<void> result = store.write([&](StoreTransaction& tx) -> Result<void> {
        reserved = false;
        Result<std::optional<AgentRecord>> current = tx.agent("ag1");
        if (!current.ok()) return Failure{current.error()};
        Quantity used = (*current)->slots.at("cpu").used;
        if (used + Quantity(1) > (*current)->slots.at("cpu").capacity) return {};
        std::this_thread::yield();  // widen the window between the check and the write
        ResourceSlot next;
        next.set(SlotName::of("cpu"), used + Quantity(1));
        if (Result<void> set = tx.setAgentUsed("ag1", next); !set.ok()) return set;
        reserved = true;
        return {};
      });
      if (!result.ok()) {
        std::lock_guard lock(errorMutex);
        if (errors++ == 0) firstError = result.error().message;
      } else if (reserved) {
        ++successes;
      }
    }
  };
  std::thread a(reserve, std::ref(*first));
  std::thread b(reserve, std::ref(*second));
  a.join();
  b.join();
  EXPECT_EQ(errors.load(), 0) << firstError;
  EXPECT_EQ(successes.load(), 10);
  auto got = readValue<std::optional<AgentRecord>>(*second, [](StoreTransaction& tx) { return tx.agent("ag1"); });
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->slots.at("cpu").used, q("10"));
}

TEST_F(StoreTest, UnsupportedUrlsAreRefused) {
  Result<std::unique_ptr<Store>> postgres = openStore("postgresql://bai:hunter2@db:5432/bai");
  ASSERT_FALSE(postgres.ok());
  EXPECT_NE(postgres.error().message.find("PostgreSQL store not built in this bai"), std::string::npos);
  EXPECT_EQ(postgres.error().message.find("hunter2"), std::string::npos);

  Result<std::unique_ptr<Store>> mysql = openStore("mysql://root:hunter2@db/bai");
  ASSERT_FALSE(mysql.ok());
  EXPECT_EQ(mysql.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(mysql.error().message.find("'mysql'"), std::string::npos) << mysql.error().message;
  EXPECT_EQ(mysql.error().message.find("hunter2"), std::string::npos);

  Result<std::unique_ptr<Store>> bare = openStore("/var/lib/bai/manager.db");
  ASSERT_FALSE(bare.ok());
  EXPECT_EQ(bare.error().code, ErrorCode::InvalidArgument);

  Result<std::unique_ptr<Store>> empty = openStore("sqlite://");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, ErrorCode::InvalidArgument);
}

TEST_F(StoreTest, AMissingDirectoryIsNamed) {
  std::filesystem::path missing = dir_.path() / "no-such-dir";
  Result<std::unique_ptr<Store>> store = openStore("sqlite://" + (missing / "manager.db").string());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().code, ErrorCode::NotFound);
  EXPECT_NE(store.error().message.find(missing.string()), std::string::npos) << store.error().message;
  EXPECT_FALSE(std::filesystem::exists(missing));
}

TEST_F(StoreTest, OpensARelativePath) {
  std::filesystem::path previous = std::filesystem::current_path();
  std::filesystem::current_path(dir_.path());
  Result<std::unique_ptr<Store>> store = openStore("sqlite://relative.db");
  std::filesystem::current_path(previous);
  ASSERT_OK(store);
  EXPECT_TRUE(std::filesystem::exists(dir_.path() / "relative.db"));
}

// ---- Schema version 2: scaling groups, resource policies, a keypair's policy ----------

TEST_F(StoreTest, AFreshDatabaseIsAtTheLatestVersion) {
  auto store = open(url());
  EXPECT_EQ(store->schemaVersion(), 9);
  EXPECT_EQ(static_cast<int>(sqliteMigrations().size()), 9);
  store.reset();
  EXPECT_EQ(userVersion(file()), 9);
}

StoreOptions withUidRange(std::uint32_t first, std::uint32_t last, std::optional<std::uint32_t> gid = std::nullopt) {
  StoreOptions options;
  options.identity.firstUid = first;
  options.identity.lastUid = last;
  options.identity.sessionGid = gid;
  return options;
}

// The SQL of migrations 1 to 5 and `rows`: a file as a bai-manager of schema 5 left it.
std::string versionFiveDatabase(const std::string& rows) {
  std::string sql = "BEGIN;";
  for (std::size_t step = 0; step < 5; ++step) {
    for (const char* statement : sqliteMigrations().at(step)) sql += std::string(statement) + ";";
  }
  return sql + rows + "PRAGMA user_version = 5; COMMIT;";
}

using Keypairs = std::vector<KeypairRecord>;

TEST_F(StoreTest, UpgradingAVersionFiveDatabaseGivesEachKeypairItsOwnUidInAccessKeyOrder) {
  execRaw(file(), versionFiveDatabase("INSERT INTO keypairs VALUES ('AKC', 's', 0, 1, 3, '');"
                                      "INSERT INTO keypairs VALUES ('AKA', 's', 1, 1, 1, '');"
                                      "INSERT INTO keypairs VALUES ('AKB', 's', 0, 0, 2, '');"));
  auto store = open(url(), withUidRange(300000, 300009));
  EXPECT_EQ(store->schemaVersion(), 9);
  auto keypairs = readValue<Keypairs>(*store, [](StoreTransaction& tx) { return tx.keypairs(); });
  ASSERT_EQ(keypairs.size(), 3u);
  EXPECT_EQ(keypairs[0].accessKey, "AKA");
  EXPECT_EQ(keypairs[0].uid, 300000u);
  EXPECT_EQ(keypairs[1].uid, 300001u);
  EXPECT_EQ(keypairs[2].uid, 300002u);
  for (const auto& keypair : keypairs) EXPECT_EQ(keypair.gid, keypair.uid) << "by default each keypair is its own group";
  // The next keypair gets the next free uid; the migrated ones keep theirs after a reopen.
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.insertKeypair({"AKD", "s", false, true, 4}); }));
  store = open(url(), withUidRange(300000, 300009));
  keypairs = readValue<Keypairs>(*store, [](StoreTransaction& tx) { return tx.keypairs(); });
  ASSERT_EQ(keypairs.size(), 4u);
  EXPECT_EQ(keypairs[0].uid, 300000u);
  EXPECT_EQ(keypairs[3].uid, 300003u);
}

TEST_F(StoreTest, UpgradingGivesTheConfiguredSessionGid) {
  execRaw(file(), versionFiveDatabase("INSERT INTO keypairs VALUES ('AKA', 's', 1, 1, 1, '');"));
  auto store = open(url(), withUidRange(300000, 300009, 100));
  auto keypair = readValue<std::optional<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypair("AKA"); });
  ASSERT_TRUE(keypair.has_value());
  EXPECT_EQ(keypair->uid, 300000u);
  EXPECT_EQ(keypair->gid, 100u);
}

TEST_F(StoreTest, AnUpgradeWhoseKeypairsOutnumberTheRangeIsRefusedAndLeavesVersionFive) {
  execRaw(file(), versionFiveDatabase("INSERT INTO keypairs VALUES ('AKA', 's', 1, 1, 1, '');"
                                      "INSERT INTO keypairs VALUES ('AKB', 's', 1, 1, 1, '');"));
  auto store = openStore(url(), withUidRange(300000, 300000));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("identity.session-uid-range 300000-300000"), std::string::npos) << store.error().message;
  EXPECT_EQ(userVersion(file()), 5);
}

TEST_F(StoreTest, AKeypairWithoutAUidGetsTheLowestFreeOneAndKeepsItAcrossAReopen) {
  {
    auto store = open(url(), withUidRange(200000, 200009));
    ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
      if (auto r = tx.insertKeypair({"AK1", "s", false, true, 0}); !r.ok()) return r;
      if (auto r = tx.insertKeypair({"AK2", "s", false, true, 0, "", 200002, 0}); !r.ok()) return r;  // an admin's uid
      return tx.insertKeypair({"AK3", "s", false, true, 0});
    }));
  }
  auto store = open(url(), withUidRange(200000, 200009));
  auto keypairs = readValue<Keypairs>(*store, [](StoreTransaction& tx) { return tx.keypairs(); });
  ASSERT_EQ(keypairs.size(), 3u);
  EXPECT_EQ(keypairs[0].uid, 200000u);
  EXPECT_EQ(keypairs[1].uid, 200002u);
  EXPECT_EQ(keypairs[2].uid, 200001u) << "the gap below an admin's uid is filled first";
  EXPECT_EQ(keypairs[1].gid, 200002u);
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.insertKeypair({"AK4", "s", false, true, 0}); }));
  auto fourth = readValue<std::optional<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypair("AK4"); });
  ASSERT_TRUE(fourth.has_value());
  EXPECT_EQ(fourth->uid, 200003u);
}

TEST_F(StoreTest, AFullUidRangeRefusesAKeypairWithoutAUidButNotOneWithIts) {
  auto store = open(url(), withUidRange(200000, 200001));
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.insertKeypair({"AK1", "s", false, true, 0}); !r.ok()) return r;
    return tx.insertKeypair({"AK2", "s", false, true, 0});
  }));
  Result<void> full = writeOne(*store, [](StoreTransaction& tx) { return tx.insertKeypair({"AK3", "s", false, true, 0}); });
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, ErrorCode::OutOfRange);
  EXPECT_NE(full.error().message.find("identity.session-uid-range"), std::string::npos) << full.error().message;
  // An LDAP uid far outside the range is the admin's call.
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.insertKeypair({"AK3", "s", false, true, 0, "", 5000, 5000}); }));
}

TEST_F(StoreTest, AUidIsHeldByOneKeypairOnly) {
  auto store = open(url());
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.insertKeypair({"AK1", "s", false, true, 0, "", 4000, 4000}); !r.ok()) return r;
    return tx.insertKeypair({"AK2", "s", false, true, 0, "", 4001, 0});
  }));
  Result<void> twice = writeOne(*store, [](StoreTransaction& tx) { return tx.insertKeypair({"AK3", "s", false, true, 0, "", 4000, 1}); });
  ASSERT_FALSE(twice.ok());
  EXPECT_EQ(twice.error().code, ErrorCode::Conflict);
  EXPECT_NE(twice.error().message.find("AK1"), std::string::npos) << twice.error().message;
  Result<void> taken = writeOne(*store, [](StoreTransaction& tx) { return tx.setKeypairIdentity("AK2", 4000, 7); });
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, ErrorCode::Conflict);
  Result<void> unknown = writeOne(*store, [](StoreTransaction& tx) { return tx.setKeypairIdentity("AKX", 4100, 7); });
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().code, ErrorCode::NotFound);
  Result<void> root = writeOne(*store, [](StoreTransaction& tx) { return tx.setKeypairIdentity("AK2", 4002, 4294967295u); });
  ASSERT_FALSE(root.ok());
  EXPECT_EQ(root.error().code, ErrorCode::InvalidArgument);
  // Its own uid again with another gid; then a new uid whose gid follows the policy (gid = uid).
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.setKeypairIdentity("AK1", 4000, 50); }));
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.setKeypairIdentity("AK2", 4500, 0); }));
  auto keypairs = readValue<Keypairs>(*store, [](StoreTransaction& tx) { return tx.keypairs(); });
  EXPECT_EQ(keypairs[0].gid, 50u);
  EXPECT_EQ(keypairs[1].uid, 4500u);
  EXPECT_EQ(keypairs[1].gid, 4500u);
  // Below the store's API, the schema itself refuses a keypair without ids.
  store.reset();
  EXPECT_EQ(execRawError(file(), "INSERT INTO keypairs (access_key, secret_key, is_admin, is_active, created_at_ms) "
                                 "VALUES ('AKRAW', 's', 0, 1, 0)"),
            "a keypair needs a uid and a gid");
  EXPECT_EQ(execRawError(file(), "UPDATE keypairs SET gid = 0 WHERE access_key = 'AK1'"), "a keypair needs a uid and a gid");
}

// A file as bai-manager with schema 1 left it (migration 1's own SQL), with rows: the
// upgrade keeps them and gives the old keypair no policy.
TEST_F(StoreTest, UpgradesAVersionOneDatabaseKeepingItsRows) {
  std::string v1 = "BEGIN;";
  for (const char* sql : sqliteMigrations().at(0)) v1 += std::string(sql) + ";";
  v1 += "INSERT INTO keypairs VALUES ('AKOLD', 'old-secret', 1, 1, 7);";
  v1 += "INSERT INTO slot_types VALUES ('cpu', 'count');";
  v1 += "PRAGMA user_version = 1; COMMIT;";
  execRaw(file(), v1);
  ASSERT_EQ(userVersion(file()), 1);

  auto store = open(url());
  const int latest = static_cast<int>(sqliteMigrations().size());
  EXPECT_EQ(store->schemaVersion(), latest);
  auto keypair =
      readValue<std::optional<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypair("AKOLD"); });
  ASSERT_TRUE(keypair.has_value());
  EXPECT_EQ(keypair->secretKey, "old-secret");
  EXPECT_TRUE(keypair->admin);
  EXPECT_EQ(keypair->createdAtMillis, 7);
  EXPECT_EQ(keypair->resourcePolicy, "");
  using SlotTypes = std::map<std::string, SlotType>;
  EXPECT_EQ(readValue<SlotTypes>(*store, [](StoreTransaction& tx) { return tx.slotTypes(); }).size(), 1u);
  EXPECT_TRUE(readValue<std::vector<ScalingGroupRecord>>(*store, [](StoreTransaction& tx) {
                return tx.scalingGroups();
              }).empty());
  // The new tables and column are usable.
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.upsertResourcePolicy({"small", slots({{"cpu", "2"}}), false, 1, 1, 9}); !r.ok()) return r;
    return tx.setKeypairResourcePolicy("AKOLD", "small");
  }));
  store.reset();
  EXPECT_EQ(userVersion(file()), latest);
  store = open(url());
  keypair = readValue<std::optional<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypair("AKOLD"); });
  ASSERT_TRUE(keypair.has_value());
  EXPECT_EQ(keypair->resourcePolicy, "small");
}

TEST_F(StoreTest, RoundTripsScalingGroupsAndKeepsTheirCreationTime) {
  auto store = open(url());
  ScalingGroupRecord gpu;
  gpu.name = "gpu";
  gpu.description = "GPU nodes — \"A100\" ✓";
  gpu.sequencer = "drf";
  gpu.selector = "dispersed";
  gpu.optionsJson = R"({"selector":{"spread":2},"sequencer":{}})";
  gpu.slotPriority = {"cuda.device", "mem", "cpu"};
  gpu.holMaxPasses = 0;
  gpu.holMaxWaitMillis = 9'000'000'000'000;  // beyond 32 bits
  gpu.active = false;
  gpu.createdAtMillis = 11;
  ScalingGroupRecord plain;  // every default
  plain.name = "default";
  plain.createdAtMillis = 12;
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.upsertScalingGroup(gpu); !r.ok()) return r;
    return tx.upsertScalingGroup(plain);
  }));
  store.reset();
  store = open(url());
  auto groups = readValue<std::vector<ScalingGroupRecord>>(*store, [](StoreTransaction& tx) { return tx.scalingGroups(); });
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].name, "default");  // by name
  EXPECT_EQ(groups[0].sequencer, "fifo");
  EXPECT_EQ(groups[0].selector, "concentrated");
  EXPECT_EQ(groups[0].optionsJson, "{}");
  EXPECT_TRUE(groups[0].slotPriority.empty());
  EXPECT_EQ(groups[0].holMaxPasses, 16);
  EXPECT_EQ(groups[0].holMaxWaitMillis, 300000);
  EXPECT_TRUE(groups[0].active);
  const ScalingGroupRecord& read = groups[1];
  EXPECT_EQ(read.name, gpu.name);
  EXPECT_EQ(read.description, gpu.description);
  EXPECT_EQ(read.sequencer, gpu.sequencer);
  EXPECT_EQ(read.selector, gpu.selector);
  EXPECT_EQ(read.optionsJson, gpu.optionsJson);
  EXPECT_EQ(read.slotPriority, gpu.slotPriority);
  EXPECT_EQ(read.holMaxPasses, 0);
  EXPECT_EQ(read.holMaxWaitMillis, gpu.holMaxWaitMillis);
  EXPECT_FALSE(read.active);
  EXPECT_EQ(read.createdAtMillis, 11);

  gpu.active = true;
  gpu.slotPriority.clear();
  gpu.createdAtMillis = 99;
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) { return tx.upsertScalingGroup(gpu); }));
  auto updated = readValue<std::optional<ScalingGroupRecord>>(*store, [](StoreTransaction& tx) {
    return tx.scalingGroup("gpu");
  });
  ASSERT_TRUE(updated.has_value());
  EXPECT_TRUE(updated->active);
  EXPECT_TRUE(updated->slotPriority.empty());
  EXPECT_EQ(updated->createdAtMillis, 11) << "an upsert keeps the creation time";
  EXPECT_FALSE(readValue<std::optional<ScalingGroupRecord>>(*store, [](StoreTransaction& tx) {
                 return tx.scalingGroup("none");
               }).has_value());
}

TEST_F(StoreTest, RoundTripsResourcePoliciesExactly) {
  auto store = open(url());
  // The smallest step, more than 2^63 bytes, an explicit 0 and no limit all come back as written.
  const ResourceSlot totals = slots({{"cuda.shares", "0.000001"},
                                     {"mem", "18446744073709551616"},
                                     {"cuda.device", "0"},
                                     {"cpu", "Infinity"}});
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.upsertResourcePolicy({"small", totals, false, 3, 2147483647, 5, slots({{"mem", "1073741824"}})});
        !r.ok()) {
      return r;
    }
    return tx.upsertResourcePolicy({"open", {}, true, 0, 0, 6});
  }));
  store.reset();
  store = open(url());
  auto policies =
      readValue<std::vector<ResourcePolicyRecord>>(*store, [](StoreTransaction& tx) { return tx.resourcePolicies(); });
  ASSERT_EQ(policies.size(), 2u);
  EXPECT_EQ(policies[0].name, "open");
  EXPECT_TRUE(policies[0].totalResourceSlots.empty());
  EXPECT_TRUE(policies[0].defaultUnlimited);
  const ResourcePolicyRecord& small = policies[1];
  EXPECT_EQ(small.totalResourceSlots, totals);
  EXPECT_TRUE(small.totalResourceSlots.contains("cuda.device")) << "an explicit 0 is a limit, not an absence";
  EXPECT_EQ(small.totalResourceSlots.get("mem").toString(), "18446744073709551616");
  EXPECT_EQ(small.totalResourceSlots.get("cuda.shares").toString(), "0.000001");
  EXPECT_TRUE(small.totalResourceSlots.get("cpu").isInfinite());
  EXPECT_FALSE(small.defaultUnlimited);
  EXPECT_EQ(small.maxConcurrentSessions, 3);
  EXPECT_EQ(small.maxPendingSessions, 2147483647);
  EXPECT_EQ(small.createdAtMillis, 5);
  EXPECT_EQ(small.defaultSessionSlots, slots({{"mem", "1073741824"}}));
  EXPECT_TRUE(policies[0].defaultSessionSlots.empty());

  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) {
    return tx.upsertResourcePolicy({"small", slots({{"cpu", "1.5"}}), true, 0, 1, 77});
  }));
  auto updated = readValue<std::optional<ResourcePolicyRecord>>(*store, [](StoreTransaction& tx) {
    return tx.resourcePolicy("small");
  });
  ASSERT_TRUE(updated.has_value());
  EXPECT_EQ(updated->totalResourceSlots, slots({{"cpu", "1.5"}})) << "the old slots are gone";
  EXPECT_TRUE(updated->defaultUnlimited);
  EXPECT_EQ(updated->maxPendingSessions, 1);
  EXPECT_EQ(updated->createdAtMillis, 5);
  EXPECT_TRUE(updated->defaultSessionSlots.empty()) << "replaced like the rest";
  // Stored as exact text, never as a float.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file().c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT total_resource_slots_json FROM resource_policies WHERE name = 'small'", -1,
                               &stmt, nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0)), R"({"cpu":"1.5"})");
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

TEST_F(StoreTest, AKeypairNamesOnlyAKnownPolicy) {
  auto store = open("sqlite::memory:");
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.upsertResourcePolicy({"small", {}, true, 1, 0, 1}); !r.ok()) return r;
    if (auto r = tx.insertKeypair({"AKPLAIN", "s", false, true, 1}); !r.ok()) return r;
    return tx.insertKeypair({"AKSMALL", "s", false, true, 2, "small"});
  }));
  auto expectNotFound = [&](const std::function<Result<void>(StoreTransaction&)>& fn, const std::string& message) {
    Result<void> result = writeOne(*store, fn);
    ASSERT_FALSE(result.ok()) << message;
    EXPECT_EQ(result.error().code, ErrorCode::NotFound);
    EXPECT_EQ(result.error().message, message);
  };
  expectNotFound([](StoreTransaction& tx) { return tx.insertKeypair({"AKX", "s", false, true, 3, "huge"}); },
                 "resource policy 'huge' not found");
  expectNotFound([](StoreTransaction& tx) { return tx.setKeypairResourcePolicy("AKPLAIN", "huge"); },
                 "resource policy 'huge' not found");
  expectNotFound([](StoreTransaction& tx) { return tx.setKeypairResourcePolicy("AKGHOST", "small"); },
                 "keypair 'AKGHOST' not found");
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.setKeypairResourcePolicy("AKPLAIN", "small"); !r.ok()) return r;
    return tx.setKeypairResourcePolicy("AKSMALL", "");
  }));
  auto keypairs = readValue<std::vector<KeypairRecord>>(*store, [](StoreTransaction& tx) { return tx.keypairs(); });
  ASSERT_EQ(keypairs.size(), 2u);
  EXPECT_EQ(keypairs[0].accessKey, "AKPLAIN");
  EXPECT_EQ(keypairs[0].resourcePolicy, "small");
  EXPECT_EQ(keypairs[1].resourcePolicy, "") << "'' takes the policy away";
  Result<void> readOnly = store->read([](StoreTransaction& tx) { return tx.setKeypairResourcePolicy("AKPLAIN", ""); });
  EXPECT_FALSE(readOnly.ok());
}

// ---- Schema version 5: request nonces; the daemon's exclusive lock ---------------------

TEST_F(StoreTest, KeepsRequestNoncesUntilTheyExpire) {
  auto store = open(url());
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.insertRequestNonce("3:AK1n1", 1000); !r.ok()) return r;
    return tx.insertRequestNonce("3:AK1n2", 2000);
  }));
  Result<void> again = writeOne(*store, [](StoreTransaction& tx) { return tx.insertRequestNonce("3:AK1n1", 5000); });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::Conflict);
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.deleteRequestNoncesExpiredBefore(1000); }));
  using Kept = std::map<std::string, std::int64_t>;
  EXPECT_EQ(readValue<Kept>(*store, [](StoreTransaction& tx) { return tx.requestNonces(0); }),
            (Kept{{"3:AK1n1", 1000}, {"3:AK1n2", 2000}})) << "kept up to and including their expiry";
  EXPECT_EQ(readValue<Kept>(*store, [](StoreTransaction& tx) { return tx.requestNonces(1001); }),
            (Kept{{"3:AK1n2", 2000}}));
  ASSERT_OK(writeOne(*store, [](StoreTransaction& tx) { return tx.deleteRequestNoncesExpiredBefore(1001); }));
  EXPECT_EQ(readValue<Kept>(*store, [](StoreTransaction& tx) { return tx.requestNonces(0); }), (Kept{{"3:AK1n2", 2000}}));
}

TEST_F(StoreTest, AnExclusiveStoreRefusesASecondOneAtOnce) {
  StoreOptions exclusive;
  exclusive.exclusive = true;
  auto first = openStore(url(), exclusive);
  ASSERT_OK(first);
  const auto started = std::chrono::steady_clock::now();
  auto second = openStore(url(), exclusive);
  ASSERT_FALSE(second.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1)) << "no busy timeout";
  EXPECT_EQ(second.error().code, ErrorCode::Conflict);
  EXPECT_NE(second.error().message.find("in use by another bai-manager (pid " + std::to_string(::getpid())),
            std::string::npos) << second.error().message;
  EXPECT_TRUE(openStore(url()).ok()) << "a shared opener (bai-manager init) is not refused";
  first->reset();
  EXPECT_TRUE(openStore(url(), exclusive).ok()) << "released with the store";
}

TEST(SessionStatusTest, NamesRoundTripAndFinalStates) {
  for (SessionStatus status :
       {SessionStatus::Pending, SessionStatus::Scheduled, SessionStatus::Preparing, SessionStatus::Running,
        SessionStatus::Terminating, SessionStatus::Terminated, SessionStatus::Cancelled, SessionStatus::Error}) {
    Result<SessionStatus> parsed = parseSessionStatus(sessionStatusName(status));
    ASSERT_OK(parsed);
    EXPECT_EQ(*parsed, status);
  }
  EXPECT_STREQ(sessionStatusName(SessionStatus::Pending), "PENDING");
  EXPECT_FALSE(parseSessionStatus("pending").ok());
  EXPECT_TRUE(isFinal(SessionStatus::Terminated));
  EXPECT_TRUE(isFinal(SessionStatus::Cancelled));
  EXPECT_TRUE(isFinal(SessionStatus::Error));
  EXPECT_FALSE(isFinal(SessionStatus::Terminating));
  EXPECT_FALSE(isFinal(SessionStatus::Running));
  EXPECT_EQ(*parseAgentStatus("LOST"), AgentStatus::Lost);
  EXPECT_STREQ(agentStatusName(AgentStatus::Alive), "ALIVE");
  EXPECT_FALSE(parseAgentStatus("DEAD").ok());
}

}  // namespace
}  // namespace bai::manager

namespace bai::manager {
namespace {

// ---- Schema version 7: images, runtimes, pull policy and allow-list ----------------------

// The SQL of migrations 1 to 6 and `rows`: a file as a bai-manager of schema 6 left it.
std::string versionSixDatabase(const std::string& rows) {
  std::string sql = "BEGIN;";
  for (std::size_t step = 0; step < 6; ++step) {
    for (const char* statement : sqliteMigrations().at(step)) sql += std::string(statement) + ";";
  }
  return sql + rows + "PRAGMA user_version = 6; COMMIT;";
}

TEST_F(StoreTest, UpgradingAVersionSixDatabaseKeepsItsRowsAsProcessSessionsAndAgents) {
  execRaw(file(), versionSixDatabase(
                      "INSERT INTO agents VALUES ('A1', 'ALIVE', 'http://127.0.0.1:1', 'r', 'default', 'x86_64', '1', 5, "
                      "'[]', '[]', 0, 1, 2);"
                      "INSERT INTO sessions (id, name, owner, scaling_group, command_json, env_json, requested_json, "
                      "status, status_reason, agent_id, exit_code, created_at_ms, scheduled_at_ms, started_at_ms, "
                      "ended_at_ms) VALUES ('S1', 'old', 'AK', 'default', '[\"true\"]', '{}', '{}', 'PENDING', '', '', "
                      "NULL, 3, 0, 0, 0);"
                      "INSERT INTO scaling_groups VALUES ('default', '', 'fifo', 'concentrated', '{}', '[]', 16, "
                      "300000, 1, 4);"));
  auto store = open(url());
  EXPECT_EQ(store->schemaVersion(), 9);
  auto session = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("S1"); });
  ASSERT_TRUE(session.has_value());
  EXPECT_EQ(session->command, std::vector<std::string>{"true"});
  EXPECT_FALSE(session->image.has_value()) << "an older session ran a host process";
  auto agent = readValue<std::optional<AgentRecord>>(*store, [](StoreTransaction& tx) { return tx.agent("A1"); });
  ASSERT_TRUE(agent.has_value());
  ASSERT_EQ(agent->runtimes.size(), 1u) << "an older agent ran host processes only";
  EXPECT_EQ(agent->runtimes[0], (AgentRuntimeRecord{"process", true, ""}));
  EXPECT_TRUE(agent->images.empty());
  auto group = readValue<std::optional<ScalingGroupRecord>>(*store, [](StoreTransaction& tx) { return tx.scalingGroup("default"); });
  ASSERT_TRUE(group.has_value());
  EXPECT_EQ(group->imagePullPolicy, "never");
  EXPECT_TRUE(group->allowedImages.empty());
}

TEST_F(StoreTest, RoundTripsImagesRuntimesPullPolicyAndAllowList) {
  auto store = open(url());
  AgentRecord agent = sampleAgent("A1");
  agent.runtimes = {{"process", true, ""}, {"container", false, "engine at /run/podman.sock: connection refused"}};
  agent.images = {{"localhost/bai-test/busybox:1", "sha256:abc", 4'500'000'000}, {"docker.io/library/\"q\":1", "sha256:d", 0}};
  SessionRecord container = sampleSession("S1");
  container.image = "bai-test/busybox:1";
  container.command.clear();
  SessionRecord process = sampleSession("S2");
  ScalingGroupRecord group;
  group.name = "gpu";
  group.imagePullPolicy = "if-missing";
  group.allowedImages = {"bai-test/*", "*/pytorch:*"};
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.upsertAgent(agent); !r.ok()) return r;
    if (auto r = tx.insertSession(container); !r.ok()) return Failure{r.error()};
    if (auto r = tx.insertSession(process); !r.ok()) return Failure{r.error()};
    return tx.upsertScalingGroup(group);
  }));
  store = open(url());
  auto read = readValue<std::optional<AgentRecord>>(*store, [](StoreTransaction& tx) { return tx.agent("A1"); });
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->runtimes, agent.runtimes);
  EXPECT_EQ(read->images, agent.images);
  auto first = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("S1"); });
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->image, std::optional<std::string>("bai-test/busybox:1"));
  EXPECT_TRUE(first->command.empty());
  auto second = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("S2"); });
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->image.has_value());
  auto readGroup = readValue<std::optional<ScalingGroupRecord>>(*store, [](StoreTransaction& tx) { return tx.scalingGroup("gpu"); });
  ASSERT_TRUE(readGroup.has_value());
  EXPECT_EQ(readGroup->imagePullPolicy, "if-missing");
  EXPECT_EQ(readGroup->allowedImages, group.allowedImages);
  // An upsert replaces both, emptying the allow-list.
  group.imagePullPolicy = "always";
  group.allowedImages.clear();
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) { return tx.upsertScalingGroup(group); }));
  readGroup = readValue<std::optional<ScalingGroupRecord>>(*store, [](StoreTransaction& tx) { return tx.scalingGroup("gpu"); });
  EXPECT_EQ(readGroup->imagePullPolicy, "always");
  EXPECT_TRUE(readGroup->allowedImages.empty());
}

TEST_F(StoreTest, CorruptRuntimesAreAnErrorNamingTheAgent) {
  {
    auto store = open(url());
    ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) { return tx.upsertAgent(sampleAgent("A1")); }));
  }
  execRaw(file(), R"(UPDATE agents SET runtimes_json = '[{"kind":1}]')");
  auto store = open(url());
  Result<void> read = store->read([](StoreTransaction& tx) -> Result<void> {
    auto agents = tx.agents();
    if (!agents.ok()) return Failure{agents.error()};
    return {};
  });
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().message.find("agent 'A1' runtimes"), std::string::npos) << read.error().message;
}

}  // namespace
}  // namespace bai::manager

namespace bai::manager {
namespace {

// ---- Schema version 8: interactive sessions ----------------------------------------------

// The SQL of migrations 1 to 7 and `rows`: a file as a bai-manager of schema 7 left it.
std::string versionSevenDatabase(const std::string& rows) {
  std::string sql = "BEGIN;";
  for (std::size_t step = 0; step < 7; ++step) {
    for (const char* statement : sqliteMigrations().at(step)) sql += std::string(statement) + ";";
  }
  return sql + rows + "PRAGMA user_version = 7; COMMIT;";
}

TEST_F(StoreTest, UpgradingAVersionSevenDatabaseKeepsItsSessionsAsNotInteractive) {
  execRaw(file(), versionSevenDatabase(
                      "INSERT INTO sessions (id, name, owner, scaling_group, command_json, env_json, requested_json, "
                      "status, status_reason, agent_id, exit_code, created_at_ms, scheduled_at_ms, started_at_ms, "
                      "ended_at_ms, image) VALUES ('S1', 'old', 'AK', 'default', '[\"sh\"]', '{\"A\":\"1\"}', '{}', "
                      "'RUNNING', '', 'a1', NULL, 3, 4, 5, 0, 'bai-test/busybox:1');"));
  auto store = open(url());
  EXPECT_EQ(store->schemaVersion(), 9);
  auto session = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("S1"); });
  ASSERT_TRUE(session.has_value());
  EXPECT_EQ(session->name, "old");
  EXPECT_EQ(session->command, std::vector<std::string>{"sh"});
  EXPECT_EQ(session->env.at("A"), "1");
  EXPECT_EQ(session->status, SessionStatus::Running);
  EXPECT_EQ(session->startedAtMillis, 5);
  EXPECT_EQ(session->image, std::optional<std::string>("bai-test/busybox:1"));
  EXPECT_FALSE(session->openStdin) << "an older session had stdin closed";
  EXPECT_FALSE(session->tty);
  EXPECT_TRUE(session->servicePorts.empty());
}

TEST_F(StoreTest, RoundTripsStdinTtyAndServicePorts) {
  auto store = open(url());
  SessionRecord interactive = sampleSession("S1");
  interactive.openStdin = true;
  interactive.tty = true;
  interactive.servicePorts = {{"jupyter", "http", 8888}, {"ssh", "tcp", 22}};
  SessionRecord batch = sampleSession("S2");
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) -> Result<void> {
    if (auto r = tx.insertSession(interactive); !r.ok()) return Failure{r.error()};
    if (auto r = tx.insertSession(batch); !r.ok()) return Failure{r.error()};
    return {};
  }));
  store = open(url());
  auto first = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("S1"); });
  ASSERT_TRUE(first.has_value());
  EXPECT_TRUE(first->openStdin);
  EXPECT_TRUE(first->tty);
  EXPECT_EQ(first->servicePorts, interactive.servicePorts);
  auto second = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("S2"); });
  ASSERT_TRUE(second.has_value());
  EXPECT_FALSE(second->openStdin);
  EXPECT_FALSE(second->tty);
  EXPECT_TRUE(second->servicePorts.empty());
}

TEST_F(StoreTest, CorruptServicePortsAreAnErrorNamingTheSession) {
  {
    auto store = open(url());
    ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) -> Result<void> {
      auto seq = tx.insertSession(sampleSession("S1"));
      return seq.ok() ? Result<void>{} : Result<void>{Failure{seq.error()}};
    }));
  }
  execRaw(file(), R"(UPDATE sessions SET service_ports_json = '[{"name":"web","protocol":"tcp","port":0}]')");
  auto store = open(url());
  Result<void> read = store->read([](StoreTransaction& tx) -> Result<void> {
    auto session = tx.session("S1");
    if (!session.ok()) return Failure{session.error()};
    return {};
  });
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.error().message.find("session 'S1' service ports"), std::string::npos) << read.error().message;
  EXPECT_NE(read.error().message.find("1 to 65535"), std::string::npos) << read.error().message;
}

// ---- Schema version 9: storage folders, shares, session mounts, folder limits ----------

// The SQL of migrations 1 to 8 and `rows`: a file as a bai-manager of schema 8 left it.
std::string versionEightDatabase(const std::string& rows) {
  std::string sql = "BEGIN;";
  for (std::size_t step = 0; step < 8; ++step) {
    for (const char* statement : sqliteMigrations().at(step)) sql += std::string(statement) + ";";
  }
  return sql + rows + "PRAGMA user_version = 8; COMMIT;";
}

VfolderRecord sampleFolder(const std::string& id, const std::string& owner, const std::string& name) {
  return VfolderRecord{id, name, owner, "local:default", "/srv/bai/default/vfolders/" + id, std::nullopt,
                       storage_protocol::Permission::ReadWrite, 1'700'000'000'000};
}

// Two keypairs (AKOWNER uid 1001, AKOTHER uid 1002) and a folder of each.
void seedFolders(Store& store) {
  ASSERT_OK(writeOne(store, [](StoreTransaction& tx) -> Result<void> {
    for (auto [key, uid] : {std::pair{"AKOWNER", 1001u}, std::pair{"AKOTHER", 1002u}}) {
      KeypairRecord keypair{key, "secret", false, true, 1};
      keypair.uid = uid;
      keypair.gid = uid;
      if (auto r = tx.insertKeypair(keypair); !r.ok()) return r;
    }
    VfolderRecord quota = sampleFolder("0123456789abcdef0123456789abcdef", "AKOWNER", "data");
    quota.quotaBytes = 1ull << 40;
    quota.permission = storage_protocol::Permission::ReadOnly;
    if (auto r = tx.insertVfolder(quota); !r.ok()) return r;
    return tx.insertVfolder(sampleFolder("fedcba9876543210fedcba9876543210", "AKOTHER", "data"));
  }));
}

TEST_F(StoreTest, UpgradingAVersionEightDatabaseKeepsSessionsAndPoliciesWithNoFoldersOrLimits) {
  execRaw(file(), versionEightDatabase(
                      "INSERT INTO sessions (id, name, owner, scaling_group, command_json, env_json, requested_json, "
                      "status, status_reason, agent_id, exit_code, created_at_ms, scheduled_at_ms, started_at_ms, "
                      "ended_at_ms) VALUES ('S1', 'old', 'AK', 'default', '[\"sh\"]', '{}', '{}', "
                      "'RUNNING', '', 'a1', NULL, 3, 4, 5, 0);"
                      "INSERT INTO resource_policies (name, total_resource_slots_json, default_unlimited, "
                      "max_concurrent_sessions, max_pending_sessions, created_at_ms) VALUES ('p', '{}', 1, 2, 3, 4);"));
  auto store = open(url());
  EXPECT_EQ(store->schemaVersion(), 9);
  auto session = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("S1"); });
  ASSERT_TRUE(session.has_value());
  EXPECT_EQ(session->name, "old");
  EXPECT_TRUE(session->mounts.empty()) << "an older session mounts nothing";
  auto policy = readValue<std::optional<ResourcePolicyRecord>>(*store, [](StoreTransaction& tx) { return tx.resourcePolicy("p"); });
  ASSERT_TRUE(policy.has_value());
  EXPECT_EQ(policy->maxConcurrentSessions, 2);
  EXPECT_EQ(policy->maxVfolderCount, 0);
  EXPECT_EQ(policy->maxVfolderSize, 0u);
  auto folders = readValue<std::vector<VfolderRecord>>(*store, [](StoreTransaction& tx) { return tx.vfolders(); });
  EXPECT_TRUE(folders.empty());
}

TEST_F(StoreTest, RoundTripsFoldersPolicyLimitsAndSessionMounts) {
  {
    auto store = open(url());
    seedFolders(*store);
    ResourcePolicyRecord policy{"p"};
    policy.maxVfolderCount = 7;
    policy.maxVfolderSize = 1ull << 50;
    SessionRecord session = sampleSession("S1");
    session.mounts = {{{"0123456789abcdef0123456789abcdef", "/srv/bai/default/vfolders/x", "/home/work/data", true}, "data"}};
    ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) -> Result<void> {
      if (auto r = tx.upsertResourcePolicy(policy); !r.ok()) return r;
      auto seq = tx.insertSession(session);
      return seq.ok() ? Result<void>{} : Result<void>{Failure{seq.error()}};
    }));
  }
  auto store = open(url());
  auto folder = readValue<std::optional<VfolderRecord>>(
      *store, [](StoreTransaction& tx) { return tx.vfolder("0123456789abcdef0123456789abcdef"); });
  ASSERT_TRUE(folder.has_value());
  EXPECT_EQ(folder->name, "data");
  EXPECT_EQ(folder->owner, "AKOWNER");
  EXPECT_EQ(folder->host, "local:default");
  EXPECT_EQ(folder->hostPath, "/srv/bai/default/vfolders/0123456789abcdef0123456789abcdef");
  EXPECT_EQ(folder->quotaBytes, std::optional<std::uint64_t>(1ull << 40));
  EXPECT_EQ(folder->permission, storage_protocol::Permission::ReadOnly);
  EXPECT_EQ(folder->createdAtMillis, 1'700'000'000'000);
  auto other = readValue<std::optional<VfolderRecord>>(*store, [](StoreTransaction& tx) { return tx.vfolderByName("AKOTHER", "data"); });
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->id, "fedcba9876543210fedcba9876543210");
  EXPECT_FALSE(other->quotaBytes.has_value());
  auto policy = readValue<std::optional<ResourcePolicyRecord>>(*store, [](StoreTransaction& tx) { return tx.resourcePolicy("p"); });
  EXPECT_EQ(policy->maxVfolderCount, 7);
  EXPECT_EQ(policy->maxVfolderSize, 1ull << 50);
  auto session = readValue<std::optional<SessionRecord>>(*store, [](StoreTransaction& tx) { return tx.session("S1"); });
  ASSERT_EQ(session->mounts.size(), 1u);
  EXPECT_EQ(session->mounts[0].folderName, "data");
  EXPECT_EQ(session->mounts[0].mount,
            (protocol::FolderMount{"0123456789abcdef0123456789abcdef", "/srv/bai/default/vfolders/x", "/home/work/data", true}));
}

TEST_F(StoreTest, AFolderNameIsUniquePerOwnerAndAnIdOnce) {
  auto store = open(url());
  seedFolders(*store);
  Result<void> sameName = writeOne(*store, [](StoreTransaction& tx) {
    return tx.insertVfolder(sampleFolder("11111111111111111111111111111111", "AKOWNER", "data"));
  });
  ASSERT_FALSE(sameName.ok());
  EXPECT_EQ(sameName.error().code, ErrorCode::Conflict);
  Result<void> sameId = writeOne(*store, [](StoreTransaction& tx) {
    return tx.insertVfolder(sampleFolder("fedcba9876543210fedcba9876543210", "AKOWNER", "other"));
  });
  ASSERT_FALSE(sameId.ok());
  EXPECT_EQ(sameId.error().code, ErrorCode::Conflict);
  EXPECT_EQ(readValue<std::int64_t>(*store, [](StoreTransaction& tx) { return tx.countVfoldersOwnedBy("AKOWNER"); }), 1);
}

TEST_F(StoreTest, SharesListTheFolderForTheirKeypairAndGoWithIt) {
  auto store = open(url());
  seedFolders(*store);
  const std::string id = "0123456789abcdef0123456789abcdef";
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) {
    return tx.setVfolderShare(VfolderShareRecord{id, "AKOTHER", storage_protocol::Permission::ReadWrite});
  }));
  // A second share of the same keypair replaces its permission.
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) {
    return tx.setVfolderShare(VfolderShareRecord{id, "AKOTHER", storage_protocol::Permission::ReadOnly});
  }));
  auto shares = readValue<std::vector<VfolderShareRecord>>(*store, [&](StoreTransaction& tx) { return tx.vfolderShares(id); });
  EXPECT_EQ(shares, (std::vector<VfolderShareRecord>{{id, "AKOTHER", storage_protocol::Permission::ReadOnly}}));
  auto shared = readValue<std::vector<VfolderRecord>>(*store, [](StoreTransaction& tx) { return tx.vfoldersSharedWith("AKOTHER"); });
  ASSERT_EQ(shared.size(), 1u);
  EXPECT_EQ(shared[0].id, id);
  EXPECT_TRUE(readValue<std::vector<VfolderRecord>>(*store, [](StoreTransaction& tx) { return tx.vfoldersSharedWith("AKOWNER"); })
                  .empty());

  Result<void> unknownKey = writeOne(*store, [&](StoreTransaction& tx) {
    return tx.setVfolderShare(VfolderShareRecord{id, "AKNOBODY", storage_protocol::Permission::ReadOnly});
  });
  ASSERT_FALSE(unknownKey.ok());
  EXPECT_EQ(unknownKey.error().code, ErrorCode::NotFound);

  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) { return tx.deleteVfolder(id); }));
  EXPECT_TRUE(readValue<std::vector<VfolderShareRecord>>(*store, [&](StoreTransaction& tx) { return tx.vfolderShares(id); }).empty());
  EXPECT_TRUE(readValue<std::vector<VfolderRecord>>(*store, [](StoreTransaction& tx) { return tx.vfoldersSharedWith("AKOTHER"); })
                  .empty());
  Result<void> again = writeOne(*store, [&](StoreTransaction& tx) { return tx.deleteVfolder(id); });
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, ErrorCode::NotFound);
  Result<void> noShare = writeOne(*store, [](StoreTransaction& tx) {
    return tx.removeVfolderShare("fedcba9876543210fedcba9876543210", "AKOWNER");
  });
  ASSERT_FALSE(noShare.ok());
  EXPECT_EQ(noShare.error().code, ErrorCode::NotFound);
}

TEST_F(StoreTest, OnlyASessionThatIsNotFinalKeepsAFolderMounted) {
  auto store = open(url());
  seedFolders(*store);
  const std::string id = "0123456789abcdef0123456789abcdef";
  SessionRecord session = sampleSession("S1");
  session.status = SessionStatus::Running;
  session.mounts = {{{id, "/srv/x", "/home/work/data", false}, "data"}};
  SessionRecord other = sampleSession("S2");
  other.mounts = {{{"fedcba9876543210fedcba9876543210", "/srv/y", "/home/work/y", false}, "data"}};
  other.status = SessionStatus::Terminated;
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) -> Result<void> {
    for (const auto& s : {session, other}) {
      if (auto seq = tx.insertSession(s); !seq.ok()) return Failure{seq.error()};
    }
    return {};
  }));
  auto mounted = [&](const std::string& folder) {
    return readValue<bool>(*store, [&](StoreTransaction& tx) { return tx.vfolderMountedByActiveSession(folder); });
  };
  EXPECT_TRUE(mounted(id));
  EXPECT_FALSE(mounted("fedcba9876543210fedcba9876543210")) << "its only session is over";
  session.status = SessionStatus::Terminated;
  ASSERT_OK(writeOne(*store, [&](StoreTransaction& tx) { return tx.updateSession(session); }));
  EXPECT_FALSE(mounted(id));
}

}  // namespace
}  // namespace bai::manager
