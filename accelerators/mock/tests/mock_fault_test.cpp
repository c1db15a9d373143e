// Fault injection of the mock plugin: devices that turn unhealthy and recover, devices
// that disappear, calls that fail, and calls slowed down past a host's deadline.
#include "mock_test_support.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <thread>

namespace bai::mock::testing {
namespace {

using namespace std::chrono_literals;
using bai::testing::DirectPlugin;

// The entry of device `id` in a payload's "devices".
json deviceIn(const json& payload, const std::string& id) {
  for (const json& device : payload.at("devices")) {
    if (device.at("id") == id) return device;
  }
  ADD_FAILURE() << "no device " << id;
  return json::object();
}

json healthOf(DirectPlugin& plugin, const std::string& id) {
  return deviceIn(parsePayload("health", plugin.health()), id);
}

json listedOf(DirectPlugin& plugin, const std::string& id) {
  return deviceIn(parsePayload("list_devices", plugin.listDevices()), id);
}

json faultConfig(const json& faults) { return json{{"faults", faults}}; }

std::chrono::milliseconds timed(const std::function<void()>& body) {
  auto start = Clock::now();
  body();
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

TEST(MockFaults, DeviceTurnsUnhealthyThenRecovers) {
  DirectPlugin plugin(pluginPath());
  json faults = {{"devices", json::array({{{"device", "1"},
                                           {"unhealthy_after", "0.2"},
                                           {"recover_after", "0.5"},
                                           {"reason", "XID 79: fell off the bus"}}})}};
  auto before = Clock::now();
  ASSERT_EQ(plugin.create(sampleConfig("mock-4xa100.toml", faultConfig(faults))), BAI_OK) << plugin.lastLog();
  auto created = Clock::now();

  EXPECT_EQ(healthOf(plugin, "1"), json({{"id", "1"}, {"health", "healthy"}}));
  ASSERT_LT(Clock::now() - before, 200ms) << "too slow to see the healthy phase";

  std::this_thread::sleep_until(created + 250ms);
  EXPECT_EQ(healthOf(plugin, "1"),
            json({{"id", "1"}, {"health", "unhealthy"}, {"reason", "XID 79: fell off the bus"}}));
  EXPECT_EQ(listedOf(plugin, "1").at("health"), "unhealthy");
  EXPECT_EQ(healthOf(plugin, "0").at("health"), "healthy");
  ASSERT_LT(Clock::now() - before, 500ms) << "too slow to see the unhealthy phase";

  std::this_thread::sleep_until(created + 550ms);
  EXPECT_EQ(healthOf(plugin, "1"), json({{"id", "1"}, {"health", "healthy"}}));
  EXPECT_EQ(listedOf(plugin, "1").at("health"), "healthy");
}

TEST(MockFaults, GoneDeviceTakesItsSlicesAlong) {
  DirectPlugin plugin(pluginPath());
  json faults = {
      {"devices", json::array({{{"device", "GPU-b2000000-0000-4000-8000-000000000001"}, {"gone_after", "0.1"}}})}};
  ASSERT_EQ(plugin.create(sampleConfig("mock-2gpu-mig.toml", faultConfig(faults))), BAI_OK) << plugin.lastLog();
  auto created = Clock::now();
  const std::string slice = "MIG-GPU-b2000000-0000-4000-8000-000000000001/0/0";
  std::this_thread::sleep_until(created + 150ms);

  EXPECT_EQ(healthOf(plugin, "1"), json({{"id", "1"}, {"health", "gone"}, {"reason", "mock fault: device gone"}}));
  EXPECT_EQ(healthOf(plugin, slice),
            json({{"id", slice}, {"health", "gone"}, {"reason", "GPU 1: mock fault: device gone"}}));
  EXPECT_EQ(listedOf(plugin, "1").at("health"), "gone");
  EXPECT_EQ(listedOf(plugin, "0").at("health"), "healthy");

  char* out = nullptr;
  std::string document = session("late", {{"cuda.device:3g.40gb-mig", {{slice, "1"}}}});
  EXPECT_EQ(plugin.vtable().prepare_session(plugin.instance(), document.c_str(), &out), BAI_ERR_UNAVAILABLE);
  json measures = parsePayload("node_measures", plugin.nodeMeasures()).at("measures");
  EXPECT_EQ(measures[0].at("per_device"), json({{"0", "0"}})) << "a gone device reports nothing";
}

TEST(MockFaults, FailingListDevices) {
  DirectPlugin plugin(pluginPath());
  ASSERT_EQ(plugin.create(sampleConfig("mock-4xa100.toml", faultConfig({{"fail", {"list_devices"}}}))), BAI_OK);
  char* out = nullptr;
  EXPECT_EQ(plugin.vtable().list_devices(plugin.instance(), &out), BAI_ERR_UNAVAILABLE);
  EXPECT_EQ(out, nullptr);
  std::vector<std::string> errors = errorLines(plugin);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("list_devices"), std::string::npos) << errors[0];
  parsePayload("health", plugin.health());  // the other calls still answer
}

TEST(MockFaults, FailingCreate) {
  DirectPlugin plugin(pluginPath());
  EXPECT_EQ(plugin.create(sampleConfig("mock-4xa100.toml", faultConfig({{"fail", {"create", "health"}}}))),
            BAI_ERR_UNAVAILABLE);
  EXPECT_EQ(plugin.instance(), nullptr);
  ASSERT_EQ(errorLines(plugin).size(), 1u);
  EXPECT_NE(errorLines(plugin)[0].find("create"), std::string::npos);
}

TEST(MockFaults, SlowNamedCall) {
  DirectPlugin plugin(pluginPath());
  ASSERT_EQ(plugin.create(sampleConfig("mock-4xa100.toml", faultConfig({{"delay_ms", {{"list_devices", 150}}}}))),
            BAI_OK);
  EXPECT_GE(timed([&] { plugin.listDevices(); }), 150ms);
  EXPECT_LT(timed([&] { plugin.describe(); }), 100ms) << "only list_devices is slow";
}

TEST(MockFaults, SlowAllCallsExceptOverridden) {
  DirectPlugin plugin(pluginPath());
  json delays = {{"all", "100"}, {"health", 0}};
  std::chrono::milliseconds createTime = timed([&] {
    ASSERT_EQ(plugin.create(sampleConfig("mock-4xa100.toml", faultConfig({{"delay_ms", delays}}))), BAI_OK);
  });
  EXPECT_GE(createTime, 100ms);
  EXPECT_GE(timed([&] { plugin.describe(); }), 100ms);
  EXPECT_GE(timed([&] { plugin.slotTypes(); }), 100ms);
  EXPECT_LT(timed([&] { plugin.health(); }), 80ms) << "its own entry wins over all";
}

TEST(MockFaults, SlowDestroy) {
  DirectPlugin plugin(pluginPath());
  ASSERT_TRUE(plugin.loaded());
  // An instance of our own, since DirectPlugin destroys the one it holds by itself.
  bai_host_services services = {
      BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, sizeof(bai_host_services), 0, nullptr, nullptr, nullptr};
  bai_accelerator* instance = nullptr;
  std::string config = sampleConfig("mock-rocm.toml", faultConfig({{"delay_ms", {{"destroy", 80}}}}));
  ASSERT_EQ(plugin.vtable().create(&services, config.c_str(), &instance), BAI_OK);
  EXPECT_GE(timed([&] { plugin.vtable().destroy(instance); }), 80ms);
}

TEST(MockFaults, FaultsInATomlFileWithFloatSeconds) {
  TempDir dir;
  std::string path = dir.write("faults.toml", R"(key = "acme"
[[devices]]
uuid = "A0"
model = "Acme"
sm_count = 1
memory = "1g"

[faults]
delay_ms = { slot_types = 120 }

[[faults.devices]]
device = "A0"
unhealthy_after = 0.1
)");
  DirectPlugin plugin(pluginPath());
  ASSERT_EQ(plugin.create(json{{"config_file", path}}.dump()), BAI_OK) << plugin.lastLog();
  auto created = Clock::now();
  EXPECT_GE(timed([&] { plugin.slotTypes(); }), 120ms);
  std::this_thread::sleep_until(created + 130ms);
  EXPECT_EQ(healthOf(plugin, "0").at("health"), "unhealthy");
}

}  // namespace
}  // namespace bai::mock::testing
