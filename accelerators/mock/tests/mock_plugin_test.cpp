// The mock plugin through dlopen: identity, every sample config with exact values,
// inline settings, repeated create/destroy and the 1,024-device config.
#include "mock_test_support.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>

namespace bai::mock::testing {
namespace {

using bai::testing::DirectPlugin;

const json kExclusiveCuda = json::parse(R"([["cuda.device", "cuda.shares", "cuda.device:*-mig"]])");

// Creates from `config` and fails the test unless it worked.
void createOk(DirectPlugin& plugin, const std::string& config) {
  ASSERT_TRUE(plugin.loaded());
  ASSERT_EQ(plugin.create(config), BAI_OK) << plugin.lastLog();
}

std::vector<std::string> field(const json& items, const std::string& name) {
  std::vector<std::string> values;
  for (const json& item : items)
    values.push_back(item.at(name).is_string() ? item.at(name).get<std::string>() : item.at(name).dump());
  return values;
}

TEST(MockPluginInfo, IdentityAndTable) {
  DirectPlugin plugin(pluginPath());
  ASSERT_TRUE(plugin.loaded());
  const bai_plugin_info& info = plugin.info();
  EXPECT_EQ(info.abi_major, BAI_ACCELERATOR_ABI_MAJOR);
  EXPECT_EQ(info.abi_minor, BAI_ACCELERATOR_ABI_MINOR);
  EXPECT_STREQ(info.name, "mock");
  EXPECT_STREQ(info.vendor, "bai");
  EXPECT_STREQ(info.key, BAI_PLUGIN_KEY_DYNAMIC);
  EXPECT_STRNE(info.version, "");
  EXPECT_STRNE(info.description, "");
  EXPECT_EQ(plugin.vtable().abi_major, BAI_ACCELERATOR_ABI_MAJOR);
  EXPECT_EQ(plugin.vtable().struct_size, sizeof(bai_accelerator_vtable));
  EXPECT_EQ(plugin.vtable().reserved, 0u);
}

// Every sample loads and every call answers in its documented shape.
class MockSample : public ::testing::TestWithParam<std::string> {};

TEST_P(MockSample, LoadsAndEveryCallMatchesItsSchema) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig(GetParam()));
  json described = parsePayload("describe", plugin.describe());
  parsePayload("list_devices", plugin.listDevices());
  json slots = parsePayload("slot_types", plugin.slotTypes());
  parsePayload("alloc_map_spec", plugin.allocMapSpec());
  parsePayload("health", plugin.health());
  parsePayload("node_measures", plugin.nodeMeasures());
  std::string prefix = described.at("key").get<std::string>() + ".";
  for (const json& slot : slots.at("slots")) EXPECT_EQ(slot.at("name").get<std::string>().rfind(prefix, 0), 0u);
  json prepared = parsePayload("prepare_session", plugin.prepareSession(session("s", json::object())));
  EXPECT_EQ(plugin.releaseSession(session("s", json::object())), BAI_OK);
  EXPECT_TRUE(errorLines(plugin).empty()) << plugin.lastLog();
}

std::vector<std::string> allSamples() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(samplePath(""))) {
    std::string name = entry.path().filename().string();
    if (name.rfind("mock-", 0) == 0 && entry.path().extension() == ".toml") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  return names;
}

INSTANTIATE_TEST_SUITE_P(Samples, MockSample, ::testing::ValuesIn(allSamples()), [](const auto& info) {
  std::string name = info.param.substr(5, info.param.size() - 10);
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
});

// Loaded by an agent without a [plugins.mock] table: no devices, a reason, no error.
TEST(MockPluginInfo, UnconfiguredOffersNothing) {
  DirectPlugin plugin(pluginPath());
  ASSERT_EQ(plugin.create("{}"), BAI_OK) << plugin.lastLog();
  const auto describe = nlohmann::json::parse(plugin.describe());
  EXPECT_EQ(describe["key"], "mock");
  EXPECT_NE(describe["extra_info"]["config"].get<std::string>().find("nothing to simulate"), std::string::npos);
  EXPECT_TRUE(nlohmann::json::parse(plugin.listDevices())["devices"].empty());
  EXPECT_TRUE(nlohmann::json::parse(plugin.slotTypes())["slots"].empty());
  EXPECT_TRUE(nlohmann::json::parse(plugin.allocMapSpec())["maps"].empty());
}

TEST(MockSamples, AllEightArePresent) {
  EXPECT_EQ(allSamples(), (std::vector<std::string>{"mock-1024.toml", "mock-2gpu-mig.toml", "mock-4xa100.toml",
                                                    "mock-acme.toml", "mock-container.toml", "mock-device-nodes.toml",
                                                    "mock-fractional.toml", "mock-rocm.toml"}));
}

// session_extra's cdi_devices and limits.cpu_quota reach the answer beside the nodes.
TEST(MockSamples, ContainerSampleSendsCdiDevicesAndACpuQuota) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-container.toml"));
  json prepared = parsePayload("prepare_session", plugin.prepareSession(session("s", {{"cuda.device", {{"0", "1"}}}})));
  EXPECT_EQ(prepared.at("devices"), json::parse(R"([{"path": "/dev/bai-mock0"}])"));
  EXPECT_EQ(prepared.at("cdi_devices"), json::parse(R"(["bai.example.com/mock=GPU-c0000000-0000-4000-8000-000000000000"])"));
  EXPECT_EQ(prepared.at("limits"), json::parse(R"({"cpu_quota": "0.5"})"));
  EXPECT_EQ(plugin.releaseSession(session("s", json::object())), BAI_OK);
}

TEST(MockSamples, WithoutSessionExtraTheAnswerHasNoCdiDevices) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-device-nodes.toml"));
  json prepared = parsePayload("prepare_session", plugin.prepareSession(session("s", {{"cuda.device", {{"1", "1"}}}})));
  EXPECT_FALSE(prepared.contains("cdi_devices")) << prepared.dump();
}

TEST(MockSamples, DeviceNodesOneForEachGpu) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-device-nodes.toml"));
  json prepared = parsePayload("prepare_session", plugin.prepareSession(session("s", {{"cuda.device", {{"1", "1"}}}})));
  EXPECT_EQ(prepared.at("devices"), json::parse(R"([{"path": "/dev/bai-mock1"}])"));
  EXPECT_EQ(prepared.at("env").at("BAI_MOCK_CUDA_DEVICES"), "GPU-d0000000-0000-4000-8000-000000000001");
}

TEST(MockSamples, FourA100OnTwoNumaNodes) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-4xa100.toml"));
  json described = parsePayload("describe", plugin.describe());
  EXPECT_EQ(described.at("key"), "cuda");
  EXPECT_EQ(described.at("extra_info").at("mode"), "discrete");
  EXPECT_EQ(described.at("extra_info").at("device_count"), 4);
  EXPECT_EQ(described.at("extra_info").at("config"), samplePath("mock-4xa100.toml"));
  EXPECT_EQ(described.at("extra_info").at("attributes").at("nvidia_driver"), "535.104.05");

  json devices = parsePayload("list_devices", plugin.listDevices()).at("devices");
  ASSERT_EQ(devices.size(), 4u);
  EXPECT_EQ(field(devices, "id"), (std::vector<std::string>{"0", "1", "2", "3"}));
  EXPECT_EQ(field(devices, "numa_node"), (std::vector<std::string>{"0", "0", "1", "1"}));
  EXPECT_EQ(field(devices, "pci_bus"),
            (std::vector<std::string>{"0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0"}));
  EXPECT_EQ(devices[2].at("uuid"), "GPU-a1000000-0000-4000-8000-000000000002");
  for (const json& device : devices) {
    EXPECT_EQ(device.at("model"), "NVIDIA A100-SXM4-80GB");
    EXPECT_EQ(device.at("memory"), "85899345920");
    EXPECT_EQ(device.at("processing_units"), 108);
    EXPECT_EQ(device.at("health"), "healthy");
    EXPECT_EQ(device.at("extra").at("slot"), "cuda.device");
  }

  EXPECT_EQ(parsePayload("slot_types", plugin.slotTypes()),
            json::parse(R"({"slots": [{"name": "cuda.device", "type": "count"}]})"));
  json spec = parsePayload("alloc_map_spec", plugin.allocMapSpec());
  EXPECT_EQ(spec.at("exclusive"), kExclusiveCuda);
  EXPECT_EQ(spec.at("maps"), json::parse(R"([{"slot": "cuda.device", "kind": "discrete", "strategy": "evenly",
      "devices": [{"id": "0", "capacity": "1"}, {"id": "1", "capacity": "1"},
                  {"id": "2", "capacity": "1"}, {"id": "3", "capacity": "1"}]}])"));
}

TEST(MockSamples, NodeMeasuresAreTheConfiguredFigures) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-4xa100.toml"));
  json measures = parsePayload("node_measures", plugin.nodeMeasures()).at("measures");
  EXPECT_EQ(measures, json::parse(R"([
      {"key": "cuda_util", "unit": "percent", "value": "35.5",
       "per_device": {"0": "35.5", "1": "0", "2": "0", "3": "0"}},
      {"key": "cuda_mem", "unit": "bytes", "value": "12884901888",
       "per_device": {"0": "12884901888", "1": "0", "2": "0", "3": "0"}}])"));
}

TEST(MockSamples, MigSlicesAreUniqueSlotsPerProfile) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-2gpu-mig.toml"));
  json slots = parsePayload("slot_types", plugin.slotTypes());
  EXPECT_EQ(slots, json::parse(R"({"slots": [
      {"name": "cuda.device", "type": "count"},
      {"name": "cuda.device:3g.40gb-mig", "type": "unique"},
      {"name": "cuda.device:2g.20gb-mig", "type": "unique"},
      {"name": "cuda.device:1g.10gb-mig", "type": "unique"}]})"));

  const std::string gpu1 = "GPU-b2000000-0000-4000-8000-000000000001";
  json spec = parsePayload("alloc_map_spec", plugin.allocMapSpec());
  EXPECT_EQ(spec.at("exclusive"), kExclusiveCuda);
  json expectedMaps = json::array({
      {{"slot", "cuda.device"},
       {"kind", "discrete"},
       {"strategy", "evenly"},
       {"devices", {{{"id", "0"}, {"capacity", "1"}}}}},
      {{"slot", "cuda.device:3g.40gb-mig"},
       {"kind", "discrete"},
       {"strategy", "evenly"},
       {"devices", {{{"id", "MIG-" + gpu1 + "/0/0"}, {"capacity", "1"}}}}},
      {{"slot", "cuda.device:2g.20gb-mig"},
       {"kind", "discrete"},
       {"strategy", "evenly"},
       {"devices", {{{"id", "MIG-" + gpu1 + "/1/0"}, {"capacity", "1"}}}}},
      {{"slot", "cuda.device:1g.10gb-mig"},
       {"kind", "discrete"},
       {"strategy", "evenly"},
       {"devices",
        {{{"id", "MIG-" + gpu1 + "/2/0"}, {"capacity", "1"}}, {{"id", "MIG-" + gpu1 + "/3/0"}, {"capacity", "1"}}}}},
  });
  EXPECT_EQ(spec.at("maps"), expectedMaps);

  json devices = parsePayload("list_devices", plugin.listDevices()).at("devices");
  ASSERT_EQ(devices.size(), 6u);
  EXPECT_EQ(devices[1].at("extra"), json::parse(R"({"mig": true})"));
  EXPECT_EQ(devices[2].at("id"), "MIG-" + gpu1 + "/0/0");
  EXPECT_EQ(devices[2].at("memory"), "42949672960");
  EXPECT_EQ(devices[2].at("processing_units"), 42);
  EXPECT_EQ(devices[2].at("numa_node"), 1);
  EXPECT_EQ(devices[2].at("extra"),
            json({{"slot", "cuda.device:3g.40gb-mig"}, {"mig_parent", "1"}, {"mig_profile", "3g.40gb"}}));
  EXPECT_EQ(parsePayload("describe", plugin.describe()).at("extra_info").at("mig_slice_count"), 4);
}

TEST(MockSamples, RocmDevice) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-rocm.toml"));
  EXPECT_EQ(parsePayload("describe", plugin.describe()).at("key"), "rocm");
  json devices = parsePayload("list_devices", plugin.listDevices()).at("devices");
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].at("model"), "AMD Instinct MI210");
  EXPECT_EQ(devices[0].at("memory"), "68719476736");
  EXPECT_EQ(devices[0].at("processing_units"), 104);
  EXPECT_EQ(parsePayload("slot_types", plugin.slotTypes()),
            json::parse(R"({"slots": [{"name": "rocm.device", "type": "count"}]})"));
  EXPECT_EQ(parsePayload("alloc_map_spec", plugin.allocMapSpec()).at("exclusive"),
            json::parse(R"([["rocm.device", "rocm.shares", "rocm.device:*-mig"]])"));
  json env =
      parsePayload("prepare_session", plugin.prepareSession(session("r", {{"rocm.device", {{"0", "1"}}}}))).at("env");
  EXPECT_EQ(env.at("BAI_MOCK_ROCM_DEVICES"), "GPU-5a3c9e10d2f4b687");
}

TEST(MockSamples, VendorDeviceWithFillStrategy) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-acme.toml"));
  EXPECT_EQ(parsePayload("describe", plugin.describe()).at("key"), "acme");
  EXPECT_EQ(parsePayload("alloc_map_spec", plugin.allocMapSpec()).at("maps"),
            json::parse(R"([{"slot": "acme.device", "kind": "discrete", "strategy": "fill",
                             "devices": [{"id": "npu0", "capacity": "1"}, {"id": "npu1", "capacity": "1"}]}])"));
  json env = parsePayload("prepare_session", plugin.prepareSession(session("a", {{"acme.device", {{"npu1", "1"}}}})))
                 .at("env");
  EXPECT_EQ(env.at("BAI_MOCK_ACME_DEVICES"), "ACME-NPU-0002");
  EXPECT_EQ(env.at("BAI_MOCK_ACME_DEVICE_COUNT"), "1");
}

TEST(MockSamples, FractionalSharesAreExact) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-fractional.toml"));
  EXPECT_EQ(parsePayload("slot_types", plugin.slotTypes()),
            json::parse(R"({"slots": [{"name": "cuda.shares", "type": "count"}]})"));
  json spec = parsePayload("alloc_map_spec", plugin.allocMapSpec());
  EXPECT_EQ(spec.at("exclusive"), kExclusiveCuda);
  EXPECT_EQ(spec.at("maps"), json::parse(R"([{"slot": "cuda.shares", "kind": "fraction", "strategy": "evenly",
      "quantum": "0.01", "devices": [{"id": "0", "capacity": "9"}, {"id": "1", "capacity": "6"},
                                     {"id": "2", "capacity": "3.333333"}]}])"));
}

TEST(MockSamples, ThousandTwentyFourDevices) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-1024.toml"));
  json devices = parsePayload("list_devices", plugin.listDevices()).at("devices");
  ASSERT_EQ(devices.size(), 1024u);
  std::set<std::string> uuids;
  std::set<std::string> buses;
  for (std::size_t i = 0; i < devices.size(); ++i) {
    EXPECT_EQ(devices[i].at("id"), std::to_string(i));
    EXPECT_EQ(devices[i].at("uuid"), "GPU-stress-" + std::to_string(i));
    EXPECT_EQ(devices[i].at("numa_node"), static_cast<int>(i / 256));
    uuids.insert(devices[i].at("uuid").get<std::string>());
    buses.insert(devices[i].at("pci_bus").get<std::string>());
  }
  EXPECT_EQ(uuids.size(), 1024u);
  EXPECT_EQ(buses.size(), 1024u);
  EXPECT_EQ(devices[1023].at("pci_bus"), "0000:1f:1f.0");
  json maps = parsePayload("alloc_map_spec", plugin.allocMapSpec()).at("maps");
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(maps[0].at("devices").size(), 1024u);
  EXPECT_EQ(parsePayload("health", plugin.health()).at("devices").size(), 1024u);
  std::string env = parsePayload("prepare_session",
                                 plugin.prepareSession(session("big", {{"cuda.device", {{"1023", "1"}, {"0", "1"}}}})))
                        .at("env")
                        .at("BAI_MOCK_CUDA_DEVICES");
  EXPECT_EQ(env, "GPU-stress-0,GPU-stress-1023");
}

TEST(MockInline, InlineSettingsReplaceTheFilesKeys) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-4xa100.toml", {{"device_mask", {"1", "GPU-a1000000-0000-4000-8000-000000000003"}},
                                                     {"strategy", "fill"}}));
  json devices = parsePayload("list_devices", plugin.listDevices()).at("devices");
  EXPECT_EQ(field(devices, "id"), (std::vector<std::string>{"0", "2"}));
  EXPECT_EQ(parsePayload("describe", plugin.describe()).at("extra_info").at("masked"), json({"1", "3"}));
  json maps = parsePayload("alloc_map_spec", plugin.allocMapSpec()).at("maps");
  EXPECT_EQ(maps[0].at("strategy"), "fill");
  EXPECT_EQ(maps[0].at("devices").size(), 2u);
}

TEST(MockInline, MaskingAMigGpuHidesItsSlices) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, sampleConfig("mock-2gpu-mig.toml", {{"device_mask", {"1"}}}));
  EXPECT_EQ(parsePayload("list_devices", plugin.listDevices()).at("devices").size(), 1u);
  EXPECT_EQ(parsePayload("slot_types", plugin.slotTypes()),
            json::parse(R"({"slots": [{"name": "cuda.device", "type": "count"}]})"));
}

TEST(MockInline, EverySettingCanBeInline) {
  DirectPlugin plugin(pluginPath());
  json config = {
      {"key", "npu"},
      {"devices", json::array({{{"uuid", "N-{i}"}, {"model", "X"}, {"sm_count", 4}, {"memory", 1024}, {"count", 3}}})}};
  createOk(plugin, config.dump());
  json devices = parsePayload("list_devices", plugin.listDevices()).at("devices");
  EXPECT_EQ(field(devices, "uuid"), (std::vector<std::string>{"N-0", "N-1", "N-2"}));
  EXPECT_EQ(devices[0].at("memory"), "1024");
  EXPECT_EQ(parsePayload("describe", plugin.describe()).at("extra_info").at("config"), "inline config");
}

TEST(MockInline, ZeroDevicesStillOfferTheSlot) {
  DirectPlugin plugin(pluginPath());
  createOk(plugin, R"({"key": "cuda"})");
  EXPECT_EQ(parsePayload("list_devices", plugin.listDevices()).at("devices"), json::array());
  EXPECT_EQ(parsePayload("alloc_map_spec", plugin.allocMapSpec()).at("maps"),
            json::parse(R"([{"slot": "cuda.device", "kind": "discrete", "strategy": "evenly", "devices": []}])"));
}

// Binary sizes as people write them, checked through list_devices' exact byte counts.
struct SizeCase {
  json memory;
  std::string bytes;
};

std::ostream& operator<<(std::ostream& out, const SizeCase& size) { return out << size.memory.dump(); }

class MockBinarySize : public ::testing::TestWithParam<SizeCase> {};

TEST_P(MockBinarySize, ParsesToExactBytes) {
  DirectPlugin plugin(pluginPath());
  json config = {
      {"key", "cuda"},
      {"devices", json::array({{{"uuid", "U"}, {"model", "M"}, {"sm_count", 1}, {"memory", GetParam().memory}}})}};
  createOk(plugin, config.dump());
  EXPECT_EQ(parsePayload("list_devices", plugin.listDevices()).at("devices")[0].at("memory"), GetParam().bytes);
}

INSTANTIATE_TEST_SUITE_P(Sizes, MockBinarySize,
                         ::testing::Values(SizeCase{"40g", "42949672960"}, SizeCase{"40G", "42949672960"},
                                           SizeCase{"40GiB", "42949672960"}, SizeCase{"40gb", "42949672960"},
                                           SizeCase{"40GB", "42949672960"}, SizeCase{"1.5g", "1610612736"},
                                           SizeCase{"0.5k", "512"}, SizeCase{"512", "512"}, SizeCase{"512b", "512"},
                                           SizeCase{"2t", "2199023255552"}, SizeCase{"1.25m", "1310720"},
                                           SizeCase{4096, "4096"}, SizeCase{"7e", "8070450532247928832"}));

TEST(MockLifecycle, HundredCreateDestroyCycles) {
  DirectPlugin plugin(pluginPath());
  std::string config = sampleConfig("mock-2gpu-mig.toml");
  for (int cycle = 0; cycle < 100; ++cycle) {
    ASSERT_EQ(plugin.create(config), BAI_OK) << "cycle " << cycle << ": " << plugin.lastLog();
    ASSERT_EQ(plugin.listDevices().empty(), false);
    ASSERT_FALSE(plugin.prepareSession(session("cycle", {{"cuda.device", {{"0", "1"}}}})).empty());
    ASSERT_EQ(plugin.releaseSession(session("cycle", {{"cuda.device", {{"0", "1"}}}})), BAI_OK);
  }
  EXPECT_TRUE(errorLines(plugin).empty()) << plugin.lastLog();
}

TEST(MockLifecycle, InstancesAreIndependent) {
  DirectPlugin first(pluginPath());
  DirectPlugin second(pluginPath());
  createOk(first, sampleConfig("mock-4xa100.toml"));
  createOk(second, sampleConfig("mock-rocm.toml"));
  EXPECT_EQ(parsePayload("describe", first.describe()).at("key"), "cuda");
  EXPECT_EQ(parsePayload("describe", second.describe()).at("key"), "rocm");
  // The same session id and device in two instances: each tracks its own sessions.
  first.prepareSession(session("s", {{"cuda.device", {{"0", "1"}}}}));
  DirectPlugin third(pluginPath());
  createOk(third, sampleConfig("mock-4xa100.toml"));
  third.prepareSession(session("s", {{"cuda.device", {{"0", "1"}}}}));
  EXPECT_EQ(first.releaseSession(session("s", json::object())), BAI_OK);
  EXPECT_EQ(third.releaseSession(session("s", json::object())), BAI_OK);
}

}  // namespace
}  // namespace bai::mock::testing
