// bai-plugin-check must pass on cuda-device for every fake NVML scenario, and without NVML.
#include "cuda_test_support.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

extern char** environ;

namespace bai::cuda::testing {
namespace {

struct CheckRun {
  int exitCode = -1;
  std::string output;
};

// Runs bai-plugin-check on the plugin with `config` (a JSON file), in this environment.
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

class PluginCheckScenario : public ::testing::TestWithParam<const char*> {};

TEST_P(PluginCheckScenario, Passes) {
  Scenario scenario(GetParam());
  CheckRun run = pluginCheck(scenario.config());
  EXPECT_EQ(run.exitCode, 0) << run.output;
  EXPECT_NE(run.output.find(" 0 failed, 0 skipped"), std::string::npos) << run.output;
}

INSTANTIATE_TEST_SUITE_P(FakeNvml, PluginCheckScenario,
                         ::testing::Values("h100x8", "mig-mixed", "init-fail", "xid-storm", "gpu-disappears"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

TEST(PluginCheck, PassesWithoutNvml) {
  CheckRun run = pluginCheck({{"nvml_library", "/nonexistent/libnvidia-ml.so.1"}});
  EXPECT_EQ(run.exitCode, 0) << run.output;
}

TEST(PluginCheck, PassesWithoutOptionalSymbols) {
  Scenario scenario("mig-mixed");
  CheckRun run = pluginCheck(scenario.config({{"nvml_library", minimalFakeLibrary()}}));
  EXPECT_EQ(run.exitCode, 0) << run.output;
}

}  // namespace
}  // namespace bai::cuda::testing
