#include "agent/agent.hpp"

#include <sys/utsname.h>

#include <utility>

namespace bai::core {
namespace {

std::string architecture() {
  utsname name{};
  uname(&name);
  return name.machine;
}

AllocationMapFigures figuresOf(const AllocMap& map) {
  AllocationMapFigures out{map.slot().str(), map.slotType(), map.isFraction(), map.strategy(),
                           map.freeTotal(),  map.largestAllocatable(), {}};
  for (std::uint32_t i = 0; i < map.deviceCount(); ++i) {
    out.devices.push_back({map.deviceId(i), map.numaNode(i), map.capacity(i), map.allocated(i), map.enabled(i)});
  }
  return out;
}

}  // namespace

Agent::Agent(AgentSettings settings, std::string clusterToken, std::shared_ptr<LogThreshold> threshold, LogSink log,
             AgentParts parts)
    : settings_(std::move(settings)),
      token_(std::move(clusterToken)),
      threshold_(std::move(threshold)),
      log_(std::move(log)),
      limits_(std::move(parts.limits)),
      journal_(std::move(parts.journal)),
      ledger_(std::move(parts.inventory)),
      records_(settings_.stateDir),
      supervisor_(ledger_, records_, log_),
      servicePorts_(settings_.interactive.servicePortFirst, settings_.interactive.servicePortLast),
      lifecycle_(SessionLifecycleOptions{settings_.id, settings_.identity, isolationSettings(settings_),
                                         settings_.destroyGrace, log_,
                                         [this, make = std::move(parts.makeRuntimes)](SessionCallbacks callbacks) {
                                           return make(RuntimeContext{std::move(callbacks.onExit), *limits_,
                                                                      [this] { runtimeChanged(); },
                                                                      std::move(callbacks.onStarted)});
                                         },
                                         [this](AgentState& state) { return supervisor_.unloadDrained(state); },
                                         [this] { notifyReporter(); }, &servicePorts_,
                                         static_cast<std::size_t>(settings_.interactive.replayBytes)},
                 ledger_, records_, *journal_),
      streams_(settings_.interactive.maxConnectionsPerSession) {}

Agent::~Agent() {
  supervisor_.stopPolling();
  std::lock_guard<std::mutex> lock(reporterMutex_);
  if (reporter_) reporter_->stop();
}

void Agent::recover() { lifecycle_.recover(); }

void Agent::startReporting(std::unique_ptr<Reporter> reporter) {
  std::lock_guard<std::mutex> lock(reporterMutex_);
  reporter_ = std::move(reporter);
}

void Agent::startSupervision() { supervisor_.startPolling(settings_.heartbeatInterval); }

void Agent::notifyReporter() {
  std::lock_guard<std::mutex> lock(reporterMutex_);
  if (reporter_) reporter_->notifyEvent();
}

void Agent::runtimeChanged() {
  ledger_.bumpDigest();
  notifyReporter();
}

protocol::RuntimeInventory Agent::refreshRuntimes() {
  lifecycle_.refreshRuntimes();
  return {lifecycle_.runtimeReports(), lifecycle_.images()};
}

AgentResult<std::pair<protocol::SessionInfo, bool>> Agent::createSession(const protocol::CreateSessionRequest& request) {
  return lifecycle_.create(request);
}

AgentResult<protocol::SessionInfo> Agent::destroySession(const std::string& id) { return lifecycle_.destroy(id); }

AgentResult<protocol::SessionInfo> Agent::session(const std::string& id) const { return lifecycle_.session(id); }

std::vector<protocol::SessionInfo> Agent::sessions() const { return lifecycle_.sessions(); }

AgentResult<LogPage> Agent::sessionLogs(const std::string& id, const std::string& stream, std::uint64_t offset,
                                   std::uint64_t limit, std::optional<std::uint64_t> tail) const {
  return lifecycle_.logs(id, stream, offset, limit, tail);
}

protocol::AgentState Agent::snapshot() const {
  protocol::AgentState out;
  out.rpcAddress = settings_.rpcUrl.empty() ? "http://" + settings_.rpcListen : settings_.rpcUrl;
  out.region = settings_.region;
  out.scalingGroup = settings_.scalingGroup;
  out.architecture = architecture();
  out.version = BAI_VERSION;
  auto state = ledger_.lock();
  const NodeInventory& inventory = state->inventory;
  out.available = inventory.available();
  out.occupied = inventory.occupied();
  out.largestAllocatable = inventory.allocator().largestAllocatable();
  for (const auto& [slot, type] : inventory.slotTypes()) out.slotTypes[slot] = type;
  for (const auto& map : inventory.allocator().maps()) out.slotQuanta[map->slot().str()] = map->quantum();
  for (const auto& plugin : state->inventory.host().plugins()) {
    if (!inventory.offers(plugin.get())) continue;
    const auto& id = plugin->identity();
    out.plugins.push_back({id.name, id.version, id.key, plugin->discovery().extraInfo.dump()});
    if (state->isWithdrawn(plugin.get())) out.plugins.back().withdrawn = plugin->withdrawalReason();
  }
  for (const auto& [key, devices] : state->health) {
    for (const auto& [id, report] : devices) out.deviceHealth.push_back(report);
  }
  for (const auto& [id, session] : state->sessions) {
    if (session.info.state == protocol::SessionState::Running || session.info.state == protocol::SessionState::Preparing) {
      out.sessions.push_back({id, session.info.state});
    }
  }
  state.unlock();
  out.runtimes = lifecycle_.runtimeReports();
  out.images = lifecycle_.images();
  return out;
}

AllocationFigures Agent::allocation() const {
  AllocationFigures out;
  auto state = ledger_.lock();
  for (const auto& map : state->inventory.allocator().maps()) out.maps.push_back(figuresOf(*map));
  for (const auto& [id, session] : state->sessions) {
    if (!session.released) out.holdings[id] = session.info.allocation;
  }
  return out;
}

AgentHealth Agent::health() const {
  AgentHealth out{settings_.id, limits_->describe(), limits_->enforcing(), {}, {}, {}, {}, {}};
  auto state = ledger_.lock();
  for (const auto& plugin : state->inventory.host().plugins()) {
    if (!state->inventory.offers(plugin.get())) continue;
    PluginHealthFigures figures{plugin->identity().name, plugin->identity().key, {}};
    if (auto it = state->health.find(figures.key); it != state->health.end()) {
      for (const auto& [id, report] : it->second) figures.devices.push_back(report);
    }
    out.plugins.push_back(std::move(figures));
  }
  out.skipped = state->inventory.host().skipped();
  out.withdrawn = state->withdrawn;
  for (const AcceleratorPlugin* plugin : state->draining) out.draining.push_back(plugin->identity().name);
  state.unlock();
  out.runtimes = lifecycle_.runtimeReports();
  return out;
}

AgentMetrics Agent::metrics() const {
  AgentMetrics out;
  out.state = snapshot();
  out.sessions = sessions();
  out.sessionsStarted = lifecycle_.sessionsStarted();
  out.sessionsFailed = lifecycle_.sessionsFailed();
  out.pluginsSkipped = ledger_.inventoryUnlocked().host().skipped().size();
  out.limitsEnforced = limits_->enforcing();
  out.eventsUnacked = journal_->unackedCount();
  {
    std::lock_guard<std::mutex> lock(reporterMutex_);
    if (reporter_) out.reporting = reporter_->counters();
  }
  out.pluginsDraining = drainingPlugins().size();
  out.allocation = allocation();
  return out;
}

Result<ReloadReport> Agent::reload(const config::Config& running, const config::Config& next) {
  auto resolved = agentSettings(next);
  if (!resolved) return Failure{resolved.error()};
  std::lock_guard<std::mutex> reloading(reloadMutex_);
  ReloadReport report;
  std::vector<std::string> pluginTables;  // changed [plugins.<name>] tables
  for (const std::string& key : next.changedKeys(running)) {
    if (key == "agent.log-level") {
      threshold_->set(resolved->logLevel);
      report.applied.push_back(key);
    } else if (key == "agent.allow-plugins" || key == "agent.block-plugins") {
      report.applied.push_back(key);
    } else if (key.rfind("plugins.", 0) == 0) {
      pluginTables.push_back(key);  // applies to a plugin this reload loads, else at restart
    } else {
      report.needsRestart.push_back(key);
    }
  }
  // Always: a reload also loads plugins installed in plugin-path since the start and
  // retries those skipped (a fixed [plugins.<name>] table, say).
  const std::set<std::string> loadedNow = supervisor_.applyPluginLists(*resolved);
  for (const std::string& key : pluginTables) {
    if (loadedNow.count(key.substr(std::string("plugins.").size())) != 0) report.applied.push_back(key);
    else report.needsRestart.push_back(key);
  }
  settings_.logLevel = resolved->logLevel;
  settings_.allowPlugins = resolved->allowPlugins;
  settings_.blockPlugins = resolved->blockPlugins;
  for (const auto& key : report.needsRestart) log_(LogLevel::Warning, "agent", key + " changed; restart to apply");
  std::string applied;
  for (const auto& key : report.applied) applied += (applied.empty() ? "" : ", ") + key;
  log_(LogLevel::Info, "agent", "configuration reloaded" + (applied.empty() ? std::string("; nothing to apply") : "; applied " + applied));
  return report;
}

Result<ReloadReport> reloadAgentConfig(Agent& agent, config::Config& running, const std::string& file,
                                       const std::map<std::string, std::string>& overrides) {
  return config::reload(agentConfigSchema(), running, file, overrides, agent.log(), "agent",
                        [&](const config::Config& before, const config::Config& next) { return agent.reload(before, next); });
}

AgentResult<StreamOpening> Agent::openStream(const std::string& id, const StreamTarget& target) {
  auto place = streams_.reserve(id);
  if (!place) return Failure{AgentError{AgentErrorKind::TooManyStreams, place.error().message}};
  auto stream = lifecycle_.openStream(id, target);
  if (!stream) return Failure{stream.error()};
  return StreamOpening{std::move(*place), std::move(*stream)};
}

void Agent::bridgeStream(StreamOpening opening, std::shared_ptr<ws::WebSocket> socket) {
  streams_.bridge(std::move(opening.place), std::move(socket), std::move(opening.stream));
}

}  // namespace bai::core
