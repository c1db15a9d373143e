// One running instance of an accelerator plugin: its identity, what it discovered at
// start (validated against docs/abi/ and the slot rules), and typed calls that run on
// the plugin's own worker thread with a deadline.
#pragma once

#include "alloc/alloc_map.hpp"
#include "log.hpp"
#include "plugin/payloads.hpp"
#include "plugin/plugin_worker.hpp"

#include <bai/accelerator.h>
#include <bai/result.hpp>
#include <bai/slots.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace bai {
class LoadedModule;
}

namespace bai::core {

struct PluginIdentity {
  std::string name;
  std::string vendor;
  std::string version;
  std::string key;  // resolved: a "dynamic" plugin's key comes from describe
  std::string description;
  std::uint32_t abiMajor = 0;
  std::uint32_t abiMinor = 0;
  std::filesystem::path file;
};

struct DeviceHealth {
  std::string id;
  std::string health;  // healthy, unhealthy, gone
  std::string reason;
};

struct PluginCallOptions {
  std::chrono::milliseconds deadline{5000};
  LogSink log;
};

class AcceleratorPlugin {
 public:
  // Creates an instance with `configJson` and runs the discovery calls. Any failure,
  // a hang past the deadline, or a payload that breaks the ABI rules is an error
  // naming the call and the reason; the instance is then destroyed.
  static Result<std::unique_ptr<AcceleratorPlugin>> start(std::shared_ptr<LoadedModule> module,
                                                          PluginIdentity identity,
                                                          const bai_accelerator_vtable* vtable,
                                                          std::string configJson, PluginCallOptions options);
  ~AcceleratorPlugin();
  AcceleratorPlugin(const AcceleratorPlugin&) = delete;
  AcceleratorPlugin& operator=(const AcceleratorPlugin&) = delete;

  const PluginIdentity& identity() const { return identity_; }
  const Discovery& discovery() const { return discovery_; }
  // True once a call hung: the plugin is withdrawn and refuses further calls.
  bool failed() const { return worker_.hung(); }
  // Why, once failed(): "health did not return within 5000 ms".
  std::string withdrawalReason() const;

  // `allocation`: slot -> device id -> amount, for this plugin's slots only.
  Result<SessionResources> prepareSession(const std::string& sessionId,
                                          const std::map<std::string, std::map<std::string, Quantity>>& allocation);
  Result<void> releaseSession(const std::string& sessionId,
                              const std::map<std::string, std::map<std::string, Quantity>>& allocation);
  Result<nlohmann::json> nodeMeasures();
  Result<std::vector<DeviceHealth>> health();

  // Builds the allocation maps this plugin's spec describes.
  Result<std::vector<std::unique_ptr<AllocMap>>> buildMaps() const { return core::buildMaps(discovery_); }

 private:
  struct HostContext;
  struct CallResult {
    bai_status status = BAI_ERR_INTERNAL;
    std::string output;
  };

  AcceleratorPlugin(std::shared_ptr<LoadedModule> module, PluginIdentity identity,
                    const bai_accelerator_vtable* vtable, std::string configJson, PluginCallOptions options);
  Result<void> create();
  Result<void> discover();
  // Calls `fn` on the worker; on success parses the output and validates it against the schema `call`.
  Result<nlohmann::json> callForJson(const char* call, bai_status (*fn)(bai_accelerator*, char**));
  Result<nlohmann::json> callWithInput(const char* call, bai_status (*fn)(bai_accelerator*, const char*, char**),
                                       const std::string& input);
  Result<nlohmann::json> callReturningJson(const char* call, std::function<bai_status(bai_accelerator*, char**)> invoke);
  Result<nlohmann::json> parseOutput(const char* call, const std::optional<CallResult>& result);
  Error callError(const char* call, const std::string& why) const;

  std::shared_ptr<LoadedModule> module_;
  PluginIdentity identity_;
  const bai_accelerator_vtable* vtable_;
  PluginCallOptions options_;
  // Owned by a shared pointer: a hung call may still use the host services after we are gone.
  std::shared_ptr<HostContext> context_;
  bai_accelerator* instance_ = nullptr;
  Discovery discovery_;
  PluginWorker worker_;
};

// Text of a status code: "BAI_ERR_EXCEPTION (a C++ exception reached the ABI boundary)".
std::string describeStatus(bai_status status);

// A session document as the ABI expects it (docs/abi/session.schema.json).
std::string sessionDocument(const std::string& sessionId,
                            const std::map<std::string, std::map<std::string, Quantity>>& allocation);

}  // namespace bai::core
