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

class PluginHost {
 public:
  explicit PluginHost(PluginHostOptions options);
  ~PluginHost();

  // Scans the search path once; may be called again after a configuration change.
  void loadAll();

  const std::vector<std::unique_ptr<AcceleratorPlugin>>& plugins() const { return plugins_; }
  const std::vector<SkippedPlugin>& skipped() const { return skipped_; }
  AcceleratorPlugin* find(std::string_view key) const;

  // Moves plugins whose calls hung out of the active list (they stay loaded); returns their names.
  std::vector<std::string> withdrawFailed();

 private:
  void loadFile(const std::filesystem::path& file);
  void skip(const std::filesystem::path& file, const std::string& name, const std::string& reason);
  bool allowed(const std::string& name) const;

  PluginHostOptions options_;
  std::vector<std::unique_ptr<AcceleratorPlugin>> plugins_;
  std::vector<std::unique_ptr<AcceleratorPlugin>> withdrawn_;
  std::vector<SkippedPlugin> skipped_;
};

// Reads and checks the info record (identity before code: no plugin code runs).
Result<PluginIdentity> readIdentity(const LoadedModule& module);
// Calls the entry point and checks the call table's ABI version, size and required calls.
Result<const bai_accelerator_vtable*> readCallTable(const LoadedModule& module);

}  // namespace bai::core
