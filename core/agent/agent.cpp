#include "agent/agent.hpp"

#include "runtime/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <pwd.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

namespace bai::core {
namespace {

using protocol::SessionState;

AgentError apiError(int status, std::string type, std::string title, std::string detail) {
  return AgentError{status, protocol::ApiError{std::move(type), std::move(title), std::move(detail)}};
}

// How an allocation failure reads over the RPC: the kind picks the status and type.
AgentError allocationFailure(const AllocationError& e) {
  switch (e.kind) {
    case AllocationErrorKind::InsufficientResource:
      return apiError(409, "insufficient-resource", "Not enough free resources", e.message);
    case AllocationErrorKind::FractionalResourceFragmented:
      return apiError(409, "fractional-resource-fragmented", "Free resources are fragmented", e.message);
    case AllocationErrorKind::UnsupportedResource:
      return apiError(400, "unknown-slot", "Unknown resource slot", e.message);
    case AllocationErrorKind::InvalidResourceCombination:
      return apiError(400, "invalid-resource-combination", "Slots that exclude each other", e.message);
    case AllocationErrorKind::NotMultipleOfQuantum:
      return apiError(400, "not-multiple-of-quantum", "Amount is not a multiple of the quantum", e.message);
    case AllocationErrorKind::InvalidResourceArgument:
      return apiError(400, "invalid-resource-argument", "Invalid resource amount", e.message);
  }
  return apiError(400, "invalid-request", "Invalid request", e.message);
}

std::string architecture() {
  utsname name{};
  uname(&name);
  return name.machine;
}

std::vector<int> devicesAsNumbers(const protocol::DeviceAllocation& allocation, const std::string& slot) {
  std::vector<int> out;
  auto it = allocation.find(slot);
  if (it == allocation.end()) return out;
  for (const auto& [device, amount] : it->second) {
    try {
      out.push_back(std::stoi(device));
    } catch (const std::exception&) {
    }
  }
  return out;
}

}  // namespace

Agent::Agent(AgentSettings settings, std::string token, LogSink log)
    : settings_(std::move(settings)),
      token_(std::move(token)),
      threshold_(std::make_shared<LogThreshold>(settings_.logLevel)),
      log_(thresholdLogSink(std::move(log), threshold_)) {}

Result<std::unique_ptr<Agent>> Agent::start(AgentSettings settings, std::string clusterToken, LogSink log) {
  std::unique_ptr<Agent> agent(new Agent(std::move(settings), std::move(clusterToken), std::move(log)));
  const AgentSettings& s = agent->settings_;
  std::error_code ec;
  std::filesystem::create_directories(s.stateDir / "sessions", ec);
  if (ec) return fail(ErrorCode::InvalidArgument, "agent.state-dir " + s.stateDir.string() + ": " + ec.message());

  auto inventory = NodeInventory::build(s, agent->log_);
  if (!inventory) return Failure{inventory.error()};
  agent->inventory_ = std::move(*inventory);
  agent->log_(LogLevel::Info, "agent", agent->inventory_->summary());

  auto limits = detectLimitsBackend(s.cgroupRoot, s.cgroupParent, agent->log_);
  if (!limits) return Failure{limits.error()};
  agent->limits_ = std::move(*limits);

  auto journal = EventJournal::open(s.stateDir / "events");
  if (!journal) return Failure{journal.error()};
  agent->journal_ = std::make_unique<EventJournal>(std::move(*journal));

  Agent* self = agent.get();
  agent->runner_ = std::make_unique<SessionRunner>(
      s.shimPath, agent->log_, [self](const std::string& id, const ExitStatus& status) { self->onExit(id, status); });
  if (auto recovered = agent->recover(); !recovered) return Failure{recovered.error()};

  ReporterOptions reporting;
  reporting.agentId = s.id;
  reporting.managerUrl = s.managerUrl;
  reporting.token = agent->token_;
  reporting.interval = s.heartbeatInterval;
  reporting.log = agent->log_;
  auto reporter = Reporter::start(reporting, [self] { return self->snapshot(); }, [self] { return self->digest(); },
                                  *agent->journal_);
  if (!reporter) return Failure{reporter.error()};
  agent->reporter_ = std::move(*reporter);
  agent->pollHealth();
  agent->healthThread_ = std::thread([self] { self->healthLoop(); });
  return agent;
}

Agent::~Agent() {
  {
    std::lock_guard<std::mutex> lock(healthMutex_);
    stopping_ = true;
  }
  healthWake_.notify_all();
  if (healthThread_.joinable()) healthThread_.join();
  if (reporter_) reporter_->stop();
  runner_.reset();  // stops watching; sessions keep running for the next agent
}

std::filesystem::path Agent::sessionDir(const std::string& id) const { return settings_.stateDir / "sessions" / id; }

Result<void> Agent::persist(const Session& session) const {
  nlohmann::json record{{"request", nlohmann::json::parse(session.request.toJson())},
                        {"info", nlohmann::json::parse(session.info.toJson())},
                        {"prepared_plugins", session.preparedPlugins},
                        {"destroy_requested", session.destroyRequested}};
  return writeFileAtomically(sessionDir(session.info.id) / "record.json", record.dump());
}

// Rebuilds the maps from the records of sessions that were holding resources, and
// hands their shims back to the runner, which reports those that ended meanwhile.
Result<void> Agent::recover() {
  std::error_code ec;
  std::vector<std::string> toAdopt;
  for (const auto& entry : std::filesystem::directory_iterator(settings_.stateDir / "sessions", ec)) {
    const std::string id = entry.path().filename().string();
    auto text = readWholeFile(entry.path() / "record.json");
    if (!text) continue;  // a dir without a record never got resources
    nlohmann::json record = nlohmann::json::parse(*text, nullptr, false);
    if (record.is_discarded()) {
      log_(LogLevel::Error, "agent", "session " + id + ": unreadable record.json; left as it is");
      continue;
    }
    auto request = protocol::CreateSessionRequest::fromJson(record["request"].dump());
    auto info = protocol::SessionInfo::fromJson(record["info"].dump());
    if (!request || !info) {
      log_(LogLevel::Error, "agent", "session " + id + ": invalid record.json; left as it is");
      continue;
    }
    Session session{*request, {}, *info, record.value("prepared_plugins", std::vector<std::string>{}),
                    record.value("destroy_requested", false), true};
    const bool holding = info->state == SessionState::Preparing || info->state == SessionState::Running;
    if (holding) {
      auto allocation = inventory_->resolve(info->allocation);
      auto applied = allocation ? inventory_->allocator().apply(*allocation)
                                : Result<void, AllocationError>(Failure{AllocationError{}});
      if (!allocation || !applied) {
        log_(LogLevel::Error, "agent", "session " + id + ": its recorded allocation no longer fits this node (" +
                                           (allocation ? applied.error().message : allocation.error().message) +
                                           "); its resources are not restored");
      } else {
        session.allocation = std::move(*allocation);
        session.released = false;
      }
      toAdopt.push_back(id);
    }
    sessions_.emplace(id, std::move(session));
  }
  for (const auto& id : toAdopt) {
    if (auto adopted = runner_->adopt(id, sessionDir(id)); !adopted) {
      log_(LogLevel::Error, "agent", "session " + id + ": " + adopted.error().message);
    }
  }
  if (!toAdopt.empty()) {
    log_(LogLevel::Info, "agent", "recovered " + std::to_string(toAdopt.size()) + " session(s) from " +
                                      settings_.stateDir.string());
  }
  return {};
}

AgentResult<std::pair<protocol::SessionInfo, bool>> Agent::createSession(const protocol::CreateSessionRequest& request) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (auto existing = sessions_.find(request.sessionId); existing != sessions_.end()) {
    return std::pair{existing->second.info, false};
  }
  for (const auto& [slot, amount] : request.slots) {
    if (!amount.isZero() && inventory_->slotTypes().count(slot.str()) == 0) {
      return Failure{apiError(400, "unknown-slot", "Unknown resource slot",
                              "slot '" + slot.str() + "' is not offered by any plugin on agent " + settings_.id)};
    }
  }
  auto allocation = inventory_->allocator().allocate(request.slots);
  if (!allocation) return Failure{allocationFailure(allocation.error())};

  Session session;
  session.request = request;
  session.allocation = std::move(*allocation);
  session.info.id = request.sessionId;
  session.info.state = SessionState::Preparing;
  session.info.allocation = inventory_->describe(session.allocation);
  std::error_code ec;
  std::filesystem::create_directories(sessionDir(request.sessionId), ec);
  // The record is on disk before anything runs, so a restart knows what is held.
  if (auto written = persist(session); !written || ec) {
    (void)inventory_->allocator().free(session.allocation);
    return Failure{apiError(500, "state-dir-error", "Cannot record the allocation",
                            ec ? ec.message() : written.error().message)};
  }
  const protocol::DeviceAllocation devices = session.info.allocation;
  sessions_.emplace(request.sessionId, std::move(session));
  changed();
  // Which plugin gets which part, decided now: a reload may change the plugins meanwhile.
  std::vector<std::pair<std::shared_ptr<AcceleratorPlugin>, protocol::DeviceAllocation>> toPrepare;
  for (auto& plugin : activePluginsLocked()) {
    protocol::DeviceAllocation mine;
    for (const auto& [slot, perDevice] : devices) {
      if (inventory_->ownerOf(slot) == plugin.get()) mine[slot] = perDevice;
    }
    toPrepare.emplace_back(std::move(plugin), std::move(mine));
  }
  lock.unlock();

  // Plugins and the limits back end are slow and may block: outside the lock.
  std::map<std::string, std::string> env = request.env;
  std::vector<std::pair<std::shared_ptr<AcceleratorPlugin>, protocol::DeviceAllocation>> prepared;
  std::string failure;
  for (auto& [plugin, mine] : toPrepare) {
    auto resources = plugin->prepareSession(request.sessionId, mine);
    if (!resources) {
      failure = "plugin " + plugin->identity().name + ": " + resources.error().message;
      break;
    }
    for (const auto& [name, value] : resources->env) env[name] = value;
    prepared.emplace_back(std::move(plugin), std::move(mine));
  }
  SessionLimits limits;
  limits.cpus = devicesAsNumbers(devices, "cpu");
  if (auto mem = devices.find("mem"); mem != devices.end()) {
    Quantity bytes;
    for (const auto& [device, amount] : mem->second) bytes += amount;
    limits.memoryBytes = static_cast<std::uint64_t>(bytes.wholeUnits());
  }
  std::vector<std::filesystem::path> cgroupProcs;
  if (failure.empty()) {
    auto joined = limits_->prepare(request.sessionId, limits);
    if (joined) cgroupProcs = std::move(*joined);
    else failure = "limits: " + joined.error().message;
  }
  lock.lock();
  std::vector<std::string> preparedKeys;
  for (const auto& [plugin, mine] : prepared) {
    if (inventory_->offers(plugin.get())) {
      preparedKeys.push_back(plugin->identity().key);
    } else if (auto released = plugin->releaseSession(request.sessionId, mine); !released) {
      // Unloaded by a reload meanwhile (it held none of this session's devices): undone now.
      log_(LogLevel::Warning, "agent", "session " + request.sessionId + ": " + released.error().message);
    }
  }
  sessions_.at(request.sessionId).preparedPlugins = preparedKeys;  // before start: an exit may come at once
  lock.unlock();

  RunSpec spec;
  if (failure.empty()) {
    env["BAI_SESSION_ID"] = request.sessionId;
    env["BAI_RESOURCE_SLOTS"] = request.slots.toJson();
    if (env.count("PATH") == 0) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
    spec = RunSpec{request.sessionId, sessionDir(request.sessionId), request.command, env, limits.cpus, cgroupProcs, {}};
    if (!settings_.runAs.empty() && geteuid() == 0) {
      const passwd* user = getpwnam(settings_.runAs.c_str());
      if (user == nullptr) failure = "runtime.run-as: no user '" + settings_.runAs + "'";
      else spec.runAs = std::pair{user->pw_uid, user->pw_gid};
    }
  }
  Result<std::int64_t> started = failure.empty() ? runner_->start(spec) : Result<std::int64_t>(fail(ErrorCode::Internal, failure));

  lock.lock();
  Session& stored = sessions_.at(request.sessionId);
  if (!started) {
    stored.info.state = SessionState::Failed;
    stored.info.reason = started.error().message;
    stored.info.endedAtMillis = wallClockMillis();
    releaseResources(stored);
    (void)persist(stored);
    ++sessionsFailed_;
    changed();
    const protocol::SessionInfo info = stored.info;
    auto unloaded = unloadDrainedLocked();
    lock.unlock();
    unloaded.clear();
    recordEvent(protocol::EventKind::Failed, request.sessionId, std::nullopt, info.reason);
    return Failure{apiError(500, "session-start-failed", "The session could not start", info.reason)};
  }
  if (stored.info.state == SessionState::Preparing) {  // it may have exited already
    stored.info.state = SessionState::Running;
    stored.info.pid = *started;
    stored.info.startedAtMillis = wallClockMillis();
  }
  (void)persist(stored);
  ++sessionsStarted_;
  changed();
  const protocol::SessionInfo info = stored.info;
  lock.unlock();
  recordEvent(protocol::EventKind::Started, request.sessionId, std::nullopt, "");
  return std::pair{info, true};
}

void Agent::onExit(const std::string& id, const ExitStatus& status) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Session& session = it->second;
  session.info.exitCode = status.exitCode;
  session.info.endedAtMillis = status.endedAtMillis;
  if (!status.recorded) {
    session.info.state = SessionState::Failed;
    session.info.reason = status.error.empty() ? "the session's shim ended without recording an exit status" : status.error;
  } else if (!status.error.empty()) {  // the command never ran (exit 126/127)
    session.info.state = SessionState::Failed;
    session.info.reason = status.error;
  } else {
    session.info.state = session.destroyRequested ? SessionState::Destroyed : SessionState::Exited;
  }
  releaseResources(session);
  (void)persist(session);
  changed();
  const bool failed = session.info.state == SessionState::Failed;
  const std::string reason = session.info.reason;
  auto unloaded = unloadDrainedLocked();
  lock.unlock();
  unloaded.clear();  // the last session of a draining plugin ended: destroyed here, unlocked
  if (failed) recordEvent(protocol::EventKind::Failed, id, status.recorded ? std::optional<int>(status.exitCode) : std::nullopt, reason);
  else recordEvent(protocol::EventKind::Exited, id, status.exitCode, "");
}

void Agent::releaseResources(Session& session) {
  if (session.released) return;
  session.released = true;
  for (const auto& key : session.preparedPlugins) {
    AcceleratorPlugin* plugin = inventory_->host().find(key);
    if (plugin == nullptr) continue;
    protocol::DeviceAllocation mine;
    for (const auto& [slot, perDevice] : session.info.allocation) {
      if (inventory_->ownerOf(slot) == plugin) mine[slot] = perDevice;
    }
    if (auto released = plugin->releaseSession(session.info.id, mine); !released) {
      log_(LogLevel::Warning, "agent", "session " + session.info.id + ": " + released.error().message);
    }
  }
  if (auto freed = inventory_->allocator().free(session.allocation); !freed) {
    log_(LogLevel::Error, "agent", "session " + session.info.id + ": freeing its allocation: " + freed.error().message);
  }
  if (auto released = limits_->release(session.info.id); !released) {
    log_(LogLevel::Warning, "agent", "session " + session.info.id + ": " + released.error().message);
  }
}

void Agent::recordEvent(protocol::EventKind kind, const std::string& id, std::optional<int> exitCode, std::string reason) {
  auto appended = journal_->append(protocol::SessionEvent{0, id, kind, exitCode, std::move(reason), wallClockMillis()});
  if (!appended) {
    log_(LogLevel::Error, "agent", "session " + id + ": cannot journal its event: " + appended.error().message);
    return;
  }
  if (reporter_) reporter_->notifyEvent();
}

AgentResult<protocol::SessionInfo> Agent::destroySession(const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return Failure{apiError(404, "unknown-session", "No such session", "no session '" + id + "'")};
  Session& session = it->second;
  if (session.info.state != SessionState::Running && session.info.state != SessionState::Preparing) {
    return session.info;  // already over: destroying twice is not an error
  }
  session.destroyRequested = true;
  (void)persist(session);
  lock.unlock();
  if (auto destroyed = runner_->destroy(id, settings_.destroyGrace); !destroyed) {
    return Failure{apiError(500, "destroy-failed", "Cannot signal the session", destroyed.error().message)};
  }
  lock.lock();
  return sessions_.at(id).info;
}

AgentResult<protocol::SessionInfo> Agent::session(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return Failure{apiError(404, "unknown-session", "No such session", "no session '" + id + "'")};
  return it->second.info;
}

std::vector<protocol::SessionInfo> Agent::sessions() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<protocol::SessionInfo> out;
  for (const auto& [id, session] : sessions_) out.push_back(session.info);
  return out;
}

AgentResult<std::string> Agent::sessionLogs(const std::string& id, const std::string& stream, std::uint64_t offset,
                                           std::uint64_t limit, std::optional<std::uint64_t> tail) const {
  if (stream != "stdout" && stream != "stderr") {
    return Failure{apiError(400, "invalid-request", "Invalid log stream", "stream must be stdout or stderr, not '" + stream + "'")};
  }
  if (auto known = session(id); !known) return Failure{known.error()};
  const std::filesystem::path file = sessionDir(id) / (stream + ".log");
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::string();
  if (tail) {
    std::error_code ec;
    const std::uint64_t size = std::filesystem::file_size(file, ec);
    offset = ec || size < *tail ? 0 : size - *tail;
    limit = *tail;
  }
  in.seekg(static_cast<std::streamoff>(offset));
  std::string out(static_cast<std::size_t>(std::min<std::uint64_t>(limit, 16u << 20)), '\0');
  in.read(out.data(), static_cast<std::streamsize>(out.size()));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

protocol::AgentState Agent::snapshot() const {
  protocol::AgentState state;
  state.rpcAddress = settings_.rpcUrl.empty() ? "http://" + settings_.rpcListen : settings_.rpcUrl;
  state.region = settings_.region;
  state.scalingGroup = settings_.scalingGroup;
  state.architecture = architecture();
  state.version = BAI_VERSION;
  std::lock_guard<std::mutex> lock(mutex_);
  state.available = inventory_->available();
  state.occupied = inventory_->occupied();
  state.largestAllocatable = inventory_->allocator().largestAllocatable();
  for (const auto& [slot, type] : inventory_->slotTypes()) state.slotTypes[slot] = type;
  for (const auto& plugin : inventory_->host().plugins()) {
    if (!inventory_->offers(plugin.get())) continue;
    const auto& id = plugin->identity();
    state.plugins.push_back({id.name, id.version, id.key, plugin->discovery().extraInfo.dump()});
  }
  for (const auto& [key, devices] : health_) {
    for (const auto& [id, report] : devices) state.deviceHealth.push_back(report);
  }
  for (const auto& [id, session] : sessions_) {
    if (session.info.state == SessionState::Running || session.info.state == SessionState::Preparing) {
      state.sessions.push_back({id, session.info.state});
    }
  }
  return state;
}

std::string Agent::allocMapJson() const {
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json maps = nlohmann::json::array();
  for (const auto& map : inventory_->allocator().maps()) {
    nlohmann::json devices = nlohmann::json::array();
    for (std::uint32_t i = 0; i < map->deviceCount(); ++i) {
      nlohmann::json holders = nlohmann::json::object();
      for (const auto& [id, session] : sessions_) {
        if (session.released) continue;
        auto slot = session.info.allocation.find(map->slot().str());
        if (slot == session.info.allocation.end()) continue;
        if (auto held = slot->second.find(map->deviceId(i)); held != slot->second.end()) holders[id] = held->second.toString();
      }
      devices.push_back({{"id", map->deviceId(i)},
                         {"numa_node", map->numaNode(i)},
                         {"capacity", map->capacity(i).toString()},
                         {"allocated", map->allocated(i).toString()},
                         {"enabled", map->enabled(i)},
                         {"sessions", holders}});
    }
    maps.push_back({{"slot", map->slot().str()},
                    {"type", slotTypeName(map->slotType())},
                    {"kind", map->isFraction() ? "fraction" : "discrete"},
                    {"strategy", allocationStrategyName(map->strategy())},
                    {"free", map->freeTotal().toString()},
                    {"largest_allocatable", map->largestAllocatable().toString()},
                    {"devices", devices}});
  }
  return nlohmann::json{{"agent_id", settings_.id}, {"maps", maps}}.dump();
}

void Agent::healthLoop() {
  const auto period = std::max(settings_.heartbeatInterval, std::chrono::milliseconds(50));
  std::unique_lock<std::mutex> lock(healthMutex_);
  while (!healthWake_.wait_for(lock, period, [&] { return stopping_; })) {
    lock.unlock();
    pollHealth();
    lock.lock();
  }
}

void Agent::pollHealth() {
  // Plugin calls happen outside mutex_: a slow plugin must not stall the RPC.
  std::vector<std::shared_ptr<AcceleratorPlugin>> polled;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& plugin : inventory_->host().plugins()) {
      if (inventory_->offers(plugin.get()) && !drainingLocked(plugin.get())) polled.push_back(plugin);
    }
  }
  std::vector<std::pair<AcceleratorPlugin*, Result<std::vector<DeviceHealth>>>> reports;
  for (const auto& plugin : polled) reports.emplace_back(plugin.get(), plugin->health());

  std::lock_guard<std::mutex> lock(mutex_);
  bool anyChange = false;
  for (auto& [plugin, report] : reports) {
    // A reload may have unloaded it, or stopped offering it, meanwhile: its devices stay off.
    if (!inventory_->offers(plugin) || drainingLocked(plugin)) continue;
    const std::string& key = plugin->identity().key;
    if (!report) {
      const std::string& name = plugin->identity().name;
      if (plugin->failed() && std::find(withdrawn_.begin(), withdrawn_.end(), name) == withdrawn_.end()) {
        // It stays in the host's list (other threads iterate it) but offers nothing more.
        inventory_->withdraw(plugin);
        withdrawn_.push_back(name);
        log_(LogLevel::Error, "agent", "plugin " + name + " withdrawn: " + report.error().message);
        anyChange = true;
      }
      continue;
    }
    for (const DeviceHealth& d : *report) {
      auto& known = health_[key][d.id];
      const bool healthy = d.health == "healthy";
      if (known.health != d.health && !known.health.empty()) {
        log_(healthy ? LogLevel::Info : LogLevel::Warning, "agent",
             "device " + key + "/" + d.id + " is " + d.health + (d.reason.empty() ? "" : ": " + d.reason) +
                 (healthy ? "; it takes new sessions again" : "; it gets no new sessions"));
      }
      anyChange |= known.health != d.health;
      known = protocol::DeviceHealthReport{key, d.id, d.health, d.reason};
      anyChange |= inventory_->setDeviceEnabled(plugin, d.id, healthy);
    }
  }
  if (anyChange) changed();
}

std::string Agent::healthJson() const {
  std::lock_guard<std::mutex> lock(mutex_);
  nlohmann::json plugins = nlohmann::json::array();
  for (const auto& plugin : inventory_->host().plugins()) {
    if (!inventory_->offers(plugin.get())) continue;
    nlohmann::json devices = nlohmann::json::array();
    if (auto it = health_.find(plugin->identity().key); it != health_.end()) {
      for (const auto& [id, d] : it->second) devices.push_back({{"id", id}, {"health", d.health}, {"reason", d.reason}});
    }
    plugins.push_back({{"name", plugin->identity().name}, {"key", plugin->identity().key}, {"devices", devices}});
  }
  nlohmann::json skipped = nlohmann::json::array();
  for (const auto& s : inventory_->host().skipped()) skipped.push_back({{"file", s.file.string()}, {"reason", s.reason}});
  nlohmann::json drainingNames = nlohmann::json::array();
  for (const AcceleratorPlugin* plugin : draining_) drainingNames.push_back(plugin->identity().name);
  return nlohmann::json{{"agent_id", settings_.id},       {"limits", limits_->describe()},
                        {"limits_enforced", limits_->enforcing()}, {"plugins", plugins},
                        {"skipped_plugins", skipped},     {"withdrawn_plugins", withdrawn_},
                        {"draining_plugins", drainingNames}}
      .dump();
}

std::string Agent::metricsText() const {
  std::ostringstream out;
  const protocol::AgentState state = snapshot();
  out << "# HELP bai_agent_slot_capacity Capacity offered to sessions per slot.\n# TYPE bai_agent_slot_capacity gauge\n";
  for (const auto& [slot, amount] : state.available) out << "bai_agent_slot_capacity{slot=\"" << slot.str() << "\"} " << amount.toString() << "\n";
  out << "# HELP bai_agent_slot_used Amount held by sessions per slot.\n# TYPE bai_agent_slot_used gauge\n";
  for (const auto& [slot, amount] : state.occupied) out << "bai_agent_slot_used{slot=\"" << slot.str() << "\"} " << amount.toString() << "\n";
  std::map<std::string, int> byState;
  for (const auto& info : sessions()) ++byState[protocol::sessionStateName(info.state)];
  out << "# HELP bai_agent_sessions Sessions by state.\n# TYPE bai_agent_sessions gauge\n";
  for (const auto& [name, count] : byState) out << "bai_agent_sessions{state=\"" << name << "\"} " << count << "\n";
  out << "# HELP bai_agent_sessions_started_total Sessions started.\n# TYPE bai_agent_sessions_started_total counter\n"
      << "bai_agent_sessions_started_total " << sessionsStarted_.load() << "\n";
  out << "# HELP bai_agent_sessions_failed_total Sessions that failed to start.\n# TYPE bai_agent_sessions_failed_total counter\n"
      << "bai_agent_sessions_failed_total " << sessionsFailed_.load() << "\n";
  out << "# HELP bai_agent_plugins_skipped Plugins skipped at start.\n# TYPE bai_agent_plugins_skipped gauge\n"
      << "bai_agent_plugins_skipped " << inventory_->host().skipped().size() << "\n";
  out << "# HELP bai_agent_limits_enforced Whether session limits are enforced (1) or advisory (0).\n"
      << "# TYPE bai_agent_limits_enforced gauge\nbai_agent_limits_enforced " << (limits_->enforcing() ? 1 : 0) << "\n";
  out << "# HELP bai_agent_events_unacked Session events not yet acknowledged by the manager.\n"
      << "# TYPE bai_agent_events_unacked gauge\nbai_agent_events_unacked " << journal_->unackedCount() << "\n";
  if (reporter_) {
    const ReporterCounters c = reporter_->counters();
    out << "# HELP bai_agent_heartbeats_total Heartbeats by outcome.\n# TYPE bai_agent_heartbeats_total counter\n"
        << "bai_agent_heartbeats_total{outcome=\"sent\"} " << c.heartbeatsSent << "\n"
        << "bai_agent_heartbeats_total{outcome=\"failed\"} " << c.heartbeatsFailed << "\n"
        << "# HELP bai_agent_events_total Session events delivered to the manager, by outcome.\n"
        << "# TYPE bai_agent_events_total counter\n"
        << "bai_agent_events_total{outcome=\"acknowledged\"} " << c.eventsSent << "\n"
        << "bai_agent_events_total{outcome=\"failed\"} " << c.eventsFailed << "\n"
        << "# HELP bai_agent_manager_connected Whether the last contact with the manager succeeded.\n"
        << "# TYPE bai_agent_manager_connected gauge\nbai_agent_manager_connected " << (c.connected ? 1 : 0) << "\n";
  }
  std::lock_guard<std::mutex> lock(mutex_);
  out << "# HELP bai_agent_plugins_draining Plugins no longer allowed that still serve sessions.\n"
      << "# TYPE bai_agent_plugins_draining gauge\nbai_agent_plugins_draining " << draining_.size() << "\n";
  out << "# HELP bai_agent_device_allocated Amount of a slot held on each device.\n"
      << "# TYPE bai_agent_device_allocated gauge\n";
  for (const auto& map : inventory_->allocator().maps()) {
    for (std::uint32_t i = 0; i < map->deviceCount(); ++i) {
      out << "bai_agent_device_allocated{slot=\"" << map->slot().str() << "\",device=\"" << map->deviceId(i) << "\"} "
          << map->allocated(i).toString() << "\n";
    }
  }
  out << "# HELP bai_agent_session_allocation Amount of a slot each running session holds.\n"
      << "# TYPE bai_agent_session_allocation gauge\n";
  for (const auto& [id, session] : sessions_) {
    if (session.released) continue;
    for (const auto& [slot, devices] : session.info.allocation) {
      Quantity total;
      for (const auto& [device, amount] : devices) total += amount;
      out << "bai_agent_session_allocation{session=\"" << id << "\",slot=\"" << slot << "\"} " << total.toString() << "\n";
    }
  }
  return out.str();
}

std::vector<std::shared_ptr<AcceleratorPlugin>> Agent::activePluginsLocked() const {
  std::vector<std::shared_ptr<AcceleratorPlugin>> out;
  for (auto& plugin : inventory_->host().plugins()) {
    // A withdrawn or draining plugin's devices cannot be in a new allocation.
    if (plugin->failed() || !inventory_->offers(plugin.get()) || drainingLocked(plugin.get())) continue;
    out.push_back(std::move(plugin));
  }
  return out;
}

bool Agent::drainingLocked(const AcceleratorPlugin* plugin) const {
  return std::find(draining_.begin(), draining_.end(), plugin) != draining_.end();
}

std::vector<std::string> Agent::drainingPlugins() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names;
  for (const AcceleratorPlugin* plugin : draining_) names.push_back(plugin->identity().name);
  return names;
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
  const std::set<std::string> loadedNow = applyPluginLists(*resolved);
  for (const std::string& key : pluginTables) {
    if (loadedNow.count(key.substr(std::string("plugins.").size())) != 0) report.applied.push_back(key);
    else report.needsRestart.push_back(key);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    settings_.logLevel = resolved->logLevel;
    settings_.allowPlugins = resolved->allowPlugins;
    settings_.blockPlugins = resolved->blockPlugins;
  }
  for (const auto& key : report.needsRestart) log_(LogLevel::Warning, "agent", key + " changed; restart to apply");
  std::string applied;
  for (const auto& key : report.applied) applied += (applied.empty() ? "" : ", ") + key;
  log_(LogLevel::Info, "agent", "configuration reloaded" + (applied.empty() ? std::string("; nothing to apply") : "; applied " + applied));
  return report;
}

// Plugins no longer allowed stop taking sessions at once; newly allowed (or newly
// installed) ones are loaded and offered; the digest changes, so the next heartbeat
// carries the full state.
std::set<std::string> Agent::applyPluginLists(const AgentSettings& next) {
  PluginHost& host = inventory_->host();
  std::set<std::string> loadedNames;
  const auto configs = next.pluginConfigs;
  host.reconfigure(next.allowPlugins, next.blockPlugins, [configs](const std::string& name, const std::string& key) {
    if (auto it = configs.find(key); it != configs.end()) return it->second;
    if (auto it = configs.find(name); it != configs.end()) return it->second;
    return std::string("{}");
  });
  std::vector<std::shared_ptr<AcceleratorPlugin>> unloaded;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& plugin : host.plugins()) {
      const std::string& name = plugin->identity().name;
      const bool allowed = host.allowed(name);
      if (!allowed && !drainingLocked(plugin.get())) {
        inventory_->withdraw(plugin.get());
        draining_.push_back(plugin.get());
        log_(LogLevel::Info, "agent", "plugin " + name + " is no longer allowed: its devices take no new sessions; " +
                                          "it is unloaded once no session holds them");
        changed();
      } else if (allowed && drainingLocked(plugin.get())) {
        draining_.erase(std::find(draining_.begin(), draining_.end(), plugin.get()));
        if (!plugin->failed()) {
          const auto& known = health_[plugin->identity().key];
          for (const auto& device : plugin->discovery().devices) {
            auto last = known.find(device.id);
            inventory_->setDeviceEnabled(plugin.get(), device.id, last == known.end() || last->second.health == "healthy");
          }
        }
        log_(LogLevel::Info, "agent", "plugin " + name + " is allowed again: its devices take new sessions");
        changed();
      }
    }
    unloaded = unloadDrainedLocked();
  }
  unloaded.clear();

  auto loaded = host.loadAll();  // plugin calls: outside mutex_
  std::vector<std::shared_ptr<AcceleratorPlugin>> refused;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& plugin : loaded) {
      const std::string& name = plugin->identity().name;
      if (auto added = inventory_->addPlugin(plugin.get()); !added) {
        log_(LogLevel::Error, "agent", "plugin " + name + " loaded but not offered: " + added.error().message);
        refused.push_back(host.unload(plugin.get()));
        continue;
      }
      std::string slots;
      for (const auto& [slot, type] : plugin->discovery().slots) slots += (slots.empty() ? "" : ", ") + slot.str();
      log_(LogLevel::Info, "agent", "plugin " + name + " loaded by reload: offers " + (slots.empty() ? "no slots" : slots));
      loadedNames.insert(plugin->identity().key);
      loadedNames.insert(name);
      changed();
    }
  }
  refused.clear();
  loaded.clear();
  pollHealth();  // the new plugins' devices, before the next heartbeat
  return loadedNames;
}

std::vector<std::shared_ptr<AcceleratorPlugin>> Agent::unloadDrainedLocked() {
  std::vector<std::shared_ptr<AcceleratorPlugin>> out;
  for (auto it = draining_.begin(); it != draining_.end();) {
    AcceleratorPlugin* plugin = *it;
    const std::string key = plugin->identity().key;
    std::size_t holders = 0;
    for (const auto& [id, session] : sessions_) {
      if (session.released) continue;
      for (const auto& [slot, perDevice] : session.info.allocation) {
        if (inventory_->ownerOf(slot) == plugin) {
          ++holders;
          break;
        }
      }
    }
    if (holders > 0) {
      ++it;
      continue;
    }
    // Sessions it prepared without any of its devices: undone now, so that prepare and
    // release stay paired and a later plugin with the same key is never asked to release.
    for (auto& [id, session] : sessions_) {
      auto prepared = std::find(session.preparedPlugins.begin(), session.preparedPlugins.end(), key);
      if (session.released || prepared == session.preparedPlugins.end()) continue;
      if (auto released = plugin->releaseSession(id, {}); !released) {
        log_(LogLevel::Warning, "agent", "session " + id + ": " + released.error().message);
      }
      session.preparedPlugins.erase(prepared);
      (void)persist(session);
    }
    health_.erase(key);
    std::erase(withdrawn_, plugin->identity().name);
    inventory_->removePlugin(plugin);
    log_(LogLevel::Info, "agent", "plugin " + plugin->identity().name + " unloaded: no session holds its devices");
    out.push_back(inventory_->host().unload(plugin));
    it = draining_.erase(it);
    changed();
  }
  return out;
}

Result<ReloadReport> reloadAgentConfig(Agent& agent, config::Config& running, const std::string& file,
                                       const std::map<std::string, std::string>& overrides) {
  return config::reload(agentConfigSchema(), running, file, overrides, agent.log(), "agent",
                        [&](const config::Config& before, const config::Config& next) { return agent.reload(before, next); });
}

}  // namespace bai::core
