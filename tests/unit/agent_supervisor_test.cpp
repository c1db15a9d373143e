// PluginSupervisor alone over a node of fixture plugins: device health in the ledger, a
// plugin whose call hung withdrawn at the next poll, and a plugin no longer allowed
// draining until its last session ends.
#include "agent/plugin_supervisor.hpp"
#include "agent_parts_fixture.hpp"

namespace bai::core::testing {
namespace {

using namespace std::chrono_literals;

class PluginSupervisorTest : public AgentPartsTest {
 protected:
  void start(const std::vector<std::string>& fixtures, std::chrono::milliseconds callDeadline = 2s) {
    buildNode(fixtures, callDeadline);
    supervisor_ = std::make_unique<PluginSupervisor>(*ledger_, *records_, sink());
    lifecycle_ = makeLifecycle([this](AgentState& state) { return supervisor_->unloadDrained(state); });
  }
  bool offers(const std::string& slot) { return ledger_->lock()->inventory.slotTypes().count(slot) != 0; }
  std::vector<std::string> withdrawn() { return ledger_->lock()->withdrawn; }
  AgentSettings blocking(std::vector<std::string> names) const {
    AgentSettings next = settings_;
    next.blockPlugins = std::move(names);
    return next;
  }

  std::unique_ptr<PluginSupervisor> supervisor_;
  std::unique_ptr<SessionLifecycle> lifecycle_;
};

TEST_F(PluginSupervisorTest, APollRecordsEachDevicesHealth) {
  start({"good", "newer-minor"});
  const std::uint64_t before = ledger_->digest();
  supervisor_->pollHealth();
  auto state = ledger_->lock();
  ASSERT_EQ(state->health.count("acme"), 1u);
  EXPECT_EQ(state->health.at("acme").at("a0").health, "healthy");
  EXPECT_EQ(state->health.at("newer").at("a0").health, "healthy");
  EXPECT_GT(ledger_->digest(), before) << "the first reports change what the heartbeat carries";
}

TEST_F(PluginSupervisorTest, APluginWhoseCallHungIsWithdrawnAtTheNextPoll) {
  start({"good", "hangs-on-prepare"}, 200ms);
  supervisor_->pollHealth();
  auto hung = lifecycle_->create(request("s1", "slow.device"));
  ASSERT_FALSE(hung.ok());
  EXPECT_EQ(hung.error().kind, AgentErrorKind::SessionStartFailed);
  EXPECT_TRUE(withdrawn().empty()) << "withdrawn by the supervisor, not by the failed call";

  supervisor_->pollHealth();
  EXPECT_EQ(withdrawn(), std::vector<std::string>{"hangs-on-prepare"});
  EXPECT_NE(logText().find("plugin hangs-on-prepare withdrawn"), std::string::npos) << logText();
  EXPECT_FALSE(lifecycle_->create(request("s2", "slow.device")).ok()) << "its devices take no new sessions";
  // The other plugin's sessions no longer wait on it.
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE(lifecycle_->create(request("s3", "acme.device")).ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 150ms);
  supervisor_->pollHealth();
  EXPECT_EQ(withdrawn().size(), 1u) << "withdrawn once";
}

// Withdrawn, its devices are no capacity in what the agent reports, and it says why.
TEST_F(PluginSupervisorTest, AWithdrawnPluginsDevicesLeaveCapacity) {
  start({"good", "hangs-on-prepare"}, 200ms);
  supervisor_->pollHealth();
  auto available = [&](const char* slot) { return ledger_->lock()->inventory.available().get(slot); };
  EXPECT_EQ(available("slow.device"), Quantity(1));
  ASSERT_FALSE(lifecycle_->create(request("s1", "slow.device")).ok());
  supervisor_->pollHealth();
  EXPECT_EQ(available("slow.device"), Quantity(0));
  EXPECT_EQ(available("acme.device"), Quantity(1));
  const AcceleratorPlugin* slow = ledger_->host().find("slow");
  ASSERT_NE(slow, nullptr);
  EXPECT_EQ(slow->withdrawalReason(), "prepare_session did not return within 200 ms");
  EXPECT_TRUE(ledger_->lock()->isWithdrawn(slow));
}

TEST_F(PluginSupervisorTest, APluginNoLongerAllowedDrainsUntilItsLastSessionEnds) {
  start({"good", "newer-minor"});
  ASSERT_TRUE(lifecycle_->create(request("holder", "acme.device")).ok());
  ASSERT_TRUE(lifecycle_->create(request("other", "newer.device")).ok());
  EXPECT_TRUE(supervisor_->applyPluginLists(blocking({"good"})).empty());
  EXPECT_EQ(supervisor_->drainingPlugins(), std::vector<std::string>{"good"});
  EXPECT_TRUE(offers("acme.device")) << "still offered to the session that holds it";

  processes().exit("holder", 0);
  EXPECT_TRUE(supervisor_->drainingPlugins().empty());
  EXPECT_FALSE(offers("acme.device"));
  EXPECT_TRUE(offers("newer.device"));
  EXPECT_NE(logText().find("plugin good unloaded: no session holds its devices"), std::string::npos) << logText();
  // The other session prepared by the unloaded plugin is no longer recorded as such.
  auto state = ledger_->lock();
  EXPECT_EQ(state->sessions.at("other").preparedPlugins, std::vector<std::string>{"newer"});
}

TEST_F(PluginSupervisorTest, ADrainingPluginAllowedAgainTakesSessionsAgain) {
  start({"good"});
  ASSERT_TRUE(lifecycle_->create(request("holder", "acme.device")).ok());
  supervisor_->applyPluginLists(blocking({"good"}));
  ASSERT_EQ(supervisor_->drainingPlugins(), std::vector<std::string>{"good"});
  supervisor_->applyPluginLists(blocking({}));
  EXPECT_TRUE(supervisor_->drainingPlugins().empty());
  processes().exit("holder", 0);
  EXPECT_TRUE(offers("acme.device"));
  EXPECT_TRUE(lifecycle_->create(request("next", "acme.device")).ok());
}

TEST_F(PluginSupervisorTest, AReloadLoadsPluginsInstalledSinceTheStart) {
  start({"good"});
  std::filesystem::create_symlink(std::filesystem::path(bai::testing::env("BAI_FIXTURE_DIR")) / "newer-minor.so",
                                  pluginDir() / "newer-minor.so");
  const std::set<std::string> loaded = supervisor_->applyPluginLists(settings_);
  EXPECT_EQ(loaded, (std::set<std::string>{"newer", "newer-minor"}));
  EXPECT_TRUE(offers("newer.device"));
  EXPECT_EQ(ledger_->lock()->health.count("newer"), 1u) << "polled at once";
}

}  // namespace
}  // namespace bai::core::testing
