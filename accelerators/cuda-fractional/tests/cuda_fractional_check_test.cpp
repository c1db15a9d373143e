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
  expectCheckPasses(scenario.config(json::parse(GetParam().settings)));
}

INSTANTIATE_TEST_SUITE_P(
    FakeNvml, FractionalPluginCheck,
    ::testing::Values(CheckCase{"h100x8", "{}"}, CheckCase{"mig-mixed", "{}"}, CheckCase{"init-fail", "{}"},
                      CheckCase{"xid-storm", "{}"}, CheckCase{"gpu-disappears", "{}"},
                      CheckCase{"h100x8", R"({"unit_mem":10737418240,"unit_proc":2112})"},
                      CheckCase{"mig-mixed", R"({"modes":{"0":"device"},"quantum_size":"0.25"})"},
                      CheckCase{"h100x8", R"({"default_mode":"device","modes":{"3":"shares"}})"}),
    [](const auto& info) { return "case" + std::to_string(info.index); });

TEST(FractionalPluginCheckNoNvml, PassesWithoutNvml) { expectCheckPassesWithoutNvml(); }

TEST(FractionalPluginCheckNoNvml, PassesWithoutOptionalSymbols) { expectCheckPassesWithoutOptionalSymbols(); }

}  // namespace
}  // namespace bai::cuda::testing
