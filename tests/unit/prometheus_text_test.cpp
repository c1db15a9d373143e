#include "prometheus_text.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>

namespace bai {
namespace {

TEST(PrometheusText, WritesHelpAndTypeThenTheFamilysSamples) {
  PrometheusText out;
  out.family("bai_agent_slot_used", MetricType::Gauge, "Amount held by sessions per slot.");
  out.sample({{"slot", "cpu"}}, Quantity::parse("1.5").value());
  out.sample({{"slot", "mem"}}, std::uint64_t{4294967296});
  out.family("bai_agent_sessions_started_total", MetricType::Counter, "Sessions started.");
  out.sample({}, 7);
  EXPECT_EQ(out.text(),
            "# HELP bai_agent_slot_used Amount held by sessions per slot.\n"
            "# TYPE bai_agent_slot_used gauge\n"
            "bai_agent_slot_used{slot=\"cpu\"} 1.5\n"
            "bai_agent_slot_used{slot=\"mem\"} 4294967296\n"
            "# HELP bai_agent_sessions_started_total Sessions started.\n"
            "# TYPE bai_agent_sessions_started_total counter\n"
            "bai_agent_sessions_started_total 7\n");
}

TEST(PrometheusText, SeparatesSeveralLabelsWithCommas) {
  PrometheusText out;
  out.family("bai_agent_device_allocated", MetricType::Gauge, "Amount of a slot held on each device.");
  out.sample({{"slot", "cuda.shares"}, {"device", "GPU-0"}}, "0.5");
  EXPECT_NE(out.text().find("bai_agent_device_allocated{slot=\"cuda.shares\",device=\"GPU-0\"} 0.5\n"),
            std::string::npos);
}

TEST(PrometheusText, EscapesLabelValuesAndHelpText) {
  PrometheusText out;
  out.family("bai_test", MetricType::Gauge, "a \\ and a\nnewline, \"quoted\"");
  out.sample({{"path", "C:\\dir \"x\"\nnext"}}, true);
  EXPECT_EQ(out.text(),
            "# HELP bai_test a \\\\ and a\\nnewline, \"quoted\"\n"
            "# TYPE bai_test gauge\n"
            "bai_test{path=\"C:\\\\dir \\\"x\\\"\\nnext\"} 1\n");
}

TEST(PrometheusText, WritesAHistogramsSeriesWithSuffixes) {
  PrometheusText out;
  out.family("bai_manager_placement_seconds", MetricType::Histogram, "one placement decision");
  out.sampleWithSuffix("_bucket", {{"le", "0.001"}}, "3");
  out.sampleWithSuffix("_bucket", {{"le", "+Inf"}}, "4");
  out.sampleWithSuffix("_sum", {}, "0.002500000");
  out.sampleWithSuffix("_count", {}, "4");
  EXPECT_EQ(out.text(),
            "# HELP bai_manager_placement_seconds one placement decision\n"
            "# TYPE bai_manager_placement_seconds histogram\n"
            "bai_manager_placement_seconds_bucket{le=\"0.001\"} 3\n"
            "bai_manager_placement_seconds_bucket{le=\"+Inf\"} 4\n"
            "bai_manager_placement_seconds_sum 0.002500000\n"
            "bai_manager_placement_seconds_count 4\n");
}

TEST(PrometheusText, RefusesASampleBeforeAnyFamilyAndAFamilyWrittenTwice) {
  PrometheusText out;
  EXPECT_THROW(out.sample({}, "1"), std::logic_error);
  out.family("bai_a", MetricType::Gauge, "a");
  out.family("bai_b", MetricType::Gauge, "b");
  EXPECT_THROW(out.family("bai_a", MetricType::Gauge, "a again"), std::logic_error);
}

TEST(PrometheusText, RefusesInvalidNames) {
  PrometheusText out;
  EXPECT_THROW(out.family("1bai", MetricType::Gauge, "starts with a digit"), std::logic_error);
  EXPECT_THROW(out.family("bai-agent", MetricType::Gauge, "holds a dash"), std::logic_error);
  out.family("bai:recorded_rule", MetricType::Gauge, "colons are allowed in metric names");
  EXPECT_THROW(out.sample({{"sl:ot", "cpu"}}, "1"), std::logic_error);
  EXPECT_THROW(out.sample({{"", "cpu"}}, "1"), std::logic_error);
  EXPECT_THROW(out.sampleWithSuffix("-bucket", {}, "1"), std::logic_error);
}

}  // namespace
}  // namespace bai
