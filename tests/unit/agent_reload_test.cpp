// SIGHUP reload of the agent, in process: the log level, refused configs, keys that need a
// restart, and the plugin allow-list with the real cpu and mock plugins, with and without
// a session on the plugin that is no longer allowed. Also the shared pieces: the
// adjustable log threshold and the config comparison.
#include "agent/agent_startup.hpp"
#include "captured_log.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>

namespace bai::core {
namespace {

using namespace std::chrono_literals;
using bai::testing::env;
using bai::testing::eventually;

using bai::testing::CapturedLog;

TEST(LogThreshold, ChangesWhatASinkPassesWhileItRuns) {
  std::vector<std::string> seen;
  auto threshold = std::make_shared<LogThreshold>(LogLevel::Warning);
  LogSink sink = thresholdLogSink([&](LogLevel, const std::string&, const std::string& m) { seen.push_back(m); }, threshold);
  sink(LogLevel::Info, "t", "dropped");
  sink(LogLevel::Error, "t", "kept");
  threshold->set(LogLevel::Debug);
  sink(LogLevel::Debug, "t", "now kept");
  EXPECT_EQ(seen, (std::vector<std::string>{"kept", "now kept"}));
  EXPECT_FALSE(parseLogLevel("loud").ok());
  EXPECT_EQ(*parseLogLevel("warning"), LogLevel::Warning);
}

TEST(ConfigChangedKeys, NamesWhatDiffersAndNothingElse) {
  const auto& schema = agentConfigSchema();
  auto before = schema.parse("[agent]\ncluster-token-file = \"t\"\nregion = \"local\"\n[plugins.mock]\na = 1\n", "a");
  auto after = schema.parse("[agent]\ncluster-token-file = \"t\"\nrpc-listen-addr = \"0.0.0.0:7\"\n[plugins.mock]\na = 2\n"
                            "[plugins.cpu]\nb = 1\n", "b");
  ASSERT_TRUE(before.ok() && after.ok());
  // region = "local" is its default: dropping it changes nothing.
  EXPECT_EQ(after->changedKeys(*before),
            (std::vector<std::string>{"agent.rpc-listen-addr", "plugins.cpu", "plugins.mock"}));
  EXPECT_TRUE(before->changedKeys(*before).empty());
  for (const auto& key : agentReloadableKeys()) EXPECT_NE(schema.find(key), nullptr) << key;
}

class AgentReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "sessions run as their owners' uids: the agent must run as root";
    for (const char* name : {"BAI_SESSION_SHIM", "BAI_CPU_PLUGIN_DIR", "BAI_MOCK_PLUGIN_DIR", "BAI_MOCK_CONFIG_DIR"}) {
      if (env(name).empty()) GTEST_SKIP() << name << " is not set (built without the cpu or mock plugin)";
    }
    std::ofstream(dir_.path() / "token") << "reload-token-0123456789\n";
    ::chmod((dir_.path() / "token").c_str(), 0600);
  }
  void TearDown() override {
    if (agent_) {
      for (const auto& info : agent_->sessions()) {
        if (info.state == protocol::SessionState::Running) {
          (void)agent_->destroySession(info.id);
          eventually([&] { return agent_->session(info.id)->state != protocol::SessionState::Running; });
        }
      }
    }
    agent_.reset();
  }

  // The agent's config file with `agentKeys` added to its [agent] table.
  std::string configText(const std::string& agentKeys) const {
    return "[agent]\nid = \"reload-agent\"\nrpc-listen-addr = \"127.0.0.1:0\"\nmanager-url = \"http://127.0.0.1:1\"\n"
           "cluster-token-file = \"" + (dir_.path() / "token").string() + "\"\n"
           "state-dir = \"" + (dir_.path() / "state").string() + "\"\n"
           "plugin-path = [\"" + env("BAI_CPU_PLUGIN_DIR") + "\", \"" + env("BAI_MOCK_PLUGIN_DIR") + "\"]\n"
           "heartbeat-interval = 0.2\n" + agentKeys +
           "[runtime]\nshim-path = \"" + env("BAI_SESSION_SHIM") + "\"\ndestroy-grace = 1\n"
           "cgroup-root = \"" + (dir_.path() / "no-cgroups").string() + "\"\n"
           "[plugins.mock]\nconfig_file = \"" + env("BAI_MOCK_CONFIG_DIR") + "/mock-4xa100.toml\"\n";
  }
  void writeConfig(const std::string& agentKeys) { std::ofstream(file()) << configText(agentKeys); }
  std::string file() const { return (dir_.path() / "agent.toml").string(); }

  void startAgent(const std::string& agentKeys) {
    writeConfig(agentKeys);
    auto config = agentConfigSchema().load(file(), {});
    ASSERT_TRUE(config.ok()) << config.error().message;
    auto settings = agentSettings(*config);
    ASSERT_TRUE(settings.ok()) << settings.error().message;
    auto agent = core::startAgent(*settings, "reload-token-0123456789", log_.sink());
    ASSERT_TRUE(agent.ok()) << agent.error().message;
    agent_ = std::move(*agent);
    running_ = std::move(*config);
  }

  Result<ReloadReport> reloadWith(const std::string& agentKeys) {
    writeConfig(agentKeys);
    return reloadAgentConfig(*agent_, running_, file(), {});
  }

  bool offers(const std::string& slot) const { return agent_->snapshot().slotTypes.count(slot) != 0; }

  AgentResult<std::pair<protocol::SessionInfo, bool>> create(const std::string& id, const char* slot) {
    protocol::CreateSessionRequest request{id, {"sleep", "30"}, {}, {{SlotName::of(slot), 1}},
                                           protocol::SessionOwner{200001, 200001, "tenant"}};
    return agent_->createSession(request);
  }

  bai::test::TempDir dir_;
  CapturedLog log_;
  std::unique_ptr<Agent> agent_;
  config::Config running_;
};

TEST_F(AgentReloadTest, ALogLevelChangeTakesEffect) {
  startAgent("log-level = \"error\"\n");
  EXPECT_EQ(log_.countStartingWith("info "), 0u) << log_.text();
  auto report = reloadWith("log-level = \"debug\"\n");
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->applied, std::vector<std::string>{"agent.log-level"});
  EXPECT_EQ(agent_->logLevel(), LogLevel::Debug);
  EXPECT_TRUE(log_.contains("info agent: configuration reloaded; applied agent.log-level")) << log_.text();
  // Back to warning: the next reload's info line is dropped.
  ASSERT_TRUE(reloadWith("log-level = \"warning\"\n").ok());
  ASSERT_TRUE(reloadWith("log-level = \"warning\"\nblock-plugins = []\n").ok());
  EXPECT_FALSE(log_.contains("configuration reloaded; nothing to apply")) << log_.text();
}

TEST_F(AgentReloadTest, ABrokenConfigIsRefusedAndTheRunningSettingsStay) {
  startAgent("log-level = \"warning\"\nallow-plugins = [\"cpu\"]\n");
  std::ofstream(file()) << "[agent\nlog-level = \"debug\"\n";  // no longer TOML
  auto refused = reloadAgentConfig(*agent_, running_, file(), {});
  EXPECT_FALSE(refused.ok());
  EXPECT_TRUE(log_.contains("error agent: reload refused, running settings kept: ")) << log_.text();
  // Valid TOML, invalid value: refused as a whole, the plugin list part included.
  auto invalid = reloadWith("log-level = \"loud\"\nallow-plugins = [\"cpu\", \"mock\"]\n");
  EXPECT_FALSE(invalid.ok());
  EXPECT_NE(invalid.error().message.find("agent.log-level"), std::string::npos) << invalid.error().message;
  EXPECT_EQ(agent_->logLevel(), LogLevel::Warning);
  EXPECT_FALSE(offers("cuda.device"));
  EXPECT_EQ(running_.stringList("agent.allow-plugins"), std::vector<std::string>{"cpu"});
  // And a good one afterwards compares against what runs, not against the broken file.
  auto good = reloadWith("log-level = \"debug\"\nallow-plugins = [\"cpu\"]\n");
  ASSERT_TRUE(good.ok()) << good.error().message;
  EXPECT_EQ(good->applied, std::vector<std::string>{"agent.log-level"});
}

TEST_F(AgentReloadTest, KeysThatNeedARestartAreLoggedAndKept) {
  startAgent("");
  auto report = reloadWith("region = \"elsewhere\"\n");
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->needsRestart, std::vector<std::string>{"agent.region"});
  EXPECT_TRUE(log_.contains("warning agent: agent.region changed; restart to apply")) << log_.text();
  EXPECT_EQ(agent_->snapshot().region, "local");
  auto again = reloadWith("region = \"elsewhere\"\nlog-level = \"debug\"\n");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->needsRestart, std::vector<std::string>{"agent.region"}) << "it still differs from what runs";
  auto back = reloadWith("");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(back->needsRestart.empty());
  EXPECT_EQ(back->applied, std::vector<std::string>{"agent.log-level"});
  EXPECT_EQ(agent_->logLevel(), LogLevel::Info);
}

TEST_F(AgentReloadTest, ANewlyAllowedPluginIsLoadedAndOffered) {
  startAgent("allow-plugins = [\"cpu\"]\n");
  EXPECT_FALSE(offers("cuda.device"));
  const std::uint64_t before = agent_->digest();
  auto report = reloadWith("allow-plugins = [\"cpu\", \"mock\"]\n");
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ(report->applied, std::vector<std::string>{"agent.allow-plugins"});
  EXPECT_TRUE(offers("cuda.device"));
  EXPECT_EQ(agent_->snapshot().available.get("cuda.device"), Quantity(4));
  EXPECT_GT(agent_->digest(), before) << "the next heartbeat must carry the full state";
  EXPECT_TRUE(log_.contains("plugin mock loaded by reload")) << log_.text();
  auto created = create("on-mock", "cuda.device");
  ASSERT_TRUE(created.ok()) << created.error().detail;
}

TEST_F(AgentReloadTest, APluginNoLongerAllowedWithoutSessionsIsUnloaded) {
  startAgent("");
  ASSERT_TRUE(offers("cuda.device"));
  auto report = reloadWith("block-plugins = [\"mock\"]\n");
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_FALSE(offers("cuda.device"));
  EXPECT_TRUE(offers("cpu"));
  EXPECT_TRUE(agent_->drainingPlugins().empty());
  EXPECT_EQ(agent_->inventory().allocator().map("cuda.device"), nullptr);
  EXPECT_TRUE(log_.contains("plugin mock unloaded")) << log_.text();
  auto refused = create("after", "cuda.device");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, AgentErrorKind::UnknownSlot);
}

TEST_F(AgentReloadTest, APluginInUseDrainsAndIsUnloadedWhenItsSessionsEnd) {
  startAgent("");
  ASSERT_TRUE(create("holder", "cuda.device").ok());
  ASSERT_TRUE(create("cpu-only", "cpu").ok());
  auto report = reloadWith("allow-plugins = [\"cpu\"]\n");
  ASSERT_TRUE(report.ok()) << report.error().message;
  // Still loaded for the session that holds a GPU, but no new session gets one.
  EXPECT_EQ(agent_->drainingPlugins(), std::vector<std::string>{"mock"});
  EXPECT_TRUE(offers("cuda.device"));
  EXPECT_EQ(agent_->snapshot().largestAllocatable.get("cuda.device"), Quantity(0));
  auto refused = create("newcomer", "cuda.device");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, AgentErrorKind::InsufficientResource) << refused.error().detail;
  EXPECT_EQ(agent_->session("holder")->state, protocol::SessionState::Running);
  // Health polls must not bring its devices back.
  agent_->pollHealth();
  EXPECT_FALSE(create("newcomer2", "cuda.device").ok());

  ASSERT_TRUE(agent_->destroySession("holder").ok());
  ASSERT_TRUE(eventually([&] { return agent_->drainingPlugins().empty(); })) << log_.text();
  EXPECT_FALSE(offers("cuda.device"));
  EXPECT_EQ(agent_->session("cpu-only")->state, protocol::SessionState::Running) << "other sessions are untouched";
  EXPECT_TRUE(log_.contains("plugin mock unloaded")) << log_.text();
  // The cpu-only session ends cleanly although a plugin that prepared it is gone.
  ASSERT_TRUE(agent_->destroySession("cpu-only").ok());
  ASSERT_TRUE(eventually([&] { return agent_->session("cpu-only")->state != protocol::SessionState::Running; }));
  EXPECT_EQ(agent_->snapshot().occupied.get("cpu"), Quantity(0));
}

TEST_F(AgentReloadTest, ADrainingPluginAllowedAgainTakesSessionsAgain) {
  startAgent("");
  ASSERT_TRUE(create("holder", "cuda.device").ok());
  ASSERT_TRUE(reloadWith("block-plugins = [\"mock\"]\n").ok());
  ASSERT_EQ(agent_->drainingPlugins(), std::vector<std::string>{"mock"});
  ASSERT_TRUE(reloadWith("").ok());
  EXPECT_TRUE(agent_->drainingPlugins().empty());
  auto created = create("second", "cuda.device");
  ASSERT_TRUE(created.ok()) << created.error().detail;
  EXPECT_EQ(agent_->snapshot().occupied.get("cuda.device"), Quantity(2));
}

}  // namespace
}  // namespace bai::core
