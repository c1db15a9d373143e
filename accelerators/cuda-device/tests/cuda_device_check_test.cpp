// bai-plugin-check must pass on cuda-device for every fake NVML scenario, and without NVML.
#include "cuda_test_support.hpp"

#include <gtest/gtest.h>

namespace bai::cuda::testing {
namespace {

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
