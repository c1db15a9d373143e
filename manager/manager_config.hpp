// bai-manager's configuration: the declared keys of manager.toml and the settings they
// resolve to (paths absolute, durations typed, choices checked).
#pragma once

#include "config_schema.hpp"
#include "log_sink.hpp"
#include "store/session_identity.hpp"

#include <bai/result.hpp>

#include <chrono>
#include <string>
#include <utility>
#include <vector>

namespace bai::manager {

const config::Schema& managerConfigSchema();

// [interactive]: the WebSockets of terminals, execs and service tunnels that the manager
// relays between clients and agents.
struct InteractiveLimits {
  int maxConnectionsPerSession = 32;       // open or opening; more are refused (429)
  std::size_t maxFrameBytes = 1u << 20;    // of one message, on both legs; larger closes with 1009
  std::chrono::seconds idleTimeout{60};    // a leg whose peer answers no ping this long is closed
};

// [storage-proxies.NAME]: a storage proxy the manager asks to make, measure and share
// folders (its manager API) and whose client API it sends clients to with grants.
struct StorageProxySettings {
  std::string name;        // storage_protocol::isVolumeName; the "NAME" of "NAME:VOLUME"
  std::string managerUrl;  // "http://127.0.0.1:6021"
  std::string clientUrl;   // what clients are told to use: "http://storage.example:6022"
  std::string tokenFile;   // absolute; mode 0600
  std::string token = "";  // read from tokenFile by readStorageTokens; never logged
};

// [storage]: where folders go by default and how long a grant lasts.
struct StorageSettings {
  std::vector<StorageProxySettings> proxies;  // by name
  std::string defaultHost;                    // "NAME:VOLUME"; empty: the first proxy's "default" volume
  std::chrono::seconds grantTtl{900};
};

struct ManagerSettings {
  std::string listen;  // host:port
  int apiThreads = 2;
  std::string db;                // store URL
  std::string clusterTokenFile;  // absolute
  bool createClusterToken = false;  // no file configured: make ./bai-cluster-token if absent
  std::string metricsTokenFile;     // absolute; empty: /metrics for admin keypairs only
  std::string tlsCertificateFile;
  std::string tlsKeyFile;
  LogLevel logLevel = LogLevel::Info;
  std::chrono::milliseconds heartbeatTimeout{15000};
  std::chrono::milliseconds agentRpcTimeout{10000};
  std::string agentCaFile;  // verifies agents' HTTPS RPC; empty: the system's CA bundle
  bool storeFullSync = false;
  // Policies of a scaling group that has no record of its own (plugin names).
  std::string sequencer = "fifo";
  std::string selector = "concentrated";
  std::vector<std::string> policyPath;  // directories searched for policy plugins
  std::size_t candidateWindow = 32;     // agents offered to a selector per decision
  std::chrono::milliseconds schedulerPeriod{1000};
  int dispatchThreads = 4;
  std::chrono::seconds maxWait{600};  // cap of GET /v1/sessions/{id}?wait=
  // What a request gets of each intrinsic slot it names no amount of: {"cpu", "1"}.
  std::vector<std::pair<std::string, std::string>> defaultSessionSlots = {{"cpu", "1"}, {"mem", "1g"}};
  int maxPendingPerKeypair = 100;  // pending sessions per keypair whose policy sets none; 0: no limit
  IdentityPolicy identity;         // uids and gids of keypairs created without them
  InteractiveLimits interactive;
  StorageSettings storage;
};

Result<ManagerSettings> managerSettings(const config::Config& config);

// Reads each proxy's token from its token-file (mode 0600, as the cluster token's);
// errors name the proxy.
Result<void> readStorageTokens(StorageSettings& storage);

using bai::parseLogLevel;

}  // namespace bai::manager
