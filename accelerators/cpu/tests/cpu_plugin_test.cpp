// The cpu plugin through dlopen, as the agent loads it: identity, every call's JSON,
// counts against real machines' hwloc XML exports and synthetic topologies, config and
// session errors, and repeated create/destroy.
#include "direct_plugin.hpp"

#include <bai/accelerator.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <dirent.h>
#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using bai::testing::DirectPlugin;
using nlohmann::json;

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string pluginPath() { return environment("BAI_CPU_PLUGIN"); }
std::string topologyPath(const std::string& file) { return environment("BAI_TOPOLOGY_DIR") + "/" + file; }
std::string xmlConfig(const std::string& file) { return json{{"topology_xml", topologyPath(file)}}.dump(); }

bool isQuantity(const json& value) {
  static const std::regex pattern("^-?[0-9]+(\\.[0-9]{1,6})?$");
  return value.is_string() && std::regex_match(value.get<std::string>(), pattern);
}

// Fails the test for any key of `object` outside `allowed` (the schemas forbid extra keys).
void expectOnlyKeys(const json& object, const std::set<std::string>& allowed) {
  ASSERT_TRUE(object.is_object()) << object;
  for (const auto& [key, value] : object.items()) EXPECT_TRUE(allowed.count(key)) << "unexpected key " << key;
}

std::vector<std::string> idsOf(const json& devices) {
  std::vector<std::string> ids;
  for (const json& device : devices) ids.push_back(device.at("id").get<std::string>());
  return ids;
}

class CpuPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(pluginPath().empty()) << "BAI_CPU_PLUGIN is not set";
    ASSERT_FALSE(environment("BAI_TOPOLOGY_DIR").empty()) << "BAI_TOPOLOGY_DIR is not set";
    ASSERT_TRUE(plugin_.loaded());
  }

  void create(const std::string& config) { ASSERT_EQ(plugin_.create(config), BAI_OK) << plugin_.lastLog(); }

  json devices() { return json::parse(plugin_.listDevices()).at("devices"); }
  json extraInfo() { return json::parse(plugin_.describe()).at("extra_info"); }
  json maps() { return json::parse(plugin_.allocMapSpec()).at("maps"); }

  // The PU devices (processing_units 1) of list_devices, in order.
  std::vector<std::string> puIds() {
    std::vector<std::string> ids;
    for (const json& device : devices()) {
      if (device.at("processing_units") == 1) ids.push_back(device.at("id"));
    }
    return ids;
  }
  json device(const std::string& id) {
    for (const json& candidate : devices()) {
      if (candidate.at("id") == id) return candidate;
    }
    ADD_FAILURE() << "no device " << id;
    return json::object();
  }
  json map(const std::string& slot) {
    for (const json& candidate : maps()) {
      if (candidate.at("slot") == slot) return candidate;
    }
    ADD_FAILURE() << "no map for " << slot;
    return json::object();
  }
  std::string capacityOf(const std::string& slot, const std::string& id) {
    const json devices = map(slot).at("devices");
    for (const json& d : devices) {
      if (d.at("id") == id) return d.at("capacity");
    }
    ADD_FAILURE() << "no device " << id << " in the " << slot << " map";
    return "";
  }

  bai_status prepareStatus(const std::string& session, json* output = nullptr) {
    char* out = nullptr;
    const bai_status status = plugin_.vtable().prepare_session(plugin_.instance(), session.c_str(), &out);
    if (output != nullptr && out != nullptr) *output = json::parse(out);
    plugin_.vtable().free_string(out);
    return status;
  }

  DirectPlugin plugin_{pluginPath()};
};

// ---- identity --------------------------------------------------------------------------

TEST_F(CpuPluginTest, InfoRecordNamesTheCpuPlugin) {
  const bai_plugin_info& info = plugin_.info();
  EXPECT_EQ(info.abi_major, BAI_ACCELERATOR_ABI_MAJOR);
  EXPECT_EQ(info.abi_minor, BAI_ACCELERATOR_ABI_MINOR);
  EXPECT_STREQ(info.name, "cpu");
  EXPECT_STREQ(info.vendor, "bai");
  EXPECT_STREQ(info.key, "cpu");
  EXPECT_STRNE(info.version, "");
  EXPECT_STRNE(info.description, "");
  EXPECT_EQ(plugin_.vtable().abi_major, BAI_ACCELERATOR_ABI_MAJOR);
  EXPECT_EQ(plugin_.vtable().struct_size, sizeof(bai_accelerator_vtable));
}

// ---- every call's shape, on this machine -------------------------------------------------

TEST_F(CpuPluginTest, DescribeGivesTheKeyAndTheCounts) {
  create("{}");
  const json describe = json::parse(plugin_.describe());
  expectOnlyKeys(describe, {"key", "extra_info"});
  EXPECT_EQ(describe.at("key"), "cpu");
  const json& extra = describe.at("extra_info");
  EXPECT_EQ(extra.at("source"), "this machine");
  EXPECT_EQ(extra.at("pus").get<std::size_t>(), puIds().size());
  EXPECT_GE(extra.at("machine_pus").get<unsigned>(), extra.at("pus").get<unsigned>());
  EXPECT_GE(extra.at("numa_nodes").get<unsigned>(), 1u);
  EXPECT_TRUE(isQuantity(extra.at("memory")));
  EXPECT_EQ(extra.at("cpu_overcommit"), "1");
  EXPECT_EQ(extra.at("mem_overcommit"), "1");
  EXPECT_EQ(extra.at("measures"), "this machine");
}

TEST_F(CpuPluginTest, ThisMachineOffersTheCpusItMayRunOn) {
  create("{}");
  std::set<std::string> ids;
  for (const std::string& id : puIds()) ids.insert(id);
  // hwloc follows the cgroup cpuset, which contains this process's affinity mask and
  // lies within the online CPUs.
  cpu_set_t affinity;
  ASSERT_EQ(sched_getaffinity(0, sizeof affinity, &affinity), 0);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (CPU_ISSET(cpu, &affinity)) {
      EXPECT_TRUE(ids.count(std::to_string(cpu))) << "cpu " << cpu;
    }
  }
  EXPECT_LE(ids.size(), static_cast<std::size_t>(sysconf(_SC_NPROCESSORS_ONLN)));
  for (const std::string& id : ids) EXPECT_EQ(access(("/sys/devices/system/cpu/cpu" + id).c_str(), F_OK), 0) << id;
}

TEST_F(CpuPluginTest, ListDevicesHasTheSchemaShape) {
  create("{}");
  const json list = json::parse(plugin_.listDevices());
  expectOnlyKeys(list, {"devices"});
  ASSERT_FALSE(list.at("devices").empty());
  for (const json& device : list.at("devices")) {
    expectOnlyKeys(device, {"id", "model", "uuid", "pci_bus", "numa_node", "memory", "processing_units", "health",
                            "extra"});
    EXPECT_TRUE(device.at("id").is_string() && !device.at("id").get<std::string>().empty());
    EXPECT_TRUE(device.at("numa_node").is_number_integer());
    EXPECT_GE(device.at("numa_node").get<int>(), -1);
    EXPECT_EQ(device.at("health"), "healthy");
    if (device.contains("memory")) {
      EXPECT_TRUE(isQuantity(device.at("memory"))) << device;
    }
    if (device.contains("model")) {
      EXPECT_TRUE(device.at("model").is_string());
    }
  }
}

TEST_F(CpuPluginTest, SlotTypesAreTheIntrinsicSlots) {
  create("{}");
  EXPECT_EQ(json::parse(plugin_.slotTypes()),
            json::parse(R"({"slots":[{"name":"cpu","type":"count"},{"name":"mem","type":"bytes"}]})"));
}

TEST_F(CpuPluginTest, AllocMapSpecHasOneDiscreteMapPerSlot) {
  create("{}");
  const json spec = json::parse(plugin_.allocMapSpec());
  expectOnlyKeys(spec, {"exclusive", "maps"});
  EXPECT_FALSE(spec.contains("exclusive"));
  ASSERT_EQ(spec.at("maps").size(), 2u);
  std::set<std::string> listed;
  for (const std::string& id : idsOf(devices())) listed.insert(id);
  for (const json& m : spec.at("maps")) {
    expectOnlyKeys(m, {"slot", "kind", "strategy", "quantum", "fragmentation_guard", "devices"});
    EXPECT_EQ(m.at("kind"), "discrete");
    EXPECT_EQ(m.at("strategy"), "evenly");
    for (const json& d : m.at("devices")) {
      expectOnlyKeys(d, {"id", "capacity"});
      EXPECT_TRUE(isQuantity(d.at("capacity"))) << d;
      EXPECT_TRUE(listed.count(d.at("id"))) << "alloc map device " << d.at("id") << " is not in list_devices";
    }
  }
  EXPECT_EQ(map("cpu").at("devices").size(), puIds().size());
  for (const std::string& id : puIds()) EXPECT_EQ(capacityOf("cpu", id), "1");
}

TEST_F(CpuPluginTest, HealthReportsEveryDeviceHealthy) {
  create("{}");
  const json health = json::parse(plugin_.health());
  expectOnlyKeys(health, {"devices"});
  for (const json& d : health.at("devices")) {
    expectOnlyKeys(d, {"id", "health", "reason"});
    EXPECT_EQ(d.at("health"), "healthy");
  }
  EXPECT_EQ(idsOf(health.at("devices")), idsOf(devices()));
}

TEST_F(CpuPluginTest, NodeMeasuresGiveUtilisationPerPuAndMemory) {
  create("{}");
  for (int call = 0; call < 2; ++call) {  // the first measures since boot, the second since the first
    const json measures = json::parse(plugin_.nodeMeasures());
    expectOnlyKeys(measures, {"measures"});
    ASSERT_EQ(measures.at("measures").size(), 3u) << measures;
    const json& cpu = measures.at("measures")[0];
    expectOnlyKeys(cpu, {"key", "unit", "value", "per_device"});
    EXPECT_EQ(cpu.at("key"), "cpu_util");
    EXPECT_EQ(cpu.at("unit"), "percent");
    ASSERT_TRUE(isQuantity(cpu.at("value"))) << cpu;
    EXPECT_LE(std::stod(cpu.at("value").get<std::string>()), 100.0);
    std::vector<std::string> measured;
    for (const auto& [id, value] : cpu.at("per_device").items()) {
      measured.push_back(id);
      ASSERT_TRUE(isQuantity(value)) << value;
      EXPECT_LE(std::stod(value.get<std::string>()), 100.0);
    }
    std::vector<std::string> pus = puIds();
    std::sort(pus.begin(), pus.end());
    EXPECT_EQ(measured, pus);  // nlohmann sorts keys as text
    const json& used = measures.at("measures")[1];
    const json& total = measures.at("measures")[2];
    EXPECT_EQ(used.at("key"), "mem");
    EXPECT_EQ(total.at("key"), "mem_total");
    EXPECT_EQ(used.at("unit"), "bytes");
    ASSERT_TRUE(isQuantity(used.at("value")) && isQuantity(total.at("value")));
    EXPECT_LE(std::stoull(used.at("value").get<std::string>()), std::stoull(total.at("value").get<std::string>()));
  }
}

TEST_F(CpuPluginTest, NodeMeasuresAreEmptyForATopologyThatIsNotThisMachine) {
  create(xmlConfig("power8gpudistances.xml"));
  EXPECT_EQ(json::parse(plugin_.nodeMeasures()), json::parse(R"({"measures":[]})"));
  EXPECT_EQ(extraInfo().at("measures"), "none: the topology is not this machine");
  create(R"({"synthetic":"pu:4"})");
  EXPECT_EQ(json::parse(plugin_.nodeMeasures()), json::parse(R"({"measures":[]})"));
}

// ---- real machines from hwloc XML ---------------------------------------------------------

TEST_F(CpuPluginTest, Power8HasSixteenPusOnTwoNumaNodes) {
  create(xmlConfig("power8gpudistances.xml"));
  EXPECT_EQ(puIds(), (std::vector<std::string>{"0", "1", "8", "9", "16", "17", "24", "25", "80", "81", "88", "89", "96",
                                               "97", "104", "105"}));
  EXPECT_EQ(device("0").at("numa_node"), 0);
  EXPECT_EQ(device("25").at("numa_node"), 0);
  EXPECT_EQ(device("80").at("numa_node"), 1);
  EXPECT_EQ(device("105").at("numa_node"), 1);
  EXPECT_EQ(device("0").at("model"), "POWER8NVL, altivec supported");
  EXPECT_EQ(device("0").at("extra"), json::parse(R"({"core":0,"package":0})"));
  EXPECT_EQ(device("1").at("extra").at("core"), 0);  // SMT sibling of PU 0
  EXPECT_EQ(device("mem0").at("memory"), "68556816384");
  EXPECT_EQ(device("mem1").at("memory"), "68450713600");
  EXPECT_EQ(device("mem1").at("numa_node"), 1);
  EXPECT_EQ(idsOf(map("mem").at("devices")), (std::vector<std::string>{"mem0", "mem1"}));
  EXPECT_EQ(capacityOf("mem", "mem0"), "68556816384");
  const json extra = extraInfo();
  EXPECT_EQ(extra.at("source"), "xml:" + topologyPath("power8gpudistances.xml"));
  EXPECT_EQ(extra.at("pus"), 16);
  EXPECT_EQ(extra.at("machine_pus"), 16);
  EXPECT_EQ(extra.at("cores"), 8);
  EXPECT_EQ(extra.at("packages"), 2);
  EXPECT_EQ(extra.at("numa_nodes"), 2);
  EXPECT_EQ(extra.at("memory"), "137007529984");
}

TEST_F(CpuPluginTest, Zen4HasThreeHundredEightyFourPusAndNoMemoryInfo) {
  create(xmlConfig("AMD-19h-Zen4-2xEpyc-9654.xml"));
  const std::vector<std::string> ids = puIds();
  ASSERT_EQ(ids.size(), 384u);
  EXPECT_EQ(ids.front(), "0");
  EXPECT_EQ(ids.back(), "383");
  EXPECT_EQ(device("200").at("model"), "AMD EPYC 9654 96-Core Processor");  // padding trimmed
  const json extra = extraInfo();
  EXPECT_EQ(extra.at("cores"), 192);
  EXPECT_EQ(extra.at("packages"), 2);
  EXPECT_EQ(extra.at("numa_nodes"), 1);
  // The export has no local_memory: one memory device of 0 bytes, not a failure.
  EXPECT_EQ(extra.at("memory"), "0");
  EXPECT_EQ(device("mem0").at("memory"), "0");
  EXPECT_EQ(capacityOf("mem", "mem0"), "0");
}

// This XML was exported by a process confined to cpuset 0xf06f of a 16-CPU machine, so
// the file itself holds only the 10 allowed PUs (complete_cpuset keeps all 16) and the
// NUMA nodes 1-5 it was allowed to use. PUs whose NUMA node (0, 6, 7) was not allowed
// have no usable local memory: numa_node -1.
TEST_F(CpuPluginTest, RestrictedCpusetXmlOffersOnlyTheAllowedPus) {
  create(xmlConfig("16amd64-8n2c-cpusets.xml"));
  EXPECT_EQ(puIds(), (std::vector<std::string>{"0", "1", "2", "3", "5", "6", "12", "13", "14", "15"}));
  EXPECT_EQ(extraInfo().at("machine_pus"), 16);
  EXPECT_EQ(device("2").at("numa_node"), 1);
  EXPECT_EQ(device("5").at("numa_node"), 2);
  EXPECT_EQ(device("6").at("numa_node"), 3);
  EXPECT_EQ(device("0").at("numa_node"), -1);
  EXPECT_EQ(device("15").at("numa_node"), -1);
  EXPECT_EQ(idsOf(map("mem").at("devices")), (std::vector<std::string>{"mem1", "mem2", "mem3", "mem4", "mem5"}));
  for (const char* id : {"mem1", "mem2", "mem3", "mem4", "mem5"}) EXPECT_EQ(capacityOf("mem", id), "8589934592");
  EXPECT_EQ(extraInfo().at("memory"), "42949672960");
}

// A copy of a 32-PU export whose allowed_cpuset is narrowed to 0-3,12-15: the plugin
// follows the XML's own allowed set, not the PUs the file describes.
TEST_F(CpuPluginTest, XmlAllowedCpusetNarrowsThePus) {
  std::ifstream in(topologyPath("32em64t-2n8c2t-pci-wholeio.xml"));
  std::stringstream text;
  text << in.rdbuf();
  std::string xml = text.str();
  const std::string allowed = "allowed_cpuset=\"0xffffffff\"";
  const std::size_t at = xml.find(allowed);
  ASSERT_NE(at, std::string::npos);
  xml.replace(at, allowed.size(), "allowed_cpuset=\"0x0000f00f\"");
  const std::string path = ::testing::TempDir() + "cpu-plugin-restricted-" + std::to_string(getpid()) + ".xml";
  std::ofstream(path) << xml;
  create(json{{"topology_xml", path}}.dump());
  std::remove(path.c_str());
  EXPECT_EQ(puIds(), (std::vector<std::string>{"0", "1", "2", "3", "12", "13", "14", "15"}));
  EXPECT_EQ(extraInfo().at("machine_pus"), 32);
  EXPECT_EQ(extraInfo().at("pus"), 8);
}

// ---- synthetic topologies -------------------------------------------------------------

TEST_F(CpuPluginTest, SyntheticTopologyGivesPusAndNumaMemory) {
  create(R"({"synthetic":"numa:2(memory=1GiB) core:4 pu:2"})");
  std::vector<std::string> expected;
  for (int pu = 0; pu < 16; ++pu) expected.push_back(std::to_string(pu));
  EXPECT_EQ(puIds(), expected);
  EXPECT_EQ(device("7").at("numa_node"), 0);
  EXPECT_EQ(device("8").at("numa_node"), 1);
  EXPECT_FALSE(device("0").contains("model"));
  EXPECT_EQ(device("mem0").at("memory"), "1073741824");
  EXPECT_EQ(device("mem1").at("memory"), "1073741824");
  EXPECT_EQ(extraInfo().at("source"), "synthetic:numa:2(memory=1GiB) core:4 pu:2");
  EXPECT_EQ(extraInfo().at("cores"), 8);
  EXPECT_EQ(extraInfo().at("packages"), 0);
}

// hwloc's synthetic "GB" is 10^9 bytes ("GiB" is 2^30); without memory= each node gets 1 GiB.
TEST_F(CpuPluginTest, SyntheticMemoryUnitsFollowHwloc) {
  create(R"({"synthetic":"numa:2(memory=1GB) core:4 pu:2"})");
  EXPECT_EQ(capacityOf("mem", "mem0"), "1000000000");
  EXPECT_EQ(capacityOf("mem", "mem1"), "1000000000");
  create(R"({"synthetic":"core:2 pu:2"})");
  EXPECT_EQ(puIds().size(), 4u);
  EXPECT_EQ(idsOf(map("mem").at("devices")), std::vector<std::string>{"mem0"});
  EXPECT_EQ(capacityOf("mem", "mem0"), "1073741824");
}

// ---- overcommit and strategies ---------------------------------------------------------

TEST_F(CpuPluginTest, CpuOvercommitSetsEachPuCapacity) {
  create(R"({"synthetic":"numa:2(memory=1GiB) core:4 pu:2","cpu_overcommit":"2"})");
  const json cpuDevices = map("cpu").at("devices");
  ASSERT_EQ(cpuDevices.size(), 16u);
  for (const json& d : cpuDevices) EXPECT_EQ(d.at("capacity"), "2");
  EXPECT_EQ(extraInfo().at("cpu_overcommit"), "2");
  create(R"({"synthetic":"pu:2","cpu_overcommit":3})");
  EXPECT_EQ(capacityOf("cpu", "1"), "3");
}

TEST_F(CpuPluginTest, MemOvercommitIsFlooredToWholeBytes) {
  create(R"({"synthetic":"numa:2(memory=1GiB) pu:2","mem_overcommit":"1.5"})");
  EXPECT_EQ(capacityOf("mem", "mem0"), "1610612736");
  EXPECT_EQ(device("mem0").at("memory"), "1073741824");  // list_devices keeps the physical size
  create(json{{"topology_xml", topologyPath("power8gpudistances.xml")}, {"mem_overcommit", "1.000001"}}.dump());
  // 68556816384 * 1.000001 = 68556884940.816384
  EXPECT_EQ(capacityOf("mem", "mem0"), "68556884940");
  EXPECT_EQ(extraInfo().at("mem_overcommit"), "1.000001");
  create(R"({"synthetic":"pu:2","mem_overcommit":1.25})");
  EXPECT_EQ(capacityOf("mem", "mem0"), "1342177280");
}

TEST_F(CpuPluginTest, StrategiesAreConfigurablePerMap) {
  create(R"({"synthetic":"pu:2","strategy":"fill","mem_strategy":"fill"})");
  EXPECT_EQ(map("cpu").at("strategy"), "fill");
  EXPECT_EQ(map("mem").at("strategy"), "fill");
  create(R"({"synthetic":"pu:2","mem_strategy":"fill"})");
  EXPECT_EQ(map("cpu").at("strategy"), "evenly");
  EXPECT_EQ(map("mem").at("strategy"), "fill");
}

// ---- bad config ------------------------------------------------------------------------

struct BadConfig {
  std::string config;
  std::string logged;  // a part of the log line that must name the problem
  friend void PrintTo(const BadConfig& bad, std::ostream* out) { *out << bad.config; }
};

class CpuPluginBadConfigTest : public CpuPluginTest, public ::testing::WithParamInterface<BadConfig> {};

TEST_P(CpuPluginBadConfigTest, CreateFailsWithInvalidArgumentAndSaysWhy) {
  EXPECT_EQ(plugin_.create(GetParam().config), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(plugin_.instance(), nullptr);
  EXPECT_NE(plugin_.lastLog().find(GetParam().logged), std::string::npos) << plugin_.lastLog();
  EXPECT_EQ(plugin_.lastLog().rfind(std::to_string(BAI_LOG_ERROR) + ": create: ", 0), 0u) << plugin_.lastLog();
}

INSTANTIATE_TEST_SUITE_P(
    Configs, CpuPluginBadConfigTest,
    ::testing::Values(BadConfig{R"({"reserved_cpus":2})", "'reserved_cpus': unknown key"},
                      BadConfig{R"({"cpu_overcommit":"0.5"})", "'cpu_overcommit': \"0.5\" is below 1"},
                      BadConfig{R"({"cpu_overcommit":"abc"})", "'cpu_overcommit': \"abc\" is not a"},
                      BadConfig{R"({"cpu_overcommit":-2})", "'cpu_overcommit': -2 is not a"},
                      BadConfig{R"({"cpu_overcommit":"-2"})", "'cpu_overcommit': \"-2\" is not a"},
                      BadConfig{R"({"cpu_overcommit":"1.5"})", "'cpu_overcommit': \"1.5\" is not a whole number"},
                      BadConfig{R"({"cpu_overcommit":"1001"})", "'cpu_overcommit': \"1001\" is above 1000"},
                      BadConfig{R"({"mem_overcommit":"0"})", "'mem_overcommit': \"0\" is below 1"},
                      BadConfig{R"({"mem_overcommit":true})", "'mem_overcommit': true is not a"},
                      BadConfig{R"({"strategy":"random"})", "'strategy': \"random\" is neither"},
                      BadConfig{R"({"mem_strategy":7})", "'mem_strategy': expected a non-empty string"},
                      BadConfig{R"({"topology_xml":"/nonexistent/machine.xml"})",
                                "cannot read '/nonexistent/machine.xml': No such file or directory"},
                      BadConfig{R"({"topology_xml":"/proc/self/status"})", "hwloc cannot load the topology of xml:"},
                      BadConfig{R"({"topology_xml":""})", "'topology_xml': expected a non-empty string"},
                      BadConfig{R"({"synthetic":"banana:3"})", "hwloc rejects the description 'banana:3'"},
                      BadConfig{R"({"synthetic":"pu:2","topology_xml":"/x.xml"})", "exclude each other"},
                      BadConfig{"[1,2]", "config is not a JSON object"},
                      BadConfig{"{not json", "config is not a JSON object"}));

// ---- sessions --------------------------------------------------------------------------

TEST_F(CpuPluginTest, PrepareSessionBindsThePusAndLimitsMemory) {
  create(R"({"synthetic":"numa:2(memory=1GiB) core:4 pu:2"})");
  const json output = json::parse(plugin_.prepareSession(R"({"session_id":"s1","allocation":{
      "cpu":{"8":"1","0":"1","1":"1","2":"1","3":"1"},"mem":{"mem0":"1073741824","mem1":"1"}}})"));
  EXPECT_EQ(output, json::parse(R"({
      "env":{"BAI_CPUSET":"0-3,8","OMP_NUM_THREADS":"5","OPENBLAS_NUM_THREADS":"5","MKL_NUM_THREADS":"5",
             "NUMEXPR_NUM_THREADS":"5"},
      "limits":{"cpuset":"0-3,8","memory":"1073741825","mems":"0-1"}})"));
  EXPECT_EQ(plugin_.releaseSession(R"({"session_id":"s1","allocation":{"cpu":{"0":"1"}}})"), BAI_OK);
}

TEST_F(CpuPluginTest, PrepareSessionFormatsSparseCpusets) {
  create(xmlConfig("power8gpudistances.xml"));
  const json output = json::parse(plugin_.prepareSession(
      R"({"session_id":"s","allocation":{"cpu":{"0":"1","104":"1","105":"1","9":"1"},"mem":{"mem1":"4294967296"}}})"));
  EXPECT_EQ(output.at("env").at("BAI_CPUSET"), "0,9,104-105");
  EXPECT_EQ(output.at("limits"), json::parse(R"({"cpuset":"0,9,104-105","memory":"4294967296","mems":"1"})"));
}

TEST_F(CpuPluginTest, PrepareSessionWithoutResourcesSetsNothing) {
  create(R"({"synthetic":"pu:2"})");
  EXPECT_EQ(json::parse(plugin_.prepareSession(R"({"session_id":"s","allocation":{}})")),
            json::parse(R"({"env":{},"limits":{}})"));
}

TEST_F(CpuPluginTest, OvercommittedPuTakesAmountsUpToItsCapacity) {
  create(R"({"synthetic":"pu:2","cpu_overcommit":"2"})");
  json output;
  EXPECT_EQ(prepareStatus(R"({"session_id":"s","allocation":{"cpu":{"1":"2"}}})", &output), BAI_OK);
  EXPECT_EQ(output.at("env").at("OMP_NUM_THREADS"), "1");
  EXPECT_EQ(prepareStatus(R"({"session_id":"s","allocation":{"cpu":{"1":"3"}}})"), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_NE(plugin_.lastLog().find("\"3\" exceeds the capacity 2"), std::string::npos) << plugin_.lastLog();
}

struct BadSession {
  std::string session;
  std::string logged;
  friend void PrintTo(const BadSession& bad, std::ostream* out) { *out << bad.session; }
};

class CpuPluginBadSessionTest : public CpuPluginTest, public ::testing::WithParamInterface<BadSession> {};

TEST_P(CpuPluginBadSessionTest, PrepareAndReleaseRefuseIt) {
  create(R"({"synthetic":"numa:2(memory=1GiB) core:4 pu:2"})");
  json output = "untouched";
  EXPECT_EQ(prepareStatus(GetParam().session, &output), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(output, "untouched");
  EXPECT_EQ(plugin_.lastLog().rfind("3: prepare_session: session: ", 0), 0u) << plugin_.lastLog();
  EXPECT_NE(plugin_.lastLog().find(GetParam().logged), std::string::npos) << plugin_.lastLog();
  EXPECT_EQ(plugin_.releaseSession(GetParam().session), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(plugin_.lastLog().rfind("3: release_session: session: ", 0), 0u) << plugin_.lastLog();
  EXPECT_NE(plugin_.lastLog().find(GetParam().logged), std::string::npos) << plugin_.lastLog();
}

INSTANTIATE_TEST_SUITE_P(
    Sessions, CpuPluginBadSessionTest,
    ::testing::Values(
        BadSession{"not json", "not a JSON object"},
        BadSession{R"({"allocation":{}})", "\"session_id\" must be a non-empty string"},
        BadSession{R"({"session_id":"","allocation":{}})", "\"session_id\" must be a non-empty string"},
        BadSession{R"({"session_id":"s"})", "\"allocation\" must be an object"},
        BadSession{R"({"session_id":"s","allocation":{"cuda.device":{"0":"1"}}})", "unknown slot 'cuda.device'"},
        BadSession{R"({"session_id":"s","allocation":{"cpu":["0"]}})", "allocation of slot 'cpu' must be an object"},
        BadSession{R"({"session_id":"s","allocation":{"cpu":{"16":"1"}}})", "unknown cpu device '16'"},
        BadSession{R"({"session_id":"s","allocation":{"cpu":{"01":"1"}}})", "unknown cpu device '01'"},
        BadSession{R"({"session_id":"s","allocation":{"cpu":{"mem0":"1"}}})", "unknown cpu device 'mem0'"},
        BadSession{R"({"session_id":"s","allocation":{"mem":{"mem2":"1"}}})", "unknown mem device 'mem2'"},
        BadSession{R"({"session_id":"s","allocation":{"mem":{"0":"1"}}})", "unknown mem device '0'"},
        BadSession{R"({"session_id":"s","allocation":{"cpu":{"0":"0"}}})", "\"0\" is not a positive whole number"},
        BadSession{R"({"session_id":"s","allocation":{"cpu":{"0":"0.5"}}})", "\"0.5\" is not a positive whole"},
        BadSession{R"({"session_id":"s","allocation":{"cpu":{"0":"2"}}})", "\"2\" exceeds the capacity 1"},
        BadSession{R"({"session_id":"s","allocation":{"cpu":{"0":"x"}}})", "\"x\" is not a quantity"},
        BadSession{R"({"session_id":"s","allocation":{"mem":{"mem0":"1073741825"}}})",
                   "allocation of mem on device 'mem0': \"1073741825\" exceeds the capacity 1073741824"}));

// ---- lifetime --------------------------------------------------------------------------

std::size_t openFileDescriptors() {
  std::size_t count = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (readdir(dir) != nullptr) ++count;
    closedir(dir);
  }
  return count;
}

void discardLog(void*, int32_t, const char*) {}

// Calls the vtable directly with a host that keeps no logs, so that only the plugin's
// own allocations are counted.
TEST_F(CpuPluginTest, HundredCreateDestroyCyclesDoNotGrow) {
  const bai_accelerator_vtable& vtable = plugin_.vtable();
  const bai_host_services host = {BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, sizeof(bai_host_services), 0,
                                   nullptr, &discardLog, nullptr};
  const std::string config = xmlConfig("power8gpudistances.xml");
  auto cycle = [&] {
    bai_accelerator* instance = nullptr;
    ASSERT_EQ(vtable.create(&host, config.c_str(), &instance), BAI_OK);
    char* out = nullptr;
    ASSERT_EQ(vtable.list_devices(instance, &out), BAI_OK);
    vtable.free_string(out);
    vtable.destroy(instance);
  };
  for (int i = 0; i < 5; ++i) cycle();  // first-use allocations of hwloc and the C++ runtime
  const std::size_t heapBefore = mallinfo2().uordblks;
  const std::size_t descriptorsBefore = openFileDescriptors();
  for (int i = 0; i < 100; ++i) cycle();
  EXPECT_EQ(openFileDescriptors(), descriptorsBefore);
  // A leaked topology is tens of KiB per cycle; allow allocator bookkeeping noise only.
  EXPECT_LT(mallinfo2().uordblks, heapBefore + 1024) << "heap grew from " << heapBefore;
}

TEST_F(CpuPluginTest, InstancesLiveSideBySideOnSeveralThreads) {
  const bai_accelerator_vtable& vtable = plugin_.vtable();
  const bai_host_services host = {BAI_ACCELERATOR_ABI_MAJOR, BAI_ACCELERATOR_ABI_MINOR, sizeof(bai_host_services), 0,
                                   nullptr, &discardLog, nullptr};
  const std::vector<std::string> configs = {xmlConfig("power8gpudistances.xml"), R"({"synthetic":"pu:3"})",
                                            xmlConfig("16amd64-8n2c-cpusets.xml"), "{}"};
  std::vector<std::size_t> deviceCounts(configs.size());
  std::vector<std::thread> threads;
  for (std::size_t t = 0; t < configs.size(); ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 10; ++round) {
        bai_accelerator* instance = nullptr;
        if (vtable.create(&host, configs[t].c_str(), &instance) != BAI_OK) return;
        char* out = nullptr;
        if (vtable.list_devices(instance, &out) == BAI_OK) deviceCounts[t] = json::parse(out).at("devices").size();
        vtable.free_string(out);
        vtable.destroy(instance);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(deviceCounts[0], 16u + 2);
  EXPECT_EQ(deviceCounts[1], 3u + 1);
  EXPECT_EQ(deviceCounts[2], 10u + 5);
  EXPECT_GT(deviceCounts[3], 1u);
}

}  // namespace
