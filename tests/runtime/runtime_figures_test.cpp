// Measures the runtime and prints the figures (also recorded as properties in the JUnit
// XML). Bounds are generous so a loaded machine does not fail them; the targets on the
// 2-core build machines are >= 500 sessions/s and a p50 start latency <= 5 ms.
#include "runtime_test_support.hpp"

#include <algorithm>
#include <cstdio>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace bai::test {
namespace {

using Clock = std::chrono::steady_clock;

double millisBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

// Session dirs on the temp dir's disk and, where present, on tmpfs: each session creates
// eight files, and on a busy ext4 their inode allocations cost more than the processes.
std::vector<std::filesystem::path> sessionDirParents() {
  std::vector<std::filesystem::path> parents{std::filesystem::temp_directory_path()};
  if (std::filesystem::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0) parents.emplace_back("/dev/shm");
  return parents;
}

// "tmp", "dev_shm": a JUnit property name cannot hold '/'.
std::string propertySuffix(const std::filesystem::path& parent) {
  std::string name = parent.relative_path().string();
  std::replace(name.begin(), name.end(), '/', '_');
  return name;
}

core::RunSpec sessionIn(const std::filesystem::path& parent, int index, std::vector<std::string> command) {
  core::RunSpec spec;
  spec.sessionId = "s" + std::to_string(index);
  spec.sessionDir = parent / spec.sessionId;
  spec.command = std::move(command);
  spec.env = {{"PATH", kSessionPath}};
  return spec;
}

// A session runner on the shim, its exits collected, its session dirs in a fresh temp
// dir under `parent`.
struct RunnerIn {
  explicit RunnerIn(const std::filesystem::path& parent) : temp(parent) {}
  TempDir temp;
  ExitCollector exits;
  core::SessionRunner runner{shimPath(), quietLog(), exits.callback()};
};

TEST(RuntimeFigures, SessionsStartedAndReapedPerSecond) {
  constexpr int kSessions = 500;
  for (const std::filesystem::path& parent : sessionDirParents()) {
    RunnerIn setup(parent);
    auto& [temp, exits, runner] = setup;
    Clock::time_point begin = Clock::now();
    for (int i = 0; i < kSessions; ++i) ASSERT_TRUE(runner.start(sessionIn(temp.path(), i, {"true"})).ok());
    ASSERT_TRUE(exits.waitForTotal(kSessions));
    double seconds = millisBetween(begin, Clock::now()) / 1000;
    double perSecond = kSessions / seconds;
    std::printf("[ figures  ] session dirs in %s: %d sessions started and reaped in %.3f s: %.0f sessions/s\n",
                parent.c_str(), kSessions, seconds, perSecond);
    RecordProperty("sessions_per_second_" + propertySuffix(parent), static_cast<int>(perSecond));
    EXPECT_GE(perSecond, 25.0);
    EXPECT_EQ(zombieChildren(), std::vector<pid_t>{});
  }
}

// From start() until the command has run its first system call on a FIFO we hold open.
TEST(RuntimeFigures, StartToCommandRunningLatency) {
  constexpr int kSamples = 100;
  for (const std::filesystem::path& parent : sessionDirParents()) {
    RunnerIn setup(parent);
    auto& [temp, exits, runner] = setup;
    std::vector<double> latencies;
    for (int i = 0; i < kSamples; ++i) {
      std::filesystem::path fifo = temp.path() / ("ready-" + std::to_string(i));
      ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
      // A reader that has never seen a writer polls as not ready until one opens the FIFO.
      int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
      ASSERT_GE(reader, 0);
      core::RunSpec spec = sessionIn(temp.path(), i, {"tee", fifo.string()});
      Clock::time_point begin = Clock::now();
      ASSERT_TRUE(runner.start(spec).ok());
      pollfd entry{reader, POLLIN, 0};
      int ready = ::poll(&entry, 1, 10000);
      Clock::time_point running = Clock::now();
      ::close(reader);
      ASSERT_EQ(ready, 1) << "the command never opened the FIFO";
      latencies.push_back(millisBetween(begin, running));
      ASSERT_TRUE(exits.waitFor(spec.sessionId));
    }
    std::sort(latencies.begin(), latencies.end());
    double p50 = latencies[kSamples / 2];
    double p90 = latencies[kSamples * 9 / 10];
    std::printf("[ figures  ] session dirs in %s: start -> command running over %d sessions: "
                "p50 %.2f ms, p90 %.2f ms, max %.2f ms\n",
                parent.c_str(), kSamples, p50, p90, latencies.back());
    RecordProperty("start_latency_p50_us_" + propertySuffix(parent), static_cast<int>(p50 * 1000));
    EXPECT_LE(p50, 100.0);
  }
}

}  // namespace
}  // namespace bai::test
