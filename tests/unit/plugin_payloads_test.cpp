// prepare_session payloads (docs/abi/prepare_session.schema.json): the schema and
// readSessionResources on good and bad documents, and the real plugins' answers read as
// the agent reads them.
#include "json_schema.hpp"
#include "plugin/payloads.hpp"
#include "plugin/plugin_host.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace bai::core {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Result<void> schemaCheck(const std::string& text) {
  return bai::json::abiSchemas().validate("prepare_session", json::parse(text));
}

void expectSchemaRefuses(const std::string& text, const std::string& mentions) {
  auto valid = schemaCheck(text);
  ASSERT_FALSE(valid.ok()) << text;
  EXPECT_NE(valid.error().message.find(mentions), std::string::npos) << valid.error().message;
}

void expectReadRefuses(const std::string& text, const std::string& mentions) {
  auto read = readSessionResources(json::parse(text));
  ASSERT_FALSE(read.ok()) << text;
  EXPECT_NE(read.error().message.find(mentions), std::string::npos) << read.error().message;
}

TEST(PreparePayloadSchema, AcceptsBothDeviceFormsAndEveryLimitKey) {
  for (const char* text : {
           R"({"devices": ["/dev/nvidia0"]})",
           R"({"devices": [{"path": "/dev/nvidia0"}]})",
           R"({"devices": [{"path": "/dev/nvidia0", "type": "c", "major": 195, "minor": 0, "access": "rwm"}]})",
           R"({"devices": [{"path": "/dev/sda", "type": "b", "major": 4294967295, "minor": 0, "access": "r"}]})",
           R"({"limits": {"cpuset": "0-3,8", "mems": "0", "memory": "8589934592", "cpu_quota": "2.25"}})",
           R"({"limits": {"cpu_quota": "3"}, "cdi_devices": ["nvidia.com/gpu=GPU-8f6a0c1e-0b5d", "amd.com/gpu=0"]})",
           R"({"cdi_devices": ["nvidia.com/gpu=0:1", "vendor.example.org/my_class.x-y=name_1.2-3"]})",
           R"({"limits": {}, "mounts": [{"source": "/opt/x", "target": "/x", "read_only": true}], "env": {"A": "1"}})",
       }) {
    auto valid = schemaCheck(text);
    EXPECT_TRUE(valid.ok()) << text << ": " << (valid.ok() ? "" : valid.error().message);
  }
}

TEST(PreparePayloadSchema, RefusesNamingTheKey) {
  expectSchemaRefuses(R"({"limits": {"gpu_mem": "1g"}})", "at /limits: unexpected member \"gpu_mem\"");
  expectSchemaRefuses(R"({"limits": {"memory": 1024}})", "at /limits/memory: expected string");
  expectSchemaRefuses(R"({"limits": {"memory": "1g"}})", "at /limits/memory");
  expectSchemaRefuses(R"({"limits": {"cpuset": "0-"}})", "at /limits/cpuset");
  expectSchemaRefuses(R"({"limits": {"mems": ""}})", "at /limits/mems");
  expectSchemaRefuses(R"({"devices": ["dev/null"]})", "at /devices/0");
  expectSchemaRefuses(R"({"devices": [7]})", "at /devices/0: expected string or object");
  expectSchemaRefuses(R"({"devices": [{"type": "c"}]})", "missing required member \"path\"");
  expectSchemaRefuses(R"({"devices": [{"path": "/dev/x", "type": "u"}]})", "at /devices/0/type");
  expectSchemaRefuses(R"({"devices": [{"path": "/dev/x", "major": 4294967296}]})", "at /devices/0/major: expected at most");
  expectSchemaRefuses(R"({"devices": [{"path": "/dev/x", "minor": -1}]})", "at /devices/0/minor: expected at least 0");
  expectSchemaRefuses(R"({"devices": [{"path": "/dev/x", "access": "rwx"}]})", "at /devices/0/access");
  expectSchemaRefuses(R"({"devices": [{"path": "/dev/x", "access": ""}]})", "at /devices/0/access");
  expectSchemaRefuses(R"({"devices": [{"path": "/dev/x", "mode": "0666"}]})", "unexpected member \"mode\"");
  expectSchemaRefuses(R"({"mounts": [{"target": "/x"}]})", "missing required member \"source\"");
  expectSchemaRefuses(R"({"limits": {"cpu_quota": 0.5}})", "at /limits/cpu_quota: expected string");
  expectSchemaRefuses(R"({"limits": {"cpu_quota": "0.0005"}})", "at /limits/cpu_quota");
  expectSchemaRefuses(R"({"limits": {"cpu_quota": "1,5"}})", "at /limits/cpu_quota");
  expectSchemaRefuses(R"({"cdi_devices": "nvidia.com/gpu=0"})", "at /cdi_devices: expected array");
  expectSchemaRefuses(R"({"cdi_devices": ["nvidia/gpu=0"]})", "at /cdi_devices/0");
  expectSchemaRefuses(R"({"cdi_devices": ["nvidia.com/gpu"]})", "at /cdi_devices/0");
  expectSchemaRefuses(R"({"cdi_devices": ["nvidia.com/g pu=0"]})", "at /cdi_devices/0");
  expectSchemaRefuses(R"({"cdi_devices": ["nvidia.com/gpu=0/1"]})", "at /cdi_devices/0");
}

TEST(ReadSessionResources, ReadsBothDeviceFormsMountsAndLimits) {
  auto read = readSessionResources(json::parse(R"({
      "env": {"A": "1"},
      "devices": ["/dev/nvidiactl", {"path": "/dev/nvidia1", "type": "c", "major": 195, "minor": 1, "access": "rw"},
                  {"path": "/dev/sdb", "type": "b", "major": 8, "minor": 16, "access": "r"}, {"path": "/dev/kfd"}],
      "mounts": [{"source": "/opt/x", "target": "/x", "read_only": true}, {"source": "/a", "target": "/b"}],
      "limits": {"cpuset": "8,0-3,2", "mems": "1", "memory": "18446744073709551615"}})"));
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->env.at("A"), "1");
  ASSERT_EQ(read->devices.size(), 4u);
  EXPECT_EQ(read->devices[0].path, "/dev/nvidiactl");
  EXPECT_FALSE(read->devices[0].type.has_value()) << "the string form leaves the numbers to the agent";
  EXPECT_EQ(read->devices[0].access, "rw");
  EXPECT_EQ(read->devices[1].type, 'c');
  EXPECT_EQ(read->devices[1].major, 195u);
  EXPECT_EQ(read->devices[1].minor, 1u);
  EXPECT_EQ(read->devices[2].type, 'b');
  EXPECT_EQ(read->devices[2].access, "r");
  EXPECT_EQ(read->devices[3].path, "/dev/kfd");
  EXPECT_FALSE(read->devices[3].major.has_value());
  ASSERT_EQ(read->mounts.size(), 2u);
  EXPECT_TRUE(read->mounts[0].readOnly);
  EXPECT_FALSE(read->mounts[1].readOnly);
  EXPECT_EQ(read->limits.cpus, (std::vector<int>{0, 1, 2, 3, 8}));
  EXPECT_EQ(read->limits.mems, (std::vector<int>{1}));
  EXPECT_EQ(read->limits.memoryBytes, 18446744073709551615ull);

  auto empty = readSessionResources(json::object());
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->devices.empty());
  EXPECT_TRUE(empty->cdiDevices.empty());
  EXPECT_FALSE(empty->limits.cpus || empty->limits.mems || empty->limits.memoryBytes || empty->limits.cpuMillis);
}

// ABI 1.2: CDI device names beside the nodes, and a CPU quota in thousandths of a CPU.
TEST(ReadSessionResources, ReadsCdiDevicesAndTheCpuQuota) {
  auto read = readSessionResources(json::parse(R"({
      "devices": ["/dev/nvidia0"],
      "cdi_devices": ["nvidia.com/gpu=GPU-8f6a0c1e-0b5d-4a5e", "nvidia.com/gpu=1:0", "amd.com/gpu=0"],
      "limits": {"cpu_quota": "2.25"}})"));
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->cdiDevices,
            (std::vector<std::string>{"nvidia.com/gpu=GPU-8f6a0c1e-0b5d-4a5e", "nvidia.com/gpu=1:0", "amd.com/gpu=0"}));
  ASSERT_EQ(read->devices.size(), 1u) << "a plugin sends both forms; the runtime picks";
  EXPECT_EQ(read->limits.cpuMillis, 2250u);
  for (auto [text, millis] : {std::pair{"0.01", 10u}, std::pair{"0.5", 500u}, std::pair{"3", 3000u},
                              std::pair{"0.125", 125u}, std::pair{"64.0", 64000u}}) {
    auto quota = readSessionResources(json{{"limits", {{"cpu_quota", text}}}});
    ASSERT_TRUE(quota.ok()) << text << ": " << quota.error().message;
    EXPECT_EQ(quota->limits.cpuMillis, millis) << text;
  }
}

TEST(ReadSessionResources, BadCdiDevicesAndCpuQuotasNameTheKey) {
  expectReadRefuses(R"({"cdi_devices": [7]})", "cdi_devices[0]: expected a CDI device name, got 7");
  expectReadRefuses(R"({"cdi_devices": ["nvidia.com/gpu=0", "gpu0"]})", "cdi_devices[1] (gpu0): expected vendor.com/class=name");
  expectReadRefuses(R"({"cdi_devices": ["nvidia/gpu=0"]})", "cdi_devices[0] (nvidia/gpu=0): the vendor 'nvidia' is not a domain name");
  expectReadRefuses(R"({"cdi_devices": ["-nvidia.com/gpu=0"]})", "the vendor '-nvidia.com' is not a domain name");
  expectReadRefuses(R"({"cdi_devices": ["nvidia..com/gpu=0"]})", "the vendor 'nvidia..com' is not a domain name");
  expectReadRefuses(R"({"cdi_devices": ["nvidia.com/=0"]})", "the class '' is not [a-zA-Z0-9_.-]+");
  expectReadRefuses(R"({"cdi_devices": ["nvidia.com/g:pu=0"]})", "the class 'g:pu' is not [a-zA-Z0-9_.-]+");
  expectReadRefuses(R"({"cdi_devices": ["nvidia.com/gpu="]})", "the name '' is not [a-zA-Z0-9_.:-]+");
  expectReadRefuses(R"({"cdi_devices": ["nvidia.com/gpu=a=b"]})", "the name 'a=b' is not [a-zA-Z0-9_.:-]+");
  expectReadRefuses(R"({"limits": {"cpu_quota": 2}})", "limits.cpu_quota: expected CPUs as a decimal string");
  expectReadRefuses(R"({"limits": {"cpu_quota": "0.0005"}})", "limits.cpu_quota: expected CPUs as a decimal string");
  expectReadRefuses(R"({"limits": {"cpu_quota": ".5"}})", "limits.cpu_quota: expected");
  expectReadRefuses(R"({"limits": {"cpu_quota": "2."}})", "limits.cpu_quota: expected");
  expectReadRefuses(R"({"limits": {"cpu_quota": "-1"}})", "limits.cpu_quota: expected");
  expectReadRefuses(R"({"limits": {"cpu_quota": "0"}})", "limits.cpu_quota: 0 is under 0.01 CPUs");
  expectReadRefuses(R"({"limits": {"cpu_quota": "0.009"}})", "limits.cpu_quota: 0.009 is under 0.01 CPUs");
  expectReadRefuses(R"({"limits": {"cpu_quota": "1000000000"}})", "limits.cpu_quota: expected");
}

// The rules beyond the schema, and the schema's own rules again for a caller that skipped it.
TEST(ReadSessionResources, ErrorsNameTheKey) {
  expectReadRefuses(R"({"devices": [{"path": "/dev/x", "type": "c"}]})",
                    "devices[0] (/dev/x): type, major and minor come together or not at all");
  expectReadRefuses(R"({"devices": ["/dev/null", {"path": "/dev/x", "major": 1, "minor": 2}]})", "devices[1] (/dev/x)");
  expectReadRefuses(R"({"devices": [{"path": "/dev/x", "access": "rwr"}]})", "devices[0].access: expected a non-empty subset");
  expectReadRefuses(R"({"devices": [{"path": "/dev/x", "major": 4294967296, "minor": 0, "type": "c"}]})",
                    "devices[0].major: expected an integer from 0 to 4294967295");
  expectReadRefuses(R"({"devices": [{"access": "r"}]})", "devices[0]: missing key 'path'");
  expectReadRefuses(R"({"devices": ["relative"]})", "devices[0]: expected an absolute path");
  expectReadRefuses(R"({"limits": {"gpu_mem": "1g"}})", "limits: unknown key 'gpu_mem'");
  expectReadRefuses(R"({"limits": {"memory": "18446744073709551616"}})", "limits.memory: expected bytes");
  expectReadRefuses(R"({"limits": {"cpuset": "3-1"}})", "limits.cpuset: expected a list such as \"0-3,8\"");
  expectReadRefuses(R"({"limits": {"mems": "0,"}})", "limits.mems");
}

// bai-plugin-check fails a plugin whose info record claims an older minor than its answers need.
TEST(NewestAbiUsedBy, NamesTheKeyOfTheNewestMinor) {
  auto newest = [](const char* text) { return newestAbiUsedBy(json::parse(text)); };
  EXPECT_EQ(newest(R"({"env": {"A": "1"}, "devices": ["/dev/x"], "limits": {"memory": "1"}})").minor, 0u);
  EXPECT_EQ(newest(R"({"devices": ["/dev/x", {"path": "/dev/y"}]})").minor, 1u);
  EXPECT_EQ(newest(R"({"devices": ["/dev/x", {"path": "/dev/y"}]})").key, "devices[1] (an object)");
  EXPECT_EQ(newest(R"({"devices": [{"path": "/dev/y"}], "limits": {"cpu_quota": "1"}})").minor, 2u);
  EXPECT_EQ(newest(R"({"devices": [{"path": "/dev/y"}], "limits": {"cpu_quota": "1"}})").key, "limits.cpu_quota");
  EXPECT_EQ(newest(R"({"cdi_devices": ["a.com/b=c"], "limits": {"cpu_quota": "1"}})").key, "cdi_devices");
}

// ---- The real plugins, loaded by the host as the agent loads them -------------------------

class RealPluginPayloads : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("bai-payloads-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A host that loads the plugin at env `variable` with `config`.
  std::unique_ptr<PluginHost> load(const char* variable, const std::string& config) {
    const char* plugin = std::getenv(variable);
    if (plugin == nullptr) return nullptr;
    fs::create_symlink(plugin, dir_ / fs::path(plugin).filename());
    PluginHostOptions options;
    options.searchPath = {dir_};
    options.log = [](LogLevel, const std::string&, const std::string&) {};
    options.configFor = [config](const std::string&, const std::string&) { return config; };
    auto host = std::make_unique<PluginHost>(options);
    host->loadAll();
    return host;
  }

  // The smallest grant of every map of `plugin`, as the session document's allocation.
  static std::map<std::string, std::map<std::string, Quantity>> smallGrants(AcceleratorPlugin& plugin,
                                                                            const std::map<std::string, Quantity>& amounts) {
    std::map<std::string, std::map<std::string, Quantity>> allocation;
    auto maps = plugin.buildMaps();
    EXPECT_TRUE(maps.ok());
    if (!maps.ok()) return allocation;
    for (auto& map : *maps) {
      auto amount = amounts.find(map->slot().str());
      if (amount == amounts.end()) continue;
      auto grants = map->allocate(amount->second);
      EXPECT_TRUE(grants.ok()) << map->slot().str();
      if (!grants.ok()) continue;
      for (const DeviceGrant& g : *grants) allocation[map->slot().str()][map->deviceId(g.device)] = g.amount;
    }
    return allocation;
  }

  fs::path dir_;
};

// The cpu plugin's limits are exactly the keys and formats readSessionResources reads.
TEST_F(RealPluginPayloads, TheCpuPluginsLimitsReadAsTheAgentReadsThem) {
  auto host = load("BAI_CPU_PLUGIN", "{}");
  if (host == nullptr) GTEST_SKIP() << "built without the cpu plugin";
  AcceleratorPlugin* cpu = host->find("cpu");
  ASSERT_NE(cpu, nullptr);
  const Quantity gib(std::int64_t{1} << 30);
  auto allocation = smallGrants(*cpu, {{"cpu", Quantity(1)}, {"mem", gib}});
  ASSERT_EQ(allocation.size(), 2u);
  auto prepared = cpu->prepareSession("s1", allocation);
  ASSERT_TRUE(prepared.ok()) << prepared.error().message;
  ASSERT_TRUE(prepared->limits.cpus.has_value());
  ASSERT_EQ(prepared->limits.cpus->size(), 1u);
  EXPECT_EQ(prepared->limits.memoryBytes, std::uint64_t{1} << 30);
  EXPECT_TRUE(prepared->devices.empty());
  EXPECT_TRUE(cpu->releaseSession("s1", allocation).ok());

  auto none = cpu->prepareSession("s2", {});
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_FALSE(none->limits.cpus || none->limits.memoryBytes);
  EXPECT_TRUE(cpu->releaseSession("s2", {}).ok());
}

// A mock whose GPU names a node, and whose session_extra holds `extra` (TOML).
std::string mockConfig(const fs::path& dir, const std::string& extra) {
  const fs::path file = dir / "mock.toml";
  std::ofstream(file) << "key = \"cuda\"\n" << extra
                      << "\n[[devices]]\nuuid = \"GPU-0\"\nmodel = \"M\"\nsm_count = 8\nmemory = \"8g\"\n"
                         "device_node = \"/dev/null\"\n";
  return json{{"config_file", file.string()}}.dump();
}

TEST_F(RealPluginPayloads, TheMocksNodesAndExtrasReachTheResources) {
  auto host = load("BAI_MOCK_PLUGIN",
                   mockConfig(dir_, "[session_extra]\nlimits = { memory = \"1048576\" }\n"
                                    "mounts = [{ source = \"/usr\", target = \"/opt/usr\", read_only = true }]\n"));
  if (host == nullptr) GTEST_SKIP() << "built without the mock plugin";
  AcceleratorPlugin* mock = host->find("cuda");
  ASSERT_NE(mock, nullptr) << "the mock did not load";
  auto prepared = mock->prepareSession("s1", {{"cuda.device", {{"0", Quantity(1)}}}});
  ASSERT_TRUE(prepared.ok()) << prepared.error().message;
  ASSERT_EQ(prepared->devices.size(), 1u);
  EXPECT_EQ(prepared->devices[0].path, "/dev/null");
  EXPECT_FALSE(prepared->devices[0].type.has_value()) << "the mock leaves the numbers to the agent";
  ASSERT_EQ(prepared->mounts.size(), 1u);
  EXPECT_EQ(prepared->mounts[0].target, "/opt/usr");
  EXPECT_TRUE(prepared->mounts[0].readOnly);
  EXPECT_EQ(prepared->limits.memoryBytes, 1048576u);
}

TEST_F(RealPluginPayloads, AnUnknownLimitKeyFailsThePrepareNamingCallAndKey) {
  auto host = load("BAI_MOCK_PLUGIN", mockConfig(dir_, "[session_extra]\nlimits = { gpu_mem = \"1g\" }\n"));
  if (host == nullptr) GTEST_SKIP() << "built without the mock plugin";
  AcceleratorPlugin* mock = host->find("cuda");
  ASSERT_NE(mock, nullptr);
  auto prepared = mock->prepareSession("s1", {});
  ASSERT_FALSE(prepared.ok());
  EXPECT_EQ(prepared.error().message,
            "prepare_session: breaks docs/abi/prepare_session.schema.json at /limits: unexpected member \"gpu_mem\"");
}

}  // namespace
}  // namespace bai::core
