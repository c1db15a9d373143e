// cuda-fractional against the fake NVML: shares, units, per-GPU modes, MPS env and daemon.
#include "cuda_test_support.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdint>
#include <fstream>
#include <sstream>

namespace bai::cuda::testing {
namespace {

using bai::testing::DirectPlugin;

constexpr std::uint64_t kMemory = 85520809984;  // an H100 of the scenarios
constexpr std::uint64_t kCores = 16896;
constexpr std::uint64_t kMiB = 1024 * 1024;
constexpr std::uint64_t kGiB = 1024 * kMiB;

json prepared(DirectPlugin& plugin, std::string_view id, const json& allocation) {
  return parsePayload("prepare_session", plugin.prepareSession(session(id, allocation)));
}

json measureByKey(const json& measures, std::string_view key) {
  for (const json& m : measures["measures"]) {
    if (m["key"] == key) return m;
  }
  ADD_FAILURE() << "no measure " << key << " in " << measures.dump();
  return json::object();
}

TEST(CudaFractionalPlugin, IdentityIsCudaFractional) {
  DirectPlugin plugin(pluginPath());
  ASSERT_TRUE(plugin.loaded());
  EXPECT_STREQ(plugin.info().name, "cuda-fractional");
  EXPECT_STREQ(plugin.info().key, "cuda");
}

TEST(CudaFractionalPlugin, EightGpusAreEightShares) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config());
  json slots = parsePayload("slot_types", plugin->slotTypes())["slots"];
  EXPECT_EQ(slots, json::parse(R"([{"name":"cuda.shares","type":"count"},{"name":"cuda.device","type":"count"}])"));
  json spec = parsePayload("alloc_map_spec", plugin->allocMapSpec());
  EXPECT_EQ(spec["exclusive"], json::parse(R"([["cuda.device","cuda.shares","cuda.device:*-mig"]])"));
  ASSERT_EQ(spec["maps"].size(), 2u);
  EXPECT_EQ(spec["maps"][0]["slot"], "cuda.shares");
  EXPECT_EQ(spec["maps"][0]["kind"], "fraction");
  EXPECT_EQ(spec["maps"][0]["quantum"], "0.01");
  ASSERT_EQ(spec["maps"][0]["devices"].size(), 8u);
  for (std::size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(spec["maps"][0]["devices"][i], json({{"id", std::to_string(i)}, {"capacity", "1"}}));
  }
  EXPECT_TRUE(spec["maps"][1]["devices"].empty());
  json devices = parsePayload("list_devices", plugin->listDevices())["devices"];
  ASSERT_EQ(devices.size(), 8u);
  EXPECT_EQ(devices[0]["extra"]["slot"], "cuda.shares");
  EXPECT_EQ(devices[0]["extra"]["mode"], "shares");

  // Two sessions of 0.5 share GPU 0; a third does not fit.
  std::string uuid0 = scenario.gpuUuid(0);
  json a = prepared(*plugin, "a", {{"cuda.shares", {{"0", "0.5"}}}});
  json b = prepared(*plugin, "b", {{"cuda.shares", {{"0", "0.5"}}}});
  EXPECT_EQ(prepareStatus(*plugin, session("c", {{"cuda.shares", {{"0", "0.5"}}}})), BAI_ERR_INVALID_ARGUMENT);
  std::string halfMiB = std::to_string(kMemory / 2 / kMiB);
  for (const json& s : {a, b}) {
    EXPECT_EQ(s["env"]["CUDA_VISIBLE_DEVICES"], uuid0);
    EXPECT_EQ(s["env"]["NVIDIA_VISIBLE_DEVICES"], uuid0);
    EXPECT_EQ(s["env"]["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"], "50");
    EXPECT_EQ(s["env"]["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"], "0=" + halfMiB + "M");
    EXPECT_EQ(s["env"]["CUDA_MPS_PIPE_DIRECTORY"], "/tmp/nvidia-mps");
    EXPECT_EQ(s["env"]["CUDA_MPS_LOG_DIRECTORY"], "/var/log/nvidia-mps");
    // The share's figures reach the session as MPS variables, not as limits the agent would apply.
    EXPECT_FALSE(s.contains("limits")) << s;
    EXPECT_EQ(s["devices"], json::array({nodeEntry(scenario, scenario.gpuNode(0), 195, 0),
                                         nodeEntry(scenario, scenario.devRoot() + "/nvidiactl", 195, 255),
                                         nodeEntry(scenario, scenario.devRoot() + "/nvidia-uvm", 511, 0)}));
  }
  json measures = parsePayload("node_measures", plugin->callWith(plugin->vtable().session_measures, session("a", json::object())));
  EXPECT_EQ(measureByKey(measures, "cuda_alloc_mem")["per_device"]["0"], std::to_string(kMemory / 2));
  EXPECT_EQ(measureByKey(measures, "cuda_alloc_sm")["per_device"]["0"], "50");
  EXPECT_EQ(measureByKey(measures, "cuda_alloc_shares")["value"], "0.5");
  EXPECT_EQ(plugin->releaseSession(session("b", json::object())), BAI_OK);
  parsePayload("prepare_session", plugin->prepareSession(session("c", {{"cuda.shares", {{"0", "0.5"}}}})));

  // Two GPUs at once: the percentage is the smaller share, memory limits by CUDA ordinal.
  json two = prepared(*plugin, "two", {{"cuda.shares", {{"3", "0.25"}, {"6", "0.75"}}}});
  EXPECT_EQ(two["env"]["CUDA_VISIBLE_DEVICES"], scenario.gpuUuid(3) + "," + scenario.gpuUuid(6));
  EXPECT_EQ(two["env"]["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"], "25");
  EXPECT_EQ(two["env"]["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"],
            "0=" + std::to_string(kMemory / 4 / kMiB) + "M,1=" + std::to_string(kMemory * 3 / 4 / kMiB) + "M");
  // Off the quantum, or a whole GPU in a slot this node does not give it.
  EXPECT_EQ(prepareStatus(*plugin, session("q", {{"cuda.shares", {{"1", "0.125"}}}})), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(prepareStatus(*plugin, session("w", {{"cuda.device", {{"1", "1"}}}})), BAI_ERR_INVALID_ARGUMENT);
}

TEST(CudaFractionalPlugin, SmallestShareGetsOnePercent) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config({{"quantum_size", "0.001"}}));
  json s = prepared(*plugin, "tiny", {{"cuda.shares", {{"2", "0.001"}}}});
  EXPECT_EQ(s["env"]["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"], "1");
  EXPECT_EQ(s["env"]["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"], "0=" + std::to_string(kMemory / 1000 / kMiB) + "M");
}

TEST(CudaFractionalPlugin, UnitsMakeOneGpuSeveralShares) {
  Scenario scenario("h100x8");
  std::uint64_t unitMem = 10 * kGiB;
  std::uint64_t unitProc = kCores / 8;  // 2112
  auto plugin = created(scenario.config({{"unit_mem", unitMem}, {"unit_proc", unitProc}}));
  // min(85520809984 / 10 GiB = 7.9648..., 16896 / 2112 = 8), down to the quantum 0.01.
  std::uint64_t hundredths = kMemory * 100 / unitMem;
  std::string capacity = std::to_string(hundredths / 100) + "." + std::to_string(hundredths % 100);
  EXPECT_EQ(capacity, "7.96");
  json spec = parsePayload("alloc_map_spec", plugin->allocMapSpec());
  for (const json& device : spec["maps"][0]["devices"]) EXPECT_EQ(device["capacity"], capacity);

  json one = prepared(*plugin, "one", {{"cuda.shares", {{"1", "1"}}}});
  EXPECT_EQ(one["env"]["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"], std::to_string(unitProc * 100 / kCores));  // 12
  EXPECT_EQ(one["env"]["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"], "0=" + std::to_string(unitMem / kMiB) + "M");
  EXPECT_FALSE(one.contains("limits")) << one;
  json half = prepared(*plugin, "half", {{"cuda.shares", {{"1", "2.5"}}}});
  EXPECT_EQ(half["env"]["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"], std::to_string(unitProc * 5 / 2 * 100 / kCores));  // 31
  EXPECT_EQ(half["env"]["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"], "0=" + std::to_string(unitMem * 5 / 2 / kMiB) + "M");
  // 1 + 2.5 + 4.46 = 7.96: full; one more hundredth does not fit.
  prepared(*plugin, "rest", {{"cuda.shares", {{"1", "4.46"}}}});
  EXPECT_EQ(prepareStatus(*plugin, session("over", {{"cuda.shares", {{"1", "0.01"}}}})), BAI_ERR_INVALID_ARGUMENT);
}

TEST(CudaFractionalPlugin, MixedModesOnOneNode) {
  Scenario scenario("mig-mixed");  // GPU 0, 3 plain; GPU 1 (7x 1g.10gb), GPU 2 (2x 3g.40gb) in MIG mode
  auto plugin = created(scenario.config({{"modes", {{"0", "device"}, {scenario.gpuUuid(3), "shares"}}},
                                         {"default_mode", "device"}}));
  json slots = parsePayload("slot_types", plugin->slotTypes())["slots"];
  EXPECT_EQ(slots, json::parse(R"([{"name":"cuda.shares","type":"count"},{"name":"cuda.device","type":"count"},
    {"name":"cuda.device:1g.10gb-mig","type":"unique"},{"name":"cuda.device:3g.40gb-mig","type":"unique"}])"));
  json spec = parsePayload("alloc_map_spec", plugin->allocMapSpec());
  EXPECT_EQ(spec["maps"][0]["devices"], json::parse(R"([{"id":"3","capacity":"1"}])"));
  EXPECT_EQ(spec["maps"][1]["devices"], json::parse(R"([{"id":"0","capacity":"1"}])"));
  EXPECT_EQ(spec["maps"][2]["devices"].size(), 7u);
  EXPECT_EQ(spec["maps"][3]["devices"].size(), 2u);

  std::string slice = spec["maps"][3]["devices"][0]["id"];
  json s = prepared(*plugin, "mixed",
                    {{"cuda.device", {{"0", "1"}}}, {"cuda.shares", {{"3", "0.3"}}}, {"cuda.device:3g.40gb-mig", {{slice, "1"}}}});
  // In discovery order: GPU 0, then GPU 2's slice, then GPU 3.
  EXPECT_EQ(s["env"]["CUDA_VISIBLE_DEVICES"], scenario.gpuUuid(0) + "," + slice + "," + scenario.gpuUuid(3));
  EXPECT_EQ(s["env"]["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"], std::to_string(3 * 100 / 10));  // 0.3 of one GPU
  // Only the shared GPU (CUDA ordinal 2) is limited.
  EXPECT_EQ(s["env"]["CUDA_MPS_PINNED_DEVICE_MEM_LIMIT"], "2=" + std::to_string(kMemory * 3 / 10 / kMiB) + "M");
  json whole = prepared(*plugin, "whole", {{"cuda.device:1g.10gb-mig", {{spec["maps"][2]["devices"][0]["id"], "1"}}}});
  EXPECT_FALSE(whole["env"].contains("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"));
  EXPECT_EQ(prepareStatus(*plugin, session("again", {{"cuda.device", {{"0", "1"}}}})), BAI_ERR_INVALID_ARGUMENT);
  json measures = parsePayload("node_measures", plugin->callWith(plugin->vtable().session_measures, session("mixed", json::object())));
  EXPECT_EQ(measureByKey(measures, "cuda_alloc_mem")["per_device"]["0"], std::to_string(kMemory));
  EXPECT_EQ(measureByKey(measures, "cuda_alloc_sm")["per_device"]["3"], "30");
}

TEST(CudaFractionalPlugin, NoGpuSessionSeesNone) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config());
  json s = prepared(*plugin, "cpu-only", json::object());
  EXPECT_EQ(s["env"], json({{"CUDA_VISIBLE_DEVICES", ""}, {"NVIDIA_VISIBLE_DEVICES", "void"}}));
}

TEST(CudaFractionalPlugin, NoNvmlMeansZeroDevicesAndAReason) {
  auto plugin = created({{"nvml_library", "/nonexistent/libnvidia-ml.so.1"}});
  json extra = parsePayload("describe", plugin->describe())["extra_info"];
  EXPECT_EQ(extra["nvml_loaded"], false);
  EXPECT_EQ(extra["device_count"], 0);
  EXPECT_FALSE(extra["reason"].get<std::string>().empty());
  EXPECT_TRUE(parsePayload("list_devices", plugin->listDevices())["devices"].empty());
  json slots = parsePayload("slot_types", plugin->slotTypes())["slots"];
  EXPECT_EQ(slots.size(), 2u);
  json s = prepared(*plugin, "none", json::object());
  EXPECT_EQ(s["env"]["NVIDIA_VISIBLE_DEVICES"], "void");
}

TEST(CudaFractionalPlugin, XidStormWithholdsSharesOfThatGpu) {
  Scenario scenario("xid-storm");
  auto plugin = created(scenario.config({{"device_mask", {7}}}));
  json health = parsePayload("health", plugin->health());
  EXPECT_EQ(health["devices"].size(), 7u);
  EXPECT_EQ(health["devices"][5]["health"], "unhealthy");
  EXPECT_EQ(prepareStatus(*plugin, session("s1", {{"cuda.shares", {{"5", "0.5"}}}})), BAI_ERR_UNAVAILABLE);
  prepared(*plugin, "s2", {{"cuda.shares", {{"4", "0.5"}}}});
  EXPECT_EQ(prepareStatus(*plugin, session("s3", {{"cuda.shares", {{"7", "0.5"}}}})), BAI_ERR_INVALID_ARGUMENT);
}

TEST(CudaFractionalPlugin, ManagedMpsDaemonStartsAtCreateAndStopsAtDestroy) {
  Scenario scenario("h100x8");
  bai::test::TempDir dir;
  std::string record = (dir.path() / "calls.txt").string();
  std::string script = (dir.path() / "nvidia-cuda-mps-control").string();
  std::ofstream(script) << "#!/bin/sh\n"
                        << "{ echo \"args:$*\"; echo \"pipe:$CUDA_MPS_PIPE_DIRECTORY\"; echo \"log:$CUDA_MPS_LOG_DIRECTORY\";\n"
                        << "  if [ \"$1\" != \"-d\" ]; then echo \"stdin:$(cat)\"; fi; } >> '" << record << "'\n";
  ASSERT_EQ(::chmod(script.c_str(), 0755), 0);
  std::string pipes = (dir.path() / "pipe").string();
  std::string logs = (dir.path() / "log").string();
  auto read = [&] {
    std::stringstream text;
    text << std::ifstream(record).rdbuf();
    return text.str();
  };
  auto plugin = created(scenario.config(
      {{"mps", {{"manage", true}, {"control", script}, {"pipe_dir", pipes}, {"log_dir", logs}}}}));
  EXPECT_EQ(read(), "args:-d\npipe:" + pipes + "\nlog:" + logs + "\n");
  json extra = parsePayload("describe", plugin->describe())["extra_info"];
  EXPECT_EQ(extra["mps"]["status"], "started");
  json s = prepared(*plugin, "s", {{"cuda.shares", {{"0", "0.2"}}}});
  EXPECT_EQ(s["env"]["CUDA_MPS_PIPE_DIRECTORY"], pipes);
  EXPECT_EQ(s["env"]["CUDA_MPS_LOG_DIRECTORY"], logs);
  plugin.reset();
  EXPECT_EQ(read(), "args:-d\npipe:" + pipes + "\nlog:" + logs + "\n" + "args:\npipe:" + pipes + "\nlog:" + logs +
                        "\nstdin:quit\n");
}

TEST(CudaFractionalPlugin, MpsIsNotManagedByDefault) {
  Scenario scenario("h100x8");
  auto plugin = created(scenario.config());
  EXPECT_EQ(parsePayload("describe", plugin->describe())["extra_info"]["mps"]["status"], "not managed");
}

TEST(CudaFractionalPlugin, BadSettingsAreRefused) {
  for (const char* config : {R"({"quantum_size":0})", R"({"quantum_size":"2"})", R"({"unit_mem":-1})",
                             R"({"unit_proc":1.5})", R"({"modes":{"0":"half"}})", R"({"mps":{"manage":"yes"}})",
                             R"({"mps":{"pipe":"/x"}})", R"({"shares":1})"}) {
    DirectPlugin plugin(pluginPath());
    ASSERT_TRUE(plugin.loaded());
    EXPECT_EQ(plugin.create(config), BAI_ERR_INVALID_ARGUMENT) << config;
  }
}

// Shares of one GPU name the whole GPU in cdi_devices: the container sees the device, MPS
// (whose env the answer keeps) limits its share.
TEST(CudaFractionalPlugin, SharesOfAGpuNameItInCdiDevicesWithTheMpsEnv) {
  Scenario scenario("h100x8");
  bai::test::TempDir cdi;
  std::ofstream(cdi.path() / "nvidia.json")
      << json{{"kind", "nvidia.com/gpu"}, {"devices", {{{"name", "0"}}, {{"name", scenario.gpuUuid(1)}}}}}.dump();
  auto plugin = created(scenario.config(
      {{"unit_mem", kGiB}, {"unit_proc", 100}, {"cdi_spec_dirs", json::array({cdi.path().string()})}}));
  json a = prepared(*plugin, "a", {{"cuda.shares", {{"0", "0.5"}, {"1", "0.25"}}}});
  EXPECT_EQ(a["cdi_devices"], json::array({"nvidia.com/gpu=0", "nvidia.com/gpu=" + scenario.gpuUuid(1)}));
  EXPECT_TRUE(a["env"].contains("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE")) << a.dump();
  EXPECT_TRUE(a["mounts"].empty());
  // GPU 2 is not in the spec: that session gets the nodes and whatever driver files exist.
  json b = prepared(*plugin, "b", {{"cuda.shares", {{"2", "0.5"}}}});
  EXPECT_FALSE(b.contains("cdi_devices")) << b.dump();
}

}  // namespace
}  // namespace bai::cuda::testing
