// What every bai benchmark needs: loud setup failures, temp dirs, a deterministic random
// stream, and per-operation percentiles from our own histogram (libbenchmark's statistics
// are across repetitions), exported as counters.
#pragma once

#include "../tests/support/temp_dir.hpp"

#include <bai/result.hpp>
#include <bai/slots.hpp>

#include <benchmark/benchmark.h>
#include <time.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bai::bench {

using Clock = std::chrono::steady_clock;
using test::TempDir;

// Setup failures are bugs in the benchmark, not measurements: stop loudly.
[[noreturn]] inline void die(const std::string& what) {
  std::fprintf(stderr, "%s: setup failed: %s\n", program_invocation_short_name, what.c_str());
  std::abort();
}

template <class T, class E>
T orDie(Result<T, E> result, const char* what) {
  if (!result) die(std::string(what) + ": " + result.error().message);
  return std::move(result).value();
}

template <class E>
void orDie(Result<void, E> result, const char* what) {
  if (!result) die(std::string(what) + ": " + result.error().message);
}

// n GiB as a byte Quantity.
inline Quantity gib(std::int64_t n) { return Quantity(n << 30); }

inline double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time of the calling thread: unlike wall time, it does not grow while other
// processes on the shared cores run instead of us.
inline std::chrono::nanoseconds threadCpuNow() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

// The unit of a benchmark's latency counters, named by their suffix: _ns, _us, _ms.
enum class TimeUnit { Nanoseconds, Microseconds, Milliseconds };

// Per-operation latencies as a log-linear histogram (the HdrHistogram layout): values
// below 64 ns are exact; above, each power of two is split into 64 buckets, so a
// percentile is within 1/128 (0.8%) of the true value. Recording is a few instructions
// and never allocates, so it may sit inside a timed loop, and memory stays 32 KiB however
// long a benchmark runs.
class LatencyHistogram {
 public:
  void record(std::int64_t nanoseconds) {
    const auto value = static_cast<std::uint64_t>(std::max<std::int64_t>(nanoseconds, 0));
    ++buckets_[bucketOf(value)];
    ++count_;
    max_ = std::max(max_, value);
  }
  void add(std::chrono::nanoseconds elapsed) { record(elapsed.count()); }
  std::uint64_t count() const { return count_; }

  // The q-quantile (0 < q <= 1): the middle of the bucket holding it, never above the
  // max, and the max itself for the last rank.
  double percentile(double q) const {
    if (count_ == 0) return 0;
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_))));
    if (rank >= count_) return static_cast<double>(max_);
    std::uint64_t seen = 0;
    for (std::size_t bucket = 0; bucket < buckets_.size(); ++bucket) {
      seen += buckets_[bucket];
      if (seen >= rank) return std::min(middleOf(bucket), static_cast<double>(max_));
    }
    return static_cast<double>(max_);
  }

  // Counters `<prefix>p50_<unit>`, `p90`, `p99` and `max`.
  void report(benchmark::State& state, const std::string& prefix = "", TimeUnit timeUnit = TimeUnit::Microseconds) const {
    if (count_ == 0) return;
    const double scale = timeUnit == TimeUnit::Nanoseconds ? 1.0 : timeUnit == TimeUnit::Microseconds ? 1e3 : 1e6;
    const std::string unit = timeUnit == TimeUnit::Nanoseconds ? "_ns" : timeUnit == TimeUnit::Microseconds ? "_us" : "_ms";
    state.counters[prefix + "p50" + unit] = percentile(0.50) / scale;
    state.counters[prefix + "p90" + unit] = percentile(0.90) / scale;
    state.counters[prefix + "p99" + unit] = percentile(0.99) / scale;
    state.counters[prefix + "max" + unit] = static_cast<double>(max_) / scale;
  }

 private:
  static constexpr int kSubBits = 6;
  static constexpr std::uint64_t kSub = 1u << kSubBits;

  static std::size_t bucketOf(std::uint64_t value) {
    if (value < kSub) return value;
    const int shift = (63 - __builtin_clzll(value)) - kSubBits;  // value >> shift is in [64, 128)
    return static_cast<std::size_t>(kSub * static_cast<std::uint64_t>(shift + 1) + ((value >> shift) - kSub));
  }
  static double middleOf(std::size_t bucket) {
    if (bucket < kSub) return static_cast<double>(bucket);
    const std::uint64_t shift = bucket / kSub - 1;
    const std::uint64_t low = (kSub + bucket % kSub) << shift;
    return static_cast<double>(low) + static_cast<double>((std::uint64_t{1} << shift) - 1) / 2.0;
  }

  std::array<std::uint64_t, kSub * (64 - kSubBits + 1)> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

// The same from nanosecond samples kept elsewhere.
inline LatencyHistogram histogramOf(const std::vector<std::int64_t>& samples) {
  LatencyHistogram histogram;
  for (std::int64_t sample : samples) histogram.record(sample);
  return histogram;
}
inline void reportPercentiles(benchmark::State& state, const std::vector<std::int64_t>& samples,
                              const std::string& prefix = "", TimeUnit unit = TimeUnit::Microseconds) {
  histogramOf(samples).report(state, prefix, unit);
}

// The end of every benchmark's main, after it has registered its families: parse the
// flags, run what they select, shut libbenchmark down. False, before running anything,
// on an argument it does not know (it has said which).
inline bool runSpecifiedBenchmarks(int& argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return false;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return true;
}

// splitmix64 (Steele, Lea and Flood, 2014): small, fast, and the same stream for a seed
// with every compiler and library, which the std distributions do not promise.
class SplitMix64 {
 public:
  explicit SplitMix64(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = state_ += 0x9E3779B97F4A7C15;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB;
    return z ^ (z >> 31);
  }
  // In [0, n); the modulo bias (below n / 2^64) is far too small to matter here.
  std::uint64_t below(std::uint64_t n) { return next() % n; }

 private:
  std::uint64_t state_;
};

}  // namespace bai::bench
