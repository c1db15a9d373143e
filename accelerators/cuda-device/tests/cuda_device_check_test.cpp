// bai-plugin-check must pass on cuda-device for every fake NVML scenario, and without NVML.
#include "cuda_test_support.hpp"

#include <gtest/gtest.h>

namespace bai::cuda::testing {
namespace {

class PluginCheckScenario : public ::testing::TestWithParam<const char*> {};

TEST_P(PluginCheckScenario, Passes) {
  Scenario scenario(GetParam());
  expectCheckPasses(scenario.config());
}

INSTANTIATE_TEST_SUITE_P(FakeNvml, PluginCheckScenario,
                         ::testing::Values("h100x8", "mig-mixed", "init-fail", "xid-storm", "gpu-disappears"),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

TEST(PluginCheck, PassesWithoutNvml) { expectCheckPassesWithoutNvml(); }

TEST(PluginCheck, PassesWithoutOptionalSymbols) { expectCheckPassesWithoutOptionalSymbols(); }

}  // namespace
}  // namespace bai::cuda::testing
