// The benchmarks' own percentiles: exact below 64 ns, within 0.8% above, against the
// exact order statistics of the same samples.
#include "bench_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace bai::bench {
namespace {

double exactPercentile(std::vector<std::int64_t> samples, double q) {
  std::sort(samples.begin(), samples.end());
  const auto rank = std::max<std::size_t>(1, static_cast<std::size_t>(std::ceil(q * static_cast<double>(samples.size()))));
  return static_cast<double>(samples[rank - 1]);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram histogram;
  for (std::int64_t v = 1; v <= 50; ++v) histogram.record(v);
  EXPECT_EQ(histogram.count(), 50u);
  EXPECT_EQ(histogram.percentile(0.5), 25.0);
  EXPECT_EQ(histogram.percentile(0.99), 50.0);
  EXPECT_EQ(histogram.percentile(1.0), 50.0);
}

TEST(LatencyHistogramTest, PercentilesAreWithinOnePercentOverManyMagnitudes) {
  SplitMix64 random(42);
  std::vector<std::int64_t> samples;
  LatencyHistogram histogram;
  for (int i = 0; i < 100000; ++i) {
    // Log-uniform from 1 ns to about 17 s: every bucket range is exercised.
    const auto value = static_cast<std::int64_t>(std::exp2(static_cast<double>(random.below(34000)) / 1000.0));
    samples.push_back(value);
    histogram.record(value);
  }
  for (double q : {0.01, 0.25, 0.5, 0.9, 0.99, 0.999}) {
    const double exact = exactPercentile(samples, q);
    EXPECT_NEAR(histogram.percentile(q), exact, std::max(1.0, exact * 0.008)) << "q=" << q;
  }
  EXPECT_EQ(histogram.percentile(1.0), static_cast<double>(*std::max_element(samples.begin(), samples.end())));
}

TEST(LatencyHistogramTest, EmptyNegativeAndHugeValues) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.percentile(0.5), 0.0);
  histogram.record(-5);  // a clock that stepped back counts as zero
  histogram.record(INT64_MAX);
  EXPECT_EQ(histogram.percentile(0.5), 0.0);
  EXPECT_EQ(histogram.percentile(1.0), static_cast<double>(INT64_MAX));
}

}  // namespace
}  // namespace bai::bench
