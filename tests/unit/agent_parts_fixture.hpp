// Test support for the agent's parts built alone: a node made of fixture plugins (loaded
// through the real dlopen path), the ledger and records over a temp state dir, a journal,
// and fakes for the two things that touch the system: the session processes and the
// cgroup limits.
#pragma once

#include "agent/agent_ledger.hpp"
#include "agent/process_runtime.hpp"
#include "agent/session_lifecycle.hpp"
#include "agent/session_records.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace bai::core::testing {

// Remembers what the process runtime asked it to run; the test ends sessions with exit().
class FakeProcesses final : public ProcessLauncher {
 public:
  explicit FakeProcesses(SessionExitCallback onExit) : onExit_(std::move(onExit)) {}

  Result<std::int64_t> start(const RunSpec& spec) override {
    std::lock_guard<std::mutex> lock(mutex_);
    if (refuseStart) return fail(ErrorCode::Internal, "spawn refused by the test");
    started.push_back(spec);
    return static_cast<std::int64_t>(1000 + started.size());
  }
  Result<void> destroy(const std::string& sessionId, std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(mutex_);
    destroyed.push_back(sessionId);
    return {};
  }
  Result<void> adopt(const std::string& sessionId, const std::filesystem::path&) override {
    std::lock_guard<std::mutex> lock(mutex_);
    adopted.push_back(sessionId);
    return {};
  }
  // The session's process ended with `code`, as the runner would report it.
  void exit(const std::string& sessionId, int code) { onExit_(sessionId, ExitStatus{code, std::nullopt, 1, true, ""}); }

  bool refuseStart = false;
  std::vector<RunSpec> started;
  std::vector<std::string> destroyed, adopted;

 private:
  std::mutex mutex_;
  SessionExitCallback onExit_;
};

// Limits that are never enforced; remembers which sessions still have some.
class FakeLimits final : public LimitsBackend {
 public:
  Result<std::vector<std::filesystem::path>> prepare(const std::string& sessionId, const SessionLimits&) override {
    held.insert(sessionId);
    return std::vector<std::filesystem::path>{};
  }
  Result<void> release(const std::string& sessionId) override {
    held.erase(sessionId);
    return {};
  }
  std::string describe() const override { return "fake"; }
  bool enforcing() const override { return false; }
  bool fencesDevices() const override { return false; }

  std::set<std::string> held;
};

class AgentPartsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (bai::testing::env("BAI_FIXTURE_DIR").empty()) GTEST_SKIP() << "BAI_FIXTURE_DIR is not set";
  }

  // Builds the node from these fixture plugins (file names without ".so"); again to
  // restart over the same state dir.
  void buildNode(const std::vector<std::string>& fixtures, std::chrono::milliseconds callDeadline = std::chrono::seconds(2)) {
    std::filesystem::create_directories(pluginDir());
    for (const auto& name : fixtures) {
      if (std::filesystem::exists(pluginDir() / (name + ".so"))) continue;  // a second node over the same dirs
      std::filesystem::create_symlink(std::filesystem::path(bai::testing::env("BAI_FIXTURE_DIR")) / (name + ".so"),
                                      pluginDir() / (name + ".so"));
    }
    PluginHostOptions options;
    options.searchPath = {pluginDir()};
    options.callDeadline = callDeadline;
    options.log = sink();
    options.configFor = [](const std::string&, const std::string&) { return std::string("{}"); };
    auto host = std::make_unique<PluginHost>(std::move(options));
    host->loadAll();
    settings_.id = "parts-agent";
    settings_.stateDir = dir_.path() / "state";
    auto inventory = NodeInventory::build(std::move(host), settings_);
    ASSERT_TRUE(inventory.ok()) << inventory.error().message;
    ledger_ = std::make_unique<AgentLedger>(std::move(*inventory));
    records_ = std::make_unique<SessionRecords>(settings_.stateDir);
    ASSERT_TRUE(records_->createRoot().ok());
    auto journal = EventJournal::open(settings_.stateDir / "events");
    ASSERT_TRUE(journal.ok()) << journal.error().message;
    journal_ = std::make_unique<EventJournal>(std::move(*journal));
  }

  // A lifecycle over the node; it runs processes through a ProcessRuntime over a
  // FakeProcesses the test reaches by processes(), and `limits` (default: limits_).
  std::unique_ptr<SessionLifecycle> makeLifecycle(std::function<UnloadedPlugins(AgentState&)> afterRelease = {}) {
    return std::make_unique<SessionLifecycle>(lifecycleOptions(std::move(afterRelease)), *ledger_, *records_, *journal_);
  }

  SessionLifecycleOptions lifecycleOptions(std::function<UnloadedPlugins(AgentState&)> afterRelease = {},
                                           LimitsBackend* limits = nullptr) {
    IdentityPolicy identity{{{owner().uid, owner().uid}}, {{owner().gid, owner().gid}}, false, true};
    LimitsBackend& used = limits != nullptr ? *limits : limits_;
    return SessionLifecycleOptions{settings_.id, identity, IsolationSettings{}, std::chrono::milliseconds(100), sink(),
                                   [this, &used](SessionCallbacks callbacks) {
                                     auto fake = std::make_unique<FakeProcesses>(std::move(callbacks.onExit));
                                     processes_ = fake.get();
                                     std::vector<std::unique_ptr<SessionRuntime>> runtimes;
                                     runtimes.push_back(std::make_unique<ProcessRuntime>(std::move(fake), used));
                                     return runtimes;
                                   },
                                   std::move(afterRelease), [this] { ++eventsNotified_; }};
  }

  // A tenant's identity: as root any uid of the range; otherwise our own, the only one a
  // non-root test can give its work dir to.
  static protocol::SessionOwner owner() {
    if (geteuid() == 0) return {200001, 200001, "tenant-a"};
    return {static_cast<std::uint32_t>(getuid()), static_cast<std::uint32_t>(getgid()), "tenant-a"};
  }

  static protocol::CreateSessionRequest request(const std::string& id, const std::string& slot) {
    return protocol::CreateSessionRequest{id, {"true"}, {}, {{SlotName::of(slot), 1}}, owner()};
  }

  LogSink sink() {
    return [this](LogLevel level, const std::string& source, const std::string& message) {
      std::lock_guard<std::mutex> lock(logMutex_);
      logText_ += std::string(logLevelName(level)) + " " + source + ": " + message + "\n";
    };
  }
  std::string logText() {
    std::lock_guard<std::mutex> lock(logMutex_);
    return logText_;
  }
  std::filesystem::path pluginDir() const { return dir_.path() / "plugins"; }
  FakeProcesses& processes() { return *processes_; }
  Quantity used(const std::string& slot) { return ledger_->lock()->inventory.occupied().get(slot); }

  bai::test::TempDir dir_;
  AgentSettings settings_;
  FakeLimits limits_;
  std::unique_ptr<AgentLedger> ledger_;
  std::unique_ptr<SessionRecords> records_;
  std::unique_ptr<EventJournal> journal_;
  FakeProcesses* processes_ = nullptr;
  int eventsNotified_ = 0;
  std::mutex logMutex_;
  std::string logText_;
};

}  // namespace bai::core::testing
