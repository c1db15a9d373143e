// The device nodes cuda-device names in prepare_session, against the fake NVML and the
// scenario's dev/ and proc/ trees: what the agent's device fence will allow.
#include "cuda_test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace bai::cuda::testing {
namespace {

json preparedDevices(bai::testing::DirectPlugin& plugin, std::string_view id, const json& allocation) {
  return parsePayload("prepare_session", plugin.prepareSession(session(id, allocation)))["devices"];
}

json controlNodes(const Scenario& scenario) {
  return {nodeEntry(scenario, scenario.devRoot() + "/nvidiactl", 195, 255),
          nodeEntry(scenario, scenario.devRoot() + "/nvidia-uvm", 511, 0)};
}

json gpuEntry(const Scenario& scenario, unsigned minor) { return nodeEntry(scenario, scenario.gpuNode(minor), 195, minor); }

json capabilityEntry(const Scenario& scenario, unsigned minor) {
  return nodeEntry(scenario, scenario.capabilityNode(minor), 240, minor);
}

json concat(json list, const json& more) {
  list.insert(list.end(), more.begin(), more.end());
  return list;
}

TEST(CudaDeviceNodes, WholeGpusGetTheirNodesAndTheControlNodesThatExist) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config());
  json devices = preparedDevices(*plugin, "s1", {{"cuda.device", {{"3", "1"}, {"0", "1"}}}});
  // No nvidia-uvm-tools in the tree: only the control nodes that exist are listed.
  EXPECT_EQ(devices, concat({gpuEntry(scenario, 0), gpuEntry(scenario, 3)}, controlNodes(scenario)));
  if (!scenario.realNodes()) {
    EXPECT_EQ(devices[0], json({{"path", scenario.gpuNode(0)}})) << "a plain file gives the path-only form";
  }

  std::ofstream(scenario.devRoot() + "/nvidia-uvm-tools") << "";
  json later = preparedDevices(*plugin, "s2", {{"cuda.device", {{"5", "1"}}}});
  ASSERT_EQ(later.size(), 4u) << later;
  EXPECT_EQ(later[3]["path"], scenario.devRoot() + "/nvidia-uvm-tools") << "control nodes are looked up at prepare";
}

TEST(CudaDeviceNodes, ASessionWithoutAGpuGetsNoNode) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config());
  EXPECT_EQ(preparedDevices(*plugin, "cpu-only", json::object()), json::array());
}

// mig-mixed: GPU index 1 has minor 2 and GPU index 2 minor 1, so a node named after the
// index instead of the minor would fail here.
TEST(CudaDeviceNodes, AMigSliceGetsItsGpusNodeAndItsCapabilityNodes) {
  Scenario scenario("mig-mixed");
  auto plugin = created(scenario.config());
  const std::string slice = scenario.document()["devices"][2]["mig_devices"][1]["uuid"];  // gi 1, ci 0
  json devices = preparedDevices(*plugin, "s1", {{"cuda.device:3g.40gb-mig", {{slice, "1"}}}});
  EXPECT_EQ(devices, concat({gpuEntry(scenario, 1), capabilityEntry(scenario, Scenario::capabilityMinor(1, 1)),
                             capabilityEntry(scenario, Scenario::capabilityMinor(1, 1, 0))},
                            controlNodes(scenario)));

  const std::string first = scenario.document()["devices"][1]["mig_devices"][0]["uuid"];  // GPU minor 2, gi 0
  json both = preparedDevices(*plugin, "s2", {{"cuda.device:1g.10gb-mig", {{first, "1"}}}, {"cuda.device", {{"3", "1"}}}});
  EXPECT_EQ(both, concat({gpuEntry(scenario, 2), capabilityEntry(scenario, Scenario::capabilityMinor(2, 0)),
                          capabilityEntry(scenario, Scenario::capabilityMinor(2, 0, 0)), gpuEntry(scenario, 3)},
                         controlNodes(scenario)));
}

TEST(CudaDeviceNodes, ASliceWithoutCapabilityFilesGetsItsGpuNodeAndAWarning) {
  Scenario scenario("mig-mixed");
  std::filesystem::remove_all(scenario.procRoot());
  auto plugin = created(scenario.config());
  bool warned = false;
  for (const std::string& line : logLines(*plugin, BAI_LOG_WARNING)) {
    warned = warned || line.find("no capability nodes: cannot read " + scenario.procRoot() +
                                 "/driver/nvidia/capabilities/gpu1/mig/gi1/access") != std::string::npos;
  }
  EXPECT_TRUE(warned) << plugin->lastLog();
  const std::string slice = scenario.document()["devices"][2]["mig_devices"][1]["uuid"];
  json devices = preparedDevices(*plugin, "s1", {{"cuda.device:3g.40gb-mig", {{slice, "1"}}}});
  EXPECT_EQ(devices, concat({gpuEntry(scenario, 1)}, controlNodes(scenario)));
}

TEST(CudaDeviceNodes, WithoutNvmlMinorNumbersAGpuHasNoNodeOfItsOwn) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config({{"nvml_library", minimalFakeLibrary()}}));
  EXPECT_FALSE(logLines(*plugin, BAI_LOG_WARNING).empty());
  EXPECT_EQ(preparedDevices(*plugin, "s1", {{"cuda.device", {{"2", "1"}}}}), controlNodes(scenario));
}

TEST(CudaDeviceNodes, RootsAreConfigKeys) {
  for (const char* config : {R"({"dev_root": 7})", R"({"proc_root": ""})"}) {
    bai::testing::DirectPlugin plugin(pluginPath());
    EXPECT_EQ(plugin.create(config), BAI_ERR_INVALID_ARGUMENT) << config;
    EXPECT_NE(plugin.lastLog().find(std::string(config).substr(2, 8)), std::string::npos) << plugin.lastLog();
  }
}

}  // namespace
}  // namespace bai::cuda::testing
