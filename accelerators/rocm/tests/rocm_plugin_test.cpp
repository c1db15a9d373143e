// Loads the built rocm.so through dlopen, as the agent does, with its `smi_library` set to
// the fake ROCm SMI of tests/fakes/rocm, and checks every payload against docs/abi/.

#include <abi_payload.hpp>
#include <direct_plugin.hpp>
#include <temp_dir.hpp>

#include <nlohmann/json.hpp>

#include <dlfcn.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

using nlohmann::json;
using bai::testing::DirectPlugin;
using bai::testing::parsePayload;

std::string fromEnv(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}
std::string pluginPath() { return fromEnv("BAI_ROCM_PLUGIN"); }
std::string fakePath() { return fromEnv("BAI_FAKE_ROCM_SMI"); }
std::string scenario(const std::string& name) { return fromEnv("BAI_FAKE_ROCM_SMI_SCENARIOS") + "/" + name; }

std::string session(const std::string& id, const json& allocation) {
  return json{{"session_id", id}, {"allocation", allocation}}.dump();
}

std::string writeFile(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path) << text;
  return path.string();
}

// A character device at `path`, or a plain file where mknod is refused; whether it is a node.
bool makeNode(const std::filesystem::path& path, unsigned major, unsigned minor) {
  std::filesystem::create_directories(path.parent_path());
  if (::mknod(path.c_str(), S_IFCHR | 0666, makedev(major, minor)) == 0) return true;
  std::ofstream(path) << "";
  return false;
}

// prepare_session's entry for a node made by makeNode: numbers for a node, the path alone for a file.
json nodeEntry(const std::filesystem::path& path, bool real, unsigned major, unsigned minor) {
  if (!real) return {{"path", path.string()}};
  return {{"path", path.string()}, {"type", "c"}, {"major", major}, {"minor", minor}};
}

// Points the fake at a scenario (read at rsmi_init, so at every create) and loads the plugin.
class RocmPlugin : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(plugin_.loaded()); }
  void TearDown() override { ::unsetenv("BAI_FAKE_ROCM_SMI_CONFIG"); }

  void create(const std::string& fakeScenario, json config = json::object()) {
    ::setenv("BAI_FAKE_ROCM_SMI_CONFIG", fakeScenario.c_str(), 1);
    if (!config.contains("smi_library")) config["smi_library"] = fakePath();
    if (!config.contains("sysfs_root")) config["sysfs_root"] = (temp_.path() / "no-sysfs").string();
    if (!config.contains("cdi_spec_dirs")) config["cdi_spec_dirs"] = json::array();  // not the node's own
    ASSERT_EQ(plugin_.create(config.dump()), BAI_OK) << plugin_.lastLog();
  }
  json describe() { return parsePayload("describe", plugin_.describe()); }
  json devices() { return parsePayload("list_devices", plugin_.listDevices()).at("devices"); }
  json prepare(const std::string& id, const json& allocation) {
    return parsePayload("prepare_session", plugin_.prepareSession(session(id, allocation)));
  }
  bai_status prepareStatus(const std::string& id, const json& allocation) {
    char* out = nullptr;
    bai_status status = plugin_.vtable().prepare_session(plugin_.instance(), session(id, allocation).c_str(), &out);
    plugin_.vtable().free_string(out);
    return status;
  }
  void expectZeroDevices(const std::string& reasonPart) {
    json info = describe();
    EXPECT_EQ(info.at("key"), "rocm");
    EXPECT_EQ(info.at("extra_info").at("device_count"), 0);
    EXPECT_NE(info.at("extra_info").value("reason", "").find(reasonPart), std::string::npos) << info.dump();
    EXPECT_TRUE(devices().empty());
    json maps = parsePayload("alloc_map_spec", plugin_.allocMapSpec()).at("maps");
    ASSERT_EQ(maps.size(), 1u);
    EXPECT_TRUE(maps[0].at("devices").empty());
    EXPECT_EQ(parsePayload("slot_types", plugin_.slotTypes()),
              json::parse(R"({"slots": [{"name": "rocm.device", "type": "count"}]})"));
    // A session without GPUs still runs, and sees none.
    json prepared = prepare("s0", json::object());
    EXPECT_EQ(prepared.at("env"), json({{"HIP_VISIBLE_DEVICES", ""}, {"ROCR_VISIBLE_DEVICES", ""}}));
    EXPECT_EQ(plugin_.releaseSession(session("s0", json::object())), BAI_OK);
    EXPECT_TRUE(parsePayload("health", plugin_.health()).at("devices").empty());
    EXPECT_TRUE(parsePayload("node_measures", plugin_.nodeMeasures()).at("measures").empty());
  }

  bai::test::TempDir temp_;
  DirectPlugin plugin_{pluginPath()};
};

TEST_F(RocmPlugin, IdentityIsRocm) {
  EXPECT_STREQ(plugin_.info().name, "rocm");
  EXPECT_STREQ(plugin_.info().key, "rocm");
  EXPECT_EQ(plugin_.info().abi_major, BAI_ACCELERATOR_ABI_MAJOR);
}

TEST_F(RocmPlugin, FindsFourMi250OnTwoNumaNodes) {
  create(scenario("mi250-4gpu-2numa.json"));
  json info = describe().at("extra_info");
  EXPECT_EQ(info.at("library"), fakePath());
  EXPECT_EQ(info.at("device_count"), 4);
  EXPECT_FALSE(info.contains("reason"));
  EXPECT_FALSE(info.contains("missing_symbols"));

  json list = devices();
  ASSERT_EQ(list.size(), 4u);
  const char* buses[] = {"0000:29:00.0", "0000:2c:00.0", "0000:c1:00.0", "0000:c5:00.0"};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(list[i].at("id"), std::to_string(i));
    EXPECT_EQ(list[i].at("model"), "AMD Instinct MI250X");
    EXPECT_EQ(list[i].at("uuid"), "0x5f3c2a1b0e9d8c7" + std::to_string(i));
    EXPECT_EQ(list[i].at("pci_bus"), buses[i]);
    EXPECT_EQ(list[i].at("numa_node"), i / 2);
    EXPECT_EQ(list[i].at("memory"), "68702699520");
    EXPECT_EQ(list[i].at("health"), "healthy");
  }
  EXPECT_EQ(parsePayload("slot_types", plugin_.slotTypes()),
            json::parse(R"({"slots": [{"name": "rocm.device", "type": "count"}]})"));
  json maps = parsePayload("alloc_map_spec", plugin_.allocMapSpec()).at("maps");
  ASSERT_EQ(maps.size(), 1u);
  EXPECT_EQ(maps[0].at("slot"), "rocm.device");
  EXPECT_EQ(maps[0].at("kind"), "discrete");
  EXPECT_EQ(maps[0].at("devices").size(), 4u);
  EXPECT_EQ(maps[0].at("devices")[3], json({{"id", "3"}, {"capacity", "1"}}));
  json health = parsePayload("health", plugin_.health()).at("devices");
  ASSERT_EQ(health.size(), 4u);
  EXPECT_EQ(health[2], json({{"id", "2"}, {"health", "healthy"}}));
}

TEST_F(RocmPlugin, MeasuresComeLiveFromSmi) {
  create(scenario("mi250-4gpu-2numa.json"));
  json measures = parsePayload("node_measures", plugin_.nodeMeasures()).at("measures");
  ASSERT_EQ(measures.size(), 2u);
  EXPECT_EQ(measures[0].at("key"), "rocm_util");
  EXPECT_EQ(measures[0].at("value"), "142");
  EXPECT_EQ(measures[0].at("per_device").at("2"), "100");
  EXPECT_EQ(measures[1].at("key"), "rocm_mem");
  EXPECT_EQ(measures[1].at("value"), std::to_string(10737418240ull + 34359738368ull + 4096));
  EXPECT_EQ(measures[1].at("per_device").at("1"), "0");

  prepare("s1", {{"rocm.device", {{"2", "1"}}}});
  char* out = nullptr;
  ASSERT_EQ(plugin_.vtable().session_measures(plugin_.instance(), session("s1", json::object()).c_str(), &out), BAI_OK);
  json sessionMeasures = parsePayload("node_measures", out);
  plugin_.vtable().free_string(out);
  EXPECT_EQ(sessionMeasures.at("measures")[0].at("per_device"), json({{"2", "100"}}));
  EXPECT_EQ(plugin_.releaseSession(session("s1", json::object())), BAI_OK);
}

TEST_F(RocmPlugin, SessionGetsVisibleDevicesAndDeviceNodes) {
  // A sysfs tree with the render nodes of GPUs 1 and 3.
  std::filesystem::path sysfs = temp_.path() / "sys";
  std::filesystem::create_directories(sysfs / "bus/pci/devices/0000:2c:00.0/drm/renderD129");
  std::filesystem::create_directories(sysfs / "bus/pci/devices/0000:2c:00.0/drm/card1");
  std::filesystem::create_directories(sysfs / "bus/pci/devices/0000:c5:00.0/drm/renderD131");
  // Their nodes: kfd and renderD129 as nodes (or files when not root), renderD131 missing.
  std::filesystem::path dev = temp_.path() / "dev";
  const bool real = makeNode(dev / "kfd", 235, 0);
  ASSERT_EQ(makeNode(dev / "dri/renderD129", 226, 129), real);
  create(scenario("mi250-4gpu-2numa.json"), {{"sysfs_root", sysfs.string()}, {"dev_root", dev.string()}});
  EXPECT_EQ(devices()[1].at("extra").at("render_nodes"), json({(dev / "dri/renderD129").string()}));

  json prepared = prepare("s1", {{"rocm.device", {{"3", "1"}, {"1", "1"}}}});
  // ROCr takes SMI indexes; HIP numbers what ROCr shows from 0.
  EXPECT_EQ(prepared.at("env"), json({{"ROCR_VISIBLE_DEVICES", "1,3"}, {"HIP_VISIBLE_DEVICES", "0,1"}}));
  // Numbers where the plugin can stat a node; a missing node goes by its path, for the agent to refuse.
  EXPECT_EQ(prepared.at("devices"), json({nodeEntry(dev / "kfd", real, 235, 0), nodeEntry(dev / "dri/renderD129", real, 226, 129),
                                          json{{"path", (dev / "dri/renderD131").string()}}}));

  json none = prepare("s2", json::object());
  EXPECT_EQ(none.at("env"), json({{"ROCR_VISIBLE_DEVICES", ""}, {"HIP_VISIBLE_DEVICES", ""}}));
  EXPECT_TRUE(none.at("devices").empty());

  EXPECT_EQ(prepareStatus("s1", json::object()), BAI_ERR_INVALID_ARGUMENT);                       // prepared already
  EXPECT_EQ(prepareStatus("s3", {{"rocm.device", {{"1", "1"}}}}), BAI_ERR_INVALID_ARGUMENT);     // held by s1
  EXPECT_EQ(prepareStatus("s3", {{"rocm.device", {{"9", "1"}}}}), BAI_ERR_INVALID_ARGUMENT);     // no such GPU
  EXPECT_EQ(prepareStatus("s3", {{"rocm.device", {{"0", "0.5"}}}}), BAI_ERR_INVALID_ARGUMENT);   // not whole
  EXPECT_EQ(prepareStatus("s3", {{"cuda.device", {{"0", "1"}}}}), BAI_ERR_INVALID_ARGUMENT);     // not our slot

  EXPECT_EQ(plugin_.releaseSession(session("s1", json::object())), BAI_OK);
  EXPECT_EQ(plugin_.releaseSession(session("s1", json::object())), BAI_ERR_NOT_FOUND);
  EXPECT_EQ(plugin_.releaseSession(session("s2", json::object())), BAI_OK);
  // GPU 1 is free again.
  EXPECT_EQ(prepare("s3", {{"rocm.device", {{"1", "1"}}}}).at("env").at("ROCR_VISIBLE_DEVICES"), "1");
  EXPECT_EQ(plugin_.releaseSession(session("s3", json::object())), BAI_OK);
}

TEST_F(RocmPlugin, DeviceMaskHidesByIndexOrUniqueId) {
  create(scenario("mi250-4gpu-2numa.json"), {{"device_mask", {"1", "0x5F3C2A1B0E9D8C73", 7}}});
  json list = devices();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0].at("id"), "0");
  EXPECT_EQ(list[1].at("id"), "2");
  json info = describe().at("extra_info");
  EXPECT_EQ(info.at("masked"), json({"1", "3"}));
  EXPECT_EQ(info.at("device_mask_unmatched"), json({"7"}));
  // The runtime's numbering is kept: GPU 2 is still index 2 for ROCr.
  EXPECT_EQ(prepare("s1", {{"rocm.device", {{"2", "1"}}}}).at("env").at("ROCR_VISIBLE_DEVICES"), "2");
  EXPECT_EQ(prepareStatus("s2", {{"rocm.device", {{"1", "1"}}}}), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_EQ(plugin_.releaseSession(session("s1", json::object())), BAI_OK);
}

TEST_F(RocmPlugin, EveryGpuMaskedMeansZeroDevicesAndAReason) {
  create(scenario("mi250-4gpu-2numa.json"), {{"device_mask", {"0", "1", "2", "3"}}});
  expectZeroDevices("device_mask");
}

TEST_F(RocmPlugin, UnsupportedQueriesDropOnlyTheirFigure) {
  std::filesystem::path sysfs = temp_.path() / "sys";
  writeFile(sysfs / "bus/pci/devices/0000:03:00.0/numa_node", "1\n");
  std::string fake = writeFile(temp_.path() / "fake.json", R"({
    "unsupported": ["rsmi_topo_numa_affinity_get", "rsmi_dev_busy_percent_get", "rsmi_dev_unique_id_get"],
    "devices": [{"name": "AMD Radeon PRO W7900", "pci_bus": "0000:03:00.0", "numa_node": 0,
                 "vram_total": 51539607552, "vram_used": 1024}]})");
  create(fake, {{"sysfs_root", sysfs.string()}});
  json list = devices();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].at("numa_node"), 1);  // from sysfs
  EXPECT_FALSE(list[0].contains("uuid"));
  json measures = parsePayload("node_measures", plugin_.nodeMeasures()).at("measures");
  ASSERT_EQ(measures.size(), 1u);
  EXPECT_EQ(measures[0].at("key"), "rocm_mem");
}

TEST_F(RocmPlugin, UnknownNumaNodeIsMinusOne) {
  std::string fake = writeFile(temp_.path() / "fake.json", R"({
    "devices": [{"name": "GPU", "pci_bus": "0000:03:00.0", "numa_node": -1, "vram_total": 1}]})");
  create(fake);
  EXPECT_EQ(devices()[0].at("numa_node"), -1);
}

TEST_F(RocmPlugin, InitErrorMeansZeroDevicesAndTheReason) {
  create(scenario("init-error.json"));
  expectZeroDevices("rsmi_init failed with status 8: RSMI_STATUS_INIT_ERROR");
}

TEST_F(RocmPlugin, NoGpuMeansZeroDevicesAndTheReason) {
  create(scenario("no-devices.json"));
  expectZeroDevices("reports no GPU");
}

TEST_F(RocmPlugin, AbsentLibraryMeansZeroDevicesAndTheReason) {
  create(scenario("mi250-4gpu-2numa.json"), {{"smi_library", "/nonexistent/bai-fake/librocm_smi64.so.1"}});
  expectZeroDevices("/nonexistent/bai-fake/librocm_smi64.so.1");
  EXPECT_TRUE(describe().at("extra_info").at("library").is_null());
}

// AMD's container toolkit names GPUs by index in an amd.com/gpu spec; a container
// engine then injects the nodes. Another kind's spec and a broken one change nothing.
TEST_F(RocmPlugin, AnAmdCdiSpecNamesTheGrantedGpusInCdiDevices) {
  const std::filesystem::path cdi = temp_.path() / "cdi";
  writeFile(cdi / "amd.json", R"({"cdiVersion": "0.6.0", "kind": "amd.com/gpu", "devices": [{"name": "0"}, {"name": "1"}, {"name": "all"}]})");
  writeFile(cdi / "nvidia.yaml", "kind: nvidia.com/gpu\ndevices:\n- name: \"2\"\n");
  writeFile(cdi / "zz-broken.yaml", "kind: amd.com/gpu\ndevices: {}\n");
  create(scenario("mi250-4gpu-2numa.json"), {{"cdi_spec_dirs", {cdi.string()}}});
  bool warned = false;
  for (const std::string& line : plugin_.logs()) warned |= line.find("zz-broken.yaml: line 2") != std::string::npos;
  EXPECT_TRUE(warned) << plugin_.lastLog();
  EXPECT_EQ(describe().at("extra_info").at("cdi_specs"), json::array({(cdi / "amd.json").string()}));
  EXPECT_EQ(prepare("s1", {{"rocm.device", {{"0", "1"}, {"1", "1"}}}}).at("cdi_devices"),
            json::array({"amd.com/gpu=0", "amd.com/gpu=1"}));
  EXPECT_FALSE(prepare("s2", {{"rocm.device", {{"2", "1"}}}}).contains("cdi_devices")) << "GPU 2 is not in the spec";
  EXPECT_FALSE(prepare("s3", json::object()).contains("cdi_devices"));
}

TEST_F(RocmPlugin, BadConfigIsRefusedNamingTheKey) {
  ::setenv("BAI_FAKE_ROCM_SMI_CONFIG", scenario("mi250-4gpu-2numa.json").c_str(), 1);
  EXPECT_EQ(plugin_.create(json{{"smi_libary", fakePath()}}.dump()), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_NE(plugin_.lastLog().find("smi_libary"), std::string::npos) << plugin_.lastLog();
  EXPECT_EQ(plugin_.create(json{{"device_mask", "0"}}.dump()), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_NE(plugin_.lastLog().find("device_mask"), std::string::npos) << plugin_.lastLog();
  EXPECT_EQ(plugin_.create(json{{"dev_root", ""}}.dump()), BAI_ERR_INVALID_ARGUMENT);
  EXPECT_NE(plugin_.lastLog().find("dev_root"), std::string::npos) << plugin_.lastLog();
}

TEST_F(RocmPlugin, InstancesShareTheLibrary) {
  create(scenario("mi250-4gpu-2numa.json"));
  DirectPlugin second(pluginPath());
  ASSERT_EQ(second.create(json{{"smi_library", fakePath()}}.dump()), BAI_OK);
  EXPECT_EQ(json::parse(second.listDevices()).at("devices").size(), 4u);
  EXPECT_EQ(devices().size(), 4u);
}

// ---- bai-plugin-check on every scenario --------------------------------------------------

// Runs bai-plugin-check with the fake pointed at `fakeScenario`; returns its exit status.
int runPluginCheck(const std::string& configFile, const std::string& fakeScenario, std::string& output) {
  bai::test::TempDir dir;
  std::string log = (dir.path() / "check.log").string();
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("BAI_FAKE_ROCM_SMI_CONFIG=", 0) != 0) env.emplace_back(*e);
  }
  env.push_back("BAI_FAKE_ROCM_SMI_CONFIG=" + fakeScenario);
  std::vector<char*> envp;
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = {fromEnv("BAI_PLUGIN_CHECK"), pluginPath(), "--config", configFile};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    output = "posix_spawn " + args[0] + " failed: " + std::to_string(spawned);
    return -1;
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::stringstream text;
  text << std::ifstream(log).rdbuf();
  output = text.str();
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class RocmPluginCheck : public ::testing::TestWithParam<const char*> {};

TEST_P(RocmPluginCheck, Passes) {
  bai::test::TempDir dir;
  std::string name = GetParam();
  std::string config;
  std::string fake = scenario("mi250-4gpu-2numa.json");
  if (name.ends_with(".toml")) {
    config = scenario(name);  // a plugin config of its own: the absent library
  } else {
    fake = scenario(name);
    config = writeFile(dir.path() / "rocm.json", json{{"smi_library", fakePath()}}.dump());
  }
  std::string output;
  EXPECT_EQ(runPluginCheck(config, fake, output), 0) << output;
  EXPECT_NE(output.find(" 0 failed"), std::string::npos) << output;
}

INSTANTIATE_TEST_SUITE_P(Scenarios, RocmPluginCheck,
                         ::testing::Values("mi250-4gpu-2numa.json", "init-error.json", "no-devices.json",
                                           "library-absent.toml"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
                           return name;
                         });

// ---- Debian's real librocm-smi64-1, on a machine without an AMD GPU --------------------------

// Registered as its own meson test: a process that never loaded the fake.
TEST(RocmRealLibrary, LoadsWithZeroDevices) {
  void* real = dlopen("librocm_smi64.so.1", RTLD_NOW | RTLD_LOCAL);
  if (real == nullptr) GTEST_SKIP() << "librocm-smi64-1 is not installed: " << dlerror();
  bool fake = dlsym(real, "bai_fake_rocm_smi") != nullptr;
  dlclose(real);
  if (fake) GTEST_SKIP() << "librocm_smi64.so.1 resolves to the fake";
  if (std::filesystem::exists("/dev/kfd")) GTEST_SKIP() << "an AMD GPU driver is present: not a zero-GPU machine";

  DirectPlugin plugin(pluginPath());
  ASSERT_TRUE(plugin.loaded());
  ASSERT_EQ(plugin.create("{}"), BAI_OK) << plugin.lastLog();  // the default search order
  json info = parsePayload("describe", plugin.describe());
  EXPECT_EQ(info.at("extra_info").at("device_count"), 0) << info.dump();
  EXPECT_FALSE(info.at("extra_info").value("reason", "").empty()) << info.dump();
  EXPECT_TRUE(parsePayload("list_devices", plugin.listDevices()).at("devices").empty());
  std::cout << "real ROCm SMI: " << info.at("extra_info").dump() << "\n";
}

}  // namespace
