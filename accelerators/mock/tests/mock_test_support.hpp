// Shared helpers of the mock plugin tests: where the plugin and the samples are, configs
// written to a temporary directory, and schema checks of every payload.
#pragma once

#include <abi_payload.hpp>
#include <direct_plugin.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <string>
#include <string_view>

namespace bai::mock::testing {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// BAI_MOCK_PLUGIN, set by meson test.
std::string pluginPath();
// BAI_MOCK_CONFIG_DIR/<name>: a sample of configs/accelerator/.
std::string samplePath(std::string_view name);
// {"config_file": <sample>} with `inlineSettings` laid over it.
std::string sampleConfig(std::string_view name, const json& inlineSettings = json::object());

// Parses a payload and checks it against docs/abi/<schema>.schema.json.
using bai::testing::parsePayload;

// A directory under TMPDIR, removed with its files when the test ends.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  // Writes `text` to <dir>/<name> and returns the path.
  std::string write(std::string_view name, std::string_view text) const;

 private:
  std::string path_;
};

// The error-level lines the plugin logged ("3: ...").
std::vector<std::string> errorLines(const bai::testing::DirectPlugin& plugin);

// A session document for prepare/release.
std::string session(std::string_view id, const json& allocation);

}  // namespace bai::mock::testing
