// The one owner of an agent's in-memory state: the node inventory (its allocation maps and
// which plugins it offers), the sessions, each plugin's device health, the withdrawn and
// draining plugins, and the state's digest. The session lifecycle, the plugin supervisor
// and the agent's views read and change that state only through lock(); the plugin host,
// which is thread-safe on its own, is also reachable without it.
#pragma once

#include "agent/node_inventory.hpp"

#include <bai/protocol.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace bai::core {

// A session as the agent keeps it; its record under the state dir mirrors it.
struct SessionRecord {
  protocol::CreateSessionRequest request;
  NodeAllocation allocation;
  protocol::SessionInfo info;
  std::vector<std::string> preparedPlugins;  // keys whose prepare_session succeeded
  bool destroyRequested = false;
  bool released = false;  // allocation freed and plugins released: exactly once
};

// Plugins taken out of the host; the caller drops them after releasing the lock, since
// destroying one runs plugin code.
using UnloadedPlugins = std::vector<std::shared_ptr<AcceleratorPlugin>>;

struct AgentState {
  NodeInventory& inventory;
  std::map<std::string, SessionRecord> sessions;
  // plugin key -> device id -> latest report
  std::map<std::string, std::map<std::string, protocol::DeviceHealthReport>> health;
  std::vector<std::string> withdrawn;           // names of plugins whose calls hung
  std::vector<AcceleratorPlugin*> draining;     // no longer allowed; loaded while sessions hold their devices

  bool isDraining(const AcceleratorPlugin* plugin) const;
  bool isWithdrawn(const AcceleratorPlugin* plugin) const;
  // Plugins that take new sessions: loaded, offered, neither hung nor draining.
  std::vector<std::shared_ptr<AcceleratorPlugin>> activePlugins() const;
  // The part of `allocation` on `plugin`'s slots.
  protocol::DeviceAllocation partOf(const AcceleratorPlugin* plugin, const protocol::DeviceAllocation& allocation) const;
  // Whether a session that has not released its resources holds a slot of `plugin`.
  bool anySessionHolds(const AcceleratorPlugin* plugin) const;
};

class AgentLedger {
 public:
  // The state while the ledger's mutex is held. unlock() and lock() bracket slow work (plugin
  // calls, spawning): whatever was looked up before unlock() is looked up again after.
  template <class State>
  class Access {
   public:
    Access(std::mutex& mutex, State& state) : lock_(mutex), state_(state) {}
    State* operator->() const { return &state_; }
    State& operator*() const { return state_; }
    void unlock() { lock_.unlock(); }
    void lock() { lock_.lock(); }

   private:
    std::unique_lock<std::mutex> lock_;
    State& state_;
  };

  explicit AgentLedger(std::unique_ptr<NodeInventory> inventory);
  AgentLedger(const AgentLedger&) = delete;
  AgentLedger& operator=(const AgentLedger&) = delete;

  Access<AgentState> lock() { return {mutex_, state_}; }
  Access<const AgentState> lock() const { return {mutex_, state_}; }

  // Thread-safe on its own: plugin loading and unloading happen outside the lock.
  PluginHost& host() { return inventory_->host(); }
  const NodeInventory& inventoryUnlocked() const { return *inventory_; }

  // The state's digest, which the heartbeat carries: bumped by every change a manager sees.
  void bumpDigest() { ++digest_; }
  std::uint64_t digest() const { return digest_.load(); }

 private:
  // Shared with other threads: state_ under mutex_; digest_ atomically.
  std::unique_ptr<NodeInventory> inventory_;
  mutable std::mutex mutex_;
  AgentState state_;
  std::atomic<std::uint64_t> digest_{1};
};

}  // namespace bai::core
