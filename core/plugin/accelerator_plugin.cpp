#include "plugin/accelerator_plugin.hpp"

#include "module_loader.hpp"
#include "plugin/plugin_config.hpp"

#include <cstring>

namespace bai::core {

struct AcceleratorPlugin::HostContext {
  std::string source;
  LogSink log;
  PluginConfig config;
  bai_host_services services{};

  HostContext(std::string source, LogSink log, std::string_view configJson)
      : source(std::move(source)), log(std::move(log)), config(configJson) {}

  static void logLine(void* context, int32_t level, const char* message) {
    auto* self = static_cast<HostContext*>(context);
    if (self == nullptr || message == nullptr || !self->log) return;
    const LogLevel mapped = level <= BAI_LOG_DEBUG     ? LogLevel::Debug
                            : level == BAI_LOG_INFO    ? LogLevel::Info
                            : level == BAI_LOG_WARNING ? LogLevel::Warning
                                                       : LogLevel::Error;
    self->log(mapped, self->source, message);
  }

  static bai_status configGet(void* context, const char* key, char* buffer, size_t size, size_t* needed) {
    const auto* self = static_cast<const HostContext*>(context);
    return self != nullptr ? self->config.get(key, buffer, size, needed) : BAI_ERR_INVALID_ARGUMENT;
  }
};

std::string describeStatus(bai_status status) {
  switch (status) {
    case BAI_OK: return "BAI_OK";
    case BAI_ERR_INVALID_ARGUMENT: return "BAI_ERR_INVALID_ARGUMENT";
    case BAI_ERR_NOT_FOUND: return "BAI_ERR_NOT_FOUND";
    case BAI_ERR_UNAVAILABLE: return "BAI_ERR_UNAVAILABLE";
    case BAI_ERR_UNSUPPORTED: return "BAI_ERR_UNSUPPORTED";
    case BAI_ERR_OUT_OF_MEMORY: return "BAI_ERR_OUT_OF_MEMORY";
    case BAI_ERR_INTERNAL: return "BAI_ERR_INTERNAL";
    case BAI_ERR_EXCEPTION: return "BAI_ERR_EXCEPTION (a C++ exception reached the ABI boundary)";
    case BAI_ERR_UNKNOWN_EXCEPTION: return "BAI_ERR_UNKNOWN_EXCEPTION (a non-standard exception reached the ABI boundary)";
  }
  return "unknown status " + std::to_string(status);
}

std::string sessionDocument(const std::string& sessionId,
                            const std::map<std::string, std::map<std::string, Quantity>>& allocation) {
  nlohmann::json doc{{"session_id", sessionId}, {"allocation", nlohmann::json::object()}};
  for (const auto& [slot, devices] : allocation) {
    nlohmann::json perDevice = nlohmann::json::object();
    for (const auto& [device, amount] : devices) perDevice[device] = amount.toString();
    doc["allocation"][slot] = std::move(perDevice);
  }
  return doc.dump();
}

AcceleratorPlugin::AcceleratorPlugin(std::shared_ptr<LoadedModule> module, PluginIdentity identity,
                                     const bai_accelerator_vtable* vtable, std::string configJson,
                                     PluginCallOptions options)
    : module_(std::move(module)),
      identity_(std::move(identity)),
      vtable_(vtable),
      options_(std::move(options)),
      context_(std::make_shared<HostContext>("plugin " + identity_.name, options_.log, configJson)),
      worker_("plugin " + identity_.name) {
  context_->services = bai_host_services{BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR,
                                         sizeof(bai_host_services), 0, context_.get(), &HostContext::logLine,
                                         &HostContext::configGet};
}

AcceleratorPlugin::~AcceleratorPlugin() {
  if (instance_ != nullptr && !worker_.hung()) {
    auto vtable = vtable_;
    auto instance = instance_;
    auto context = context_;
    (void)worker_.call<int>(
        [vtable, instance, context] {
          vtable->destroy(instance);
          return 0;
        },
        options_.deadline, "destroy");
  }
  // A thread stuck in the plugin may run its code later: never unmap it.
  if (worker_.hung() && module_) module_->keepLoadedForever();
}

Result<std::unique_ptr<AcceleratorPlugin>> AcceleratorPlugin::start(std::shared_ptr<LoadedModule> module,
                                                                    PluginIdentity identity,
                                                                    const bai_accelerator_vtable* vtable,
                                                                    std::string configJson,
                                                                    PluginCallOptions options) {
  std::unique_ptr<AcceleratorPlugin> plugin(new AcceleratorPlugin(std::move(module), std::move(identity), vtable,
                                                                  std::move(configJson), std::move(options)));
  if (auto created = plugin->create(); !created) return Failure{created.error()};
  if (auto discovered = plugin->discover(); !discovered) return Failure{discovered.error()};
  return plugin;
}

Error AcceleratorPlugin::callError(const char* call, const std::string& why) const {
  return Error{ErrorCode::InvalidArgument, std::string(call) + ": " + why};
}

Result<void> AcceleratorPlugin::create() {
  auto vtable = vtable_;
  auto context = context_;
  const std::string config = context_->config.table().dump();
  using Created = std::pair<bai_status, bai_accelerator*>;
  auto created = worker_.call<Created>(
      [vtable, context, config] {
        bai_accelerator* out = nullptr;
        const bai_status status = vtable->create(&context->services, config.c_str(), &out);
        return Created{status, out};
      },
      options_.deadline, "create");
  if (!created) {
    return Failure{callError("create", "did not return within " + std::to_string(options_.deadline.count()) + " ms")};
  }
  if (created->first != BAI_OK) return Failure{callError("create", "failed with " + describeStatus(created->first))};
  if (created->second == nullptr) return Failure{callError("create", "returned BAI_OK but no instance")};
  instance_ = created->second;
  return {};
}

Result<nlohmann::json> AcceleratorPlugin::parseOutput(const char* call, const std::optional<CallResult>& result) {
  if (!result) {
    return Failure{callError(call, worker_.hung() ? "did not return within " + std::to_string(options_.deadline.count()) +
                                                        " ms; the plugin is withdrawn"
                                                  : "the plugin is withdrawn")};
  }
  if (result->status != BAI_OK) return Failure{callError(call, "failed with " + describeStatus(result->status))};
  auto document = parsePayload(call, result->output);
  if (!document) return Failure{callError(call, document.error().message)};
  return document;
}

Result<nlohmann::json> AcceleratorPlugin::callReturningJson(const char* call,
                                                            std::function<bai_status(bai_accelerator*, char**)> invoke) {
  auto vtable = vtable_;
  auto instance = instance_;
  auto context = context_;  // keeps the host services alive for a call that outlives us
  return parseOutput(call, worker_.call<CallResult>(
                               [vtable, instance, context, invoke = std::move(invoke)] {
                                 char* out = nullptr;
                                 const bai_status status = invoke(instance, &out);
                                 CallResult result{status, out != nullptr ? out : ""};
                                 vtable->free_string(out);
                                 return result;
                               },
                               options_.deadline, call));
}

Result<nlohmann::json> AcceleratorPlugin::callForJson(const char* call, bai_status (*fn)(bai_accelerator*, char**)) {
  if (fn == nullptr) return Failure{callError(call, "missing from the call table (NULL)")};
  return callReturningJson(call, fn);
}

Result<nlohmann::json> AcceleratorPlugin::callWithInput(const char* call,
                                                        bai_status (*fn)(bai_accelerator*, const char*, char**),
                                                        const std::string& input) {
  if (fn == nullptr) return Failure{callError(call, "missing from the call table (NULL)")};
  return callReturningJson(call, [fn, input](bai_accelerator* instance, char** out) { return fn(instance, input.c_str(), out); });
}

Result<void> AcceleratorPlugin::discover() {
  struct Step {
    const char* call;
    bai_status (*fn)(bai_accelerator*, char**);
    Result<void> (*read)(const nlohmann::json&, Discovery&);
  };
  auto described = callForJson("describe", vtable_->describe);
  if (!described) return Failure{described.error()};
  if (auto read = readDescribe(identity_.key, *described, discovery_); !read) {
    return Failure{callError("describe", read.error().message)};
  }
  identity_.key = discovery_.key;
  for (const Step& step : {Step{"list_devices", vtable_->list_devices, &readDevices},
                           Step{"slot_types", vtable_->slot_types, &readSlotTypes},
                           Step{"alloc_map_spec", vtable_->alloc_map_spec, &readAllocMapSpec}}) {
    auto document = callForJson(step.call, step.fn);
    if (!document) return Failure{document.error()};
    if (auto read = step.read(*document, discovery_); !read) return Failure{callError(step.call, read.error().message)};
  }
  return {};
}

Result<SessionResources> AcceleratorPlugin::prepareSession(
    const std::string& sessionId, const std::map<std::string, std::map<std::string, Quantity>>& allocation) {
  auto prepared = callWithInput("prepare_session", vtable_->prepare_session, sessionDocument(sessionId, allocation));
  if (!prepared) return Failure{prepared.error()};
  auto resources = readSessionResources(*prepared);
  if (!resources) return Failure{callError("prepare_session", resources.error().message)};
  return resources;
}

Result<void> AcceleratorPlugin::releaseSession(const std::string& sessionId,
                                               const std::map<std::string, std::map<std::string, Quantity>>& allocation) {
  if (vtable_->release_session == nullptr) return Failure{callError("release_session", "missing from the call table (NULL)")};
  auto vtable = vtable_;
  auto instance = instance_;
  auto context = context_;
  const std::string input = sessionDocument(sessionId, allocation);
  auto status = worker_.call<bai_status>([vtable, instance, context, input] {
    return vtable->release_session(instance, input.c_str());
  }, options_.deadline, "release_session");
  if (!status) return Failure{callError("release_session", "did not return in time; the plugin is withdrawn")};
  if (*status != BAI_OK) return Failure{callError("release_session", "failed with " + describeStatus(*status))};
  return {};
}

std::string AcceleratorPlugin::withdrawalReason() const {
  const std::string call = worker_.hungCall();
  if (!worker_.hung()) return "";
  return (call.empty() ? "a call" : call) + " did not return within " + std::to_string(options_.deadline.count()) + " ms";
}

Result<nlohmann::json> AcceleratorPlugin::nodeMeasures() { return callForJson("node_measures", vtable_->node_measures); }

Result<std::vector<DeviceHealth>> AcceleratorPlugin::health() {
  auto reported = callForJson("health", vtable_->health);
  if (!reported) return Failure{reported.error()};
  std::vector<DeviceHealth> out;
  for (const auto& d : (*reported)["devices"]) out.push_back({d["id"], d["health"], d.value("reason", "")});
  return out;
}

}  // namespace bai::core
