// What every bai benchmark needs: loud setup failures, temp dirs, and per-operation
// percentiles from our own samples (libbenchmark's statistics are across repetitions),
// exported as counters.
#pragma once

#include "../tests/support/temp_dir.hpp"

#include <bai/result.hpp>

#include <benchmark/benchmark.h>
#include <time.h>

#include <algorithm>
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

inline double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// CPU time of the calling thread: unlike wall time, it does not grow while other
// processes on the shared cores run instead of us.
inline std::chrono::nanoseconds threadCpuNow() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

// Counters `<prefix>p50_<unit>` and `<prefix>p99_<unit>` from nanosecond samples
// (reordered in place).
inline void reportPercentiles(benchmark::State& state, std::vector<std::int64_t>& samples, const std::string& prefix = "",
                              bool microseconds = true) {
  if (samples.empty()) return;
  auto percentile = [&](double q) {
    const auto k = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1));
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(k), samples.end());
    return static_cast<double>(samples[k]) / (microseconds ? 1000.0 : 1.0);
  };
  const std::string unit = microseconds ? "_us" : "_ns";
  state.counters[prefix + "p50" + unit] = percentile(0.50);
  state.counters[prefix + "p99" + unit] = percentile(0.99);
}

// Samples of one benchmark run, reserved up front so recording never allocates.
class LatencySampler {
 public:
  explicit LatencySampler(std::size_t expected) { samples_.reserve(expected + 1); }
  explicit LatencySampler(const benchmark::State& state, std::size_t perIteration = 1)
      : LatencySampler(static_cast<std::size_t>(state.max_iterations) * perIteration) {}
  void add(std::chrono::nanoseconds elapsed) { samples_.push_back(elapsed.count()); }
  void report(benchmark::State& state, const std::string& prefix = "", bool microseconds = true) {
    reportPercentiles(state, samples_, prefix, microseconds);
  }

 private:
  std::vector<std::int64_t> samples_;
};

}  // namespace bai::bench
