// What a container session needs of the CUDA plugins (ABI 1.2): CDI device names when the
// node has a nvidia.com/gpu CDI spec (JSON or YAML), the driver's files as read-only mounts
// when it has none; and the CDI spec reader itself.
#include "cuda_test_support.hpp"

#include "cdi_spec.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace bai::cuda::testing {
namespace {

namespace fs = std::filesystem;
using bai::testing::DirectPlugin;

void writeFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path) << text;
}

// A spec of `kind` in nvidia-ctk's JSON form, naming `names`.
std::string jsonSpec(const std::string& kind, const std::vector<std::string>& names) {
  json devices = json::array();
  for (const std::string& name : names) {
    devices.push_back({{"name", name}, {"containerEdits", {{"deviceNodes", {{{"path", "/dev/nvidia0"}}}}}}});
  }
  return json{{"cdiVersion", "0.5.0"}, {"kind", kind}, {"devices", devices},
              {"containerEdits", {{"deviceNodes", {{{"path", "/dev/nvidiactl"}}}}}}}
      .dump(2);
}

// A spec in the YAML form Go's writer gives it (nvidia-ctk cdi generate): lists at the
// column of their key, names quoted when they look like numbers.
std::string yamlSpec(const std::vector<std::string>& names) {
  std::string text = "---\ncdiVersion: 0.5.0\ncontainerEdits:\n  deviceNodes:\n  - path: /dev/nvidiactl\n  hooks:\n"
                     "  - args:\n    - nvidia-ctk\n    - hook\n    hookName: createContainer\n    path: /usr/bin/nvidia-ctk\n"
                     "devices:\n";
  for (const std::string& name : names) {
    text += "- containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n    env:\n    - name: not-the-device\n";
    text += "  name: \"" + name + "\"\n";
  }
  return text + "kind: nvidia.com/gpu\n";
}

json prepared(DirectPlugin& plugin, const std::string& id, const json& allocation) {
  return parsePayload("prepare_session", plugin.prepareSession(session(id, allocation)));
}

bool warned(const DirectPlugin& plugin, const std::string& text) {
  for (const std::string& line : logLines(plugin, BAI_LOG_WARNING)) {
    if (line.find(text) != std::string::npos) return true;
  }
  return false;
}

class CudaContainer : public ::testing::Test {
 protected:
  fs::path cdiDir() const { return temp_.path() / "cdi"; }
  fs::path runCdiDir() const { return temp_.path() / "run-cdi"; }
  json withCdi(const Scenario& scenario) const {
    return scenario.config({{"cdi_spec_dirs", {cdiDir().string(), runCdiDir().string()}}});
  }

  bai::test::TempDir temp_;
};

TEST_F(CudaContainer, AJsonSpecNamesEachGrantedGpuByItsUuid) {
  Scenario scenario("h100x8");
  writeFile(cdiDir() / "nvidia.json",
            jsonSpec("nvidia.com/gpu", {"0", "1", "2", "3", scenario.gpuUuid(0), scenario.gpuUuid(3), "all"}));
  auto plugin = created(withCdi(scenario));
  json answer = prepared(*plugin, "s1", {{"cuda.device", {{"3", "1"}, {"0", "1"}}}});
  EXPECT_EQ(answer["cdi_devices"],
            json::array({"nvidia.com/gpu=" + scenario.gpuUuid(0), "nvidia.com/gpu=" + scenario.gpuUuid(3)}));
  EXPECT_EQ(answer["devices"].size(), 4u) << "the nodes stay for a process session: 2 GPUs, nvidiactl, nvidia-uvm";
  EXPECT_TRUE(answer["mounts"].empty()) << "the engine injects the driver's files from the spec";
  // GPU 1 has only its index in the spec.
  EXPECT_EQ(prepared(*plugin, "s2", {{"cuda.device", {{"1", "1"}}}})["cdi_devices"], json::array({"nvidia.com/gpu=1"}));
  json described = parsePayload("describe", plugin->describe());
  EXPECT_EQ(described["extra_info"]["cdi_specs"], json::array({(cdiDir() / "nvidia.json").string()}));
}

TEST_F(CudaContainer, AYamlSpecInVarRunIsReadToo) {
  Scenario scenario("h100x8");
  writeFile(runCdiDir() / "nvidia.yaml", yamlSpec({"0", "1", scenario.gpuUuid(1), "all"}));
  auto plugin = created(withCdi(scenario));
  EXPECT_EQ(prepared(*plugin, "s1", {{"cuda.device", {{"0", "1"}, {"1", "1"}}}})["cdi_devices"],
            json::array({"nvidia.com/gpu=0", "nvidia.com/gpu=" + scenario.gpuUuid(1)}));
}

TEST_F(CudaContainer, MigSlicesAreNamedByUuidElseByGpuAndSliceIndex) {
  Scenario scenario("mig-mixed");
  const json& migGpu = scenario.document()["devices"][1];
  const std::string first = migGpu["mig_devices"][0]["uuid"];
  const std::string second = migGpu["mig_devices"][1]["uuid"];
  writeFile(cdiDir() / "nvidia.yaml", yamlSpec({"0", "1", "1:0", "1:1", first, scenario.gpuUuid(0)}));
  auto plugin = created(withCdi(scenario));
  EXPECT_EQ(prepared(*plugin, "s1", {{"cuda.device:1g.10gb-mig", {{first, "1"}}}})["cdi_devices"],
            json::array({"nvidia.com/gpu=" + first}));
  EXPECT_EQ(prepared(*plugin, "s2", {{"cuda.device:1g.10gb-mig", {{second, "1"}}}})["cdi_devices"],
            json::array({"nvidia.com/gpu=1:1"}));
}

TEST_F(CudaContainer, ASpecOfAnotherKindIsIgnored) {
  Scenario scenario("h100x8");
  writeFile(cdiDir() / "amd.json", jsonSpec("amd.com/gpu", {"0", "1"}));
  auto plugin = created(withCdi(scenario));
  json answer = prepared(*plugin, "s1", {{"cuda.device", {{"0", "1"}}}});
  EXPECT_FALSE(answer.contains("cdi_devices")) << answer.dump();
  EXPECT_TRUE(parsePayload("describe", plugin->describe())["extra_info"]["cdi_specs"].empty());
}

TEST_F(CudaContainer, ABrokenSpecIsLoggedAndIgnoredNotFatal) {
  Scenario scenario("h100x8");
  writeFile(cdiDir() / "a-broken.json", "{\"kind\": \"nvidia.com/gpu\", \"devices\": [");
  writeFile(cdiDir() / "b-flow.yaml", "kind: nvidia.com/gpu\ndevices: [{name: \"0\"}]\n");
  writeFile(cdiDir() / "c-nvidia.json", jsonSpec("nvidia.com/gpu", {"0"}));
  writeFile(cdiDir() / "notes.txt", "not a spec");
  auto plugin = created(withCdi(scenario));
  EXPECT_TRUE(warned(*plugin, (cdiDir() / "a-broken.json").string() + ": not JSON")) << plugin->lastLog();
  EXPECT_TRUE(warned(*plugin, (cdiDir() / "b-flow.yaml").string() + ": line 2: devices: expected a block list"))
      << plugin->lastLog();
  EXPECT_FALSE(warned(*plugin, "notes.txt"));
  EXPECT_EQ(parsePayload("list_devices", plugin->listDevices())["devices"].size(), 8u);
  EXPECT_EQ(prepared(*plugin, "s1", {{"cuda.device", {{"0", "1"}}}})["cdi_devices"], json::array({"nvidia.com/gpu=0"}));
}

// A session whose GPUs are not all in the spec gets no CDI names: half a set of devices
// would start a container without some of its GPUs.
TEST_F(CudaContainer, AGpuTheSpecDoesNotNameFallsBackToNodesAndDriverFiles) {
  Scenario scenario("h100x8");
  writeFile(cdiDir() / "nvidia.json", jsonSpec("nvidia.com/gpu", {"0"}));
  auto plugin = created(withCdi(scenario));
  EXPECT_TRUE(warned(*plugin, scenario.gpuUuid(5) + " is not in the CDI specs")) << plugin->lastLog();
  json answer = prepared(*plugin, "s1", {{"cuda.device", {{"0", "1"}, {"5", "1"}}}});
  EXPECT_FALSE(answer.contains("cdi_devices")) << answer.dump();
  EXPECT_EQ(answer["devices"].size(), 4u);
}

TEST_F(CudaContainer, WithoutASpecTheDriversFilesAreMountedReadOnlyWhereTheyAre) {
  Scenario scenario("h100x8");  // driver 550.54.15
  const fs::path lib = temp_.path() / "lib";
  const fs::path bin = temp_.path() / "bin";
  fs::create_directories(lib);
  fs::copy_file(fakeLibrary(), lib / "libnvidia-ml.so.1");
  writeFile(lib / "libcuda.so.550.54.15", "");
  fs::create_symlink("libcuda.so.550.54.15", lib / "libcuda.so.1");
  writeFile(lib / "libnvidia-ptxjitcompiler.so.1", "");
  writeFile(lib / "libnvidia-gpucomp.so.550.54.15", "");
  fs::create_symlink("libnvidia-nvvm.so.550.54.15", lib / "libnvidia-nvvm.so.4");  // dangling: absent
  writeFile(lib / "libnvidia-encode.so.1", "");  // video: not for compute
  writeFile(bin / "nvidia-smi", "");
  writeFile(bin / "nvidia-cuda-mps-control", "");
  auto plugin = created(scenario.config({{"nvml_library", (lib / "libnvidia-ml.so.1").string()},
                                         {"driver_binary_dirs", {"/nonexistent", bin.string()}}}));
  json answer = prepared(*plugin, "s1", {{"cuda.device", {{"2", "1"}}}});
  EXPECT_FALSE(answer.contains("cdi_devices"));
  json expected = json::array();
  for (const fs::path& file : {lib / "libnvidia-ml.so.1", lib / "libcuda.so.1", lib / "libnvidia-ptxjitcompiler.so.1",
                               lib / "libnvidia-gpucomp.so.550.54.15", bin / "nvidia-smi", bin / "nvidia-cuda-mps-control"}) {
    expected.push_back({{"source", file.string()}, {"target", file.string()}, {"read_only", true}});
  }
  EXPECT_EQ(answer["mounts"], expected);
  EXPECT_EQ(answer["devices"].size(), 3u);
  json none = prepared(*plugin, "s2", json::object());
  EXPECT_TRUE(none["mounts"].empty()) << "a session without a GPU gets none of the driver";
  EXPECT_FALSE(none.contains("cdi_devices"));
}

TEST_F(CudaContainer, ASessionWithoutAGpuGetsNoCdiDevices) {
  Scenario scenario("h100x8");
  writeFile(cdiDir() / "nvidia.json", jsonSpec("nvidia.com/gpu", {"0", "all"}));
  auto plugin = created(withCdi(scenario));
  json answer = prepared(*plugin, "s1", json::object());
  EXPECT_FALSE(answer.contains("cdi_devices")) << answer.dump();
  EXPECT_EQ(answer["env"]["NVIDIA_VISIBLE_DEVICES"], "void");
}

// bai-plugin-check holds the answers with cdi_devices to the schema and rules the agent reads them by.
TEST_F(CudaContainer, PluginCheckPassesWithASpecNamingEveryDevice) {
  Scenario scenario("mig-mixed");
  std::vector<std::string> names = {"0", "1", "2", "all"};
  for (const json& gpu : scenario.document()["devices"]) {
    for (const json& slice : gpu.value("mig_devices", json::array())) names.push_back(slice["uuid"]);
  }
  writeFile(cdiDir() / "nvidia.yaml", yamlSpec(names));
  expectCheckPasses(withCdi(scenario));
}

TEST(CudaContainerConfig, BadSpecAndBinaryDirsAreRefusedNamingTheKey) {
  Scenario scenario("h100x8");
  for (auto [key, value, says] : {std::tuple{"cdi_spec_dirs", json("/etc/cdi"), "cdi_spec_dirs: expected a list of directories"},
                                  std::tuple{"cdi_spec_dirs", json::array({"etc/cdi"}), "cdi_spec_dirs[]: expected an absolute path"},
                                  std::tuple{"driver_binary_dirs", json::array({7}), "driver_binary_dirs[]: expected an absolute path"}}) {
    DirectPlugin plugin(pluginPath());
    EXPECT_EQ(plugin.create(scenario.config({{key, value}}).dump()), BAI_ERR_INVALID_ARGUMENT) << key;
    EXPECT_NE(plugin.lastLog().find(says), std::string::npos) << plugin.lastLog();
  }
}

// ---- The spec reader --------------------------------------------------------------------

TEST(CdiSpecReader, ReadsTheYamlThatNvidiaCtkWrites) {
  auto spec = accel::readCdiYaml(yamlSpec({"0", "GPU-1", "all"}));
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->kind, "nvidia.com/gpu");
  EXPECT_EQ(spec->deviceNames, (std::vector<std::string>{"0", "GPU-1", "all"}));
}

TEST(CdiSpecReader, ReadsIndentedListsQuotesAndComments) {
  auto spec = accel::readCdiYaml(
      "# generated\r\ncdiVersion: \"0.6.0\"\r\nkind: 'amd.com/gpu'  # the kind\r\ndevices:\r\n  - name: 0 # first\r\n"
      "    containerEdits:\r\n      deviceNodes:\r\n        - path: /dev/dri/renderD128\r\n          name: not-a-device\r\n"
      "  -\r\n    name: 'it''s'\r\n  - annotations:\r\n      name: nested\r\n    name: \"q\\\"uoted\"\r\n");
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->kind, "amd.com/gpu");
  EXPECT_EQ(spec->deviceNames, (std::vector<std::string>{"0", "it's", "q\"uoted"}));
}

TEST(CdiSpecReader, RefusesWhatItWouldMisread) {
  for (auto [text, says] : {std::pair{"devices:\n- name: \"0\"\n", "no top-level kind"},
                            std::pair{"kind: nvidia.com/gpu\ndevices: [{name: a}]\n", "line 2: devices: expected a block list"},
                            std::pair{"kind: &k nvidia.com/gpu\n", "line 1: '&k nvidia.com/gpu': flow collections, anchors"},
                            std::pair{"kind: nvidia.com/gpu\ndevices:\n- name: \"0\n", "line 3: a quoted value without its closing quote"},
                            std::pair{"kind nvidia.com/gpu\n", "line 1: expected \"key: value\" at the top level"},
                            std::pair{"kind: nvidia.com/gpu\ndevices:\n  - name: a\n - name: b\n", "line 4: expected a device"}}) {
    auto spec = accel::readCdiYaml(text);
    ASSERT_FALSE(spec.ok()) << text;
    EXPECT_NE(spec.error().message.find(says), std::string::npos) << spec.error().message;
  }
  EXPECT_TRUE(accel::readCdiYaml("kind: nvidia.com/gpu\ndevices: []\n").ok());
}

TEST(CdiSpecReader, JsonErrorsNameTheKey) {
  EXPECT_EQ(accel::readCdiJson(R"({"kind": "nvidia.com/gpu", "devices": [{"name": "0"}, {"name": "GPU-1"}]})")->deviceNames,
            (std::vector<std::string>{"0", "GPU-1"}));
  EXPECT_EQ(accel::readCdiJson(R"({"devices": []})").error().message, "kind: expected a string");
  EXPECT_EQ(accel::readCdiJson(R"({"kind": "a.com/b", "devices": {}})").error().message, "devices: expected a list");
  EXPECT_EQ(accel::readCdiJson(R"({"kind": "a.com/b", "devices": [{"name": 0}]})").error().message,
            "devices[0].name: expected a string");
}

TEST(CdiSpecReader, ScanKeepsTheKindAndNamesTheFilesItSkipped) {
  bai::test::TempDir dir;
  writeFile(dir.path() / "nvidia.yaml", yamlSpec({"0"}));
  writeFile(dir.path() / "other.json", jsonSpec("vendor.com/fpga", {"f0"}));
  writeFile(dir.path() / "zz-nvidia.json", jsonSpec("nvidia.com/gpu", {"1"}));
  writeFile(dir.path() / "broken.yml", "kind: [x]\n");
  accel::CdiScan scan = accel::scanCdiSpecs({dir.path().string(), "/nonexistent/cdi"}, "nvidia.com/gpu");
  EXPECT_EQ(scan.deviceNames, (std::set<std::string>{"0", "1"}));
  EXPECT_EQ(scan.specFiles, (std::vector<std::string>{(dir.path() / "nvidia.yaml").string(), (dir.path() / "zz-nvidia.json").string()}));
  ASSERT_EQ(scan.problems.size(), 1u);
  EXPECT_NE(scan.problems[0].find("broken.yml: line 1"), std::string::npos) << scan.problems[0];
}

}  // namespace
}  // namespace bai::cuda::testing
