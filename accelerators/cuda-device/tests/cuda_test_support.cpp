#include "cuda_test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

extern char** environ;

namespace bai::cuda::testing {
namespace {

std::string fromEnv(const char* name, const char* fallback) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : fallback;
}

}  // namespace

// BAI_CUDA_PLUGIN names another CUDA plugin under test (cuda-fractional shares these helpers).
std::string pluginPath() {
  const char* other = std::getenv("BAI_CUDA_PLUGIN");
  return other != nullptr ? other : fromEnv("BAI_CUDA_DEVICE_PLUGIN", "cuda-device.so");
}
std::string fakeLibrary() { return fromEnv("BAI_FAKE_NVML_LIBRARY", "libnvidia-ml.so.1"); }
std::string minimalFakeLibrary() { return fromEnv("BAI_FAKE_NVML_MINIMAL_LIBRARY", "libnvidia-ml-minimal.so.1"); }
std::string noCountFakeLibrary() { return fromEnv("BAI_FAKE_NVML_NO_COUNT_LIBRARY", "libnvidia-ml-no-count.so.1"); }

std::string scenarioPath(std::string_view name) {
  return (std::filesystem::path(fromEnv("BAI_FAKE_SCENARIO_DIR", "tests/fakes/scenarios")) /
          (std::string(name) + ".json"))
      .string();
}

Scenario::Scenario(std::string_view name) : path_(scenarioPath(name)) {
  std::ifstream file(path_);
  document_ = json::parse(file, nullptr, false);
  EXPECT_FALSE(document_.is_discarded()) << "cannot read " << path_;
  if (document_.is_discarded()) document_ = json::object();
  ::setenv("BAI_FAKE_NVML_CONFIG", path_.c_str(), 1);
  for (const json& gpu : document_.value("devices", json::array())) {
    if (!gpu.contains("numa_node")) continue;
    std::string bus = gpu.value("pci_bus_id", "");
    for (char& c : bus) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (bus.size() > 4 && bus.compare(0, 4, "0000") == 0 && bus.find(':') == 8) bus.erase(0, 4);
    std::filesystem::path dir = sysfs_.path() / "sys/bus/pci/devices" / bus;
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "numa_node") << gpu["numa_node"].get<int>() << "\n";
  }
  makeDeviceTree();
}

// The fake's defaults: a GPU's minor is its position, a MIG device's GPU instance its
// position on the GPU, its compute instance 0 (tests/fakes/scenarios/README.md).
void Scenario::makeDeviceTree() {
  namespace fs = std::filesystem;
  fs::create_directories(fs::path(devRoot()) / "nvidia-caps");
  makeNode(devRoot() + "/nvidiactl", 195, 255);
  makeNode(devRoot() + "/nvidia-uvm", 511, 0);
  const json gpus = document_.value("devices", json::array());
  for (std::size_t i = 0; i < gpus.size(); ++i) {
    const unsigned minor = gpus[i].value("minor_number", static_cast<unsigned>(i));
    makeNode(gpuNode(minor), 195, minor);
    const json migs = gpus[i].value("mig_devices", json::array());
    for (std::size_t n = 0; n < migs.size(); ++n) {
      const unsigned gi = migs[n].value("gpu_instance_id", static_cast<unsigned>(n));
      const unsigned ci = migs[n].value("compute_instance_id", 0U);
      const fs::path giDir = fs::path(procRoot()) / "driver/nvidia/capabilities" / ("gpu" + std::to_string(minor)) /
                             "mig" / ("gi" + std::to_string(gi));
      fs::create_directories(giDir / ("ci" + std::to_string(ci)));
      for (auto [file, capability] : {std::pair{giDir / "access", capabilityMinor(minor, gi)},
                                      std::pair{giDir / ("ci" + std::to_string(ci)) / "access", capabilityMinor(minor, gi, ci)}}) {
        std::ofstream(file) << "DeviceFileMinor: " << capability << "\nDeviceFileMode: 292\nDeviceFileModify: 1\n";
        makeNode(capabilityNode(capability), 240, capability);
      }
    }
  }
}

void Scenario::makeNode(const std::string& path, unsigned major, unsigned minor) {
  if (realNodes_ && ::mknod(path.c_str(), S_IFCHR | 0666, makedev(major, minor)) == 0) return;
  if (std::filesystem::exists(path)) std::filesystem::remove(path);
  realNodes_ = false;  // one refusal makes them all plain files, so that the form is the same for all
  std::ofstream(path) << "";
}

json nodeEntry(const Scenario& scenario, const std::string& path, unsigned major, unsigned minor) {
  if (!scenario.realNodes()) return {{"path", path}};
  return {{"path", path}, {"type", "c"}, {"major", major}, {"minor", minor}};
}

json Scenario::config(const json& settings) const {
  // No CDI spec and no driver binaries: the node's own (/etc/cdi, /usr/bin) stay out of the tests.
  json config = {{"nvml_library", fakeLibrary()}, {"sysfs_root", sysfsRoot()}, {"dev_root", devRoot()},
                 {"proc_root", procRoot()}, {"cdi_spec_dirs", json::array()},
                 {"driver_binary_dirs", json::array({(sysfs_.path() / "bin").string()})}};
  config.update(settings);
  return config;
}

std::string Scenario::gpuUuid(std::size_t index) const { return document_["devices"].at(index)["uuid"]; }

std::unique_ptr<bai::testing::DirectPlugin> created(const json& config) {
  auto plugin = std::make_unique<bai::testing::DirectPlugin>(pluginPath());
  EXPECT_TRUE(plugin->loaded());
  EXPECT_EQ(plugin->create(config.dump()), BAI_OK) << plugin->lastLog();
  return plugin;
}

bai_status prepareStatus(bai::testing::DirectPlugin& plugin, const std::string& document) {
  char* out = nullptr;
  bai_status status = plugin.vtable().prepare_session(plugin.instance(), document.c_str(), &out);
  plugin.vtable().free_string(out);
  return status;
}

std::string session(std::string_view id, const json& allocation) {
  return json{{"session_id", id}, {"allocation", allocation}}.dump();
}

std::vector<std::string> logLines(const bai::testing::DirectPlugin& plugin, int level) {
  std::vector<std::string> lines;
  for (const std::string& line : plugin.logs()) {
    if (line.rfind(std::to_string(level) + ": ", 0) == 0) lines.push_back(line);
  }
  return lines;
}

CheckRun pluginCheck(const json& config) {
  bai::test::TempDir dir;
  std::string configFile = (dir.path() / "cuda.json").string();
  std::ofstream(configFile) << config.dump();
  std::string outputFile = (dir.path() / "out.txt").string();
  const char* checker = std::getenv("BAI_PLUGIN_CHECK");
  std::string program = checker != nullptr ? checker : "bai-plugin-check";
  std::string plugin = pluginPath();
  std::vector<char*> argv = {program.data(), plugin.data(), const_cast<char*>("--config"), configFile.data(), nullptr};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, outputFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  pid_t pid = 0;
  CheckRun run;
  int spawned = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    run.output = "cannot run " + program;
    return run;
  }
  int status = 0;
  waitpid(pid, &status, 0);
  run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::stringstream text;
  text << std::ifstream(outputFile).rdbuf();
  run.output = text.str();
  return run;
}

void expectCheckPasses(const json& config, bool everyCheckRan) {
  CheckRun run = pluginCheck(config);
  EXPECT_EQ(run.exitCode, 0) << run.output;
  if (everyCheckRan) {
    EXPECT_NE(run.output.find(" 0 failed, 0 skipped"), std::string::npos) << run.output;
  }
}

void expectCheckPassesWithoutNvml() {
  expectCheckPasses({{"nvml_library", "/nonexistent/libnvidia-ml.so.1"}}, false);
}

void expectCheckPassesWithoutOptionalSymbols() {
  Scenario scenario("mig-mixed");
  expectCheckPasses(scenario.config({{"nvml_library", minimalFakeLibrary()}}), false);
}

}  // namespace bai::cuda::testing
