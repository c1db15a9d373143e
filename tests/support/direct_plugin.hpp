// Test support: loads an accelerator plugin .so with plain dlopen and calls its vtable,
// so that plugin tests exercise the real ABI without the agent's host.
#pragma once

#include <bai/accelerator.h>

#include <dlfcn.h>

#include <gtest/gtest.h>

#include <mutex>
#include <string>
#include <vector>

namespace bai::testing {

class DirectPlugin {
 public:
  explicit DirectPlugin(const std::string& path) {
    handle_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle_ == nullptr) {
      ADD_FAILURE() << "dlopen " << path << ": " << dlerror();
      return;
    }
    info_ = static_cast<const bai_plugin_info*>(dlsym(handle_, BAI_ACCELERATOR_INFO_SYMBOL));
    auto entry = reinterpret_cast<bai_accelerator_entry_fn>(dlsym(handle_, BAI_ACCELERATOR_ENTRY_SYMBOL));
    if (info_ == nullptr || entry == nullptr) {
      ADD_FAILURE() << path << ": missing exported symbols";
      return;
    }
    vtable_ = entry();
    services_ = {BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, sizeof(bai_host_services), 0, this, &logThunk,
                 nullptr};
  }
  ~DirectPlugin() {
    if (instance_ != nullptr) vtable_->destroy(instance_);
    if (handle_ != nullptr) dlclose(handle_);
  }
  DirectPlugin(const DirectPlugin&) = delete;
  DirectPlugin& operator=(const DirectPlugin&) = delete;

  bool loaded() const { return vtable_ != nullptr; }
  const bai_plugin_info& info() const { return *info_; }
  const bai_accelerator_vtable& vtable() const { return *vtable_; }

  // Creates the instance with `configJson`; returns the status.
  bai_status create(const std::string& configJson) {
    if (instance_ != nullptr) vtable_->destroy(instance_);
    instance_ = nullptr;
    return vtable_->create(&services_, configJson.c_str(), &instance_);
  }
  bai_accelerator* instance() const { return instance_; }

  // Calls one of the `char** out_json` entries; fails the test on a non-OK status.
  std::string call(bai_status (*fn)(bai_accelerator*, char**)) {
    char* out = nullptr;
    bai_status status = fn(instance_, &out);
    EXPECT_EQ(status, BAI_OK) << lastLog();
    std::string text = out != nullptr ? out : "";
    vtable_->free_string(out);
    return text;
  }
  std::string callWith(bai_status (*fn)(bai_accelerator*, const char*, char**), const std::string& input) {
    char* out = nullptr;
    bai_status status = fn(instance_, input.c_str(), &out);
    EXPECT_EQ(status, BAI_OK) << lastLog();
    std::string text = out != nullptr ? out : "";
    vtable_->free_string(out);
    return text;
  }
  std::string describe() { return call(vtable_->describe); }
  std::string listDevices() { return call(vtable_->list_devices); }
  std::string slotTypes() { return call(vtable_->slot_types); }
  std::string allocMapSpec() { return call(vtable_->alloc_map_spec); }
  std::string health() { return call(vtable_->health); }
  std::string nodeMeasures() { return call(vtable_->node_measures); }
  std::string prepareSession(const std::string& session) { return callWith(vtable_->prepare_session, session); }
  bai_status releaseSession(const std::string& session) { return vtable_->release_session(instance_, session.c_str()); }

  std::vector<std::string> logs() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return logs_;
  }
  std::string lastLog() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return logs_.empty() ? "(no log)" : logs_.back();
  }

 private:
  static void logThunk(void* context, int32_t level, const char* message) {
    auto* self = static_cast<DirectPlugin*>(context);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->logs_.push_back(std::to_string(level) + ": " + message);
  }

  void* handle_ = nullptr;
  const bai_plugin_info* info_ = nullptr;
  const bai_accelerator_vtable* vtable_ = nullptr;
  bai_host_services services_{};
  bai_accelerator* instance_ = nullptr;
  mutable std::mutex mutex_;
  std::vector<std::string> logs_;
};

}  // namespace bai::testing
