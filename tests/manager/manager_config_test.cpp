#include "manager_config.hpp"

#include <gtest/gtest.h>

#include <filesystem>

namespace bai::manager {
namespace {

TEST(ManagerConfig, TheSampleLoads) {
  auto config = managerConfigSchema().load(std::string(BAI_SOURCE_ROOT) + "/configs/manager.sample.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto settings = managerSettings(*config);
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings->listen, "127.0.0.1:8081");
  EXPECT_EQ(settings->db, "sqlite:///var/lib/bai/manager/manager.db");
  EXPECT_EQ(settings->clusterTokenFile, "/etc/bai/cluster-token");
  EXPECT_FALSE(settings->createClusterToken);
  EXPECT_EQ(settings->heartbeatTimeout, std::chrono::seconds(15));
  EXPECT_EQ(settings->sequencer, "fifo");
  EXPECT_EQ(settings->selector, "concentrated");
  EXPECT_EQ(settings->candidateWindow, 32u);
  EXPECT_EQ(settings->identity.rangeText(), "200000-299999");
  EXPECT_FALSE(settings->identity.sessionGid.has_value());
  EXPECT_EQ(settings->interactive.maxConnectionsPerSession, 32);
  EXPECT_EQ(settings->interactive.maxFrameBytes, 1u << 20);
  EXPECT_EQ(settings->interactive.idleTimeout, std::chrono::seconds(60));
}

TEST(ManagerConfig, WithoutAFileItServesLoopbackWithSqliteHere) {
  auto settings = managerSettings(managerConfigSchema().defaults());
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings->listen, "127.0.0.1:8081");
  EXPECT_EQ(settings->db, "sqlite://" + (std::filesystem::current_path() / "bai-manager.db").string());
  EXPECT_TRUE(settings->createClusterToken);
  EXPECT_EQ(settings->clusterTokenFile, (std::filesystem::current_path() / "bai-cluster-token").string());
}

TEST(ManagerConfig, UnknownKeysAndBadValuesAreRefusedByName) {
  auto typo = managerConfigSchema().parse("[manager]\nlisten = \"127.0.0.1:1\"\nlistn = \"x\"\n", "m.toml");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.error().message.find("m.toml:3: unknown key 'manager.listn'"), std::string::npos) << typo.error().message;

  for (const auto& [toml, expected] : std::vector<std::pair<std::string, std::string>>{
           {"[scheduler]\ncandidate-window = 0\n", "scheduler.candidate-window"},
           {"[store]\nsynchronous = \"off\"\n", "store.synchronous"},
           {"[manager]\nlog-level = \"loud\"\n", "manager.log-level"},
           {"[manager]\ntls-cert-file = \"a.pem\"\n", "go together"},
           {"[agents]\nheartbeat-timeout = 0\n", "agents.heartbeat-timeout"},
           {"[manager]\napi-threads = 0\n", "manager.api-threads"},
           // 2^32 + 1 once passed as 1 thread: the range is checked before narrowing to int.
           {"[manager]\napi-threads = 4294967297\n", "manager.api-threads"},
           {"[scheduler]\ndispatch-threads = 4294967298\n", "scheduler.dispatch-threads"},
       }) {
    auto config = managerConfigSchema().parse(toml, "m.toml");
    ASSERT_TRUE(config.ok()) << toml << config.error().message;
    auto settings = managerSettings(*config);
    ASSERT_FALSE(settings.ok()) << toml;
    EXPECT_NE(settings.error().message.find(expected), std::string::npos) << settings.error().message;
  }
}

// Sessions that name no cpu or mem get a default, and one keypair's pending queue is
// capped, unless the config says otherwise.
TEST(ManagerConfig, SessionsGetDefaultSlotsAndAPendingCapUnlessConfigured) {
  auto defaults = managerSettings(managerConfigSchema().defaults());
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  using Slots = std::vector<std::pair<std::string, std::string>>;
  EXPECT_EQ(defaults->defaultSessionSlots, (Slots{{"cpu", "1"}, {"mem", "1g"}}));
  EXPECT_EQ(defaults->maxPendingPerKeypair, 100);
  EXPECT_EQ(defaults->defaultSessionSlots, ManagerSettings{}.defaultSessionSlots) << "one default, in the schema and the struct";
  EXPECT_EQ(defaults->maxPendingPerKeypair, ManagerSettings{}.maxPendingPerKeypair);

  auto config = managerConfigSchema().parse(
      "[scheduler]\ndefault-session-slots = [\"cpu=2\", \"mem=512m\"]\nmax-pending-per-keypair = 0\n", "m.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto set = managerSettings(*config);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->defaultSessionSlots, (Slots{{"cpu", "2"}, {"mem", "512m"}}));
  EXPECT_EQ(set->maxPendingPerKeypair, 0) << "no limit";

  for (const char* entry : {"cpu", "cuda.device=1", "cpu=-1", "mem=lots"}) {
    auto bad = managerConfigSchema().parse(std::string("[scheduler]\ndefault-session-slots = [\"") + entry + "\"]\n", "m.toml");
    ASSERT_TRUE(bad.ok()) << bad.error().message;
    auto refused = managerSettings(*bad);
    ASSERT_FALSE(refused.ok()) << entry;
    EXPECT_NE(refused.error().message.find("scheduler.default-session-slots"), std::string::npos) << refused.error().message;
  }
}

TEST(ManagerConfig, KeypairsGetUidsFromTheirOwnRangeAndGidEqualToUidByDefault) {
  auto defaults = managerSettings(managerConfigSchema().defaults());
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->identity.firstUid, 200000u);
  EXPECT_EQ(defaults->identity.lastUid, 299999u);
  EXPECT_FALSE(defaults->identity.sessionGid.has_value());
  EXPECT_EQ(defaults->identity.gidFor(200007), 200007u) << "each keypair its own group";
  EXPECT_EQ(defaults->identity.rangeText(), IdentityPolicy{}.rangeText()) << "one default, in the schema and the struct";

  auto config = managerConfigSchema().parse("[identity]\nsession-uid-range = \"1000-4294967294\"\nsession-gid = \"100\"\n", "m.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto set = managerSettings(*config);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->identity.firstUid, 1000u);
  EXPECT_EQ(set->identity.lastUid, 4294967294u);
  EXPECT_EQ(set->identity.gidFor(5000), 100u);

  for (const auto& [toml, key] : std::vector<std::pair<std::string, std::string>>{
           {"session-uid-range = \"200000\"", "identity.session-uid-range"},
           {"session-uid-range = \"a-b\"", "identity.session-uid-range"},
           {"session-uid-range = \"999-2000\"", "identity.session-uid-range"},       // system accounts
           {"session-uid-range = \"3000-2000\"", "identity.session-uid-range"},      // first > last
           {"session-uid-range = \"2000-4294967295\"", "identity.session-uid-range"},  // (uid_t)-1
           {"session-uid-range = \"-5-2000\"", "identity.session-uid-range"},
           {"session-uid-range = \"2000-3000.5\"", "identity.session-uid-range"},
           {"session-gid = \"0\"", "identity.session-gid"},
           {"session-gid = \"users\"", "identity.session-gid"},
       }) {
    auto bad = managerConfigSchema().parse("[identity]\n" + toml + "\n", "m.toml");
    ASSERT_TRUE(bad.ok()) << toml << bad.error().message;
    auto refused = managerSettings(*bad);
    ASSERT_FALSE(refused.ok()) << toml;
    EXPECT_NE(refused.error().message.find(key), std::string::npos) << refused.error().message;
  }
}

TEST(ManagerConfig, InteractiveStreamsHaveLimitsThatAreCheckedByName) {
  auto defaults = managerSettings(managerConfigSchema().defaults());
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->interactive.maxConnectionsPerSession, 32);
  EXPECT_EQ(defaults->interactive.maxFrameBytes, 1u << 20);
  EXPECT_EQ(defaults->interactive.idleTimeout, std::chrono::seconds(60));
  EXPECT_EQ(defaults->interactive.maxFrameBytes, InteractiveLimits{}.maxFrameBytes) << "one default, in the schema and the struct";
  EXPECT_EQ(defaults->interactive.maxConnectionsPerSession, InteractiveLimits{}.maxConnectionsPerSession);
  EXPECT_EQ(defaults->interactive.idleTimeout, InteractiveLimits{}.idleTimeout);

  auto config = managerConfigSchema().parse(
      "[interactive]\nmax-connections-per-session = 4\nmax-frame-bytes = \"64k\"\nidle-timeout = 10\n", "m.toml");
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto set = managerSettings(*config);
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->interactive.maxConnectionsPerSession, 4);
  EXPECT_EQ(set->interactive.maxFrameBytes, 64u << 10);
  EXPECT_EQ(set->interactive.idleTimeout, std::chrono::seconds(10));

  for (const auto& [toml, key] : std::vector<std::pair<std::string, std::string>>{
           {"max-connections-per-session = 0", "interactive.max-connections-per-session"},
           {"max-connections-per-session = 4294967297", "interactive.max-connections-per-session"},
           {"max-frame-bytes = 100", "interactive.max-frame-bytes"},
           {"max-frame-bytes = \"1g\"", "interactive.max-frame-bytes"},
           {"idle-timeout = 1", "interactive.idle-timeout"},
       }) {
    auto bad = managerConfigSchema().parse("[interactive]\n" + toml + "\n", "m.toml");
    ASSERT_TRUE(bad.ok()) << toml << bad.error().message;
    auto refused = managerSettings(*bad);
    ASSERT_FALSE(refused.ok()) << toml;
    EXPECT_NE(refused.error().message.find(key), std::string::npos) << refused.error().message;
  }
}

TEST(ManagerConfig, TheReferenceListsEveryKey) {
  const std::string reference = managerConfigSchema().reference();
  for (const char* key : {"manager.listen", "manager.db", "manager.cluster-token-file", "agents.heartbeat-timeout",
                          "store.synchronous", "scheduler.selector", "identity.session-uid-range", "identity.session-gid",
                          "interactive.max-connections-per-session", "interactive.max-frame-bytes", "interactive.idle-timeout"}) {
    EXPECT_NE(reference.find(std::string("`") + key + "`"), std::string::npos) << key;
  }
}

}  // namespace
}  // namespace bai::manager
