#include "agent/session_lifecycle.hpp"

#include "agent/folder_mounts.hpp"

#include "clock.hpp"
#include "runtime/atomic_file.hpp"

#include <unistd.h>

namespace bai::core {
namespace {

using protocol::SessionState;

AgentError allocationRefusal(const AllocationError& e) {
  switch (e.kind) {
    case AllocationErrorKind::InsufficientResource: return {AgentErrorKind::InsufficientResource, e.message};
    case AllocationErrorKind::FractionalResourceFragmented:
      return {AgentErrorKind::FractionalResourceFragmented, e.message};
    case AllocationErrorKind::UnsupportedResource: return {AgentErrorKind::UnknownSlot, e.message};
    case AllocationErrorKind::InvalidResourceCombination: return {AgentErrorKind::InvalidResourceCombination, e.message};
    case AllocationErrorKind::NotMultipleOfQuantum: return {AgentErrorKind::NotMultipleOfQuantum, e.message};
    case AllocationErrorKind::InvalidResourceArgument: break;
  }
  return {AgentErrorKind::InvalidResourceArgument, e.message};
}

AgentError unknownSession(const std::string& id) { return {AgentErrorKind::UnknownSession, "no session '" + id + "'"}; }

bool holdsResources(SessionState state) { return state == SessionState::Preparing || state == SessionState::Running; }

const char* runtimeKindOf(const protocol::CreateSessionRequest& request) {
  return request.image ? protocol::kContainerRuntime : protocol::kProcessRuntime;
}

// A start that failed because of the session itself (its image is missing and may not be
// pulled, the engine refused its command) ends it: no other agent would do better. One
// that failed because of this agent (a plugin, the limits, a spawn) is a refusal.
bool failsTheSession(const Error& error) {
  return error.code == ErrorCode::InvalidArgument || error.code == ErrorCode::NotFound;
}

}  // namespace

// What the slow, unlocked part of a start produced.
struct SessionLifecycle::Prepared {
  protocol::SessionOwner owner;
  std::vector<std::pair<std::shared_ptr<AcceleratorPlugin>, protocol::DeviceAllocation>> plugins;  // prepared
  Isolation isolation;
  std::vector<protocol::ServicePort> services;  // with the ports they listen on
  std::string failure;  // empty when everything succeeded
};

SessionLifecycle::SessionLifecycle(SessionLifecycleOptions options, AgentLedger& ledger, SessionRecords& records,
                                   EventJournal& journal)
    : options_(std::move(options)), ledger_(ledger), records_(records), journal_(journal) {
  runtimes_ = options_.makeRuntimes(
      SessionCallbacks{[this](const std::string& id, const ExitStatus& status) { onExit(id, status); },
                       [this](const std::string& id, std::int64_t pid) { onStarted(id, pid); }});
}

SessionLifecycle::~SessionLifecycle() { runtimes_.clear(); }

void SessionLifecycle::recover() {
  std::vector<std::pair<std::string, SessionRuntime*>> toAdopt;
  std::set<std::string> active;
  {
    auto state = ledger_.lock();
    for (SessionRecord& session : records_.loadAll(options_.log)) {
      const std::string id = session.info.id;
      if (holdsResources(session.info.state)) {
        restoreAllocation(*state, session);
        holdServicePorts(session);
        toAdopt.emplace_back(id, runtimeOf(session.request));
        active.insert(id);
      }
      state->sessions.emplace(id, std::move(session));
    }
  }
  for (const auto& [id, runtime] : toAdopt) {
    if (runtime == nullptr) {
      // runtime.kinds changed across the restart: nothing here can watch it any more.
      onExit(id, ExitStatus{-1, std::nullopt, nowMillis(), false,
                            "the agent restarted without the runtime this session ran in (runtime.kinds)"});
      continue;
    }
    if (auto adopted = runtime->adopt(id, records_.dirOf(id)); !adopted) {
      options_.log(LogLevel::Error, "agent", "session " + id + ": " + adopted.error().message);
    }
  }
  for (const auto& runtime : runtimes_) runtime->sweep(active);
  if (!toAdopt.empty()) {
    options_.log(LogLevel::Info, "agent", "recovered " + std::to_string(toAdopt.size()) + " session(s) from " +
                                              records_.stateDir().string());
  }
}

AgentResult<SessionRuntime*> SessionLifecycle::runtimeFor(const protocol::CreateSessionRequest& request) const {
  const std::string kind = runtimeKindOf(request);
  SessionRuntime* runtime = runtimeOf(request);
  if (runtime == nullptr) {
    return Failure{AgentError{AgentErrorKind::RuntimeUnavailable,
                              "agent " + options_.agentId + " has no " + kind + " runtime (runtime.kinds)"}};
  }
  if (const protocol::RuntimeReport report = runtime->report(); !report.available) {
    return Failure{AgentError{AgentErrorKind::RuntimeUnavailable,
                              "the " + kind + " runtime of agent " + options_.agentId + " is unavailable: " + report.reason}};
  }
  return runtime;
}

SessionRuntime* SessionLifecycle::runtimeOf(const protocol::CreateSessionRequest& request) const {
  const std::string kind = runtimeKindOf(request);
  for (const auto& runtime : runtimes_) {
    if (runtime->kind() == kind) return runtime.get();
  }
  return nullptr;
}

std::vector<protocol::RuntimeReport> SessionLifecycle::runtimeReports() const {
  std::vector<protocol::RuntimeReport> out;
  for (const auto& runtime : runtimes_) out.push_back(runtime->report());
  return out;
}

std::vector<protocol::ImageSummary> SessionLifecycle::images() const {
  std::vector<protocol::ImageSummary> out;
  for (const auto& runtime : runtimes_) {
    auto images = runtime->images();
    out.insert(out.end(), images.begin(), images.end());
  }
  return out;
}

void SessionLifecycle::refreshRuntimes() {
  for (const auto& runtime : runtimes_) runtime->refresh();
}

// The session runs on: whatever happens to its devices, it is released when it ends
// (its plugins, its limits and cgroups), so it never again counts as released here.
void SessionLifecycle::restoreAllocation(AgentState& state, SessionRecord& session) {
  session.released = false;
  std::vector<std::string> notes;
  auto allocation = state.inventory.restore(session.info.allocation, notes);
  for (const auto& note : notes) options_.log(LogLevel::Warning, "agent", "session " + session.info.id + ": " + note);
  if (!allocation) {
    options_.log(LogLevel::Error, "agent", "session " + session.info.id +
                                               ": its recorded allocation no longer fits this node (" +
                                               allocation.error().message + "); its devices are not restored");
    return;
  }
  session.allocation = std::move(*allocation);
}

AgentResult<std::pair<protocol::SessionInfo, bool>> SessionLifecycle::create(const protocol::CreateSessionRequest& request) {
  auto state = ledger_.lock();
  if (auto existing = state->sessions.find(request.sessionId); existing != state->sessions.end()) {
    return std::pair{existing->second.info, false};
  }
  auto owner = checkOwner(request.owner, options_.identity);
  if (!owner) return Failure{owner.error()};
  auto runtime = runtimeFor(request);
  if (!runtime) return Failure{runtime.error()};
  auto devices = reserve(state, request);
  if (!devices) return Failure{devices.error()};
  // Which plugin gets which part, decided now: a reload may change the plugins meanwhile.
  std::vector<std::pair<std::shared_ptr<AcceleratorPlugin>, protocol::DeviceAllocation>> parts;
  for (auto& plugin : state->activePlugins()) {
    auto part = state->partOf(plugin.get(), *devices);
    parts.emplace_back(std::move(plugin), std::move(part));
  }
  state.unlock();

  // Plugins and the runtime's start are slow and may block: outside the lock.
  Prepared prepared = prepare(request, *owner, **runtime, std::move(parts));
  state.lock();
  keepPrepared(state, request.sessionId, prepared);  // before start: an exit may come at once
  state.unlock();
  const Result<std::int64_t> started = launch(request, **runtime, prepared);
  state.lock();
  return settleStart(state, request.sessionId, started);
}

// Allocates and records the session as Preparing; the record is on disk before anything
// runs, so a restart knows what is held.
AgentResult<protocol::DeviceAllocation> SessionLifecycle::reserve(Access& state,
                                                                  const protocol::CreateSessionRequest& request) {
  NodeInventory& inventory = state->inventory;
  for (const auto& [slot, amount] : request.slots) {
    if (!amount.isZero() && inventory.slotTypes().count(slot.str()) == 0) {
      return Failure{AgentError{AgentErrorKind::UnknownSlot, "slot '" + slot.str() +
                                                                 "' is not offered by any plugin on agent " +
                                                                 options_.agentId}};
    }
  }
  auto allocation = inventory.allocator().allocate(request.slots);
  if (!allocation) return Failure{allocationRefusal(allocation.error())};

  SessionRecord session;
  session.request = request;
  session.allocation = std::move(*allocation);
  session.info.id = request.sessionId;
  session.info.state = SessionState::Preparing;
  session.info.allocation = inventory.describe(session.allocation);
  if (auto saved = records_.save(session); !saved) {
    (void)inventory.allocator().free(session.allocation);
    return Failure{AgentError{AgentErrorKind::StateDirUnwritable, saved.error().message}};
  }
  protocol::DeviceAllocation devices = session.info.allocation;
  state->sessions.emplace(request.sessionId, std::move(session));
  ledger_.bumpDigest();
  return devices;
}

SessionLifecycle::Prepared SessionLifecycle::prepare(
    const protocol::CreateSessionRequest& request, const protocol::SessionOwner& owner, SessionRuntime& runtime,
    std::vector<std::pair<std::shared_ptr<AcceleratorPlugin>, protocol::DeviceAllocation>> parts) {
  Prepared out;
  out.owner = owner;
  std::vector<PluginPayload> payloads;
  for (auto& [plugin, part] : parts) {
    auto resources = plugin->prepareSession(request.sessionId, part);
    if (!resources) {
      out.failure = "plugin " + plugin->identity().name + ": " + resources.error().message;
      break;
    }
    payloads.push_back({plugin->identity().name, std::move(*resources)});
    out.plugins.emplace_back(std::move(plugin), std::move(part));
  }
  if (!out.failure.empty()) return out;
  auto isolation = assembleIsolation(payloads, options_.isolation, runtime.fencesDevices());
  if (!isolation) {
    out.failure = isolation.error().message;
    return out;
  }
  out.isolation = std::move(*isolation);
  auto folders = folderBinds(request.mounts, options_.isolation.folderMountRoots);
  if (!folders) {
    out.failure = folders.error().message;
    return out;
  }
  for (const BindMount& folder : *folders) {
    out.isolation.sandbox.mounts.push_back(folder);
    out.isolation.containerMounts.push_back(folder);
  }
  out.isolation.sandbox.workDir = workDirOf(request.sessionId);
  if (auto made = makeWorkDir(out.isolation.sandbox.workDir, owner.uid, owner.gid); !made) {
    out.failure = made.error().message;
    return out;
  }
  auto services = assignServicePorts(request, runtime);
  if (!services) {
    out.failure = services.error().message;
    return out;
  }
  out.services = std::move(*services);
  return out;
}

// A process session's services listen on ports this agent hands out; a container's on
// their own.
Result<std::vector<protocol::ServicePort>> SessionLifecycle::assignServicePorts(
    const protocol::CreateSessionRequest& request, const SessionRuntime& runtime) {
  std::vector<protocol::ServicePort> services = request.servicePorts;
  if (services.empty() || !runtime.allocatesServicePorts()) return services;
  if (options_.servicePorts == nullptr) return fail(ErrorCode::Internal, "this agent hands out no service ports");
  auto ports = options_.servicePorts->take(services.size());
  if (!ports) return Failure{ports.error()};
  for (std::size_t i = 0; i < services.size(); ++i) services[i].port = (*ports)[i];
  return services;
}

// The loopback ports a session's services hold: none unless its runtime hands them out.
std::vector<std::uint16_t> SessionLifecycle::allocatedServicePorts(const SessionRecord& session) const {
  const SessionRuntime* runtime = runtimeOf(session.request);
  std::vector<std::uint16_t> ports;
  if (options_.servicePorts == nullptr || runtime == nullptr || !runtime->allocatesServicePorts()) return ports;
  for (const auto& service : session.info.services) ports.push_back(service.port);
  return ports;
}

void SessionLifecycle::holdServicePorts(const SessionRecord& session) {
  if (auto ports = allocatedServicePorts(session); !ports.empty()) options_.servicePorts->hold(ports);
}

void SessionLifecycle::giveBackServicePorts(const SessionRecord& session) {
  if (auto ports = allocatedServicePorts(session); !ports.empty()) options_.servicePorts->giveBack(ports);
}

std::filesystem::path SessionLifecycle::workDirOf(const std::string& id) const { return records_.dirOf(id) / "work"; }

void SessionLifecycle::keepPrepared(Access& state, const std::string& id, const Prepared& prepared) {
  std::vector<std::string> keys;
  for (const auto& [plugin, part] : prepared.plugins) {
    if (state->inventory.offers(plugin.get())) {
      keys.push_back(plugin->identity().key);
    } else if (auto released = plugin->releaseSession(id, part); !released) {
      // Unloaded by a reload meanwhile (it held none of this session's devices): undone now.
      options_.log(LogLevel::Warning, "agent", "session " + id + ": " + released.error().message);
    }
  }
  SessionRecord& session = state->sessions.at(id);
  session.preparedPlugins = std::move(keys);
  session.info.services = prepared.services;
}

Result<std::int64_t> SessionLifecycle::launch(const protocol::CreateSessionRequest& request, SessionRuntime& runtime,
                                              Prepared& prepared) {
  if (!prepared.failure.empty()) return fail(ErrorCode::Internal, prepared.failure);
  // The request's variables, then the plugins', then what the agent vouches for.
  std::map<std::string, std::string> env = request.env;
  for (const auto& [name, value] : prepared.isolation.env) env[name] = value;
  env["BAI_SESSION_ID"] = request.sessionId;
  env["BAI_RESOURCE_SLOTS"] = request.slots.toJson();
  env["HOME"] = kSessionHome;
  env["USER"] = prepared.owner.name;
  env["LOGNAME"] = prepared.owner.name;
  for (const auto& service : prepared.services) env[protocol::servicePortEnvName(service.name)] = std::to_string(service.port);
  LaunchSpec spec{request.sessionId, records_.dirOf(request.sessionId), request.command, std::move(env),
                  prepared.owner, std::move(prepared.isolation), request.image, request.pullPolicy};
  spec.openStdin = request.openStdin;
  spec.tty = request.tty;
  spec.replayBytes = options_.replayBytes;
  return runtime.start(spec);
}

AgentResult<std::pair<protocol::SessionInfo, bool>> SessionLifecycle::settleStart(Access& state, const std::string& id,
                                                                                  const Result<std::int64_t>& started) {
  SessionRecord& stored = state->sessions.at(id);
  if (!started) {
    stored.info.state = SessionState::Failed;
    stored.info.reason = started.error().message;
    stored.info.endedAtMillis = nowMillis();
    ++sessionsFailed_;
    const std::string reason = stored.info.reason;
    const bool journalled = journalEvent(protocol::EventKind::Failed, id, std::nullopt, reason);
    UnloadedPlugins unloaded = release(state, stored);
    const protocol::SessionInfo info = stored.info;
    state.unlock();
    unloaded.clear();
    if (journalled && options_.eventJournalled) options_.eventJournalled();
    if (failsTheSession(started.error())) return std::pair{info, true};
    return Failure{AgentError{AgentErrorKind::SessionStartFailed, reason}};
  }
  if (*started == kStillPreparing) {  // its image is being pulled: onStarted or onExit follows
    const protocol::SessionInfo info = stored.info;
    return std::pair{info, true};
  }
  (void)markRunning(stored, *started);  // unless it exited already
  records_.update(stored, options_.log);
  ++sessionsStarted_;
  ledger_.bumpDigest();
  const protocol::SessionInfo info = stored.info;
  state.unlock();
  recordEvent(protocol::EventKind::Started, id, std::nullopt, "");
  return std::pair{info, true};
}

bool SessionLifecycle::markRunning(SessionRecord& session, std::int64_t pid) {
  if (session.info.state != SessionState::Preparing) return false;
  session.info.state = SessionState::Running;
  session.info.pid = pid;
  session.info.startedAtMillis = nowMillis();
  return true;
}

void SessionLifecycle::onStarted(const std::string& id, std::int64_t pid) {
  auto state = ledger_.lock();
  auto it = state->sessions.find(id);
  if (it == state->sessions.end() || !markRunning(it->second, pid)) return;
  records_.update(it->second, options_.log);
  ++sessionsStarted_;
  ledger_.bumpDigest();
  state.unlock();
  recordEvent(protocol::EventKind::Started, id, std::nullopt, "");
}

void SessionLifecycle::onExit(const std::string& id, const ExitStatus& status) {
  auto state = ledger_.lock();
  auto it = state->sessions.find(id);
  if (it == state->sessions.end()) return;
  SessionRecord& session = it->second;
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
  // Journalled before the record says it ended: an agent killed in between adopts the
  // session again and reports its end twice (the manager ignores the second), never not at all.
  const bool journalled =
      session.info.state == SessionState::Failed
          ? journalEvent(protocol::EventKind::Failed, id,
                         status.recorded ? std::optional<int>(status.exitCode) : std::nullopt, session.info.reason)
          : journalEvent(protocol::EventKind::Exited, id, status.exitCode, "");
  UnloadedPlugins unloaded = release(state, session);
  state.unlock();
  unloaded.clear();  // the last session of a draining plugin ended: destroyed here, unlocked
  if (journalled && options_.eventJournalled) options_.eventJournalled();
}

UnloadedPlugins SessionLifecycle::release(Access& state, SessionRecord& session) {
  freeResources(*state, session);
  records_.update(session, options_.log);
  ledger_.bumpDigest();
  return options_.afterRelease ? options_.afterRelease(*state) : UnloadedPlugins{};
}

void SessionLifecycle::freeResources(AgentState& state, SessionRecord& session) {
  if (session.released) return;
  session.released = true;
  const std::string& id = session.info.id;
  for (const auto& key : session.preparedPlugins) {
    AcceleratorPlugin* plugin = state.inventory.host().find(key);
    if (plugin == nullptr) continue;
    if (auto released = plugin->releaseSession(id, state.partOf(plugin, session.info.allocation)); !released) {
      options_.log(LogLevel::Warning, "agent", "session " + id + ": " + released.error().message);
    }
  }
  if (auto freed = state.inventory.allocator().free(session.allocation); !freed) {
    options_.log(LogLevel::Error, "agent", "session " + id + ": freeing its allocation: " + freed.error().message);
  }
  if (SessionRuntime* runtime = runtimeOf(session.request)) {
    if (auto released = runtime->release(id); !released) {
      options_.log(LogLevel::Warning, "agent", "session " + id + ": " + released.error().message);
    }
  }
  giveBackServicePorts(session);
  if (auto removed = removeWorkDir(workDirOf(id)); !removed) {
    options_.log(LogLevel::Warning, "agent", "session " + id + ": " + removed.error().message);
  }
}

void SessionLifecycle::recordEvent(protocol::EventKind kind, const std::string& id, std::optional<int> exitCode,
                                   std::string reason) {
  if (journalEvent(kind, id, exitCode, std::move(reason)) && options_.eventJournalled) options_.eventJournalled();
}

bool SessionLifecycle::journalEvent(protocol::EventKind kind, const std::string& id, std::optional<int> exitCode,
                                    std::string reason) {
  auto appended = journal_.append(protocol::SessionEvent{0, id, kind, exitCode, std::move(reason), nowMillis()});
  if (!appended) {
    options_.log(LogLevel::Error, "agent", "session " + id + ": cannot journal its event: " + appended.error().message);
  }
  return appended.ok();
}

AgentResult<protocol::SessionInfo> SessionLifecycle::destroy(const std::string& id) {
  auto state = ledger_.lock();
  auto it = state->sessions.find(id);
  if (it == state->sessions.end()) return Failure{unknownSession(id)};
  SessionRecord& session = it->second;
  if (!holdsResources(session.info.state)) return session.info;  // already over: destroying twice is not an error
  session.destroyRequested = true;
  records_.update(session, options_.log);
  SessionRuntime* runtime = runtimeOf(session.request);
  state.unlock();
  if (runtime == nullptr) {
    return Failure{AgentError{AgentErrorKind::DestroyFailed, "session " + id + " runs in a runtime this agent no longer has"}};
  }
  if (auto destroyed = runtime->destroy(id, options_.destroyGrace); !destroyed) {
    return Failure{AgentError{AgentErrorKind::DestroyFailed, destroyed.error().message}};
  }
  state.lock();
  return state->sessions.at(id).info;
}

AgentResult<protocol::SessionInfo> SessionLifecycle::session(const std::string& id) const {
  auto state = ledger_.lock();
  auto it = state->sessions.find(id);
  if (it == state->sessions.end()) return Failure{unknownSession(id)};
  return it->second.info;
}

std::vector<protocol::SessionInfo> SessionLifecycle::sessions() const {
  auto state = ledger_.lock();
  std::vector<protocol::SessionInfo> out;
  for (const auto& [id, session] : state->sessions) out.push_back(session.info);
  return out;
}

AgentResult<LogPage> SessionLifecycle::logs(const std::string& id, const std::string& stream, std::uint64_t offset,
                                            std::uint64_t limit, std::optional<std::uint64_t> tail) const {
  if (stream != "stdout" && stream != "stderr") {
    return Failure{AgentError{AgentErrorKind::InvalidLogStream, "stream must be stdout or stderr, not '" + stream + "'"}};
  }
  if (auto known = session(id); !known) return Failure{known.error()};
  return records_.readLog(id, stream, offset, limit, tail);
}

AgentResult<std::unique_ptr<SessionStream>> SessionLifecycle::openStream(const std::string& id, const StreamTarget& target) {
  SessionRuntime* runtime = nullptr;
  std::vector<protocol::ServicePort> services;
  bool openStdin = false;
  {
    auto state = ledger_.lock();
    auto it = state->sessions.find(id);
    if (it == state->sessions.end()) return Failure{AgentError{AgentErrorKind::UnknownSession, id}};
    const SessionRecord& session = it->second;
    if (session.info.state != SessionState::Running) {
      return Failure{AgentError{AgentErrorKind::SessionNotRunning,
                                "session " + id + " is " + protocol::sessionStateName(session.info.state)}};
    }
    runtime = runtimeOf(session.request);
    services = session.info.services;
    openStdin = session.request.openStdin;
  }
  if (runtime == nullptr) return Failure{AgentError{AgentErrorKind::SessionNotRunning, "session " + id + " has no runtime here"}};
  auto notRunning = [&](const Error& error) { return Failure{AgentError{AgentErrorKind::SessionNotRunning, error.message}}; };
  const std::filesystem::path dir = records_.dirOf(id);
  switch (target.kind) {
    case StreamTarget::Kind::Console: {
      if (!openStdin) {
        return Failure{AgentError{AgentErrorKind::NotInteractive,
                                  "session " + id + " was started without stdin (create it with stdin or tty to attach)"}};
      }
      auto console = runtime->attach(id, dir, target.size);
      if (!console) return notRunning(console.error());
      return std::move(*console);
    }
    case StreamTarget::Kind::Exec: {
      if (target.exec.command.empty()) return Failure{AgentError{AgentErrorKind::InvalidStream, "an exec needs a command"}};
      auto exec = runtime->exec(id, dir, target.exec);
      if (!exec) return notRunning(exec.error());
      return std::move(*exec);
    }
    case StreamTarget::Kind::Service: {
      auto endpoint = runtime->serviceEndpoint(id, services, target.service);
      if (!endpoint) {
        const auto kind = endpoint.error().code == ErrorCode::NotFound ? AgentErrorKind::NoSuchService
                                                                        : AgentErrorKind::ServiceUnreachable;
        return Failure{AgentError{kind, endpoint.error().message}};
      }
      auto connection = connectTcpStream(endpoint->host, endpoint->port, std::chrono::seconds(5));
      if (!connection) {
        return Failure{AgentError{AgentErrorKind::ServiceUnreachable,
                                  "service '" + target.service + "' of session " + id + ": " + connection.error().message}};
      }
      return std::move(*connection);
    }
  }
  return Failure{AgentError{AgentErrorKind::InvalidStream, "unknown stream"}};
}

}  // namespace bai::core
