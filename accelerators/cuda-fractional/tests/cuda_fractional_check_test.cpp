// bai-plugin-check must pass on cuda-fractional for every fake NVML scenario, in each mode.
#include "cuda_test_support.hpp"

#include <gtest/gtest.h>

namespace bai::cuda::testing {
namespace {

struct CheckCase {
  const char* scenario;
  const char* settings;  // JSON laid over the scenario's config
};

class FractionalPluginCheck : public ::testing::TestWithParam<CheckCase> {};

TEST_P(FractionalPluginCheck, Passes) {
  Scenario scenario(GetParam().scenario);
  CheckRun run = pluginCheck(scenario.config(json::parse(GetParam().settings)));
  EXPECT_EQ(run.exitCode, 0) << run.output;
  EXPECT_NE(run.output.find(" 0 failed, 0 skipped"), std::string::npos) << run.output;
}

INSTANTIATE_TEST_SUITE_P(
    FakeNvml, FractionalPluginCheck,
    ::testing::Values(CheckCase{"h100x8", "{}"}, CheckCase{"mig-mixed", "{}"}, CheckCase{"init-fail", "{}"},
                      CheckCase{"xid-storm", "{}"}, CheckCase{"gpu-disappears", "{}"},
                      CheckCase{"h100x8", R"({"unit_mem":10737418240,"unit_proc":2112})"},
                      CheckCase{"mig-mixed", R"({"modes":{"0":"device"},"quantum_size":"0.25"})"},
                      CheckCase{"h100x8", R"({"default_mode":"device","modes":{"3":"shares"}})"}),
    [](const auto& info) { return "case" + std::to_string(info.index); });

TEST(FractionalPluginCheckNoNvml, PassesWithoutNvml) {
  CheckRun run = pluginCheck({{"nvml_library", "/nonexistent/libnvidia-ml.so.1"}});
  EXPECT_EQ(run.exitCode, 0) << run.output;
}

TEST(FractionalPluginCheckNoNvml, PassesWithoutOptionalSymbols) {
  Scenario scenario("mig-mixed");
  CheckRun run = pluginCheck(scenario.config({{"nvml_library", minimalFakeLibrary()}}));
  EXPECT_EQ(run.exitCode, 0) << run.output;
}

}  // namespace
}  // namespace bai::cuda::testing
