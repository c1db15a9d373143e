// Finds accelerator plugins in the configured directories, checks each one's identity
// and ABI before running its code, starts the good ones and reports the rest. A broken
// plugin is skipped with one log line naming its file and the reason, never fatal.
#pragma once

#include "log.hpp"
#include "plugin/accelerator_plugin.hpp"
#include "module_loader.hpp"

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace bai::core {

struct PluginHostOptions {
  std::vector<std::filesystem::path> searchPath;  // directories scanned for *.so, in order
  std::vector<std::string> allow;                 // plugin names; empty allows all
  std::vector<std::string> block;                 // plugin names, applied after allow
  std::chrono::milliseconds callDeadline{5000};
  // The config table (a JSON object as text) for a plugin; "{}" when none.
  std::function<std::string(const std::string& name, const std::string& key)> configFor;
  LogSink log = stderrLogSink();
};

struct SkippedPlugin {
  std::filesystem::path file;
  std::string name;  // empty when the identity could not be read
  std::string reason;
};

// Thread-safe: the agent reads the plugin list from its RPC and health threads while a
// reload loads or unloads plugins; readers get a snapshot that keeps each plugin alive.
class PluginHost {
 public:
  explicit PluginHost(PluginHostOptions options);
  ~PluginHost();

  // Scans the search path; may be called again after a configuration change: plugins
  // already loaded stay, the skipped list is rebuilt. Returns the plugins this scan loaded.
  std::vector<std::shared_ptr<AcceleratorPlugin>> loadAll();

  std::vector<std::shared_ptr<AcceleratorPlugin>> plugins() const;
  std::vector<SkippedPlugin> skipped() const;
  AcceleratorPlugin* find(std::string_view key) const;

  // New allow/block lists and plugin configs, for the next loadAll() (a reload).
  void reconfigure(std::vector<std::string> allow, std::vector<std::string> block,
                   std::function<std::string(const std::string& name, const std::string& key)> configFor);
  // Whether the allow/block lists admit a plugin of this name.
  bool allowed(const std::string& name) const;
  // Takes `plugin` out of the host; it is destroyed (and its module closed) when the last
  // snapshot holding it goes. Null when it was not loaded.
  std::shared_ptr<AcceleratorPlugin> unload(const AcceleratorPlugin* plugin);

  // A plugin whose call hung (failed()) refuses every further call at once and stays in
  // plugins() (a thread may still be inside it), keeping its file, name and key: a rescan
  // does not start it again beside the hung one. The agent's PluginSupervisor is the one
  // place that withdraws it: it stops offering its devices and reports it.

 private:
  std::shared_ptr<AcceleratorPlugin> loadFile(const std::filesystem::path& file);
  // Records and logs why `file` is not loaded; returns null for loadFile to pass on.
  std::nullptr_t skip(const std::filesystem::path& file, const std::string& name, const std::string& reason);
  bool allowedLocked(const std::string& name) const;
  // Why a plugin of this name and key cannot be added now; nullopt when it can.
  std::optional<std::string> refusalLocked(const std::string& name, const std::string& key) const;

  mutable std::mutex mutex_;  // guards everything below; never held during a plugin call
  PluginHostOptions options_;
  std::vector<std::shared_ptr<AcceleratorPlugin>> plugins_;
  std::vector<SkippedPlugin> skipped_;
};

// Reads and checks the info record (identity before code: no plugin code runs).
Result<PluginIdentity> readIdentity(const LoadedModule& module);
// Calls the entry point and checks the call table's ABI version, size and required calls.
Result<const bai_accelerator_vtable*> readCallTable(const LoadedModule& module);

}  // namespace bai::core
