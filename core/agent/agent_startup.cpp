#include "agent/agent_startup.hpp"

#include "agent/container_runtime.hpp"
#include "agent/process_runtime.hpp"

namespace bai::core {
namespace {

std::unique_ptr<PluginHost> loadPlugins(const AgentSettings& settings, const LogSink& log) {
  PluginHostOptions options;
  options.searchPath = settings.pluginPath;
  options.allow = settings.allowPlugins;
  options.block = settings.blockPlugins;
  options.callDeadline = settings.pluginCallTimeout;
  options.log = log;
  options.configFor = pluginConfigLookup(settings.pluginConfigs);
  auto host = std::make_unique<PluginHost>(std::move(options));
  host->loadAll();
  return host;
}

void warnAboutIsolation(const AgentSettings& settings, const LimitsBackend& limits, const LogSink& log) {
  if (!settings.identity.canSwitchUser) {
    log(LogLevel::Warning, "agent",
        "not running as root: sessions are refused, since they cannot run as their owners in a sandbox");
  }
  if (settings.identity.allowRootSessions) {
    log(LogLevel::Warning, "agent",
        "runtime.allow-root-sessions is on: a session whose owner is uid 0 runs as root (without capabilities)");
  }
  if (!limits.fencesDevices()) {
    log(LogLevel::Warning, "agent",
        "no device cgroup fence (" + limits.describe() +
            "): sessions see only their /dev nodes and the host's files without device access (nodev)");
  }
}

Result<AgentParts> buildParts(const AgentSettings& settings, const LogSink& log) {
  if (auto created = SessionRecords(settings.stateDir).createRoot(); !created) return Failure{created.error()};
  AgentParts parts;
  auto inventory = NodeInventory::build(loadPlugins(settings, log), settings);
  if (!inventory) return Failure{inventory.error()};
  parts.inventory = std::move(*inventory);
  log(LogLevel::Info, "agent", parts.inventory->summary());

  auto limits = detectLimitsBackend(settings.cgroupRoot, settings.cgroupParent, log);
  if (!limits) return Failure{limits.error()};
  parts.limits = std::move(*limits);
  warnAboutIsolation(settings, *parts.limits, log);

  auto journal = EventJournal::open(settings.stateDir / "events");
  if (!journal) return Failure{journal.error()};
  parts.journal = std::make_unique<EventJournal>(std::move(*journal));

  parts.makeRuntimes = [settings, log](RuntimeContext context) {
    std::vector<std::unique_ptr<SessionRuntime>> runtimes;
    for (const std::string& kind : settings.runtimeKinds) {
      if (kind == protocol::kProcessRuntime) {
        runtimes.push_back(std::make_unique<ProcessRuntime>(
            std::make_unique<ShimLauncher>(settings.shimPath, log, context.onExit), context.limits));
      } else if (kind == protocol::kContainerRuntime) {
        runtimes.push_back(makeContainerRuntime(
            ContainerRuntimeOptions{settings.id, settings.container, log, context.onExit, context.changed, {},
                                    context.onStarted}));
      }
    }
    return runtimes;
  };
  return parts;
}

}  // namespace

Result<std::unique_ptr<Agent>> startAgent(AgentSettings settings, std::string clusterToken, LogSink log) {
  auto threshold = std::make_shared<LogThreshold>(settings.logLevel);
  const LogSink filtered = thresholdLogSink(std::move(log), threshold);
  auto parts = buildParts(settings, filtered);
  if (!parts) return Failure{parts.error()};
  EventJournal& journal = *parts->journal;
  auto agent = std::make_unique<Agent>(std::move(settings), std::move(clusterToken), threshold, filtered,
                                       std::move(*parts));
  agent->recover();

  const AgentSettings& s = agent->settings();
  ReporterOptions reporting;
  reporting.agentId = s.id;
  reporting.managerUrl = s.managerUrl;
  reporting.token = agent->clusterToken();
  reporting.interval = s.heartbeatInterval;
  reporting.log = filtered;
  Agent* self = agent.get();
  auto reporter = Reporter::start(reporting, [self] { return self->snapshot(); }, [self] { return self->digest(); },
                                  journal);
  if (!reporter) return Failure{reporter.error()};
  agent->startReporting(std::move(*reporter));
  agent->startSupervision();
  return agent;
}

}  // namespace bai::core
