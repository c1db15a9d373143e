#include "agent/agent_config.hpp"

#include <gtest/gtest.h>

#include <cstdlib>

namespace bai::core {
namespace {

TEST(AgentConfig, TheSampleLoads) {
  const char* sample = std::getenv("BAI_AGENT_SAMPLE_CONFIG");
  ASSERT_NE(sample, nullptr);
  auto config = agentConfigSchema().load(sample);
  ASSERT_TRUE(config.ok()) << config.error().message;
  auto settings = agentSettings(*config);
  ASSERT_TRUE(settings.ok()) << settings.error().message;
  EXPECT_EQ(settings->rpcListen, "127.0.0.1:6001");
  EXPECT_EQ(settings->reservedCpu, 1);
  EXPECT_EQ(settings->reservedMem, std::uint64_t{1} << 30);
  EXPECT_EQ(settings->allowPlugins, (std::vector<std::string>{"cpu", "mock"}));
  EXPECT_EQ(settings->affinityPolicy, AffinityPolicy::Interleaved);
  EXPECT_NE(settings->pluginConfigs.at("mock").find("config_file"), std::string::npos);
}

TEST(AgentConfig, CrossKeyRules) {
  auto settingsOf = [](const std::string& toml) {
    auto config = agentConfigSchema().parse(toml, "agent.toml");
    EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
    return agentSettings(*config);
  };
  auto noToken = settingsOf("[agent]\nid = \"a\"\n");
  ASSERT_FALSE(noToken.ok());
  EXPECT_NE(noToken.error().message.find("agent.cluster-token-file is required"), std::string::npos);
  auto badPolicy = settingsOf("[agent]\ncluster-token-file = \"t\"\n[resource]\naffinity-policy = \"random\"\n");
  ASSERT_FALSE(badPolicy.ok());
  EXPECT_NE(badPolicy.error().message.find("unknown affinity policy 'random'"), std::string::npos);
  auto halfTls = settingsOf("[agent]\ncluster-token-file = \"t\"\ntls-cert-file = \"c.pem\"\n");
  ASSERT_FALSE(halfTls.ok());
  EXPECT_NE(halfTls.error().message.find("go together"), std::string::npos);
  // 2^32 + 2 once passed as 2 threads: the range is checked before narrowing to int.
  auto wrappedThreads = settingsOf("[agent]\ncluster-token-file = \"t\"\nrpc-threads = 4294967298\n");
  ASSERT_FALSE(wrappedThreads.ok());
  EXPECT_NE(wrappedThreads.error().message.find("agent.rpc-threads must be 1 to 64"), std::string::npos);
  auto badId = settingsOf("[agent]\ncluster-token-file = \"t\"\nid = \"a b\"\n");
  ASSERT_FALSE(badId.ok());
  auto derived = settingsOf("[agent]\ncluster-token-file = \"t\"\n");
  ASSERT_TRUE(derived.ok());
  EXPECT_EQ(derived->id.rfind("agent-", 0), 0u);
  EXPECT_EQ(derived->id, defaultAgentId()) << "stable across calls";
  auto relative = settingsOf("[agent]\ncluster-token-file = \"t\"\nstate-dir = \"state\"\nplugin-path = [\"build\"]\n");
  ASSERT_TRUE(relative.ok());
  EXPECT_EQ(relative->stateDir, std::filesystem::current_path() / "state") << "the shim works from session dirs";
  EXPECT_EQ(relative->pluginPath.at(0), std::filesystem::current_path() / "build");
  EXPECT_EQ(relative->clusterTokenFile, std::filesystem::current_path() / "t");
}

}  // namespace
}  // namespace bai::core
