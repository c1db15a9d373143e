// SIGHUP reload of the manager, in process: the log level and the scheduler's figures take
// effect, a broken config is refused with the running settings kept, and other changed
// keys are logged as needing a restart.
#include "manager.hpp"
#include "../support/captured_log.hpp"
#include "../support/temp_dir.hpp"

#include <gtest/gtest.h>

#include <fstream>

namespace bai::manager {
namespace {

class ManagerReloadTest : public ::testing::Test {
 protected:
  void start(const std::string& managerKeys) {
    write(managerKeys);
    auto config = managerConfigSchema().load(file(), {});
    ASSERT_TRUE(config.ok()) << config.error().message;
    auto settings = managerSettings(*config);
    ASSERT_TRUE(settings.ok()) << settings.error().message;
    if (const char* dir = std::getenv("BAI_POLICY_DIR")) settings->policyPath.push_back(dir);
    auto store = openStore(settings->db);
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto manager = Manager::start(*settings, std::move(*store), "token", log_.sink());
    ASSERT_TRUE(manager.ok()) << manager.error().message;
    manager_ = std::move(*manager);
    running_ = std::move(*config);
  }
  void write(const std::string& managerKeys) {
    std::ofstream(file()) << "[manager]\ndb = \"sqlite://" << (dir_.path() / "m.db").string() << "\"\n"
                          << "cluster-token-file = \"" << (dir_.path() / "token").string() << "\"\n"
                          << managerKeys;
  }
  Result<ReloadReport> reloadWith(const std::string& managerKeys) {
    write(managerKeys);
    return reloadManagerConfig(*manager_, running_, file(), {});
  }
  std::string file() const { return (dir_.path() / "manager.toml").string(); }
  bool logged(const std::string& text) const { return log_.contains(text); }
  std::string logText() const { return log_.text(); }

  bai::test::TempDir dir_;
  bai::testing::CapturedLog log_{false};  // the manager's lines without their source
  std::unique_ptr<Manager> manager_;
  config::Config running_;
};

TEST_F(ManagerReloadTest, TheLogLevelAndSchedulerFiguresApplyAtOnce) {
  start("log-level = \"error\"\n");
  EXPECT_FALSE(logged("info ")) << logText();
  auto report = reloadWith("log-level = \"debug\"\nmax-wait = 30\n[scheduler]\nperiod = 0.5\ncandidate-window = 8\n");
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->applied, (std::vector<std::string>{"manager.log-level", "manager.max-wait", "scheduler.candidate-window",
                                                        "scheduler.period"}));
  EXPECT_TRUE(report->needsRestart.empty());
  EXPECT_EQ(manager_->logLevel(), LogLevel::Debug);
  EXPECT_TRUE(logged("info configuration reloaded; applied manager.log-level")) << logText();
  for (const auto& key : managerReloadableKeys()) EXPECT_NE(managerConfigSchema().find(key), nullptr) << key;
}

TEST_F(ManagerReloadTest, ABrokenConfigIsRefusedAndTheRunningSettingsStay) {
  start("log-level = \"warning\"\n");
  std::ofstream(file()) << "[manager\n";
  EXPECT_FALSE(reloadManagerConfig(*manager_, running_, file(), {}).ok());
  EXPECT_TRUE(logged("error reload refused, running settings kept: ")) << logText();
  auto invalid = reloadWith("log-level = \"verbose\"\n");
  ASSERT_FALSE(invalid.ok());
  EXPECT_NE(invalid.error().message.find("manager.log-level"), std::string::npos);
  EXPECT_EQ(manager_->logLevel(), LogLevel::Warning);
  EXPECT_EQ(running_.string("manager.log-level"), "warning");
}

TEST_F(ManagerReloadTest, OtherChangedKeysNeedARestart) {
  start("");
  auto report = reloadWith("listen = \"0.0.0.0:9999\"\n[scheduler]\nsequencer = \"lifo\"\n");
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->needsRestart, (std::vector<std::string>{"manager.listen", "scheduler.sequencer"}));
  EXPECT_TRUE(report->applied.empty());
  EXPECT_TRUE(logged("warning manager.listen changed; restart to apply")) << logText();
  EXPECT_TRUE(logged("warning scheduler.sequencer changed; restart to apply")) << logText();
  // Still what runs: the next reload compares against it, not against the file.
  EXPECT_EQ(running_.string("manager.listen"), "127.0.0.1:8081");
  auto back = reloadWith("");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->needsRestart.empty());
}

}  // namespace
}  // namespace bai::manager
