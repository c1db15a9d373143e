// bai-agent's configuration: every key declared once (agent.toml, --print-config-reference).
#pragma once

#include "agent/container_settings.hpp"
#include "agent/session_identity.hpp"
#include "agent/session_isolation.hpp"
#include "alloc/affinity.hpp"
#include "config_schema.hpp"
#include "log.hpp"

#include <bai/protocol.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bai::core {

const config::Schema& agentConfigSchema();

// The typed settings the agent runs with, read from a validated Config.
// [interactive]: terminals, execs and service tunnels.
struct InteractiveSettings {
  std::size_t maxConnectionsPerSession = 32;
  std::uint64_t maxFrameBytes = 1u << 20;
  std::chrono::seconds idleTimeout{60};
  std::uint64_t replayBytes = 64 * 1024;
  std::uint16_t servicePortFirst = 30000;  // process sessions' services listen on these
  std::uint16_t servicePortLast = 30999;
};

struct AgentSettings {
  std::string id;
  std::string region;
  std::string scalingGroup;
  std::string rpcListen;
  std::string rpcAdvertise;  // host:port the manager calls; empty: the bound address
  std::string rpcUrl;        // what the agent reports: set by the front end once the RPC is bound
  std::string managerUrl;
  std::filesystem::path clusterTokenFile;
  std::filesystem::path stateDir;
  std::vector<std::filesystem::path> pluginPath;
  std::vector<std::string> allowPlugins, blockPlugins;
  std::chrono::milliseconds heartbeatInterval{5000};
  std::chrono::milliseconds pluginCallTimeout{5000};
  int rpcThreads = 2;
  std::string tlsCertificateFile, tlsKeyFile;
  LogLevel logLevel = LogLevel::Info;

  std::int64_t reservedCpu = 0;
  std::uint64_t reservedMem = 0;
  std::vector<std::string> allocationOrder;
  AffinityPolicy affinityPolicy = AffinityPolicy::Interleaved;

  IdentityPolicy identity;               // runtime.session-uid-ranges, gid ranges, allow-root-sessions
  std::uint64_t pidsMax = 4096;
  std::uint64_t defaultSessionMemory = std::uint64_t{1} << 30;
  std::vector<std::filesystem::path> hiddenPaths;  // runtime.hidden-paths, as configured
  std::filesystem::path configFile;       // set by the front end: hidden from sessions too
  std::vector<std::filesystem::path> folderMountRoots;  // storage.mount-roots, normalised
  std::filesystem::path shimPath;
  std::chrono::milliseconds destroyGrace{10000};
  std::filesystem::path cgroupRoot;
  std::string cgroupParent;

  std::vector<std::string> runtimeKinds{protocol::kProcessRuntime};  // runtime.kinds
  ContainerSettings container;                                        // runtime.container.*
  InteractiveSettings interactive;                                    // interactive.*

  std::map<std::string, std::string> pluginConfigs;  // plugin key or name -> its table as JSON
};

// What every session gets from the config: limits beside the plugins' and the paths it
// must not see (the state dir, the config file, the token, the TLS key, runtime.hidden-paths).
IsolationSettings isolationSettings(const AgentSettings& settings);

// Validates cross-key rules (an id, a token file, a known policy) and fills derived values.
Result<AgentSettings> agentSettings(const config::Config& config);

// A plugin's config table (JSON text) from `configs`, found by its key first, then its
// name; "{}" when it has none. What PluginHostOptions::configFor wants.
std::function<std::string(const std::string& name, const std::string& key)> pluginConfigLookup(
    std::map<std::string, std::string> configs);

// The keys a running agent applies on SIGHUP (Agent::reload); a change of any other key
// is logged as needing a restart.
const std::vector<std::string>& agentReloadableKeys();

// A stable id for this machine when none is configured: "agent-" + hostname + the first
// 8 characters of /etc/machine-id.
std::string defaultAgentId();

}  // namespace bai::core
