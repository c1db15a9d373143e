// Shared helpers of the cuda-device tests: the plugin and fake NVML paths, scenario
// configs with a sysfs tree of their NUMA nodes, and schema checks of every payload.
#pragma once

#include <abi_payload.hpp>
#include <direct_plugin.hpp>
#include <temp_dir.hpp>

#include <nlohmann/json.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace bai::cuda::testing {

using nlohmann::json;

std::string pluginPath();                  // BAI_CUDA_PLUGIN, else BAI_CUDA_DEVICE_PLUGIN
std::string fakeLibrary();                 // BAI_FAKE_NVML_LIBRARY: every symbol
std::string minimalFakeLibrary();          // BAI_FAKE_NVML_MINIMAL_LIBRARY: no optional symbols
std::string noCountFakeLibrary();          // BAI_FAKE_NVML_NO_COUNT_LIBRARY: lacks a required one
std::string scenarioPath(std::string_view name);  // BAI_FAKE_SCENARIO_DIR/<name>.json

// A scenario made current: BAI_FAKE_NVML_CONFIG names it (read at the fake's first
// nvmlInit_v2) and a temporary directory holds its GPUs' NUMA nodes (sys/), their device
// nodes (dev/: nvidia<minor>, nvidiactl, nvidia-uvm but no nvidia-uvm-tools, and
// nvidia-caps/nvidia-cap<N> of every MIG device) and the MIG capability access files
// (proc/driver/nvidia/capabilities/). A node is made with mknod where allowed (root),
// else it is a plain file. MIG device (gi, ci) of GPU minor m: the GPU instance's
// capability minor is capabilityMinor(m, gi), the compute instance's capabilityMinor(m, gi, ci).
class Scenario {
 public:
  explicit Scenario(std::string_view name);
  // The plugin config: the fake library and the trees, no CDI spec dir and an empty
  // driver binary dir, with `settings` laid over it.
  json config(const json& settings = json::object()) const;
  std::string sysfsRoot() const { return (sysfs_.path() / "sys").string(); }
  std::string devRoot() const { return (sysfs_.path() / "dev").string(); }
  std::string procRoot() const { return (sysfs_.path() / "proc").string(); }
  std::string gpuNode(unsigned minor) const { return devRoot() + "/nvidia" + std::to_string(minor); }
  std::string capabilityNode(unsigned minor) const { return devRoot() + "/nvidia-caps/nvidia-cap" + std::to_string(minor); }
  // Whether dev/ holds real nodes (mknod worked) or plain files.
  bool realNodes() const { return realNodes_; }
  static unsigned capabilityMinor(unsigned gpuMinor, unsigned gpuInstance) { return gpuMinor * 100 + gpuInstance * 10 + 1; }
  static unsigned capabilityMinor(unsigned gpuMinor, unsigned gpuInstance, unsigned computeInstance) {
    return capabilityMinor(gpuMinor, gpuInstance) + 1 + computeInstance;
  }
  const json& document() const { return document_; }
  std::string gpuUuid(std::size_t index) const;

 private:
  void makeDeviceTree();
  // A character device `major:minor` at `path`, or a plain file where mknod is refused.
  void makeNode(const std::string& path, unsigned major, unsigned minor);

  std::string path_;
  json document_;
  bai::test::TempDir sysfs_;
  bool realNodes_ = true;
};

// prepare_session's "devices" entry the plugin gives for `path` in `scenario`'s dev/:
// with type and numbers for a real node, the path alone for a plain file.
json nodeEntry(const Scenario& scenario, const std::string& path, unsigned major, unsigned minor);

// Parses a payload and checks it against docs/abi/<schema>.schema.json.
using bai::testing::parsePayload;

// Creates the plugin of pluginPath() on `config`; the scenario must outlive it.
std::unique_ptr<bai::testing::DirectPlugin> created(const json& config);
// prepare_session's status for `document`; its answer is freed unread.
bai_status prepareStatus(bai::testing::DirectPlugin& plugin, const std::string& document);

// A session document for prepare/release.
std::string session(std::string_view id, const json& allocation);

// The lines the plugin logged at `level` ("2: ...").
std::vector<std::string> logLines(const bai::testing::DirectPlugin& plugin, int level);

// bai-plugin-check (BAI_PLUGIN_CHECK) run on pluginPath() with `config` written to a file.
struct CheckRun {
  int exitCode = -1;
  std::string output;
};
CheckRun pluginCheck(const json& config);

// pluginCheck(config) exits 0 and, with `everyCheckRan`, reports none failed or skipped.
void expectCheckPasses(const json& config, bool everyCheckRan = true);
// The checks both cuda plugins pass alike: with no NVML library at all, and on a fake
// NVML without its optional symbols (scenario mig-mixed).
void expectCheckPassesWithoutNvml();
void expectCheckPassesWithoutOptionalSymbols();

}  // namespace bai::cuda::testing
