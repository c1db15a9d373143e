#include "manager.hpp"

#include "auth/keypair_generator.hpp"
#include "http_client.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <random>

namespace bai::manager {

std::int64_t nowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Failure<ApiFailure> apiFailure(int status, std::string type, std::string title, std::string detail) {
  return Failure<ApiFailure>{ApiFailure{status, {std::move(type), std::move(title), std::move(detail)}}};
}

namespace {

ApiFailure storeFailure(const Error& error) {
  return ApiFailure{500, {"store-error", "The cluster state could not be saved", error.message}};
}

std::string newSessionId() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 16; ++i) id += hex[random() & 15];
  return id;
}

}  // namespace

Manager::Manager(ManagerSettings settings, std::unique_ptr<Store> store, std::string clusterToken, LogSink log)
    : settings_(std::move(settings)),
      store_(std::move(store)),
      clusterToken_(std::move(clusterToken)),
      threshold_(std::make_shared<LogThreshold>(settings_.logLevel)),
      log_(thresholdLogSink(std::move(log), threshold_)),
      agentClient_(clusterToken_, settings_.agentRpcTimeout, settings_.agentCaFile) {}

Result<std::unique_ptr<Manager>> Manager::start(ManagerSettings settings, std::unique_ptr<Store> store,
                                                std::string clusterToken, LogSink log) {
  std::unique_ptr<Manager> manager(new Manager(std::move(settings), std::move(store), std::move(clusterToken), std::move(log)));
  std::vector<std::filesystem::path> dirs(manager->settings_.policyPath.begin(), manager->settings_.policyPath.end());
  auto catalog = PolicyCatalog::load(dirs, manager->log_);
  if (!catalog) return fail(catalog.error().code, "policies: " + catalog.error().message);
  manager->policies_ = std::make_unique<PolicyCatalog>(std::move(*catalog));
  // Said once at start: otherwise only each pending session's reason would tell.
  for (const auto& [kind, name] : {std::pair{PolicyKind::Sequencer, manager->settings_.sequencer},
                                   std::pair{PolicyKind::Selector, manager->settings_.selector}}) {
    const auto known = manager->policies_->names(kind);
    if (std::find(known.begin(), known.end(), name) != known.end()) continue;
    std::string where;
    for (const auto& dir : dirs) where += (where.empty() ? "" : ", ") + dir.string();
    manager->log(LogLevel::Error, std::string("the default ") + (kind == PolicyKind::Sequencer ? "sequencer" : "selector") +
                                      " '" + name + "' is not installed in " + (where.empty() ? "(no policy path)" : where) +
                                      ": sessions of groups without their own policies will wait");
  }
  if (auto recovered = manager->recover(); !recovered) return fail(recovered.error().code, recovered.error().message);
  manager->scheduler_ = std::thread([m = manager.get()] { m->schedulerLoop(); });
  manager->waiterThread_ = std::thread([m = manager.get()] { m->waiterLoop(); });
  manager->stateWriter_ = std::thread([m = manager.get()] { m->stateWriterLoop(); });
  for (int i = 0; i < manager->settings_.dispatchThreads; ++i) {
    manager->dispatchers_.emplace_back([m = manager.get()] { m->dispatchLoop(); });
  }
  return manager;
}

Manager::~Manager() { shutdown(); }

void Manager::shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  schedulerWake_.notify_all();
  dispatchWake_.notify_all();
  stateWriterWake_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  if (stateWriter_.joinable()) stateWriter_.join();  // after saving what was queued
  for (auto& thread : dispatchers_) {
    if (thread.joinable()) thread.join();
  }
  dispatchers_.clear();
  // Last, so that it answers every long poll, including those ended by the threads above.
  {
    std::lock_guard<std::mutex> lock(mutex_);
    waitersStopping_ = true;
  }
  waiterWake_.notify_all();
  if (waiterThread_.joinable()) waiterThread_.join();
}

void Manager::log(LogLevel level, const std::string& message) const {
  if (log_) log_(level, "manager", message);
}

const std::vector<std::string>& managerReloadableKeys() {
  static const std::vector<std::string> keys = {"manager.log-level", "manager.max-wait", "agents.heartbeat-timeout",
                                                "scheduler.period", "scheduler.candidate-window"};
  return keys;
}

// Every key applied here is read under mutex_ by the threads that use it, so a change
// takes effect at their next look: the scheduler's next wait, the next long poll.
Result<ReloadReport> Manager::reload(const config::Config& running, const config::Config& next) {
  auto resolved = managerSettings(next);
  if (!resolved) return Failure{resolved.error()};
  ReloadReport report;
  const auto& reloadable = managerReloadableKeys();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::string& key : next.changedKeys(running)) {
      if (std::find(reloadable.begin(), reloadable.end(), key) == reloadable.end()) {
        report.needsRestart.push_back(key);
        continue;
      }
      if (key == "manager.log-level") {
        settings_.logLevel = resolved->logLevel;
        threshold_->set(resolved->logLevel);
      } else if (key == "manager.max-wait") {
        settings_.maxWait = resolved->maxWait;
      } else if (key == "agents.heartbeat-timeout") {
        settings_.heartbeatTimeout = resolved->heartbeatTimeout;
      } else if (key == "scheduler.period") {
        settings_.schedulerPeriod = resolved->schedulerPeriod;
      } else if (key == "scheduler.candidate-window") {
        settings_.candidateWindow = resolved->candidateWindow;
      }
      report.applied.push_back(key);
    }
    schedulerDirty_ = true;  // the next round runs with the new period and window
  }
  schedulerWake_.notify_all();
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

// Loads the state a previous run left and resumes what it was doing: reservations are
// recounted from the allocations, placements in flight are retried with the same id
// (the agent's create is idempotent), stops in flight are sent again.
Result<void> Manager::recover() {
  std::vector<AgentRecord> agents;
  std::vector<SessionRecord> sessions;
  std::map<std::string, ResourceSlot> usedByAgent;
  auto loaded = store_->read([&](StoreTransaction& tx) -> Result<void> {
    auto types = tx.slotTypes();
    if (!types) return fail(types.error().code, types.error().message);
    registry_ = SlotRegistry(*types);
    auto keys = tx.keypairs();
    if (!keys) return fail(keys.error().code, keys.error().message);
    for (auto& key : *keys) keypairs_[key.accessKey] = key;
    if (auto admin = loadAdminRecords(tx); !admin) return admin;
    auto rows = tx.agents();
    if (!rows) return fail(rows.error().code, rows.error().message);
    agents = std::move(*rows);
    for (const auto& agent : agents) {
      auto allocations = tx.allocations(agent.id);
      if (!allocations) return fail(allocations.error().code, allocations.error().message);
      for (const auto& allocation : *allocations) {
        if (!allocation.released) usedByAgent[agent.id] = usedByAgent[agent.id] + allocation.slots;
      }
    }
    SessionFilter filter;
    filter.activeOnly = true;
    auto active = tx.sessions(filter);
    if (!active) return fail(active.error().code, active.error().message);
    sessions = std::move(*active);
    return {};
  });
  if (!loaded) return fail(loaded.error().code, "loading the cluster state from " + store_->describe() + ": " + loaded.error().message);

  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& record : agents) {
    AgentView view;
    // Every agent gets a full timeout to report before it is called lost.
    view.lastSeen = now;
    const ResourceSlot& counted = usedByAgent[record.id];
    bool mismatch = false;
    for (auto& [slot, figures] : record.slots) {
      if (figures.used != counted.get(slot)) mismatch = true;
      figures.used = counted.get(slot);
    }
    if (mismatch) {
      log(LogLevel::Warning, "agent " + record.id + ": used figures disagreed with its reservations; recounted");
      if (auto fixed = store_->write([&](StoreTransaction& tx) { return tx.setAgentUsed(record.id, counted); }); !fixed) {
        return fail(fixed.error().code, fixed.error().message);
      }
    }
    view.record = std::move(record);
    dirtyAgents_.insert(view.record.id);  // placeable at once, not only after its next report
    agents_[view.record.id] = std::move(view);
  }
  int retried = 0;
  for (auto& session : sessions) {
    const std::string id = session.id;
    if (session.status == SessionStatus::Scheduled || session.status == SessionStatus::Preparing) {
      if (auto agent = agents_.find(session.agentId); agent != agents_.end()) {
        agent->second.unseenPlacements[id] = session.requested;
      }
    }
    active_[id] = std::move(session);
    const SessionStatus status = active_[id].status;
    if (status == SessionStatus::Scheduled) {
      ++retried;
      inFlight_.insert(id);
      jobs_.push_back([this, id] { startOnAgent(id); });
    } else if (status == SessionStatus::Terminating) {
      inFlight_.insert(id);
      jobs_.push_back([this, id] { destroyOnAgent(id); });
    }
  }
  log(LogLevel::Info, "state from " + store_->describe() + ": " + std::to_string(agents_.size()) + " agents, " +
                          std::to_string(active_.size()) + " active sessions, " + std::to_string(retried) +
                          " placements to retry");
  return {};
}

Result<void> Manager::commit(Transition t) {
  std::map<std::string, ResourceSlot> newUsed;  // agent -> used after this transaction
  auto written = store_->write([&](StoreTransaction& tx) -> Result<void> {
    if (t.extra) {
      if (auto done = t.extra(tx); !done) return done;
    }
    std::map<std::string, std::optional<AgentRecord>> rows;  // each agent read once per transaction
    auto rowOf = [&](const std::string& agentId) -> Result<const std::optional<AgentRecord>*> {
      if (auto it = rows.find(agentId); it != rows.end()) return &it->second;
      auto row = tx.agent(agentId);
      if (!row) return fail(row.error().code, row.error().message);
      return &rows.emplace(agentId, std::move(*row)).first->second;
    };
    auto usedOf = [&](const std::string& agentId) -> Result<ResourceSlot*> {
      auto it = newUsed.find(agentId);
      if (it != newUsed.end()) return &it->second;
      auto row = rowOf(agentId);
      if (!row) return fail(row.error().code, row.error().message);
      if (!(*row)->has_value()) return fail(ErrorCode::NotFound, "agent '" + agentId + "' is not registered");
      ResourceSlot used;
      for (const auto& [slot, figures] : (**row)->slots) {
        if (auto name = SlotName::parse(slot)) used.set(*name, figures.used);
      }
      return &newUsed.emplace(agentId, used).first->second;
    };
    // Reserving is checked here, against the stored figures, under the write lock: two
    // managers (or a retry after a crash) can never push an agent past its capacity.
    for (const auto& id : t.reserve) {
      auto session = std::find_if(t.sessions.begin(), t.sessions.end(), [&](const auto& s) { return s.id == id; });
      if (session == t.sessions.end()) return fail(ErrorCode::Internal, "reservation without its session");
      auto row = rowOf(session->agentId);
      if (!row) return fail(row.error().code, row.error().message);
      if (!(*row)->has_value() || (**row)->status != AgentStatus::Alive) {
        return fail(ErrorCode::Conflict, "agent '" + session->agentId + "' is not alive");
      }
      const AgentRecord& agent = **(*row);
      auto used = usedOf(session->agentId);
      if (!used) return fail(used.error().code, used.error().message);
      for (const auto& [slot, amount] : session->requested) {
        auto figures = agent.slots.find(slot.str());
        const Quantity capacity = figures == agent.slots.end() ? Quantity() : figures->second.capacity;
        if ((*used)->get(slot) + amount > capacity) {
          return fail(ErrorCode::Conflict, "agent '" + session->agentId + "' has no " + slot.str() + " " +
                                               amount.toString() + " free");
        }
      }
      **used = **used + session->requested;
      if (auto inserted = tx.insertAllocation({id, session->agentId, session->requested, false}); !inserted) return inserted;
    }
    auto changeAllocation = [&](const std::string& id, int action) -> Result<void> {  // 0 release, 1 suspend, 2 resume
      auto allocation = tx.allocation(id);
      if (!allocation) return fail(allocation.error().code, allocation.error().message);
      if (!allocation->has_value()) return {};
      const AllocationRecord& a = **allocation;
      auto used = usedOf(a.agentId);
      if (!used) return {};  // the agent row is gone: nothing to count against
      if (action == 2 && a.released) **used = **used + a.slots;
      if (action != 2 && !a.released) {
        ResourceSlot after;
        for (const auto& [slot, value] : **used) after.set(slot, value < a.slots.get(slot) ? Quantity() : value - a.slots.get(slot));
        **used = after;
      }
      if (action == 0) return tx.deleteAllocation(id);
      return tx.setAllocationReleased(id, action == 1);
    };
    for (const auto& id : t.release) {
      if (auto done = changeAllocation(id, 0); !done) return done;
    }
    for (const auto& id : t.suspend) {
      if (auto done = changeAllocation(id, 1); !done) return done;
    }
    for (const auto& id : t.resume) {
      if (auto done = changeAllocation(id, 2); !done) return done;
    }
    for (const auto& [agentId, used] : newUsed) {
      if (auto done = tx.setAgentUsed(agentId, used); !done) return done;
    }
    for (const auto& session : t.sessions) {
      if (auto done = tx.updateSession(session); !done) return done;
    }
    return {};
  });
  if (!written) {
    if (written.error().code != ErrorCode::Conflict) {
      metrics_.storeErrors.fetch_add(1, std::memory_order_relaxed);
      log(LogLevel::Error, "store: " + written.error().message);
    }
    return written;
  }
  for (const auto& [agentId, used] : newUsed) {
    dirtyAgents_.insert(agentId);
    auto agent = agents_.find(agentId);
    if (agent == agents_.end()) continue;
    for (auto& [slot, figures] : agent->second.record.slots) figures.used = used.get(slot);
    for (const auto& [slot, value] : used) agent->second.record.slots[slot.str()].used = value;
  }
  for (const auto& id : t.reserve) {
    const auto& session = *std::find_if(t.sessions.begin(), t.sessions.end(), [&](const auto& s) { return s.id == id; });
    if (auto agent = agents_.find(session.agentId); agent != agents_.end()) {
      agent->second.unseenPlacements[id] = session.requested;
    }
  }
  for (const auto& ids : {t.release, t.suspend}) {
    for (const auto& id : ids) {
      auto session = active_.find(id);
      if (session == active_.end()) continue;
      if (auto agent = agents_.find(session->second.agentId); agent != agents_.end()) agent->second.unseenPlacements.erase(id);
    }
  }
  for (auto& session : t.sessions) {
    if (isFinal(session.status)) {
      active_.erase(session.id);
      pendingReasons_.erase(session.id);
      refusals_.erase(session.id);
      retryAt_.erase(session.id);
      finished(session);
    } else {
      active_[session.id] = std::move(session);
    }
  }
  return {};
}

void Manager::finished(const SessionRecord& session) {
  auto [first, last] = waiters_.equal_range(session.id);
  if (first == last) return;
  for (auto it = first; it != last; ++it) answers_.emplace_back(std::move(it->second.done), session);
  waiters_.erase(first, last);
  waiterWake_.notify_one();
}

void Manager::endSession(SessionRecord session, SessionStatus status, std::string reason, std::optional<int> exitCode,
                         std::int64_t endedAtMillis) {
  session.status = status;
  session.statusReason = std::move(reason);
  if (exitCode) session.exitCode = exitCode;
  session.endedAtMillis = endedAtMillis != 0 ? endedAtMillis : nowMillis();
  Transition t;
  t.sessions.push_back(std::move(session));
  t.release.push_back(t.sessions.back().id);
  (void)commit(std::move(t));  // a store failure is logged and counted; the session stays as it was
  notifyScheduler();
}

bool Manager::visibleTo(const Caller& caller, const SessionRecord& session) const {
  return caller.admin || session.owner == caller.accessKey;
}

void Manager::notifyScheduler() {
  schedulerDirty_ = true;
  schedulerWake_.notify_one();
}

// ---- Sessions ------------------------------------------------------------------------

ApiResult<SessionRecord> Manager::createSession(const Caller& caller, const NewSession& request) {
  if (request.command.empty() || request.command[0].empty()) {
    return apiFailure(400, "invalid-request", "Invalid session", "command must be a non-empty array of strings");
  }
  if (request.name.size() > 256) return apiFailure(400, "invalid-request", "Invalid session", "name is longer than 256 characters");
  if (request.scalingGroup.empty()) return apiFailure(400, "invalid-request", "Invalid session", "scaling_group must not be empty");
  std::unique_lock<std::mutex> lock(mutex_);
  if (auto refused = admissionRefusalLocked(caller.accessKey, request.scalingGroup)) return Failure{*refused};
  for (const auto& [slot, amount] : request.resources) {
    if (registry_.find(slot) == nullptr) {
      return apiFailure(400, "unknown-slot", "Unknown resource slot",
                        "no agent of this cluster has ever offered slot '" + slot + "'");
    }
  }
  auto requested = ResourceSlot::parseUserInput(request.resources, registry_.table());
  if (!requested) return apiFailure(400, "invalid-resource", "Invalid resource amount", requested.error().message);
  // A request over the owner's whole quota would wait forever: refuse it now.
  if (const ResourcePolicyRecord* policy = policyOfOwnerLocked(caller.accessKey); policy != nullptr) {
    if (auto why = quotaShortfall(*policy, OwnerUsage{}, *requested)) {
      return apiFailure(400, "exceeds-quota", "Request exceeds the resource policy", "even with nothing else running: " + *why);
    }
  }
  for (const auto& [slot, amount] : *requested) {
    if (amount.isZero()) continue;
    const bool served = std::any_of(agents_.begin(), agents_.end(), [&](const auto& entry) {
      const AgentView& agent = entry.second;
      return agent.alive() && agent.record.scalingGroup == request.scalingGroup && !agent.capacity(slot.str()).isZero();
    });
    if (!served) {
      return apiFailure(400, "slot-not-served", "No agent serves this slot",
                        "no live agent of scaling group '" + request.scalingGroup + "' offers " + slot.str());
    }
  }
  SessionRecord session;
  session.id = newSessionId();
  session.name = request.name.empty() ? session.id : request.name;
  session.owner = caller.accessKey;
  session.scalingGroup = request.scalingGroup;
  session.command = request.command;
  session.env = request.env;
  for (const auto& [slot, amount] : *requested) {
    if (!amount.isZero()) session.requested.set(slot, amount);
  }
  session.status = SessionStatus::Pending;
  session.createdAtMillis = nowMillis();
  auto inserted = store_->write([&](StoreTransaction& tx) -> Result<void> {
    auto seq = tx.insertSession(session);
    if (!seq) return fail(seq.error().code, seq.error().message);
    session.enqueueSeq = *seq;
    return {};
  });
  if (!inserted) return Failure{storeFailure(inserted.error())};
  active_[session.id] = session;
  notifyScheduler();
  return session;
}

std::vector<SessionRecord> Manager::listSessions(const Caller& caller, std::optional<SessionStatus> status) {
  SessionFilter filter;
  filter.status = status;
  if (!caller.admin) filter.owner = caller.accessKey;
  std::vector<SessionRecord> out;
  auto read = store_->read([&](StoreTransaction& tx) -> Result<void> {
    auto rows = tx.sessions(filter);
    if (!rows) return fail(rows.error().code, rows.error().message);
    out = std::move(*rows);
    return {};
  });
  if (!read) log(LogLevel::Error, "listing sessions: " + read.error().message);
  return out;
}

ApiResult<SessionRecord> Manager::session(const Caller& caller, const std::string& id) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (auto it = active_.find(id); it != active_.end() && visibleTo(caller, it->second)) return it->second;
  }
  std::optional<SessionRecord> found;
  auto read = store_->read([&](StoreTransaction& tx) -> Result<void> {
    auto row = tx.session(id);
    if (!row) return fail(row.error().code, row.error().message);
    found = std::move(*row);
    return {};
  });
  if (!read) return Failure{storeFailure(read.error())};
  if (!found || !visibleTo(caller, *found)) return apiFailure(404, "unknown-session", "No such session", "no session '" + id + "'");
  return *found;
}

std::string Manager::pendingReason(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = pendingReasons_.find(id);
  return it == pendingReasons_.end() ? "" : it->second;
}

void Manager::waitForSession(const Caller& caller, const std::string& id, std::chrono::milliseconds wait,
                             SessionCallback done) {
  auto current = session(caller, id);
  if (!current || isFinal(current->status) || wait.count() <= 0) return done(std::move(current));
  std::unique_lock<std::mutex> lock(mutex_);
  if (!stopping_ && active_.count(id) != 0) {
    const auto limit = std::min<std::chrono::milliseconds>(wait, settings_.maxWait);
    waiters_.emplace(id, Waiter{caller, std::chrono::steady_clock::now() + limit, std::move(done)});
    waiterWake_.notify_one();
    return;
  }
  lock.unlock();
  done(session(caller, id));  // it ended between the two looks
}

// Answers long polls: those whose session ended (queued by finished()) and those whose
// wait ran out, always outside mutex_.
void Manager::waiterLoop() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    std::vector<std::pair<SessionCallback, ApiResult<SessionRecord>>> ready(std::make_move_iterator(answers_.begin()),
                                                                             std::make_move_iterator(answers_.end()));
    answers_.clear();
    std::vector<std::pair<std::string, Waiter>> expired;
    auto next = std::chrono::steady_clock::time_point::max();
    const auto now = std::chrono::steady_clock::now();
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.deadline <= now || waitersStopping_) {
        expired.emplace_back(it->first, std::move(it->second));
        it = waiters_.erase(it);
      } else {
        next = std::min(next, it->second.deadline);
        ++it;
      }
    }
    const bool stop = waitersStopping_;
    if (!ready.empty() || !expired.empty()) {
      lock.unlock();
      for (auto& [callback, result] : ready) callback(std::move(result));
      for (auto& [id, waiter] : expired) {
        if (stop) {
          waiter.done(apiFailure(503, "shutting-down", "The manager is stopping", "retry against the restarted manager"));
        } else {
          waiter.done(session(waiter.caller, id));
        }
      }
      lock.lock();
      continue;
    }
    if (stop) return;
    if (next == std::chrono::steady_clock::time_point::max()) {
      waiterWake_.wait(lock);
    } else {
      waiterWake_.wait_until(lock, next);
    }
  }
}

ApiResult<SessionRecord> Manager::destroySession(const Caller& caller, const std::string& id) {
  std::unique_lock<std::mutex> lock(mutex_);
  auto it = active_.find(id);
  if (it == active_.end() || !visibleTo(caller, it->second)) {
    lock.unlock();
    return session(caller, id);  // already over (or unknown: 404)
  }
  SessionRecord updated = it->second;
  Transition t;
  if (updated.status == SessionStatus::Pending) {
    updated.status = SessionStatus::Cancelled;
    updated.statusReason = "cancelled before it was placed";
    updated.endedAtMillis = nowMillis();
  } else if (updated.status != SessionStatus::Terminating) {
    updated.status = SessionStatus::Terminating;
    updated.statusReason = "destroy requested";
  }
  t.sessions.push_back(updated);
  if (auto done = commit(std::move(t)); !done) return Failure{storeFailure(done.error())};
  if (updated.status == SessionStatus::Terminating && inFlight_.count(id) == 0) {
    auto agent = agents_.find(updated.agentId);
    if (agent != agents_.end() && agent->second.alive()) {
      inFlight_.insert(id);
      dispatch([this, id] { destroyOnAgent(id); });
    }
  }
  return updated;
}

ApiResult<AgentReply> Manager::sessionLogs(const Caller& caller, const std::string& id, const std::string& query) {
  auto current = session(caller, id);
  if (!current) return Failure{current.error()};
  std::string rpcUrl;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto agent = agents_.find(current->agentId);
    if (current->agentId.empty() || agent == agents_.end()) {
      return apiFailure(409, "no-logs-yet", "The session has not started", "session '" + id + "' is " +
                                                                               sessionStatusName(current->status));
    }
    rpcUrl = agent->second.record.rpcUrl;
  }
  auto reply = agentClient_.get(rpcUrl, "/v1/sessions/" + http::urlEncode(id) + "/logs" + (query.empty() ? "" : "?" + query));
  if (!reply) return apiFailure(502, "agent-unreachable", "The session's agent did not answer", reply.error().describe());
  return *reply;
}

// ---- Cluster -------------------------------------------------------------------------

std::vector<AgentSummary> Manager::agents() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<AgentSummary> out;
  const auto now = std::chrono::steady_clock::now();
  for (const auto& [id, agent] : agents_) {
    out.push_back({agent.record, std::chrono::duration<double>(now - agent.lastSeen).count()});
  }
  return out;
}

ApiResult<AgentReply> Manager::agentRpcGet(const std::string& agentId, const std::string& pathAndQuery) {
  std::string rpcUrl;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto agent = agents_.find(agentId);
    if (agent == agents_.end()) return apiFailure(404, "unknown-agent", "No such agent", "no agent '" + agentId + "'");
    rpcUrl = agent->second.record.rpcUrl;
  }
  auto reply = agentClient_.get(rpcUrl, pathAndQuery);
  if (!reply) return apiFailure(502, "agent-unreachable", "The agent did not answer", reply.error().describe());
  return *reply;
}

std::map<std::string, SlotType> Manager::slotTypes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return registry_.all();
}

std::vector<KeypairRecord> Manager::keypairs() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<KeypairRecord> out;
  for (const auto& [key, record] : keypairs_) out.push_back(record);
  return out;
}

std::optional<KeypairRecord> Manager::keypair(const std::string& accessKey) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = keypairs_.find(accessKey);
  if (it == keypairs_.end()) return std::nullopt;
  return it->second;
}

std::string Manager::metricsText() const {
  std::map<std::string, int> agentsByState{{"ALIVE", 0}, {"LOST", 0}};
  std::map<std::string, std::pair<Quantity, Quantity>> slots;  // capacity, used over live agents
  std::map<std::string, int> sessionsByStatus;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [id, agent] : agents_) {
      ++agentsByState[agentStatusName(agent.record.status)];
      if (!agent.alive()) continue;
      for (const auto& [slot, figures] : agent.record.slots) {
        slots[slot].first += figures.capacity;
        slots[slot].second += figures.used;
      }
    }
    for (const auto& [id, session] : active_) ++sessionsByStatus[sessionStatusName(session.status)];
  }
  std::string out = "# HELP bai_manager_agents agents by state\n# TYPE bai_manager_agents gauge\n";
  for (const auto& [state, count] : agentsByState) out += "bai_manager_agents{state=\"" + state + "\"} " + std::to_string(count) + "\n";
  out += "# HELP bai_manager_slot_capacity capacity of live agents per slot\n# TYPE bai_manager_slot_capacity gauge\n";
  for (const auto& [slot, figures] : slots) out += "bai_manager_slot_capacity{slot=\"" + slot + "\"} " + figures.first.toString() + "\n";
  out += "# HELP bai_manager_slot_used reserved on live agents per slot\n# TYPE bai_manager_slot_used gauge\n";
  for (const auto& [slot, figures] : slots) out += "bai_manager_slot_used{slot=\"" + slot + "\"} " + figures.second.toString() + "\n";
  out += "# HELP bai_manager_sessions active sessions by status\n# TYPE bai_manager_sessions gauge\n";
  for (SessionStatus status : {SessionStatus::Pending, SessionStatus::Scheduled, SessionStatus::Preparing, SessionStatus::Running,
                               SessionStatus::Terminating}) {
    out += std::string("bai_manager_sessions{status=\"") + sessionStatusName(status) + "\"} " +
           std::to_string(sessionsByStatus[sessionStatusName(status)]) + "\n";
  }
  return out + metrics_.renderCounters();
}

// ---- JSON ----------------------------------------------------------------------------

std::string sessionToJson(const SessionRecord& s, const std::string& pendingReason) {
  nlohmann::json resources = nlohmann::json::parse(s.requested.toJson());
  nlohmann::json out = {{"id", s.id},
                        {"name", s.name},
                        {"owner", s.owner},
                        {"scaling_group", s.scalingGroup},
                        {"command", s.command},
                        {"env", s.env},
                        {"resources", resources},
                        {"status", sessionStatusName(s.status)},
                        {"status_reason", s.status == SessionStatus::Pending && !pendingReason.empty() ? pendingReason
                                                                                                      : s.statusReason},
                        {"agent", s.agentId},
                        {"exit_code", s.exitCode ? nlohmann::json(*s.exitCode) : nlohmann::json()},
                        {"created_at_ms", s.createdAtMillis},
                        {"scheduled_at_ms", s.scheduledAtMillis},
                        {"started_at_ms", s.startedAtMillis},
                        {"ended_at_ms", s.endedAtMillis}};
  return out.dump();
}

std::string agentToJson(const AgentSummary& a, const std::map<std::string, SlotType>& types) {
  nlohmann::json slots = nlohmann::json::object();
  for (const auto& [slot, figures] : a.record.slots) {
    auto type = types.find(slot);
    slots[slot] = {{"type", type == types.end() ? "count" : slotTypeName(type->second)},
                   {"capacity", figures.capacity.toString()},
                   {"used", figures.used.toString()},
                   {"largest_allocatable", figures.largest.toString()}};
  }
  nlohmann::json out = {{"id", a.record.id},
                        {"status", agentStatusName(a.record.status)},
                        {"rpc_url", a.record.rpcUrl},
                        {"region", a.record.region},
                        {"scaling_group", a.record.scalingGroup},
                        {"architecture", a.record.architecture},
                        {"version", a.record.version},
                        {"slots", slots},
                        {"plugins", nlohmann::json::parse(a.record.pluginsJson, nullptr, false)},
                        {"device_health", nlohmann::json::parse(a.record.deviceHealthJson, nullptr, false)},
                        {"seconds_since_heartbeat", a.secondsSinceHeartbeat},
                        {"registered_at_ms", a.record.registeredAtMillis},
                        {"status_changed_at_ms", a.record.statusChangedAtMillis}};
  return out.dump();
}

}  // namespace bai::manager
