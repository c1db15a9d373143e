// What one check of bai-plugin-check works with: the plugin's module and call table,
// host services that record the plugin's log lines and answer config_get as the agent
// does, timed calls that validate every payload, and the discovery calls' results.
// Set up inside the forked child that runs the check; used by one check at a time.
#pragma once

#include "check/plugin_checker.hpp"
#include "module_loader.hpp"
#include "plugin/accelerator_plugin.hpp"
#include "plugin/payloads.hpp"
#include "plugin/plugin_config.hpp"

#include <bai/accelerator.h>
#include <bai/result.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace bai::core {

using CallFn = bai_status (*)(bai_accelerator*, char**);
using CallWithInputFn = bai_status (*)(bai_accelerator*, const char*, char**);

// A failed check's reason.
Failure<Error> problem(const std::string& why);
double millisSince(std::chrono::steady_clock::time_point start);

class CheckSession {
 public:
  explicit CheckSession(const CheckerOptions& options);
  ~CheckSession();
  CheckSession(const CheckSession&) = delete;
  CheckSession& operator=(const CheckSession&) = delete;

  // Opens the module and reads its info record.
  Result<void> open();
  // open() and the call table.
  Result<void> openCallTable();
  // The call table and the discovery calls up to `last`: what most checks start from.
  Result<void> ready(const std::string& last);

  // Creates an instance with the configured (or the given) config.
  Result<bai_accelerator*> create(const std::string& config);
  Result<bai_accelerator*> create() { return create(options_.configJson); }
  void destroy(bai_accelerator* instance);

  // Calls `fn` and checks the status, the JSON and its schema.
  Result<nlohmann::json> call(const char* name, CallFn fn, bai_accelerator* instance);
  Result<nlohmann::json> callWith(const char* name, CallWithInputFn fn, bai_accelerator* instance,
                                  const std::string& input);
  // Calls `fn` for its status alone; a returned document is freed unread.
  bai_status statusOf(CallWithInputFn fn, bai_accelerator* instance, const std::string& input);

  const bai_accelerator_vtable& vtable() const { return *vtable_; }
  const PluginIdentity& identity() const { return identity_; }
  const Discovery& discovery() const { return discovery_; }
  bai_accelerator* instance() const { return instance_; }
  std::vector<std::pair<int, std::string>> logs();
  // "; the plugin logged: "<its last line>"", for a failure's reason.
  std::string lastLogSuffix();
  const std::map<std::string, double>& slowest() const { return slowest_; }

 private:
  using Clock = std::chrono::steady_clock;

  // describe, list_devices, slot_types, alloc_map_spec as far as `last` (in that order).
  Result<void> discover(const std::string& last);
  // Times one call that returns a JSON string, frees the string, and validates it.
  template <class Invoke>
  Result<nlohmann::json> timed(const char* name, Invoke invoke);
  static void logLine(void* context, int32_t level, const char* message);
  static bai_status configGet(void* context, const char* key, char* buffer, size_t size, size_t* needed);
  void noteDuration(const std::string& call, Clock::time_point start);

  const CheckerOptions& options_;
  std::unique_ptr<LoadedModule> module_;
  PluginIdentity identity_;
  const bai_accelerator_vtable* vtable_ = nullptr;
  bai_host_services services_{};
  PluginConfig config_;
  std::set<bai_accelerator*> instances_;
  bai_accelerator* instance_ = nullptr;
  Discovery discovery_;
  std::mutex mutex_;  // the plugin may log from its own threads
  std::vector<std::pair<int, std::string>> logs_;
  std::map<std::string, double> slowest_;
};

}  // namespace bai::core
