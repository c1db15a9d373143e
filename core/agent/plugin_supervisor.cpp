#include "agent/plugin_supervisor.hpp"

#include <algorithm>
#include <utility>

namespace bai::core {

PluginSupervisor::PluginSupervisor(AgentLedger& ledger, SessionRecords& records, LogSink log)
    : ledger_(ledger), records_(records), log_(std::move(log)) {}

PluginSupervisor::~PluginSupervisor() { stopPolling(); }

void PluginSupervisor::stopPolling() {
  {
    std::lock_guard<std::mutex> lock(pollMutex_);
    stopping_ = true;
  }
  pollWake_.notify_all();
  if (pollThread_.joinable()) pollThread_.join();
}

void PluginSupervisor::startPolling(std::chrono::milliseconds period) {
  pollHealth();
  pollThread_ = std::thread([this, period] { pollLoop(std::max(period, std::chrono::milliseconds(50))); });
}

void PluginSupervisor::pollLoop(std::chrono::milliseconds period) {
  std::unique_lock<std::mutex> lock(pollMutex_);
  while (!pollWake_.wait_for(lock, period, [&] { return stopping_; })) {
    lock.unlock();
    pollHealth();
    lock.lock();
  }
}

void PluginSupervisor::pollHealth() {
  // Plugin calls happen outside the ledger's lock: a slow plugin must not stall the RPC.
  std::vector<std::shared_ptr<AcceleratorPlugin>> polled;
  {
    auto state = ledger_.lock();
    for (const auto& plugin : state->inventory.host().plugins()) {
      if (state->inventory.offers(plugin.get()) && !state->isDraining(plugin.get())) polled.push_back(plugin);
    }
  }
  std::vector<std::pair<AcceleratorPlugin*, Result<std::vector<DeviceHealth>>>> reports;
  for (const auto& plugin : polled) reports.emplace_back(plugin.get(), plugin->health());

  auto state = ledger_.lock();
  bool anyChange = false;
  for (auto& [plugin, report] : reports) {
    // A reload may have unloaded it, or stopped offering it, meanwhile: its devices stay off.
    if (!state->inventory.offers(plugin) || state->isDraining(plugin)) continue;
    anyChange |= applyHealth(*state, plugin, report);
  }
  if (anyChange) ledger_.bumpDigest();
}

// Returns whether what the heartbeat carries changed.
bool PluginSupervisor::applyHealth(AgentState& state, AcceleratorPlugin* plugin,
                                   const Result<std::vector<DeviceHealth>>& report) {
  const std::string& key = plugin->identity().key;
  if (!report) {
    const std::string& name = plugin->identity().name;
    if (!plugin->failed() || std::find(state.withdrawn.begin(), state.withdrawn.end(), name) != state.withdrawn.end()) {
      return false;
    }
    // It stays in the host's list (other threads iterate it) but offers nothing more.
    state.inventory.withdraw(plugin);
    state.withdrawn.push_back(name);
    log_(LogLevel::Error, "agent", "plugin " + name + " withdrawn: " + report.error().message);
    return true;
  }
  bool anyChange = false;
  for (const DeviceHealth& d : *report) {
    auto& known = state.health[key][d.id];
    const bool healthy = d.health == "healthy";
    if (known.health != d.health && !known.health.empty()) {
      log_(healthy ? LogLevel::Info : LogLevel::Warning, "agent",
           "device " + key + "/" + d.id + " is " + d.health + (d.reason.empty() ? "" : ": " + d.reason) +
               (healthy ? "; it takes new sessions again" : "; it gets no new sessions"));
    }
    anyChange |= known.health != d.health;
    known = protocol::DeviceHealthReport{key, d.id, d.health, d.reason};
    anyChange |= state.inventory.setDeviceEnabled(plugin, d.id, healthy);
  }
  return anyChange;
}

// Plugins no longer allowed stop taking sessions at once; newly allowed (or newly
// installed) ones are loaded and offered; the digest changes, so the next heartbeat
// carries the full state.
std::set<std::string> PluginSupervisor::applyPluginLists(const AgentSettings& next) {
  PluginHost& host = ledger_.host();
  host.reconfigure(next.allowPlugins, next.blockPlugins, pluginConfigLookup(next.pluginConfigs));
  UnloadedPlugins unloaded;
  {
    auto state = ledger_.lock();
    drainDisallowed(*state);
    unloaded = unloadDrained(*state);
  }
  unloaded.clear();

  const std::set<std::string> loadedNames = offerLoaded(host.loadAll());  // loading calls plugins: unlocked
  pollHealth();  // the new plugins' devices, before the next heartbeat
  return loadedNames;
}

void PluginSupervisor::drainDisallowed(AgentState& state) {
  PluginHost& host = state.inventory.host();
  for (const auto& plugin : host.plugins()) {
    const std::string& name = plugin->identity().name;
    const bool allowed = host.allowed(name);
    if (!allowed && !state.isDraining(plugin.get())) {
      state.inventory.withdraw(plugin.get());
      state.draining.push_back(plugin.get());
      log_(LogLevel::Info, "agent", "plugin " + name + " is no longer allowed: its devices take no new sessions; " +
                                        "it is unloaded once no session holds them");
      ledger_.bumpDigest();
    } else if (allowed && state.isDraining(plugin.get())) {
      offerAgain(state, plugin.get());
      log_(LogLevel::Info, "agent", "plugin " + name + " is allowed again: its devices take new sessions");
      ledger_.bumpDigest();
    }
  }
}

// A draining plugin allowed again: its devices come back as their last health says.
void PluginSupervisor::offerAgain(AgentState& state, AcceleratorPlugin* plugin) {
  state.draining.erase(std::find(state.draining.begin(), state.draining.end(), plugin));
  if (plugin->failed()) return;
  const auto& known = state.health[plugin->identity().key];
  for (const auto& device : plugin->discovery().devices) {
    auto last = known.find(device.id);
    state.inventory.setDeviceEnabled(plugin, device.id, last == known.end() || last->second.health == "healthy");
  }
}

std::set<std::string> PluginSupervisor::offerLoaded(const std::vector<std::shared_ptr<AcceleratorPlugin>>& loaded) {
  std::set<std::string> loadedNames;
  UnloadedPlugins refused;
  {
    auto state = ledger_.lock();
    for (const auto& plugin : loaded) {
      const std::string& name = plugin->identity().name;
      if (auto added = state->inventory.addPlugin(plugin.get()); !added) {
        log_(LogLevel::Error, "agent", "plugin " + name + " loaded but not offered: " + added.error().message);
        refused.push_back(state->inventory.host().unload(plugin.get()));
        continue;
      }
      std::string slots;
      for (const auto& [slot, type] : plugin->discovery().slots) slots += (slots.empty() ? "" : ", ") + slot.str();
      log_(LogLevel::Info, "agent", "plugin " + name + " loaded by reload: offers " + (slots.empty() ? "no slots" : slots));
      loadedNames.insert(plugin->identity().key);
      loadedNames.insert(name);
      ledger_.bumpDigest();
    }
  }
  refused.clear();
  return loadedNames;
}

UnloadedPlugins PluginSupervisor::unloadDrained(AgentState& state) {
  UnloadedPlugins out;
  for (auto it = state.draining.begin(); it != state.draining.end();) {
    AcceleratorPlugin* plugin = *it;
    if (state.anySessionHolds(plugin)) {
      ++it;
      continue;
    }
    undoPreparedSessions(state, plugin);
    state.health.erase(plugin->identity().key);
    std::erase(state.withdrawn, plugin->identity().name);
    state.inventory.removePlugin(plugin);
    log_(LogLevel::Info, "agent", "plugin " + plugin->identity().name + " unloaded: no session holds its devices");
    out.push_back(state.inventory.host().unload(plugin));
    it = state.draining.erase(it);
    ledger_.bumpDigest();
  }
  return out;
}

// Sessions it prepared without any of its devices: undone now, so that prepare and
// release stay paired and a later plugin with the same key is never asked to release.
void PluginSupervisor::undoPreparedSessions(AgentState& state, AcceleratorPlugin* plugin) {
  const std::string& key = plugin->identity().key;
  for (auto& [id, session] : state.sessions) {
    auto prepared = std::find(session.preparedPlugins.begin(), session.preparedPlugins.end(), key);
    if (session.released || prepared == session.preparedPlugins.end()) continue;
    if (auto released = plugin->releaseSession(id, {}); !released) {
      log_(LogLevel::Warning, "agent", "session " + id + ": " + released.error().message);
    }
    session.preparedPlugins.erase(prepared);
    records_.update(session, log_);
  }
}

std::vector<std::string> PluginSupervisor::drainingPlugins() const {
  auto state = std::as_const(ledger_).lock();
  std::vector<std::string> names;
  for (const AcceleratorPlugin* plugin : state->draining) names.push_back(plugin->identity().name);
  return names;
}

}  // namespace bai::core
