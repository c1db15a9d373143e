// cuda-device against the fake NVML: discovery, slots, sessions, masks, health, degraded modes.
#include "cuda_test_support.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include <set>

namespace bai::cuda::testing {
namespace {

using bai::testing::DirectPlugin;

constexpr const char* kH100 = "NVIDIA H100 80GB HBM3";

json healthById(DirectPlugin& plugin) {
  json byId = json::object();
  json health = parsePayload("health", plugin.health());
  for (const json& d : health["devices"]) byId[d["id"].get<std::string>()] = d;
  return byId;
}

TEST(CudaDevicePlugin, IdentityIsCudaDevice) {
  DirectPlugin plugin(pluginPath());
  ASSERT_TRUE(plugin.loaded());
  EXPECT_STREQ(plugin.info().name, "cuda-device");
  EXPECT_STREQ(plugin.info().key, "cuda");
  EXPECT_EQ(plugin.info().abi_major, BAI_ACCELERATOR_ABI_MAJOR);
}

TEST(CudaDevicePlugin, EightH100sOnTwoNumaNodes) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config());
  json devices = parsePayload("list_devices", plugin->listDevices())["devices"];
  ASSERT_EQ(devices.size(), 8u);
  const char* buses[] = {"18", "2a", "3a", "5d", "9a", "ab", "ba", "db"};
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(devices[i]["id"], std::to_string(i));
    EXPECT_EQ(devices[i]["uuid"], scenario.gpuUuid(i));
    EXPECT_EQ(devices[i]["model"], kH100);
    EXPECT_EQ(devices[i]["pci_bus"], std::string("0000:") + buses[i] + ":00.0");
    EXPECT_EQ(devices[i]["numa_node"], i < 4 ? 0 : 1);
    EXPECT_EQ(devices[i]["memory"], "85520809984");
    EXPECT_EQ(devices[i]["processing_units"], 16896);
    EXPECT_EQ(devices[i]["extra"]["mig"], false);
  }
  json slots = parsePayload("slot_types", plugin->slotTypes())["slots"];
  EXPECT_EQ(slots, json::parse(R"([{"name":"cuda.device","type":"count"}])"));
  json spec = parsePayload("alloc_map_spec", plugin->allocMapSpec());
  EXPECT_EQ(spec["exclusive"], json::parse(R"([["cuda.device","cuda.shares","cuda.device:*-mig"]])"));
  ASSERT_EQ(spec["maps"].size(), 1u);
  EXPECT_EQ(spec["maps"][0]["slot"], "cuda.device");
  EXPECT_EQ(spec["maps"][0]["kind"], "discrete");
  EXPECT_EQ(spec["maps"][0]["strategy"], "evenly");
  EXPECT_EQ(spec["maps"][0]["devices"].size(), 8u);
  EXPECT_EQ(spec["maps"][0]["devices"][7], json::parse(R"({"id":"7","capacity":"1"})"));
  json describe = parsePayload("describe", plugin->describe());
  EXPECT_EQ(describe["key"], "cuda");
  EXPECT_EQ(describe["extra_info"]["driver_version"], "550.54.15");
  EXPECT_EQ(describe["extra_info"]["device_count"], 8);
  EXPECT_EQ(describe["extra_info"]["xid_events"], "watching critical XIDs");
  EXPECT_FALSE(describe["extra_info"].contains("reason"));
  json health = healthById(*plugin);
  for (const auto& [id, d] : health.items()) EXPECT_EQ(d["health"], "healthy") << id;
}

TEST(CudaDevicePlugin, NumaNodeIsMinusOneWithoutSysfs) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config({{"sysfs_root", "/nonexistent"}}));
  json devices = parsePayload("list_devices", plugin->listDevices())["devices"];
  for (const json& d : devices) EXPECT_EQ(d["numa_node"], -1);
}

TEST(CudaDevicePlugin, SessionsSeeTheirGpusByUuid) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config());
  json env = parsePayload("prepare_session",
                          plugin->prepareSession(session("s1", {{"cuda.device", {{"3", "1"}, {"0", "1"}}}})))["env"];
  std::string visible = scenario.gpuUuid(0) + "," + scenario.gpuUuid(3);
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], visible);
  EXPECT_EQ(env["NVIDIA_VISIBLE_DEVICES"], visible);

  // A session that asked for no GPU sees none.
  json none = parsePayload("prepare_session", plugin->prepareSession(session("s2", json::object())))["env"];
  EXPECT_EQ(none["CUDA_VISIBLE_DEVICES"], "");
  EXPECT_EQ(none["NVIDIA_VISIBLE_DEVICES"], "void");

  EXPECT_EQ(prepareStatus(*plugin, session("s1", json::object())), BAI_ERR_INVALID_ARGUMENT);  // prepared already
  EXPECT_EQ(prepareStatus(*plugin, session("s3", {{"cuda.device", {{"3", "1"}}}})), BAI_ERR_INVALID_ARGUMENT);  // held
  EXPECT_EQ(prepareStatus(*plugin, session("s3", {{"cuda.device", {{"9", "1"}}}})), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(prepareStatus(*plugin, session("s3", {{"cuda.device", {{"4", "0.5"}}}})), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(prepareStatus(*plugin, session("s3", {{"cuda.shares", {{"4", "1"}}}})), BAI_ERR_INVALID_ARGUMENT);

  EXPECT_EQ(plugin->releaseSession(session("s1", json::object())), BAI_OK);
  EXPECT_EQ(plugin->releaseSession(session("s1", json::object())), BAI_ERR_NOT_FOUND);
  EXPECT_EQ(plugin->releaseSession(session("s2", json::object())), BAI_OK);
  EXPECT_EQ(plugin->releaseSession(session("never", json::object())), BAI_ERR_NOT_FOUND);
  // Released GPUs can be given again.
  parsePayload("prepare_session", plugin->prepareSession(session("s4", {{"cuda.device", {{"3", "1"}}}})));
  EXPECT_EQ(plugin->releaseSession(session("s4", json::object())), BAI_OK);
}

TEST(CudaDevicePlugin, NodeAndSessionMeasuresFromNvml) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config());
  json measures = parsePayload("node_measures", plugin->nodeMeasures())["measures"];
  ASSERT_EQ(measures.size(), 2u);
  EXPECT_EQ(measures[0]["key"], "cuda_util");
  EXPECT_EQ(measures[0]["value"], "280");  // 0 + 10 + ... + 70
  EXPECT_EQ(measures[0]["per_device"]["7"], "70");
  EXPECT_EQ(measures[1]["key"], "cuda_mem");
  EXPECT_EQ(measures[1]["value"], std::to_string(36ULL * 1073741824ULL));
  plugin->prepareSession(session("s1", {{"cuda.device", {{"2", "1"}}}}));
  json sessionMeasures =
      parsePayload("node_measures", plugin->callWith(plugin->vtable().session_measures, session("s1", json::object())));
  EXPECT_EQ(sessionMeasures["measures"][0]["per_device"], json::parse(R"({"2":"20"})"));
  EXPECT_EQ(sessionMeasures["measures"][1]["per_device"], json::parse(R"({"2":"3221225472"})"));
  EXPECT_EQ(plugin->releaseSession(session("s1", json::object())), BAI_OK);
}

TEST(CudaDevicePlugin, MigSlicesAreUniqueSlots) {
  Scenario scenario("mig-mixed");
  auto plugin = created(scenario.config());
  json devices = parsePayload("list_devices", plugin->listDevices())["devices"];
  ASSERT_EQ(devices.size(), 4u + 7u + 2u);
  json slots = parsePayload("slot_types", plugin->slotTypes())["slots"];
  EXPECT_EQ(slots, json::parse(R"([{"name":"cuda.device","type":"count"},
                                   {"name":"cuda.device:1g.10gb-mig","type":"unique"},
                                   {"name":"cuda.device:3g.40gb-mig","type":"unique"}])"));
  json maps = parsePayload("alloc_map_spec", plugin->allocMapSpec())["maps"];
  ASSERT_EQ(maps.size(), 3u);
  EXPECT_EQ(maps[0]["devices"], json::parse(R"([{"id":"0","capacity":"1"},{"id":"3","capacity":"1"}])"));
  EXPECT_EQ(maps[1]["devices"].size(), 7u);
  EXPECT_EQ(maps[2]["devices"].size(), 2u);
  std::string slice = scenario.document()["devices"][2]["mig_devices"][1]["uuid"];
  EXPECT_EQ(maps[2]["devices"][1]["id"], slice);
  for (const json& d : devices) {
    if (d["id"] != slice) continue;
    EXPECT_EQ(d["extra"]["mig_parent"], "2");
    EXPECT_EQ(d["extra"]["mig_profile"], "3g.40gb");
    EXPECT_EQ(d["memory"], std::to_string(40ULL << 30));
    EXPECT_EQ(d["numa_node"], 0);
  }
  json env = parsePayload("prepare_session",
                          plugin->prepareSession(session("s1", {{"cuda.device:3g.40gb-mig", {{slice, "1"}}}})))["env"];
  EXPECT_EQ(env["CUDA_VISIBLE_DEVICES"], slice);
  EXPECT_EQ(plugin->releaseSession(session("s1", json::object())), BAI_OK);
  json prepared = parsePayload(
      "prepare_session",
      plugin->prepareSession(session("s2", {{"cuda.device:3g.40gb-mig", {{slice, "1"}}}, {"cuda.device", {{"0", "1"}}}})));
  EXPECT_EQ(prepared["env"]["CUDA_VISIBLE_DEVICES"], scenario.gpuUuid(0) + "," + slice);
  EXPECT_EQ(prepared["env"]["NVIDIA_VISIBLE_DEVICES"], scenario.gpuUuid(0) + "," + slice);
  std::string other = scenario.document()["devices"][2]["mig_devices"][0]["uuid"];
  EXPECT_EQ(prepareStatus(*plugin, session("s3", {{"cuda.device:3g.40gb-mig", {{slice, "1"}, {other, "1"}}}})),
            BAI_ERR_INVALID_ARGUMENT);
  // A GPU in MIG mode is offered only as its slices.
  EXPECT_EQ(prepareStatus(*plugin, session("s3", {{"cuda.device", {{"1", "1"}}}})), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(plugin->releaseSession(session("s2", json::object())), BAI_OK);
}

TEST(CudaDevicePlugin, DeviceMaskByIndexAndUuid) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config({{"device_mask", {"1", scenario.gpuUuid(6), "GPU-no-such-gpu"}}}));
  std::set<std::string> ids;
  json devices = parsePayload("list_devices", plugin->listDevices())["devices"];
  for (const json& d : devices) ids.insert(d["id"]);
  EXPECT_EQ(ids, (std::set<std::string>{"0", "2", "3", "4", "5", "7"}));
  json extra = parsePayload("describe", plugin->describe())["extra_info"];
  EXPECT_EQ(extra["masked"], json::array({"1", scenario.gpuUuid(6)}));
  bool warned = false;
  for (const std::string& line : logLines(*plugin, BAI_LOG_WARNING)) warned |= line.find("GPU-no-such-gpu") != std::string::npos;
  EXPECT_TRUE(warned);
  EXPECT_EQ(prepareStatus(*plugin, session("s1", {{"cuda.device", {{"1", "1"}}}})), BAI_ERR_INVALID_ARGUMENT);
}

TEST(CudaDevicePlugin, DeviceMaskHidesMigSlices) {
  Scenario scenario("mig-mixed");
  std::string slice = scenario.document()["devices"][2]["mig_devices"][0]["uuid"];
  auto plugin = created(scenario.config({{"device_mask", json::array({1, slice})}}));
  json devices = parsePayload("list_devices", plugin->listDevices())["devices"];
  EXPECT_EQ(devices.size(), 3u + 1u);  // GPUs 0, 2, 3 and one 3g.40gb slice
  json slots = parsePayload("slot_types", plugin->slotTypes())["slots"];
  EXPECT_EQ(slots.size(), 2u);  // no 1g.10gb slice left
}

TEST(CudaDevicePlugin, CriticalXidStormMakesOneGpuUnhealthy) {
  Scenario scenario("xid-storm");
  auto plugin = created(scenario.config());
  // Nothing is known before the first poll; list_devices stays as found at create.
  std::string listed = plugin->listDevices();
  json health = healthById(*plugin);
  EXPECT_EQ(health["5"]["health"], "unhealthy");
  EXPECT_NE(health["5"]["reason"].get<std::string>().find("XID 79"), std::string::npos) << health["5"];
  EXPECT_NE(health["5"]["reason"].get<std::string>().find("200 critical"), std::string::npos) << health["5"];
  for (const char* id : {"0", "1", "2", "3", "4", "6", "7"}) EXPECT_EQ(health[id]["health"], "healthy") << id;
  EXPECT_EQ(healthById(*plugin)["5"]["health"], "unhealthy");  // stays so
  EXPECT_EQ(plugin->listDevices(), listed);
  // Withheld from new sessions; the others serve.
  EXPECT_EQ(prepareStatus(*plugin, session("s1", {{"cuda.device", {{"5", "1"}}}})), BAI_ERR_UNAVAILABLE);
  parsePayload("prepare_session", plugin->prepareSession(session("s2", {{"cuda.device", {{"4", "1"}}}})));
  EXPECT_EQ(plugin->releaseSession(session("s2", json::object())), BAI_OK);
  EXPECT_EQ(logLines(*plugin, BAI_LOG_WARNING).size(), 1u);  // one line for the storm, not 200
}

TEST(CudaDevicePlugin, AnUnhealthyGpuReturnsToServiceAfterAQuietRecoveryTime) {
  Scenario scenario("xid-storm");
  auto plugin = created(scenario.config({{"xid_recovery_seconds", 0.2}}));
  EXPECT_EQ(healthById(*plugin)["5"]["health"], "unhealthy");  // the storm arrives with the first poll
  EXPECT_EQ(prepareStatus(*plugin, session("s1", {{"cuda.device", {{"5", "1"}}}})), BAI_ERR_UNAVAILABLE);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // no new XID meanwhile
  EXPECT_EQ(healthById(*plugin)["5"]["health"], "healthy") << "quiet for the recovery time and still answering";
  parsePayload("prepare_session", plugin->prepareSession(session("s1", {{"cuda.device", {{"5", "1"}}}})));
  EXPECT_EQ(plugin->releaseSession(session("s1", json::object())), BAI_OK);
  EXPECT_FALSE(logLines(*plugin, BAI_LOG_INFO).empty());
}

TEST(CudaDevicePlugin, CriticalXidsAreConfigurable) {
  Scenario scenario("xid-storm");
  auto plugin = created(scenario.config({{"critical_xids", {31}}}));
  json health = healthById(*plugin);
  EXPECT_EQ(health["2"]["health"], "unhealthy");
  EXPECT_NE(health["2"]["reason"].get<std::string>().find("XID 31"), std::string::npos);
  EXPECT_EQ(health["5"]["health"], "healthy");
  json extra = parsePayload("describe", plugin->describe())["extra_info"];
  EXPECT_EQ(extra["critical_xids"], json::array({31}));
}

TEST(CudaDevicePlugin, GpuThatDisappearsIsGone) {
  Scenario scenario("gpu-disappears");
  auto plugin = created(scenario.config());
  std::string listed = plugin->listDevices();
  EXPECT_EQ(parsePayload("list_devices", listed)["devices"].size(), 4u);
  json health = healthById(*plugin);
  EXPECT_EQ(health["2"]["health"], "gone");
  EXPECT_NE(health["2"]["reason"].get<std::string>().find("GPU is lost"), std::string::npos) << health["2"];
  for (const char* id : {"0", "1", "3"}) EXPECT_EQ(health[id]["health"], "healthy") << id;
  EXPECT_EQ(plugin->listDevices(), listed);
  EXPECT_EQ(prepareStatus(*plugin, session("s1", {{"cuda.device", {{"2", "1"}}}})), BAI_ERR_UNAVAILABLE);
  json measures = parsePayload("node_measures", plugin->nodeMeasures())["measures"];
  EXPECT_FALSE(measures[0]["per_device"].contains("2"));
  EXPECT_TRUE(measures[0]["per_device"].contains("3"));
}

// ---- Degraded modes: the plugin loads, reports no GPU and says why. ----

json zeroDevicesReason(const json& config) {
  DirectPlugin plugin(pluginPath());
  EXPECT_EQ(plugin.create(config.dump()), BAI_OK) << plugin.lastLog();
  EXPECT_TRUE(parsePayload("list_devices", plugin.listDevices())["devices"].empty());
  EXPECT_EQ(parsePayload("slot_types", plugin.slotTypes())["slots"],
            json::parse(R"([{"name":"cuda.device","type":"count"}])"));
  json maps = parsePayload("alloc_map_spec", plugin.allocMapSpec())["maps"];
  EXPECT_TRUE(maps.at(0)["devices"].empty());
  EXPECT_TRUE(parsePayload("health", plugin.health())["devices"].empty());
  json env = parsePayload("prepare_session", plugin.prepareSession(session("s", json::object())))["env"];
  EXPECT_EQ(env["NVIDIA_VISIBLE_DEVICES"], "void");
  EXPECT_EQ(plugin.releaseSession(session("s", json::object())), BAI_OK);
  json extra = parsePayload("describe", plugin.describe())["extra_info"];
  EXPECT_EQ(extra["device_count"], 0);
  return extra;
}

TEST(CudaDevicePlugin, NoLibraryMeansZeroDevicesAndAReason) {
  json extra = zeroDevicesReason({{"nvml_library", "/nonexistent/libnvidia-ml.so.1"}});
  EXPECT_EQ(extra["nvml_loaded"], false);
  EXPECT_NE(extra["reason"].get<std::string>().find("cannot load NVML"), std::string::npos) << extra;
}

TEST(CudaDevicePlugin, InitErrorMeansZeroDevicesAndAReason) {
  Scenario scenario("init-fail");
  json extra = zeroDevicesReason(scenario.config());
  EXPECT_NE(extra["reason"].get<std::string>().find("nvmlInit_v2 failed"), std::string::npos) << extra;
  EXPECT_NE(extra["reason"].get<std::string>().find("Driver Not Loaded"), std::string::npos) << extra;
}

TEST(CudaDevicePlugin, NoGpuMeansZeroDevicesAndAReason) {
  Scenario scenario("h100x8");
  json extra = zeroDevicesReason(scenario.config({{"device_mask", {"0", "1", "2", "3", "4", "5", "6", "7"}}}));
  EXPECT_EQ(extra["reason"], "every GPU is masked by device_mask");
}

TEST(CudaDevicePlugin, MissingRequiredSymbolMeansZeroDevices) {
  Scenario scenario("h100x8");
  json extra = zeroDevicesReason(scenario.config({{"nvml_library", noCountFakeLibrary()}}));
  EXPECT_NE(extra["reason"].get<std::string>().find("nvmlDeviceGetCount_v2"), std::string::npos) << extra;
}

TEST(CudaDevicePlugin, MissingOptionalSymbolsDisableTheirFeatureOnly) {
  Scenario scenario("xid-storm");
  auto plugin = created(scenario.config({{"nvml_library", minimalFakeLibrary()}}));
  json devices = parsePayload("list_devices", plugin->listDevices())["devices"];
  ASSERT_EQ(devices.size(), 8u);
  EXPECT_FALSE(devices[0].contains("processing_units"));
  EXPECT_EQ(devices[0]["memory"], "85520809984");
  EXPECT_EQ(devices[5]["numa_node"], 1);
  json extra = parsePayload("describe", plugin->describe())["extra_info"];
  EXPECT_FALSE(extra.contains("driver_version"));
  std::set<std::string> missing = extra["missing_optional_symbols"].get<std::set<std::string>>();
  EXPECT_TRUE(missing.count("nvmlDeviceGetNumGpuCores"));
  EXPECT_TRUE(missing.count("nvmlEventSetWait_v2"));
  EXPECT_NE(extra["xid_events"].get<std::string>().find("event API is missing"), std::string::npos);
  json health = healthById(*plugin);
  for (const auto& [id, d] : health.items()) EXPECT_EQ(d["health"], "healthy") << id;
  json measures = parsePayload("node_measures", plugin->nodeMeasures())["measures"];
  EXPECT_TRUE(measures[0]["per_device"].empty());    // no utilisation without the symbol
  EXPECT_EQ(measures[1]["per_device"].size(), 8u);  // memory still measured
}

TEST(CudaDevicePlugin, BadConfigIsRefusedNamingTheKey) {
  for (const char* config : {R"({"nvml_libary":"x"})", R"({"device_mask":"0"})", R"({"critical_xids":[-1]})",
                             R"({"sysfs_root":7})", R"({"xid_recovery_seconds":-1})", "[]"}) {
    DirectPlugin plugin(pluginPath());
    EXPECT_EQ(plugin.create(config), BAI_ERR_INVALID_ARGUMENT) << config;
    ASSERT_FALSE(logLines(plugin, BAI_LOG_ERROR).empty()) << config;
    EXPECT_NE(logLines(plugin, BAI_LOG_ERROR)[0].find("cuda config"), std::string::npos) << plugin.lastLog();
  }
}

TEST(CudaDevicePlugin, TwoInstancesAtOnce) {
  Scenario scenario("mig-mixed");
  auto first = created(scenario.config());
  auto second = created(scenario.config({{"device_mask", {"0"}}}));
  EXPECT_EQ(parsePayload("list_devices", first->listDevices())["devices"].size(), 13u);
  EXPECT_EQ(parsePayload("list_devices", second->listDevices())["devices"].size(), 12u);
  first.reset();
  EXPECT_EQ(parsePayload("list_devices", second->listDevices())["devices"].size(), 12u);
  healthById(*second);
}

}  // namespace
}  // namespace bai::cuda::testing
