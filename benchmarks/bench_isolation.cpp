// What session isolation costs at start, on one node, side by side in one run: the
// agent's runtime (SessionRunner and bai-session-shim) starting `true` as uid 200001,
//
//   BM_SessionStart/plain      no sandbox, no cgroups (the runtime as it was)
//   BM_SessionStart/fences     the session's cgroups (v1: memory, cpuset, pids, devices)
//                              with the device fence and pids.max, prepared before and
//                              released after each session
//   BM_SessionStart/sandbox    the sandbox alone (PID, mount, IPC, UTS namespaces, the
//                              read-only host view, private /proc, /tmp, /dev, hidden paths)
//   BM_SessionStart/isolated   both: what the agent does for every session
//
// Per session (`touch <work dir>/started`): running_p50_ms is start() -> the command ran
// (the file exists on the host), done_p50_ms start() -> its exit reported and everything
// released. BM_SessionsPerSecond/{plain,isolated} keep 16 sessions of `true` in flight,
// starting one as each is reaped, as an agent given a stream of them does:
// items_per_second reaped.
//
// Needs root (uids, namespaces, cgroups); without it each benchmark reports an error.
// The shim is $BAI_SESSION_SHIM or the one this build made. Run it in full with
//   sudo ./build/benchmarks/bench_isolation --benchmark_min_time=2
#include "bench_support.hpp"

#include "runtime/cgroup_limits.hpp"
#include "runtime/session_runner.hpp"

#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace bai::bench {
namespace {

namespace fs = std::filesystem;
using core::SessionRunner;

fs::path shimPath() {
  const char* configured = std::getenv("BAI_SESSION_SHIM");
  return configured != nullptr ? configured : BAI_SESSION_SHIM_BUILD_PATH;
}

// One runtime over a temp state dir; exits are counted under a lock.
// What a session gets: nothing (the runtime as it was), its cgroups with the fences, its
// sandbox, or both (what the agent now does).
struct Isolation {
  bool fences = false;
  bool sandbox = false;
};

class Node {
 public:
  explicit Node(Isolation isolation) : fences_(isolation.fences), sandbox_(isolation.sandbox) {
    // Traversable: an unsandboxed session reaches its work dir through it.
    fs::permissions(dir_.path(), fs::perms::owner_all | fs::perms::others_exec | fs::perms::group_exec);
    if (fences_) {
      limits_ = orDie(core::detectLimitsBackend("/sys/fs/cgroup", "bai-bench-" + std::to_string(::getpid()),
                                                [](LogLevel, const std::string&, const std::string&) {}),
                      "cgroups");
    }
    runner_ = std::make_unique<SessionRunner>(shimPath(), [](LogLevel, const std::string&, const std::string&) {},
                                              [this](const std::string& id, const core::ExitStatus& status) {
                                                ended(id, status);
                                              });
  }
  ~Node() { runner_.reset(); }

  // Starts `touch <its work dir>/started`, or `true` when `touch` is false.
  void start(const std::string& id, bool touch = false) {
    const fs::path sessionDir = dir_.path() / id;
    const fs::path workDir = sessionDir / "work";
    fs::create_directories(workDir);
    if (::chown(workDir.c_str(), 200001, 200001) != 0) die("chown of the work dir");
    const fs::path marker = (sandbox_ ? fs::path(core::kSessionHome) : workDir) / "started";
    std::vector<std::string> command{"true"};
    if (touch) command = {"touch", marker.string()};
    core::RunSpec spec{id, sessionDir, command, {{"PATH", "/usr/bin:/bin"}, {"HOME", core::kSessionHome}}};
    spec.runAs = std::pair{uid_t{200001}, gid_t{200001}};
    if (fences_) {
      core::SessionLimits limits;
      limits.memoryBytes = std::uint64_t{256} << 20;
      limits.pidsMax = 64;
      limits.fenceDevices = true;
      limits.devices = core::baseDeviceRules();
      spec.cgroupProcs = orDie(limits_->prepare(id, limits), "cgroups for a session");
    }
    if (sandbox_) {
      core::Sandbox sandbox;
      sandbox.workDir = workDir;
      sandbox.hidden = {dir_.path()};
      sandbox.hostNodev = !limits_ || !limits_->fencesDevices();
      spec.sandbox = sandbox;
    }
    orDie(runner_->start(spec), "starting a session");
  }

  // Blocks until `id` (any session when empty) has ended and its cgroups are gone.
  void awaitEnd(std::string id = "") {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return id.empty() ? !ended_.empty() : ended_.count(id) != 0; });
    if (id.empty()) id = ended_.begin()->first;
    const core::ExitStatus status = ended_[id];
    ended_.erase(id);
    lock.unlock();
    if (status.exitCode != 0) die("session " + id + " ended with " + std::to_string(status.exitCode) + ": " + status.error);
    if (fences_) orDie(limits_->release(id), "releasing cgroups");
    fs::remove_all(dir_.path() / id);
  }

  fs::path started(const std::string& id) const { return dir_.path() / id / "work/started"; }

 private:
  void ended(const std::string& id, const core::ExitStatus& status) {
    std::lock_guard<std::mutex> lock(mutex_);
    ended_[id] = status;
    changed_.notify_all();
  }

  const bool fences_;
  const bool sandbox_;
  TempDir dir_;
  std::unique_ptr<core::LimitsBackend> limits_;
  std::unique_ptr<SessionRunner> runner_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, core::ExitStatus> ended_;
};

bool isRoot(benchmark::State& state) {
  if (::geteuid() == 0) return true;
  state.SkipWithError("needs root: sessions run as uid 200001 in namespaces and cgroups");
  return false;
}

void BM_SessionStart(benchmark::State& state, Isolation isolated) {
  if (!isRoot(state)) return;
  Node node(isolated);
  std::vector<std::int64_t> runningNs, doneNs;
  int n = 0;
  for (auto _ : state) {
    const std::string id = "s" + std::to_string(n++);
    const auto begin = Clock::now();
    node.start(id, true);
    while (!fs::exists(node.started(id))) {
      if (Clock::now() - begin > std::chrono::seconds(10)) die("session " + id + " did not run its command");
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    runningNs.push_back((Clock::now() - begin).count());
    node.awaitEnd(id);
    doneNs.push_back((Clock::now() - begin).count());
  }
  reportPercentiles(state, runningNs, "running_", TimeUnit::Milliseconds);
  reportPercentiles(state, doneNs, "done_", TimeUnit::Milliseconds);
}

void BM_SessionsPerSecond(benchmark::State& state, Isolation isolated) {
  if (!isRoot(state)) return;
  constexpr int kInFlight = 16;
  Node node(isolated);
  int n = 0;
  for (int i = 0; i < kInFlight; ++i) node.start("r" + std::to_string(n++));
  std::int64_t reaped = 0;
  for (auto _ : state) {  // one session reaped and another started, 16 always in flight
    node.awaitEnd();
    ++reaped;
    node.start("r" + std::to_string(n++));
  }
  for (int i = 0; i < kInFlight; ++i) node.awaitEnd();
  state.SetItemsProcessed(reaped);
}

constexpr Isolation kPlain{false, false};
constexpr Isolation kFences{true, false};
constexpr Isolation kSandbox{false, true};
constexpr Isolation kIsolated{true, true};
BENCHMARK_CAPTURE(BM_SessionStart, plain, kPlain)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionStart, fences, kFences)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionStart, sandbox, kSandbox)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionStart, isolated, kIsolated)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionsPerSecond, plain, kPlain)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionsPerSecond, fences, kFences)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionsPerSecond, sandbox, kSandbox)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(BM_SessionsPerSecond, isolated, kIsolated)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace bai::bench

int main(int argc, char** argv) { return bai::bench::runSpecifiedBenchmarks(argc, argv) ? 0 : 1; }
