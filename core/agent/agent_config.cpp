#include "agent/agent_config.hpp"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#ifndef BAI_PLUGIN_DIR
#define BAI_PLUGIN_DIR "/usr/local/lib/bai/accelerators"
#endif
#ifndef BAI_SHIM_PATH
#define BAI_SHIM_PATH "/usr/local/bin/bai-session-shim"
#endif

namespace bai::core {

using config::Key;
using config::KeyType;

namespace {

// A table's keys, declared by their names within it.
std::vector<Key> inTable(const std::string& table, std::vector<Key> keys) {
  for (Key& key : keys) key.path = table + "." + key.path;
  return keys;
}

std::vector<Key> agentTableKeys() {
  return inTable("agent", {
      {"id", KeyType::String, "", "this agent's id; default: agent-<hostname>-<machine-id prefix>"},
      {"region", KeyType::String, "\"local\"", "region reported to the manager"},
      {"scaling-group", KeyType::String, "\"default\"", "scaling group this agent joins"},
      {"rpc-listen-addr", KeyType::String, "\"127.0.0.1:6001\"", "host:port of the RPC server (loopback unless configured)"},
      {"manager-url", KeyType::String, "\"http://127.0.0.1:8081\"", "the manager's base URL"},
      {"cluster-token-file", KeyType::String, "", "file (mode 0600) holding the cluster's bearer token; required"},
      {"state-dir", KeyType::String, "\"/var/lib/bai/agent\"", "allocation records, session logs and the event journal"},
      {"plugin-path", KeyType::StringList, "[\"" BAI_PLUGIN_DIR "\"]", "directories searched for accelerator plugins"},
      {"allow-plugins", KeyType::StringList, "[]", "plugin names to load; empty loads all; SIGHUP applies a change"},
      {"block-plugins", KeyType::StringList, "[]", "plugin names never to load; SIGHUP applies a change"},
      {"heartbeat-interval", KeyType::Seconds, "5", "seconds between heartbeats (jittered)"},
      {"plugin-call-timeout", KeyType::Seconds, "5", "deadline of each plugin call; a plugin that misses it is withdrawn"},
      {"rpc-threads", KeyType::Integer, "2", "threads serving the RPC"},
      {"rpc-advertise-addr", KeyType::String, "\"\"", "host:port the manager uses to reach the RPC (default: the bound address)"},
      {"tls-cert-file", KeyType::String, "", "PEM certificate: serve the RPC over HTTPS"},
      {"tls-key-file", KeyType::String, "", "PEM private key for agent.tls-cert-file"},
      {"log-level", KeyType::String, "\"info\"", "debug, info, warning or error; SIGHUP applies a change"},
  });
}

std::vector<Key> resourceTableKeys() {
  return inTable("resource", {
      {"reserved-cpu", KeyType::Integer, "0", "CPU cores kept from sessions for the system"},
      {"reserved-mem", KeyType::Size, "\"0\"", "memory kept from sessions for the system, e.g. \"1g\""},
      {"allocation-order", KeyType::StringList, "[\"cuda\", \"rocm\", \"cpu\", \"mem\"]",
       "device names allocated first to last; others follow"},
      {"affinity-policy", KeyType::String, "\"interleaved\"", "interleaved or prefer-single-node"},
  });
}

std::vector<Key> runtimeTableKeys() {
  return inTable("runtime", {
      {"run-as", KeyType::String, "", "removed: sessions run as their owner's uid (see session-uid-ranges)"},
      {"session-uid-ranges", KeyType::StringList, "[\"200000-299999\"]",
       "uids the agent runs sessions as, e.g. [\"200000-299999\"]; anything else the manager asks for is refused"},
      {"session-gid-ranges", KeyType::StringList, "[\"200000-299999\"]", "gids the agent runs sessions as"},
      {"allow-root-sessions", KeyType::Boolean, "false", "accept sessions whose owner is uid or gid 0 (logs a warning)"},
      {"pids-max", KeyType::Integer, "4096", "most processes and threads one session may have (cgroup pids.max)"},
      {"default-session-memory", KeyType::Size, "\"1g\"", "memory limit of a session no plugin gave one (no mem slot)"},
      {"hidden-paths", KeyType::StringList, "[]",
       "files and dirs sessions must not see, beside the agent's state dir, config, token and TLS key"},
      {"shim-path", KeyType::String, "\"" BAI_SHIM_PATH "\"", "the bai-session-shim executable"},
      {"destroy-grace", KeyType::Seconds, "10", "seconds between SIGTERM and SIGKILL on destroy"},
      {"cgroup-root", KeyType::String, "\"/sys/fs/cgroup\"", "cgroup file system root"},
      {"cgroup-parent", KeyType::String, "\"bai\"", "cgroup under which session cgroups are made"},
      {"kinds", KeyType::StringList, "[\"process\"]",
       "how sessions run: \"process\" (sandboxed host processes) and/or \"container\" (images, through a container engine)"},
      {"container.engine-socket", KeyType::String, "",
       "the Docker Engine API socket (Docker or podman system service); default: /run/docker.sock, else /run/podman/podman.sock"},
      {"container.oci-runtime", KeyType::String, "", "the OCI runtime the engine should use (HostConfig.Runtime), e.g. \"runc\""},
      {"container.ulimits", KeyType::StringList, "[\"nofile=4096:16384\", \"nproc=16384\"]",
       "ulimits of every container, NAME=LIMIT or NAME=SOFT:HARD"},
      {"container.network", KeyType::String, "\"bridge\"", "the containers' network mode: bridge, none, host or a network's name"},
      {"container.readonly-rootfs", KeyType::Boolean, "false", "mount the image's root file system read-only"},
      {"container.cap-add", KeyType::StringList, "[]",
       "capabilities given back to containers (all are dropped otherwise), e.g. [\"NET_BIND_SERVICE\"]"},
      {"container.init", KeyType::Boolean, "true", "run an init as the container's pid 1 (signals reach the command)"},
      {"container.check-interval", KeyType::Seconds, "10", "seconds between reads of the engine's state and images"},
  });
}

std::vector<Key> interactiveTableKeys() {
  return inTable("interactive", {
      {"max-connections-per-session", KeyType::Integer, "32",
       "terminals, execs and service connections one session may have open at once"},
      {"max-frame-bytes", KeyType::Size, "\"1m\"", "largest WebSocket message accepted from the manager"},
      {"idle-timeout", KeyType::Seconds, "60", "an interactive connection silent this long (no pong either) is closed"},
      {"replay-bytes", KeyType::Size, "\"64k\"", "output kept for the next attach while no client is attached"},
      {"service-port-range", KeyType::String, "\"30000-30999\"",
       "loopback ports handed to process sessions' services (BAI_SERVICE_PORT_<NAME>)"},
  });
}

std::vector<Key> storageTableKeys() {
  return inTable("storage", {
      {"mount-roots", KeyType::StringList, "[]",
       "volume roots of the storage proxies, mounted at the same path here: sessions' folders are bound only from "
       "below them, and sessions never see the roots themselves; empty: no folder mounts"},
  });
}

// [storage] mount-roots: absolute, normalised, no two the same.
Result<std::vector<std::filesystem::path>> mountRoots(const config::Config& c) {
  std::vector<std::filesystem::path> roots;
  for (const auto& text : c.stringList("storage.mount-roots")) {
    const std::filesystem::path root = std::filesystem::path(text).lexically_normal();
    if (text.empty() || text[0] != '/' || root == "/") {
      return fail(ErrorCode::InvalidArgument, "storage.mount-roots: '" + text + "' is not an absolute path below /");
    }
    roots.push_back(root);
  }
  return roots;
}

Result<InteractiveSettings> interactiveSettings(const config::Config& c) {
  InteractiveSettings s;
  const std::int64_t connections = c.integer("interactive.max-connections-per-session");
  if (connections < 1 || connections > 4096) {
    return fail(ErrorCode::InvalidArgument, "interactive.max-connections-per-session must be 1 to 4096");
  }
  s.maxConnectionsPerSession = static_cast<std::size_t>(connections);
  s.maxFrameBytes = c.size("interactive.max-frame-bytes");
  if (s.maxFrameBytes < 1024 || s.maxFrameBytes > (std::uint64_t{64} << 20)) {
    return fail(ErrorCode::InvalidArgument, "interactive.max-frame-bytes must be 1k to 64m");
  }
  s.idleTimeout = std::chrono::seconds(static_cast<std::int64_t>(c.seconds("interactive.idle-timeout")));
  if (s.idleTimeout.count() < 2) return fail(ErrorCode::InvalidArgument, "interactive.idle-timeout must be at least 2 seconds");
  s.replayBytes = c.size("interactive.replay-bytes");
  if (s.replayBytes > (std::uint64_t{16} << 20)) return fail(ErrorCode::InvalidArgument, "interactive.replay-bytes must be at most 16m");
  const std::string range = c.string("interactive.service-port-range");
  unsigned first = 0, last = 0;
  char dash = 0;
  std::istringstream in(range);
  if (!(in >> first >> dash >> last) || dash != '-' || !in.eof() || first == 0 || last > 65535 || first > last) {
    return fail(ErrorCode::InvalidArgument,
                "interactive.service-port-range: '" + range + "' is not FIRST-LAST within 1-65535, e.g. \"30000-30999\"");
  }
  s.servicePortFirst = static_cast<std::uint16_t>(first);
  s.servicePortLast = static_cast<std::uint16_t>(last);
  return s;
}

std::vector<Key> allAgentKeys() {
  std::vector<Key> keys = agentTableKeys();
  for (auto table : {resourceTableKeys(), runtimeTableKeys(), interactiveTableKeys(), storageTableKeys()}) {
    keys.insert(keys.end(), table.begin(), table.end());
  }
  keys.push_back({"plugins.*", KeyType::Table, "", "a plugin's own settings, by plugin key or name (e.g. [plugins.mock])"});
  return keys;
}

}  // namespace

const config::Schema& agentConfigSchema() {
  static const config::Schema schema("bai-agent", allAgentKeys());
  return schema;
}

const std::vector<std::string>& agentReloadableKeys() {
  static const std::vector<std::string> keys = {"agent.log-level", "agent.allow-plugins", "agent.block-plugins"};
  return keys;
}

std::string defaultAgentId() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  std::string machine;
  std::ifstream("/etc/machine-id") >> machine;
  std::string id = std::string("agent-") + host;
  if (!machine.empty()) id += "-" + machine.substr(0, 8);
  return id;
}

std::function<std::string(const std::string&, const std::string&)> pluginConfigLookup(
    std::map<std::string, std::string> configs) {
  return [configs = std::move(configs)](const std::string& name, const std::string& key) {
    if (auto it = configs.find(key); it != configs.end()) return it->second;
    if (auto it = configs.find(name); it != configs.end()) return it->second;
    return std::string("{}");
  };
}

namespace {

std::chrono::milliseconds millis(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000.0));
}

Result<std::vector<std::string>> runtimeKinds(const config::Config& c) {
  std::vector<std::string> kinds;
  for (const auto& kind : c.stringList("runtime.kinds")) {
    if (!protocol::isRuntimeKind(kind)) {
      return fail(ErrorCode::InvalidArgument, "runtime.kinds: unknown runtime '" + kind + "' (use process and/or container)");
    }
    if (std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) kinds.push_back(kind);
  }
  if (kinds.empty()) return fail(ErrorCode::InvalidArgument, "runtime.kinds: name at least one of process and container");
  return kinds;
}

// "nofile=16384" or "nproc=1024:4096".
Result<Ulimit> parseUlimit(const std::string& text) {
  const std::string where = "runtime.container.ulimits: '" + text + "'";
  const auto equals = text.find('=');
  if (equals == std::string::npos || equals == 0) return fail(ErrorCode::InvalidArgument, where + " is not NAME=LIMIT");
  Ulimit out{text.substr(0, equals), 0, 0};
  for (char ch : out.name) {
    if (ch < 'a' || ch > 'z') return fail(ErrorCode::InvalidArgument, where + ": the name must be lowercase letters");
  }
  const std::string limits = text.substr(equals + 1);
  const auto colon = limits.find(':');
  auto number = [&](const std::string& digits) -> std::optional<std::int64_t> {
    if (digits.empty() || digits.size() > 18 || digits.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    return std::stoll(digits);
  };
  auto soft = number(limits.substr(0, colon));
  auto hard = colon == std::string::npos ? soft : number(limits.substr(colon + 1));
  if (!soft || !hard) return fail(ErrorCode::InvalidArgument, where + ": limits are non-negative integers");
  if (*soft > *hard) return fail(ErrorCode::InvalidArgument, where + ": the soft limit exceeds the hard one");
  out.soft = *soft;
  out.hard = *hard;
  return out;
}

// The first of the engines' usual sockets that exists; Docker's when none does.
std::filesystem::path defaultEngineSocket() {
  for (const char* path : {"/run/docker.sock", "/run/podman/podman.sock"}) {
    std::error_code ec;
    if (std::filesystem::exists(path, ec)) return path;
  }
  return "/run/docker.sock";
}

Result<ContainerSettings> containerSettings(const config::Config& c) {
  ContainerSettings out;
  const std::string socket = c.string("runtime.container.engine-socket");
  out.engineSocket = socket.empty() ? defaultEngineSocket() : std::filesystem::absolute(socket);
  if (const std::string runtime = c.string("runtime.container.oci-runtime"); !runtime.empty()) out.ociRuntime = runtime;
  for (const auto& text : c.stringList("runtime.container.ulimits")) {
    auto ulimit = parseUlimit(text);
    if (!ulimit) return Failure{ulimit.error()};
    out.ulimits.push_back(*ulimit);
  }
  out.network = c.string("runtime.container.network");
  if (out.network.empty()) return fail(ErrorCode::InvalidArgument, "runtime.container.network must not be empty");
  out.readonlyRootfs = c.boolean("runtime.container.readonly-rootfs");
  for (const auto& cap : c.stringList("runtime.container.cap-add")) {
    const bool valid = !cap.empty() && cap.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ_") == std::string::npos;
    if (!valid || cap == "ALL" || cap == "SYS_ADMIN") {
      return fail(ErrorCode::InvalidArgument, "runtime.container.cap-add: '" + cap +
                                                  "' is not a capability a session may get (uppercase name without CAP_; "
                                                  "not ALL or SYS_ADMIN)");
    }
    out.capAdd.push_back(cap);
  }
  out.init = c.boolean("runtime.container.init");
  out.checkInterval = millis(c.seconds("runtime.container.check-interval"));
  if (out.checkInterval.count() < 100) {
    return fail(ErrorCode::InvalidArgument, "runtime.container.check-interval must be at least 0.1 seconds");
  }
  return out;
}

}  // namespace

IsolationSettings isolationSettings(const AgentSettings& settings) {
  IsolationSettings isolation;
  isolation.pidsMax = settings.pidsMax;
  isolation.defaultMemory = settings.defaultSessionMemory;
  for (const std::filesystem::path& path : {settings.stateDir, settings.configFile, settings.clusterTokenFile,
                                            std::filesystem::path(settings.tlsKeyFile)}) {
    if (!path.empty()) isolation.hidden.push_back(std::filesystem::absolute(path));
  }
  for (const auto& path : settings.hiddenPaths) isolation.hidden.push_back(path);
  // Sessions see their own folders at their targets, never a volume's other folders.
  for (const auto& root : settings.folderMountRoots) isolation.hidden.push_back(root);
  isolation.folderMountRoots = settings.folderMountRoots;
  return isolation;
}

Result<AgentSettings> agentSettings(const config::Config& c) {
  AgentSettings s;
  s.id = c.isSet("agent.id") ? c.string("agent.id") : defaultAgentId();
  if (s.id.empty() || s.id.size() > 128 || s.id.find_first_of(" /\\\t\n") != std::string::npos) {
    return fail(ErrorCode::InvalidArgument, "agent.id '" + s.id + "' must be 1 to 128 characters without spaces or slashes");
  }
  s.region = c.string("agent.region");
  s.scalingGroup = c.string("agent.scaling-group");
  s.rpcListen = c.string("agent.rpc-listen-addr");
  s.rpcAdvertise = c.string("agent.rpc-advertise-addr");
  s.managerUrl = c.string("agent.manager-url");
  s.clusterTokenFile = c.string("agent.cluster-token-file");
  if (s.clusterTokenFile.empty()) {
    return fail(ErrorCode::InvalidArgument,
                "agent.cluster-token-file is required: the RPC and the manager link are authenticated with it");
  }
  s.stateDir = c.string("agent.state-dir");
  for (const auto& dir : c.stringList("agent.plugin-path")) s.pluginPath.emplace_back(dir);
  s.allowPlugins = c.stringList("agent.allow-plugins");
  s.blockPlugins = c.stringList("agent.block-plugins");
  s.heartbeatInterval = millis(c.seconds("agent.heartbeat-interval"));
  s.pluginCallTimeout = millis(c.seconds("agent.plugin-call-timeout"));
  if (s.pluginCallTimeout.count() <= 0) return fail(ErrorCode::InvalidArgument, "agent.plugin-call-timeout must be positive");
  // Checked on the 64-bit value: narrowed first, 2^32 + 2 would pass as 2.
  const std::int64_t rpcThreads = c.integer("agent.rpc-threads");
  if (rpcThreads < 1 || rpcThreads > 64) return fail(ErrorCode::InvalidArgument, "agent.rpc-threads must be 1 to 64");
  s.rpcThreads = static_cast<int>(rpcThreads);
  s.tlsCertificateFile = c.string("agent.tls-cert-file");
  s.tlsKeyFile = c.string("agent.tls-key-file");
  if (s.tlsCertificateFile.empty() != s.tlsKeyFile.empty()) {
    return fail(ErrorCode::InvalidArgument, "agent.tls-cert-file and agent.tls-key-file go together");
  }
  auto level = parseLogLevel(c.string("agent.log-level"));
  if (!level) return fail(ErrorCode::InvalidArgument, "agent.log-level: " + level.error().message);
  s.logLevel = *level;
  s.reservedCpu = c.integer("resource.reserved-cpu");
  if (s.reservedCpu < 0) return fail(ErrorCode::InvalidArgument, "resource.reserved-cpu must not be negative");
  s.reservedMem = c.size("resource.reserved-mem");
  s.allocationOrder = c.stringList("resource.allocation-order");
  auto policy = parseAffinityPolicy(c.string("resource.affinity-policy"));
  if (!policy) return fail(ErrorCode::InvalidArgument, "resource.affinity-policy: " + policy.error().message);
  s.affinityPolicy = *policy;
  if (c.isSet("runtime.run-as")) {
    return fail(ErrorCode::InvalidArgument,
                "runtime.run-as was removed: every session runs as its owner's uid from the manager; "
                "allow those uids with runtime.session-uid-ranges and remove runtime.run-as");
  }
  auto uidRanges = parseIdRanges(c.stringList("runtime.session-uid-ranges"), "runtime.session-uid-ranges");
  if (!uidRanges) return Failure{uidRanges.error()};
  auto gidRanges = parseIdRanges(c.stringList("runtime.session-gid-ranges"), "runtime.session-gid-ranges");
  if (!gidRanges) return Failure{gidRanges.error()};
  s.identity.uidRanges = std::move(*uidRanges);
  s.identity.gidRanges = std::move(*gidRanges);
  s.identity.allowRootSessions = c.boolean("runtime.allow-root-sessions");
  s.identity.canSwitchUser = geteuid() == 0;
  const std::int64_t pidsMax = c.integer("runtime.pids-max");
  if (pidsMax < 16 || pidsMax > 4194304) {
    return fail(ErrorCode::InvalidArgument, "runtime.pids-max must be 16 to 4194304");  // the kernel's pid_max limit
  }
  s.pidsMax = static_cast<std::uint64_t>(pidsMax);
  s.defaultSessionMemory = c.size("runtime.default-session-memory");
  if (s.defaultSessionMemory < (std::uint64_t{1} << 20)) {
    return fail(ErrorCode::InvalidArgument, "runtime.default-session-memory must be at least 1m");
  }
  for (const auto& path : c.stringList("runtime.hidden-paths")) {
    if (path.empty() || path[0] != '/') {
      return fail(ErrorCode::InvalidArgument, "runtime.hidden-paths: '" + path + "' is not an absolute path");
    }
    s.hiddenPaths.emplace_back(path);
  }
  auto roots = mountRoots(c);
  if (!roots) return Failure{roots.error()};
  s.folderMountRoots = std::move(*roots);
  s.shimPath = c.string("runtime.shim-path");
  s.destroyGrace = millis(c.seconds("runtime.destroy-grace"));
  s.cgroupRoot = c.string("runtime.cgroup-root");
  s.cgroupParent = c.string("runtime.cgroup-parent");
  auto runtimes = runtimeKinds(c);
  if (!runtimes) return Failure{runtimes.error()};
  s.runtimeKinds = std::move(*runtimes);
  auto container = containerSettings(c);
  if (!container) return Failure{container.error()};
  s.container = std::move(*container);
  auto interactive = interactiveSettings(c);
  if (!interactive) return Failure{interactive.error()};
  s.interactive = *interactive;
  for (const auto& [name, table] : c.tables("plugins")) s.pluginConfigs[name] = table.dump();
  // Relative paths mean "from where the agent was started", also for the shim, which
  // works from each session's directory.
  std::error_code ec;
  for (auto* path : {&s.stateDir, &s.clusterTokenFile, &s.shimPath, &s.cgroupRoot}) {
    if (!path->empty()) *path = std::filesystem::absolute(*path, ec);
  }
  for (auto& dir : s.pluginPath) dir = std::filesystem::absolute(dir, ec);
  return s;
}

}  // namespace bai::core
