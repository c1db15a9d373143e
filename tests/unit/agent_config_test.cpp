#include "agent/agent_config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
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

TEST(AgentConfig, SessionIdentitiesAndLimits) {
  auto settingsOf = [](const std::string& runtime) {
    auto config = agentConfigSchema().parse("[agent]\ncluster-token-file = \"t\"\nstate-dir = \"/s\"\n[runtime]\n" +
                                                runtime, "agent.toml");
    EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
    return agentSettings(*config);
  };
  auto defaults = settingsOf("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  ASSERT_EQ(defaults->identity.uidRanges.size(), 1u);
  EXPECT_EQ(defaults->identity.uidRanges[0].first, 200000u);
  EXPECT_EQ(defaults->identity.uidRanges[0].last, 299999u);
  EXPECT_FALSE(defaults->identity.allowRootSessions) << "root sessions are off unless asked for";
  EXPECT_EQ(defaults->pidsMax, 4096u);
  EXPECT_EQ(defaults->defaultSessionMemory, std::uint64_t{1} << 30);

  auto runAs = settingsOf("run-as = \"nobody\"\n");
  ASSERT_FALSE(runAs.ok()) << "one shared uid for every tenant is what this replaced";
  EXPECT_NE(runAs.error().message.find("runtime.run-as was removed"), std::string::npos) << runAs.error().message;
  auto rootRange = settingsOf("session-uid-ranges = [\"0-1000\"]\n");
  ASSERT_FALSE(rootRange.ok());
  EXPECT_NE(rootRange.error().message.find("includes 0 (root)"), std::string::npos);
  auto badGid = settingsOf("session-gid-ranges = [\"x\"]\n");
  ASSERT_FALSE(badGid.ok());
  EXPECT_NE(badGid.error().message.find("runtime.session-gid-ranges: 'x'"), std::string::npos);
  for (const char* pids : {"pids-max = 0\n", "pids-max = 15\n", "pids-max = 99999999\n"}) {
    auto bad = settingsOf(pids);
    ASSERT_FALSE(bad.ok()) << pids;
    EXPECT_NE(bad.error().message.find("runtime.pids-max must be 16 to 4194304"), std::string::npos);
  }
  auto relativeHidden = settingsOf("hidden-paths = [\"etc/bai\"]\n");
  ASSERT_FALSE(relativeHidden.ok());
  EXPECT_NE(relativeHidden.error().message.find("not an absolute path"), std::string::npos);

  auto withRoot = settingsOf("hidden-paths = [\"/etc/bai\"]\nallow-root-sessions = true\n");
  ASSERT_TRUE(withRoot.ok()) << withRoot.error().message;
  EXPECT_TRUE(withRoot->identity.allowRootSessions);
  withRoot->configFile = "/etc/bai-agent/agent.toml";
  const IsolationSettings isolation = isolationSettings(*withRoot);
  const std::vector<std::filesystem::path> hidden{"/s", "/etc/bai-agent/agent.toml",
                                                  std::filesystem::current_path() / "t", "/etc/bai"};
  EXPECT_EQ(isolation.hidden, hidden) << "the state dir, the config, the token and the configured paths";
}

TEST(AgentConfig, RuntimesAndTheContainerEngine) {
  auto settingsOf = [](const std::string& runtime) {
    auto config = agentConfigSchema().parse("[agent]\ncluster-token-file = \"t\"\n[runtime]\n" + runtime, "agent.toml");
    EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
    return agentSettings(*config);
  };
  auto defaults = settingsOf("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->runtimeKinds, std::vector<std::string>{"process"}) << "containers only when configured";
  EXPECT_EQ(defaults->container.network, "bridge");
  EXPECT_TRUE(defaults->container.init);
  ASSERT_EQ(defaults->container.ulimits.size(), 2u) << "podman and runc need nofile and nproc given";
  EXPECT_EQ(defaults->container.ulimits[0].name, "nofile");

  auto both = settingsOf(
      "kinds = [\"process\", \"container\"]\n[runtime.container]\nengine-socket = \"/tmp/podman.sock\"\n"
      "oci-runtime = \"runc\"\nulimits = [\"nofile=1024:4096\"]\nnetwork = \"none\"\ncap-add = [\"NET_BIND_SERVICE\"]\n"
      "readonly-rootfs = true\n");
  ASSERT_TRUE(both.ok()) << both.error().message;
  EXPECT_EQ(both->runtimeKinds, (std::vector<std::string>{"process", "container"}));
  EXPECT_EQ(both->container.engineSocket, "/tmp/podman.sock");
  EXPECT_EQ(both->container.ociRuntime, "runc");
  ASSERT_EQ(both->container.ulimits.size(), 1u);
  EXPECT_EQ(both->container.ulimits[0].soft, 1024);
  EXPECT_EQ(both->container.ulimits[0].hard, 4096);
  EXPECT_EQ(both->container.capAdd, std::vector<std::string>{"NET_BIND_SERVICE"});
  EXPECT_TRUE(both->container.readonlyRootfs);

  const std::pair<const char*, const char*> bad[] = {
      {"kinds = [\"vm\"]\n", "runtime.kinds: unknown runtime 'vm'"},
      {"kinds = []\n", "runtime.kinds: name at least one"},
      {"[runtime.container]\nulimits = [\"nofile\"]\n", "runtime.container.ulimits: 'nofile' is not NAME=LIMIT"},
      {"[runtime.container]\nulimits = [\"nofile=9:1\"]\n", "the soft limit exceeds the hard one"},
      {"[runtime.container]\nulimits = [\"nofile=-1\"]\n", "limits are non-negative integers"},
      {"[runtime.container]\ncap-add = [\"SYS_ADMIN\"]\n", "'SYS_ADMIN' is not a capability a session may get"},
      {"[runtime.container]\ncap-add = [\"ALL\"]\n", "'ALL' is not a capability a session may get"},
      {"[runtime.container]\ncap-add = [\"cap_net_raw\"]\n", "'cap_net_raw' is not a capability"},
      {"[runtime.container]\nnetwork = \"\"\n", "runtime.container.network must not be empty"},
      {"[runtime.container]\ncheck-interval = 0\n", "check-interval must be at least 0.1 seconds"},
  };
  for (const auto& [toml, message] : bad) {
    auto refused = settingsOf(toml);
    ASSERT_FALSE(refused.ok()) << toml;
    EXPECT_NE(refused.error().message.find(message), std::string::npos) << refused.error().message;
  }
}


TEST(AgentConfig, InteractiveLimitsAndServicePorts) {
  auto settingsOf = [](const std::string& interactive) {
    auto config = agentConfigSchema().parse("[agent]\ncluster-token-file = \"t\"\n[interactive]\n" + interactive, "agent.toml");
    EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
    return agentSettings(*config);
  };
  auto defaults = settingsOf("");
  ASSERT_TRUE(defaults.ok()) << defaults.error().message;
  EXPECT_EQ(defaults->interactive.maxConnectionsPerSession, 32u);
  EXPECT_EQ(defaults->interactive.maxFrameBytes, 1u << 20);
  EXPECT_EQ(defaults->interactive.servicePortFirst, 30000);
  EXPECT_EQ(defaults->interactive.servicePortLast, 30999);
  auto set = settingsOf("max-connections-per-session = 4\nmax-frame-bytes = \"64k\"\nservice-port-range = \"40000-40010\"\n");
  ASSERT_TRUE(set.ok()) << set.error().message;
  EXPECT_EQ(set->interactive.maxConnectionsPerSession, 4u);
  EXPECT_EQ(set->interactive.maxFrameBytes, 64u << 10);
  EXPECT_EQ(set->interactive.servicePortFirst, 40000);

  const std::pair<const char*, const char*> bad[] = {
      {"max-connections-per-session = 0\n", "max-connections-per-session must be 1 to 4096"},
      {"max-frame-bytes = \"10\"\n", "max-frame-bytes must be 1k to 64m"},
      {"idle-timeout = 1\n", "idle-timeout must be at least 2 seconds"},
      {"service-port-range = \"30000\"\n", "'30000' is not FIRST-LAST"},
      {"service-port-range = \"3-2\"\n", "'3-2' is not FIRST-LAST"},
      {"service-port-range = \"0-10\"\n", "'0-10' is not FIRST-LAST"},
      {"service-port-range = \"60000-70000\"\n", "'60000-70000' is not FIRST-LAST"},
      {"service-port-range = \"1-2x\"\n", "'1-2x' is not FIRST-LAST"},
  };
  for (const auto& [toml, message] : bad) {
    auto settings = settingsOf(toml);
    ASSERT_FALSE(settings.ok()) << toml;
    EXPECT_NE(settings.error().message.find(message), std::string::npos) << settings.error().message;
  }
}

TEST(AgentConfig, StorageMountRootsAreAbsoluteAndHiddenFromSessions) {
  auto settingsOf = [](const std::string& storage) {
    auto config = agentConfigSchema().parse("[agent]\ncluster-token-file = \"t\"\n[storage]\n" + storage, "agent.toml");
    EXPECT_TRUE(config.ok()) << (config.ok() ? "" : config.error().message);
    return agentSettings(*config);
  };
  auto none = settingsOf("");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->folderMountRoots.empty());
  auto set = settingsOf("mount-roots = [\"/srv/bai/volumes/\", \"/mnt/nfs/../data\"]\n");
  ASSERT_TRUE(set.ok()) << set.error().message;
  ASSERT_EQ(set->folderMountRoots.size(), 2u);
  EXPECT_EQ(set->folderMountRoots[1], std::filesystem::path("/mnt/data"));
  const IsolationSettings isolation = isolationSettings(*set);
  EXPECT_EQ(isolation.folderMountRoots, set->folderMountRoots);
  for (const auto& root : set->folderMountRoots) {
    EXPECT_NE(std::find(isolation.hidden.begin(), isolation.hidden.end(), root), isolation.hidden.end()) << root;
  }
  for (const char* bad : {"mount-roots = [\"relative\"]\n", "mount-roots = [\"/\"]\n", "mount-roots = [\"\"]\n"}) {
    auto settings = settingsOf(bad);
    ASSERT_FALSE(settings.ok()) << bad;
    EXPECT_NE(settings.error().message.find("storage.mount-roots"), std::string::npos) << settings.error().message;
  }
}

}  // namespace
}  // namespace bai::core
