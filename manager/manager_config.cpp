#include "manager_config.hpp"

#include "secret_file.hpp"

#include <bai/slots.hpp>
#include <bai/storage_protocol.hpp>

#include <filesystem>

#ifndef BAI_POLICY_DIR
#define BAI_POLICY_DIR "/usr/local/lib/bai/policies"
#endif

namespace bai::manager {

using config::Key;
using config::KeyType;

const config::Schema& managerConfigSchema() {
  static const config::Schema schema("bai-manager", {
      {"manager.listen", KeyType::String, "\"127.0.0.1:8081\"", "host:port of the API (loopback unless configured)"},
      {"manager.api-threads", KeyType::Integer, "2", "threads serving the API"},
      {"manager.db", KeyType::String, "\"sqlite://bai-manager.db\"",
       "store URL: sqlite:///abs/path.db or sqlite://relative/path.db (from the start directory)"},
      {"manager.cluster-token-file", KeyType::String, "\"\"",
       "file (mode 0600) with the agents' bearer token; empty: ./bai-cluster-token, created if absent"},
      {"manager.tls-cert-file", KeyType::String, "\"\"", "PEM certificate: serve the API over HTTPS"},
      {"manager.tls-key-file", KeyType::String, "\"\"", "PEM private key for manager.tls-cert-file"},
      {"manager.log-level", KeyType::String, "\"info\"", "debug, info, warning or error"},
      {"manager.max-wait", KeyType::Seconds, "600", "longest GET /v1/sessions/{id}?wait= in seconds"},
      {"agents.heartbeat-timeout", KeyType::Seconds, "15", "an agent silent this long is LOST (3 heartbeat intervals)"},
      {"agents.rpc-timeout", KeyType::Seconds, "10", "deadline of each call to an agent's RPC"},
      {"agents.tls-ca-file", KeyType::String, "\"\"",
       "PEM bundle that agents' HTTPS certificates are verified with (default: the system's)"},
      {"metrics.token-file", KeyType::String, "\"\"",
       "file (mode 0600) with the bearer token that opens GET /metrics and nothing else, for Prometheus; "
       "empty: only admin keypairs' signed requests"},
      {"store.synchronous", KeyType::String, "\"normal\"", "SQLite synchronous mode: normal or full"},
      {"scheduler.sequencer", KeyType::String, "\"fifo\"",
       "sequencer of scaling groups without their own: fifo, lifo, drf or another installed policy"},
      {"scheduler.selector", KeyType::String, "\"concentrated\"",
       "selector of scaling groups without their own: concentrated (pack), dispersed (spread), roundrobin"},
      {"scheduler.policy-path", KeyType::StringList, "[\"" BAI_POLICY_DIR "\"]",
       "directories searched for policy plugins (the build tree's plugins/ is searched last)"},
      {"scheduler.candidate-window", KeyType::Integer, "32",
       "agents that fit offered to a selector per decision, taken from the free-capacity index"},
      {"scheduler.period", KeyType::Seconds, "1", "placement runs on every event and at least this often"},
      {"scheduler.dispatch-threads", KeyType::Integer, "4", "threads calling agents to start and stop sessions"},
      {"scheduler.default-session-slots", KeyType::StringList, "[\"cpu=1\", \"mem=1g\"]",
       "what a session gets of each intrinsic slot (no namespace) it names no amount of, unless its keypair's "
       "policy sets default_session_slots; counted against quotas and enforced by the agent"},
      {"scheduler.max-pending-per-keypair", KeyType::Integer, "100",
       "pending sessions a keypair may have when its resource policy sets no max_pending_session_count; 0: no limit"},
      {"identity.session-uid-range", KeyType::String, "\"200000-299999\"",
       "FIRST-LAST: a keypair created without a uid gets the lowest one here that no keypair holds "
       "(1000 <= FIRST <= LAST <= 4294967294); agents accept only uids of their own runtime.session-uid-ranges"},
      {"identity.session-gid", KeyType::String, "\"uid\"",
       "gid of a keypair created without one: \"uid\" (each keypair its own group, gid = uid) or one gid for all"},
      {"interactive.max-connections-per-session", KeyType::Integer, "32",
       "terminal, exec and service connections relayed to one session at once; more are refused (429)"},
      {"interactive.max-frame-bytes", KeyType::Size, "\"1m\"",
       "largest WebSocket message relayed, either way (1k to 64m); a larger one closes its connection with 1009"},
      {"interactive.idle-timeout", KeyType::Seconds, "60",
       "a relayed WebSocket is pinged after half of this quiet and closed when its peer answers nothing within it"},
      {"storage.default-host", KeyType::String, "\"\"",
       "PROXY:VOLUME where folders created without a host go; empty: the first proxy's volume \"default\""},
      {"storage.grant-ttl", KeyType::Seconds, "900", "how long an upload or download grant given to a client lasts (10 to 86400)"},
      {"storage-proxies.*", KeyType::Table, "",
       "a storage proxy: manager-url (its manager API), client-url (given to clients with grants), "
       "token-file (mode 0600, the proxy's [api] token-file)"},
  });
  return schema;
}

namespace {

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

// sqlite://relative/path is resolved against the start directory now, so a later
// chdir (or systemd's WorkingDirectory) cannot move the database.
std::string absoluteStoreUrl(const std::string& url) {
  const std::string prefix = "sqlite://";
  if (url.rfind(prefix, 0) != 0 || url.rfind("sqlite:///", 0) == 0) return url;
  std::error_code ec;
  return "sqlite://" + std::filesystem::absolute(url.substr(prefix.size()), ec).string();
}

// "cpu=1" -> {"cpu", "1"}: an intrinsic slot (no namespace) and an amount that reads as
// a decimal or a binary size; its slot's type decides which when a request takes it.
Result<std::pair<std::string, std::string>> defaultSlot(const std::string& entry) {
  const std::string key = "scheduler.default-session-slots";
  const auto equals = entry.find('=');
  if (equals == std::string::npos) return fail(ErrorCode::InvalidArgument, key + ": '" + entry + "' is not slot=amount");
  std::string slot = entry.substr(0, equals), amount = entry.substr(equals + 1);
  if (!SlotName::parse(slot) || slot.find('.') != std::string::npos) {
    return fail(ErrorCode::InvalidArgument, key + ": '" + slot + "' is not an intrinsic slot (a name with no namespace)");
  }
  auto asNumber = Quantity::parse(amount);
  const bool valid = (asNumber && !asNumber->isNegative() && asNumber->isFinite()) || BinarySize::parse(amount).ok();
  if (!valid) return fail(ErrorCode::InvalidArgument, key + ": '" + amount + "' is not an amount of " + slot);
  return std::pair{std::move(slot), std::move(amount)};
}

// One [storage-proxies.NAME] table: three strings, nothing else.
Result<StorageProxySettings> storageProxy(const std::string& name, const nlohmann::json& table) {
  const std::string where = "storage-proxies." + name;
  if (!storage_protocol::isVolumeName(name)) {
    return fail(ErrorCode::InvalidArgument, where + ": the name must be 1 to 64 of a-z, 0-9, '-' and '_'");
  }
  StorageProxySettings proxy;
  proxy.name = name;
  for (const auto& [key, value] : table.items()) {
    std::string* field = key == "manager-url" ? &proxy.managerUrl
                         : key == "client-url" ? &proxy.clientUrl
                         : key == "token-file" ? &proxy.tokenFile
                                               : nullptr;
    if (field == nullptr) return fail(ErrorCode::InvalidArgument, where + ": unknown key '" + key + "' (manager-url, client-url, token-file)");
    if (!value.is_string() || value.get<std::string>().empty()) {
      return fail(ErrorCode::InvalidArgument, where + "." + key + " must be a non-empty string");
    }
    *field = value.get<std::string>();
  }
  for (const auto& [key, value] : {std::pair{"manager-url", &proxy.managerUrl}, std::pair{"client-url", &proxy.clientUrl}}) {
    if (value->empty()) return fail(ErrorCode::InvalidArgument, where + "." + key + " is required");
    if (value->rfind("http://", 0) != 0 && value->rfind("https://", 0) != 0) {
      return fail(ErrorCode::InvalidArgument, where + "." + key + ": '" + *value + "' is not an http:// or https:// URL");
    }
    while (value->size() > 1 && value->back() == '/') value->pop_back();
  }
  if (proxy.tokenFile.empty()) return fail(ErrorCode::InvalidArgument, where + ".token-file is required");
  std::error_code ec;
  proxy.tokenFile = std::filesystem::absolute(proxy.tokenFile, ec).string();
  return proxy;
}

Result<StorageSettings> storageSettings(const config::Config& c) {
  StorageSettings storage;
  for (const auto& [name, table] : c.tables("storage-proxies")) {
    auto proxy = storageProxy(name, table);
    if (!proxy) return Failure{proxy.error()};
    storage.proxies.push_back(std::move(*proxy));
  }
  storage.defaultHost = c.string("storage.default-host");
  if (!storage.defaultHost.empty()) {
    const auto colon = storage.defaultHost.find(':');
    const bool shaped = colon != std::string::npos &&
                        storage_protocol::isVolumeName(storage.defaultHost.substr(0, colon)) &&
                        storage_protocol::isVolumeName(storage.defaultHost.substr(colon + 1));
    if (!shaped) return fail(ErrorCode::InvalidArgument, "storage.default-host: '" + storage.defaultHost + "' is not PROXY:VOLUME");
    bool known = false;
    for (const auto& proxy : storage.proxies) known = known || proxy.name == storage.defaultHost.substr(0, colon);
    if (!known) {
      return fail(ErrorCode::InvalidArgument, "storage.default-host: no [storage-proxies." + storage.defaultHost.substr(0, colon) +
                                                  "] table in manager.toml");
    }
  } else if (!storage.proxies.empty()) {
    storage.defaultHost = storage.proxies.front().name + ":default";
  }
  const double ttl = c.seconds("storage.grant-ttl");
  if (ttl < 10 || ttl > 86400) return fail(ErrorCode::InvalidArgument, "storage.grant-ttl must be 10 to 86400 seconds");
  storage.grantTtl = std::chrono::seconds(static_cast<std::int64_t>(ttl));
  return storage;
}

}  // namespace

Result<void> readStorageTokens(StorageSettings& storage) {
  for (auto& proxy : storage.proxies) {
    auto token = readClusterToken(proxy.tokenFile);
    if (!token) return fail(token.error().code, "storage-proxies." + proxy.name + ".token-file: " + token.error().message);
    proxy.token = std::move(*token);
  }
  return {};
}

Result<ManagerSettings> managerSettings(const config::Config& c) {
  ManagerSettings s;
  s.listen = c.string("manager.listen");
  // Ranges are checked on the 64-bit value: narrowed first, 2^32 + 1 would pass as 1.
  const std::int64_t apiThreads = c.integer("manager.api-threads");
  if (apiThreads < 1 || apiThreads > 64) return fail(ErrorCode::InvalidArgument, "manager.api-threads must be 1 to 64");
  s.apiThreads = static_cast<int>(apiThreads);
  s.db = absoluteStoreUrl(c.string("manager.db"));
  s.clusterTokenFile = c.string("manager.cluster-token-file");
  s.createClusterToken = s.clusterTokenFile.empty();
  if (s.createClusterToken) s.clusterTokenFile = "bai-cluster-token";
  std::error_code ec;
  s.clusterTokenFile = std::filesystem::absolute(s.clusterTokenFile, ec).string();
  s.tlsCertificateFile = c.string("manager.tls-cert-file");
  s.tlsKeyFile = c.string("manager.tls-key-file");
  if (s.tlsCertificateFile.empty() != s.tlsKeyFile.empty()) {
    return fail(ErrorCode::InvalidArgument, "manager.tls-cert-file and manager.tls-key-file go together");
  }
  auto level = parseLogLevel(c.string("manager.log-level"));
  if (!level) return fail(ErrorCode::InvalidArgument, "manager.log-level: " + level.error().message);
  s.logLevel = *level;
  s.maxWait = std::chrono::seconds(static_cast<std::int64_t>(c.seconds("manager.max-wait")));
  s.heartbeatTimeout = millis(c.seconds("agents.heartbeat-timeout"));
  if (s.heartbeatTimeout.count() < 100) return fail(ErrorCode::InvalidArgument, "agents.heartbeat-timeout must be at least 0.1 s");
  s.agentRpcTimeout = millis(c.seconds("agents.rpc-timeout"));
  if (s.agentRpcTimeout.count() < 10) return fail(ErrorCode::InvalidArgument, "agents.rpc-timeout must be at least 0.01 s");
  s.metricsTokenFile = c.string("metrics.token-file");
  if (!s.metricsTokenFile.empty()) s.metricsTokenFile = std::filesystem::absolute(s.metricsTokenFile, ec).string();
  s.agentCaFile = c.string("agents.tls-ca-file");
  if (!s.agentCaFile.empty()) s.agentCaFile = std::filesystem::absolute(s.agentCaFile, ec).string();
  const std::string sync = c.string("store.synchronous");
  if (sync != "normal" && sync != "full") {
    return fail(ErrorCode::InvalidArgument, "store.synchronous: '" + sync + "' is not normal or full");
  }
  s.storeFullSync = sync == "full";
  s.sequencer = c.string("scheduler.sequencer");
  s.selector = c.string("scheduler.selector");
  for (const auto& dir : c.stringList("scheduler.policy-path")) s.policyPath.push_back(std::filesystem::absolute(dir, ec).string());
#ifdef BAI_UNINSTALLED_POLICY_DIR
  // A manager run from its build tree finds the policies built beside it; one given a
  // policy path (an installed one) loads exactly what it names.
  if (!c.isSet("scheduler.policy-path")) s.policyPath.push_back(BAI_UNINSTALLED_POLICY_DIR);
#endif
  const std::int64_t window = c.integer("scheduler.candidate-window");
  if (window < 1 || window > 4096) return fail(ErrorCode::InvalidArgument, "scheduler.candidate-window must be 1 to 4096");
  s.candidateWindow = static_cast<std::size_t>(window);
  s.schedulerPeriod = millis(c.seconds("scheduler.period"));
  if (s.schedulerPeriod.count() < 10) return fail(ErrorCode::InvalidArgument, "scheduler.period must be at least 0.01 s");
  const std::int64_t dispatchThreads = c.integer("scheduler.dispatch-threads");
  if (dispatchThreads < 1 || dispatchThreads > 64) {
    return fail(ErrorCode::InvalidArgument, "scheduler.dispatch-threads must be 1 to 64");
  }
  s.dispatchThreads = static_cast<int>(dispatchThreads);
  s.defaultSessionSlots.clear();
  for (const auto& entry : c.stringList("scheduler.default-session-slots")) {
    auto slot = defaultSlot(entry);
    if (!slot) return Failure{slot.error()};
    s.defaultSessionSlots.push_back(std::move(*slot));
  }
  const std::int64_t maxPending = c.integer("scheduler.max-pending-per-keypair");
  if (maxPending < 0 || maxPending > 1000000) {
    return fail(ErrorCode::InvalidArgument, "scheduler.max-pending-per-keypair must be 0 to 1000000");
  }
  s.maxPendingPerKeypair = static_cast<int>(maxPending);
  auto identity = parseUidRange(c.string("identity.session-uid-range"), "identity.session-uid-range");
  if (!identity) return Failure{identity.error()};
  auto gid = parseSessionGid(c.string("identity.session-gid"), "identity.session-gid");
  if (!gid) return Failure{gid.error()};
  identity->sessionGid = *gid;
  s.identity = *identity;
  const std::int64_t connections = c.integer("interactive.max-connections-per-session");
  if (connections < 1 || connections > 4096) {
    return fail(ErrorCode::InvalidArgument, "interactive.max-connections-per-session must be 1 to 4096");
  }
  s.interactive.maxConnectionsPerSession = static_cast<int>(connections);
  const std::uint64_t frameBytes = c.size("interactive.max-frame-bytes");
  if (frameBytes < (1u << 10) || frameBytes > (64u << 20)) {
    return fail(ErrorCode::InvalidArgument, "interactive.max-frame-bytes must be 1k to 64m, not " + std::to_string(frameBytes));
  }
  s.interactive.maxFrameBytes = static_cast<std::size_t>(frameBytes);
  const double idle = c.seconds("interactive.idle-timeout");
  if (idle < 2 || idle > 86400) return fail(ErrorCode::InvalidArgument, "interactive.idle-timeout must be 2 to 86400 seconds");
  s.interactive.idleTimeout = std::chrono::seconds(static_cast<std::int64_t>(idle));
  auto storage = storageSettings(c);
  if (!storage) return Failure{storage.error()};
  s.storage = std::move(*storage);
  return s;
}

}  // namespace bai::manager
