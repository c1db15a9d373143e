#include "check/check_session.hpp"

#include "plugin/plugin_host.hpp"

#include <algorithm>
#include <filesystem>
#include <functional>

namespace bai::core {

Failure<Error> problem(const std::string& why) { return fail(ErrorCode::InvalidArgument, why); }

double millisSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

CheckSession::CheckSession(const CheckerOptions& options) : options_(options), config_(options.configJson) {
  services_ = {BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, sizeof(bai_host_services), 0, this,
               &CheckSession::logLine, &CheckSession::configGet};
}

CheckSession::~CheckSession() {
  for (bai_accelerator* instance : instances_) vtable_->destroy(instance);
}

Result<void> CheckSession::open() {
  auto module = LoadedModule::open(std::filesystem::absolute(options_.plugin));
  if (!module) return Failure{module.error()};
  module_ = std::make_unique<LoadedModule>(std::move(*module));
  auto identity = readIdentity(*module_);
  if (!identity) return Failure{identity.error()};
  identity_ = std::move(*identity);
  return {};
}

Result<void> CheckSession::openCallTable() {
  if (auto opened = open(); !opened) return opened;
  auto vtable = readCallTable(*module_);
  if (!vtable) return Failure{vtable.error()};
  vtable_ = *vtable;
  return {};
}

Result<void> CheckSession::ready(const std::string& last) {
  if (auto opened = openCallTable(); !opened) return opened;
  return discover(last);
}

Result<bai_accelerator*> CheckSession::create(const std::string& config) {
  bai_accelerator* instance = nullptr;
  const auto start = Clock::now();
  const bai_status status = vtable_->create(&services_, config.c_str(), &instance);
  noteDuration("create", start);
  if (status != BAI_OK) {
    return problem("expected create to return BAI_OK, got " + describeStatus(status) + lastLogSuffix());
  }
  if (instance == nullptr) return problem("create returned BAI_OK but left the instance NULL");
  instances_.insert(instance);
  return instance;
}

void CheckSession::destroy(bai_accelerator* instance) {
  const auto start = Clock::now();
  vtable_->destroy(instance);
  noteDuration("destroy", start);
  instances_.erase(instance);
}

Result<nlohmann::json> CheckSession::call(const char* name, CallFn fn, bai_accelerator* instance) {
  if (fn == nullptr) return problem(std::string(name) + " is NULL in the call table");
  return timed(name, [&](char** out) { return fn(instance, out); });
}

Result<nlohmann::json> CheckSession::callWith(const char* name, CallWithInputFn fn, bai_accelerator* instance,
                                              const std::string& input) {
  if (fn == nullptr) return problem(std::string(name) + " is NULL in the call table");
  return timed(name, [&](char** out) { return fn(instance, input.c_str(), out); });
}

bai_status CheckSession::statusOf(CallWithInputFn fn, bai_accelerator* instance, const std::string& input) {
  char* out = nullptr;
  const bai_status status = fn(instance, input.c_str(), &out);
  vtable_->free_string(out);
  return status;
}

Result<void> CheckSession::discover(const std::string& last) {
  auto instance = create();
  if (!instance) return Failure{instance.error()};
  struct Step {
    const char* name;
    CallFn fn;
    std::function<Result<void>(const nlohmann::json&)> read;
  };
  const Step steps[] = {
      {"describe", vtable_->describe, [&](const nlohmann::json& d) { return readDescribe(identity_.key, d, discovery_); }},
      {"list_devices", vtable_->list_devices, [&](const nlohmann::json& d) { return readDevices(d, discovery_); }},
      {"slot_types", vtable_->slot_types, [&](const nlohmann::json& d) { return readSlotTypes(d, discovery_); }},
      {"alloc_map_spec", vtable_->alloc_map_spec, [&](const nlohmann::json& d) { return readAllocMapSpec(d, discovery_); }},
  };
  for (const Step& step : steps) {
    auto document = call(step.name, step.fn, *instance);
    if (!document) return Failure{document.error()};
    if (auto read = step.read(*document); !read) return problem(std::string(step.name) + ": " + read.error().message);
    if (last == step.name) break;
  }
  instance_ = *instance;
  return {};
}

std::vector<std::pair<int, std::string>> CheckSession::logs() {
  std::lock_guard<std::mutex> lock(mutex_);
  return logs_;
}

template <class Invoke>
Result<nlohmann::json> CheckSession::timed(const char* name, Invoke invoke) {
  char* out = nullptr;
  const auto start = Clock::now();
  const bai_status status = invoke(&out);
  noteDuration(name, start);
  const std::string text = out != nullptr ? out : "";
  vtable_->free_string(out);
  if (status != BAI_OK) return problem(std::string(name) + " returned " + describeStatus(status) + lastLogSuffix());
  auto document = parsePayload(name, text);
  if (!document) return problem(std::string(name) + " " + document.error().message);
  return document;
}

void CheckSession::logLine(void* context, int32_t level, const char* message) {
  auto* self = static_cast<CheckSession*>(context);
  std::lock_guard<std::mutex> lock(self->mutex_);
  self->logs_.emplace_back(level, message != nullptr ? message : "");
}

// The agent's answer (plugin/plugin_config.hpp): a plugin reads the same config in both.
bai_status CheckSession::configGet(void* context, const char* key, char* buffer, size_t size, size_t* needed) {
  return static_cast<CheckSession*>(context)->config_.get(key, buffer, size, needed);
}

std::string CheckSession::lastLogSuffix() {
  std::lock_guard<std::mutex> lock(mutex_);
  return logs_.empty() ? std::string(" (the plugin logged nothing)") : "; the plugin logged: \"" + logs_.back().second + "\"";
}

void CheckSession::noteDuration(const std::string& call, Clock::time_point start) {
  const double ms = millisSince(start);
  std::lock_guard<std::mutex> lock(mutex_);
  slowest_[call] = std::max(slowest_[call], ms);
}

}  // namespace bai::core
