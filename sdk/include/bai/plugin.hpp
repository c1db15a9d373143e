// C++ helper for accelerator plugin authors: write one class, add one macro.
//
//   class MyAccelerator : public bai::plugin::Accelerator {
//    public:
//     MyAccelerator(const bai::plugin::Host& host, std::string_view configJson);
//     std::string describe() override;  // and the other calls, returning JSON text
//     ...
//   };
//   BAI_ACCELERATOR_PLUGIN(MyAccelerator, "my-accel", "Acme", "1.0.0", "acme", "Acme NPUs")
//
// Every exception is caught at the ABI boundary, logged through the host and mapped to
// a distinct status; nothing from the C++ library crosses dlopen. Config keys are
// declared once, in one table of ConfigKey. Uses the standard library only. Throw std::invalid_argument (or StatusError) for bad input: other
// exceptions, such as a JSON library's parse errors, come back as BAI_ERR_EXCEPTION.
#pragma once

#include <bai/accelerator.h>

#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace bai::plugin {

// Throw to return a specific status, e.g. StatusError(BAI_ERR_NOT_FOUND, "no device 7").
class StatusError : public std::runtime_error {
 public:
  StatusError(bai_status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  bai_status status() const { return status_; }

 private:
  bai_status status_;
};

// One key of a plugin's config table. A plugin declares every key it takes once, in one
// table of these, documents its keys from it and refuses any key the table lacks, so
// that a typo never silently falls back to a default.
struct ConfigKey {
  std::string_view name;
  std::string_view type;          // what a value looks like: "string", "list of integers"
  std::string_view defaultValue;  // as written in the config; empty when the key has none
  std::string_view description;
};

// The entry of `keys` named `name`; null when `keys` does not declare it.
constexpr const ConfigKey* findConfigKey(std::span<const ConfigKey> keys, std::string_view name) {
  for (const ConfigKey& key : keys) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

// "a, b, c": the names `keys` declares, for the message that refuses an unknown key.
inline std::string configKeyNames(std::span<const ConfigKey> keys) {
  std::string names;
  for (const ConfigKey& key : keys) names.append(names.empty() ? "" : ", ").append(key.name);
  return names;
}

// The host services an instance was created with.
class Host {
 public:
  explicit Host(const bai_host_services* services) : services_(services) {}

  void log(int32_t level, std::string_view message) const {
    if (services_ == nullptr || services_->log == nullptr) return;
    std::string text(message);
    services_->log(services_->context, level, text.c_str());
  }
  // Logs a literal without allocating: usable when memory has run out.
  void logLiteral(int32_t level, const char* message) const noexcept {
    if (services_ != nullptr && services_->log != nullptr) services_->log(services_->context, level, message);
  }
  void debug(std::string_view message) const { log(BAI_LOG_DEBUG, message); }
  void info(std::string_view message) const { log(BAI_LOG_INFO, message); }
  void warning(std::string_view message) const { log(BAI_LOG_WARNING, message); }
  void error(std::string_view message) const { log(BAI_LOG_ERROR, message); }

  // The value at `key` of the plugin's config table as JSON text; nullopt when absent.
  std::optional<std::string> config(std::string_view key) const {
    if (services_ == nullptr || services_->config_get == nullptr) return std::nullopt;
    std::string name(key);
    std::string buffer(256, '\0');
    for (int attempt = 0; attempt < 2; ++attempt) {
      size_t needed = 0;
      bai_status status = services_->config_get(services_->context, name.c_str(), buffer.data(), buffer.size(), &needed);
      if (status == BAI_OK) {
        buffer.resize(std::strlen(buffer.c_str()));
        return buffer;
      }
      if (status != BAI_ERR_INVALID_ARGUMENT || needed <= buffer.size()) return std::nullopt;
      buffer.assign(needed, '\0');
    }
    return std::nullopt;
  }

 private:
  const bai_host_services* services_;
};

// One instance of a plugin. Every call returns a JSON document as text (see accelerator.h).
// Instances are never copied: the host owns each one through its handle.
class Accelerator {
 public:
  Accelerator() = default;
  Accelerator(const Accelerator&) = delete;
  Accelerator& operator=(const Accelerator&) = delete;
  virtual ~Accelerator() = default;
  virtual std::string describe() = 0;
  virtual std::string listDevices() = 0;
  virtual std::string slotTypes() = 0;
  virtual std::string allocMapSpec() = 0;
  virtual std::string prepareSession(std::string_view sessionJson) = 0;
  virtual void releaseSession(std::string_view sessionJson) = 0;
  virtual std::string nodeMeasures() { return R"({"measures":[]})"; }
  virtual std::string sessionMeasures(std::string_view /*sessionJson*/) { return R"({"measures":[]})"; }
  virtual std::string health() = 0;
};

namespace detail {

struct Instance {
  Host host;
  std::unique_ptr<Accelerator> impl;
};

inline Instance* self(bai_accelerator* instance) { return reinterpret_cast<Instance*>(instance); }

// Runs `body`, turning every exception into a status and a log line.
template <class Body>
bai_status guarded(const Host& host, const char* call, Body&& body) noexcept {
  try {
    body();
    return BAI_OK;
  } catch (const StatusError& e) {
    host.error(std::string(call) + ": " + e.what());
    return e.status();
  } catch (const std::invalid_argument& e) {
    host.error(std::string(call) + ": invalid argument: " + e.what());
    return BAI_ERR_INVALID_ARGUMENT;
  } catch (const std::bad_alloc&) {
    host.logLiteral(BAI_LOG_ERROR, "out of memory");
    return BAI_ERR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    host.error(std::string(call) + ": exception: " + e.what());
    return BAI_ERR_EXCEPTION;
  } catch (...) {
    host.error(std::string(call) + ": unknown exception");
    return BAI_ERR_UNKNOWN_EXCEPTION;
  }
}

inline char* copyOut(const std::string& text) {
  char* out = static_cast<char*>(std::malloc(text.size() + 1));
  if (out == nullptr) throw std::bad_alloc();
  std::memcpy(out, text.c_str(), text.size() + 1);
  return out;
}

template <class Body>
bai_status returningJson(bai_accelerator* instance, const char* call, char** out, Body&& body) noexcept {
  if (instance == nullptr || out == nullptr) return BAI_ERR_INVALID_ARGUMENT;
  Instance* s = self(instance);
  return guarded(s->host, call, [&] { *out = copyOut(body(*s->impl)); });
}

template <class Plugin>
struct Adapter {
  static bai_status create(const bai_host_services* services, const char* config, bai_accelerator** out) noexcept {
    if (out == nullptr) return BAI_ERR_INVALID_ARGUMENT;
    auto instance = std::unique_ptr<Instance>(new (std::nothrow) Instance{Host(services), nullptr});
    if (!instance) return BAI_ERR_OUT_OF_MEMORY;
    bai_status status = guarded(instance->host, "create", [&] {
      instance->impl = std::make_unique<Plugin>(instance->host, std::string_view(config != nullptr ? config : "{}"));
    });
    if (status == BAI_OK) *out = reinterpret_cast<bai_accelerator*>(instance.release());
    return status;
  }
  static void destroy(bai_accelerator* instance) noexcept {
    if (instance == nullptr) return;
    Instance* s = self(instance);
    (void)guarded(s->host, "destroy", [&] { s->impl.reset(); });
    delete s;
  }
  static void freeString(char* text) noexcept { std::free(text); }
  static bai_status describe(bai_accelerator* i, char** out) noexcept {
    return returningJson(i, "describe", out, [](Accelerator& a) { return a.describe(); });
  }
  static bai_status listDevices(bai_accelerator* i, char** out) noexcept {
    return returningJson(i, "list_devices", out, [](Accelerator& a) { return a.listDevices(); });
  }
  static bai_status slotTypes(bai_accelerator* i, char** out) noexcept {
    return returningJson(i, "slot_types", out, [](Accelerator& a) { return a.slotTypes(); });
  }
  static bai_status allocMapSpec(bai_accelerator* i, char** out) noexcept {
    return returningJson(i, "alloc_map_spec", out, [](Accelerator& a) { return a.allocMapSpec(); });
  }
  static bai_status prepareSession(bai_accelerator* i, const char* session, char** out) noexcept {
    if (session == nullptr) return BAI_ERR_INVALID_ARGUMENT;
    return returningJson(i, "prepare_session", out, [&](Accelerator& a) { return a.prepareSession(session); });
  }
  static bai_status releaseSession(bai_accelerator* i, const char* session) noexcept {
    if (i == nullptr || session == nullptr) return BAI_ERR_INVALID_ARGUMENT;
    return guarded(self(i)->host, "release_session", [&] { self(i)->impl->releaseSession(session); });
  }
  static bai_status nodeMeasures(bai_accelerator* i, char** out) noexcept {
    return returningJson(i, "node_measures", out, [](Accelerator& a) { return a.nodeMeasures(); });
  }
  static bai_status sessionMeasures(bai_accelerator* i, const char* session, char** out) noexcept {
    if (session == nullptr) return BAI_ERR_INVALID_ARGUMENT;
    return returningJson(i, "session_measures", out, [&](Accelerator& a) { return a.sessionMeasures(session); });
  }
  static bai_status health(bai_accelerator* i, char** out) noexcept {
    return returningJson(i, "health", out, [](Accelerator& a) { return a.health(); });
  }

  static constexpr bai_accelerator_vtable table = {
      BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, sizeof(bai_accelerator_vtable), 0,
      &create, &destroy, &freeString, &describe, &listDevices, &slotTypes, &allocMapSpec,
      &prepareSession, &releaseSession, &nodeMeasures, &sessionMeasures, &health,
  };
};

}  // namespace detail
}  // namespace bai::plugin

// Exports the identity record and the entry point for `Class`.
#define BAI_ACCELERATOR_PLUGIN(Class, name, vendor, version, key, description)                              \
  extern "C" BAI_PLUGIN_EXPORT const bai_plugin_info bai_accelerator_info = {                                 \
      BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, name, vendor, version, key, description};        \
  extern "C" BAI_PLUGIN_EXPORT const bai_accelerator_vtable* bai_accelerator_entry(void) {                   \
    return &::bai::plugin::detail::Adapter<Class>::table;                                                     \
  }
