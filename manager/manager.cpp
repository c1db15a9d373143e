#include "manager.hpp"

#include <algorithm>
#include <filesystem>
#include <future>

namespace bai::manager {
namespace {

// A storage proxy's call may measure a large folder or list 100000 entries.
constexpr std::chrono::milliseconds kStorageCallTimeout{30000};

Tunables tunablesOf(const ManagerSettings& settings) {
  return Tunables{settings.heartbeatTimeout, settings.schedulerPeriod,      settings.candidateWindow,
                  settings.maxWait,          settings.defaultSessionSlots, settings.maxPendingPerKeypair};
}

ScalingGroupRecord defaultPolicies(const ManagerSettings& settings) {
  ScalingGroupRecord record;
  record.sequencer = settings.sequencer;
  record.selector = settings.selector;
  return record;
}

// Said once at start: otherwise only each pending session's reason would tell.
void warnOfMissingDefaults(const PolicyCatalog& catalog, const ManagerSettings& settings, const LogSink& log) {
  for (const auto& [kind, name] : {std::pair{PolicyKind::Sequencer, settings.sequencer},
                                   std::pair{PolicyKind::Selector, settings.selector}}) {
    const auto known = catalog.names(kind);
    if (std::find(known.begin(), known.end(), name) != known.end() || !log) continue;
    std::string where;
    for (const auto& dir : settings.policyPath) where += (where.empty() ? "" : ", ") + dir;
    log(LogLevel::Error, "manager",
        std::string("the default ") + (kind == PolicyKind::Sequencer ? "sequencer" : "selector") + " '" + name +
            "' is not installed in " + (where.empty() ? "(no policy path)" : where) +
            ": sessions of groups without their own policies will wait");
  }
}

}  // namespace

Manager::Manager(const ManagerSettings& settings, std::unique_ptr<Store> store, std::string clusterToken, LogSink log,
                 std::shared_ptr<LogThreshold> threshold, std::unique_ptr<PolicyCatalog> policies)
    : threshold_(std::move(threshold)),
      log_(std::move(log)),
      policies_(std::move(policies)),
      ledger_(std::move(store), tunablesOf(settings), metrics_, log_),
      dispatcher_(AgentClient(clusterToken, settings.agentRpcTimeout, settings.agentCaFile),
                  DispatchOptions{settings.dispatchThreads, 2, 256}, metrics_),
      waiters_([this](const Caller& caller, const std::string& id) { return sessions_.get(caller, id); }),
      lifecycle_(ledger_, dispatcher_, metrics_, log_),
      tracker_(ledger_, lifecycle_, metrics_, log_),
      round_(ledger_, lifecycle_, *policies_, defaultPolicies(settings), metrics_, log_),
      scheduler_(ledger_, tracker_, lifecycle_, round_),
      sessions_(ledger_, lifecycle_, dispatcher_, waiters_),
      admin_(ledger_, *policies_, log_),
      vfolders_(ledger_.store(), settings.storage, kStorageCallTimeout, log_),
      interactive_(ledger_, sessions_, std::move(clusterToken), settings, log_) {
  ledger_.onSessionEnded([this](const SessionRecord& session) { waiters_.finished(session); });
}

Result<std::unique_ptr<Manager>> Manager::start(ManagerSettings settings, std::unique_ptr<Store> store,
                                                std::string clusterToken, LogSink log) {
  auto threshold = std::make_shared<LogThreshold>(settings.logLevel);
  LogSink sink = thresholdLogSink(std::move(log), threshold);
  std::vector<std::filesystem::path> dirs(settings.policyPath.begin(), settings.policyPath.end());
  auto catalog = PolicyCatalog::load(dirs, sink);
  if (!catalog) return fail(catalog.error().code, "policies: " + catalog.error().message);
  warnOfMissingDefaults(*catalog, settings, sink);
  std::unique_ptr<Manager> manager(new Manager(settings, std::move(store), std::move(clusterToken), std::move(sink),
                                               std::move(threshold), std::make_unique<PolicyCatalog>(std::move(*catalog))));
  if (auto loaded = manager->ledger_.load(); !loaded) return Failure{loaded.error()};
  if (auto created = manager->createDefaultGroup(settings); !created) return Failure{created.error()};
  manager->resumeInterruptedCalls();
  manager->dispatcher_.start();
  manager->waiters_.start();
  manager->tracker_.start();
  manager->scheduler_.start();
  return manager;
}

// Sessions and agents name "default" unless told otherwise: it is a record like any
// other group (listed, shown, changed), made at the first start with the configured
// policies.
Result<void> Manager::createDefaultGroup(const ManagerSettings& settings) {
  if (admin_.scalingGroup(kDefaultScalingGroup)) return {};
  ScalingGroupRecord group = defaultPolicies(settings);
  group.name = kDefaultScalingGroup;
  group.description = "created at the first start";
  auto stored = admin_.upsertScalingGroup(group);
  if (!stored) return fail(ErrorCode::Internal, "creating scaling group 'default': " + stored.error().detail);
  log(LogLevel::Info, "scaling group 'default' created: " + group.sequencer + " / " + group.selector);
  return {};
}

// Placements in flight when the last run stopped are retried with the same id (the
// agent's create is idempotent); stops in flight are sent again.
void Manager::resumeInterruptedCalls() {
  const Ledger::Guard guard = ledger_.lock();
  const ClusterState& state = ledger_.state(guard);
  std::vector<std::pair<std::string, SessionStatus>> interrupted;
  for (const auto& [id, session] : state.active) {
    if (session.status == SessionStatus::Scheduled || session.status == SessionStatus::Terminating) {
      interrupted.emplace_back(id, session.status);
    }
  }
  int retried = 0;
  for (const auto& [id, status] : interrupted) {
    if (status == SessionStatus::Scheduled) {
      ++retried;
      lifecycle_.start(guard, id);
    } else {
      lifecycle_.destroy(guard, id);
    }
  }
  log(LogLevel::Info, "state from " + ledger_.store().describe() + ": " + std::to_string(state.agents.size()) + " agents, " +
                          std::to_string(state.active.size()) + " active sessions, " + std::to_string(retried) +
                          " placements to retry");
}

Manager::~Manager() { shutdown(); }

void Manager::shutdown() {
  if (stopped_) return;
  stopped_ = true;
  interactive_.shutdown();
  {
    const Ledger::Guard guard = ledger_.lock();
    ledger_.state(guard).stopping = true;
  }
  ledger_.wakeAll();
  scheduler_.join();
  tracker_.stop();  // after saving what was queued
  dispatcher_.stop();
  // Last, so that it answers every long poll, including those ended by the threads above.
  waiters_.stop();
}

void Manager::log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, "manager", message);
}

Outcome<protocol::HeartbeatReply> Manager::heartbeat(const std::string& agentId, const protocol::Heartbeat& heartbeat) {
  std::promise<Outcome<protocol::HeartbeatReply>> answer;
  auto answered = answer.get_future();
  tracker_.heartbeat(agentId, heartbeat, [&answer](auto reply) { answer.set_value(std::move(reply)); });
  return answered.get();
}

std::vector<AgentSummary> Manager::agents() const {
  const Ledger::Guard guard = ledger_.lock();
  std::vector<AgentSummary> out;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, agent] : ledger_.state(guard).agents) {
    out.push_back({agent.record, std::chrono::duration<double>(now - agent.lastSeen).count()});
  }
  return out;
}

std::string Manager::rpcUrlOf(const std::string& agentId) const {
  const Ledger::Guard guard = ledger_.lock();
  const auto& agents = ledger_.state(guard).agents;
  auto agent = agents.find(agentId);
  return agent != agents.end() ? agent->second.record.rpcUrl : std::string();
}

void Manager::agentRpcGet(const std::string& agentId, const std::string& pathAndQuery, AgentDispatcher::ReplyCallback done) {
  const std::string rpcUrl = rpcUrlOf(agentId);
  if (rpcUrl.empty()) return done(refuse(ErrorKind::UnknownAgent, "no agent '" + agentId + "'"));
  dispatcher_.get(agentId, rpcUrl, pathAndQuery, std::move(done));
}

void Manager::refreshAgentImages(const std::string& agentId, AgentCallback done) {
  const std::string rpcUrl = rpcUrlOf(agentId);
  if (rpcUrl.empty()) return done(refuse(ErrorKind::UnknownAgent, "no agent '" + agentId + "'"));
  const auto deadline = std::chrono::steady_clock::now() + dispatcher_.callTimeout();
  dispatcher_.submit(
      agentId,
      [this, agentId, rpcUrl, done](const AgentClient& client) {
        auto inventory = client.refreshImages(rpcUrl);
        if (!inventory) {
          return done(refuse(ErrorKind::AgentUnreachable, "agent " + agentId + ": " + inventory.error().describe()));
        }
        done(tracker_.takeRefresh(agentId, *inventory));
      },
      [done](const std::string& why) { done(refuse(ErrorKind::AgentUnreachable, "not sent: " + why)); }, deadline);
}

std::map<std::string, SlotType> Manager::slotTypes() const {
  const Ledger::Guard guard = ledger_.lock();
  return ledger_.state(guard).registry.all();
}

ClusterFigures Manager::figures() const {
  ClusterFigures out;
  out.agentsByStatus = {{agentStatusName(AgentStatus::Alive), 0}, {agentStatusName(AgentStatus::Lost), 0}};
  const Ledger::Guard guard = ledger_.lock();
  const ClusterState& state = ledger_.state(guard);
  for (const auto& [id, agent] : state.agents) {
    ++out.agentsByStatus[agentStatusName(agent.record.status)];
    if (!agent.alive()) continue;
    for (const auto& [slot, figures] : agent.record.slots) {
      out.slotsOfLive[slot].first += figures.capacity;
      out.slotsOfLive[slot].second += figures.used;
    }
  }
  for (const auto& [id, session] : state.active) ++out.activeSessions[session.status];
  out.relayedStreams = interactive_.relayedStreams();
  out.relayQueuedBytes = interactive_.queuedBytes();
  return out;
}

const std::vector<std::string>& managerReloadableKeys() {
  static const std::vector<std::string> keys = {"manager.log-level", "manager.max-wait", "agents.heartbeat-timeout",
                                                "scheduler.period", "scheduler.candidate-window",
                                                "scheduler.default-session-slots", "scheduler.max-pending-per-keypair"};
  return keys;
}

// Every key applied here is read under the ledger's lock by the threads that use it, so
// a change takes effect at their next look: the scheduler's next wait, the next long poll.
Result<ReloadReport> Manager::reload(const config::Config& running, const config::Config& next) {
  auto resolved = managerSettings(next);
  if (!resolved) return Failure{resolved.error()};
  ReloadReport report;
  const auto& reloadable = managerReloadableKeys();
  {
    const Ledger::Guard guard = ledger_.lock();
    for (const std::string& key : next.changedKeys(running)) {
      if (std::find(reloadable.begin(), reloadable.end(), key) == reloadable.end()) {
        report.needsRestart.push_back(key);
        continue;
      }
      if (key == "manager.log-level") threshold_->set(resolved->logLevel);
      report.applied.push_back(key);
    }
    ledger_.state(guard).tunables = tunablesOf(*resolved);
    ledger_.wantPlacement(guard);  // the next round runs with the new period and window
  }
  for (const auto& key : report.needsRestart) log(LogLevel::Warning, key + " changed; restart to apply");
  std::string applied;
  for (const auto& key : report.applied) applied += (applied.empty() ? "" : ", ") + key;
  log(LogLevel::Info, "configuration reloaded" + (applied.empty() ? std::string("; nothing to apply") : "; applied " + applied));
  return report;
}

Result<ReloadReport> reloadManagerConfig(Manager& manager, config::Config& running, const std::string& file,
                                         const std::map<std::string, std::string>& overrides) {
  return config::reload(managerConfigSchema(), running, file, overrides, manager.logSink(), "manager",
                        [&](const config::Config& before, const config::Config& next) { return manager.reload(before, next); });
}

}  // namespace bai::manager
