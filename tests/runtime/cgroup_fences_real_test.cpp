// The device fence, the pids limit and swap on this machine's kernel (root only): v1 through the
// limits back end, v2 through the device program on the hybrid's cgroup2 mount
// (/sys/fs/cgroup/unified). A forked child joins the cgroup and opens device nodes; what
// it saw comes back as its exit code. Also the figure: prepare+release with and without
// the fence.
#include "runtime_test_support.hpp"

#include "runtime/cgroup_limits.hpp"
#include "runtime/device_program.hpp"
#include "runtime/device_program_loader.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

namespace bai::test {
namespace {

namespace fs = std::filesystem;
using core::LimitsBackend;
using core::SessionLimits;

const fs::path kCgroupRoot = "/sys/fs/cgroup";
const fs::path kUnified = "/sys/fs/cgroup/unified";

// What the children report; they run between fork and _exit in a threaded process, so
// only async-signal-safe calls.
constexpr int kAsExpected = 0;
constexpr int kNullDidNotOpen = 10;
constexpr int kZeroOpened = 11;
constexpr int kZeroFailedOtherThanEperm = 12;
constexpr int kZeroDidNotOpen = 20;
constexpr int kNeverJoined = 90;

int opensNullButNotZero() {
  int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0) return kNullDidNotOpen;
  ::close(null);
  int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (zero >= 0) return kZeroOpened;
  return errno == EPERM ? kAsExpected : kZeroFailedOtherThanEperm;
}

int opensZero() {
  int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  if (zero < 0) return kZeroDidNotOpen;
  ::close(zero);
  return kAsExpected;
}

// Tries 10 forks; returns how many succeeded, after killing and reaping them.
int forksItGets() {
  pid_t children[10];
  int forked = 0;
  for (int i = 0; i < 10; ++i) {
    pid_t pid = ::fork();
    if (pid == 0) {
      for (;;) ::pause();
    }
    if (pid > 0) children[forked++] = pid;
  }
  for (int i = 0; i < forked; ++i) {
    ::kill(children[i], SIGKILL);
    ::waitpid(children[i], nullptr, 0);
  }
  return forked;
}

// Forks a child that waits until it is in every cgroup of `procs`, runs `check` and exits
// with its result; -1 when it could not be moved in.
int exitCodeInCgroups(const std::vector<fs::path>& procs, int (*check)()) {
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return -1;
  pid_t child = ::fork();
  if (child == 0) {
    ::close(go[1]);
    char byte = 0;
    if (::read(go[0], &byte, 1) != 1) ::_exit(kNeverJoined);
    ::_exit(check());
  }
  ::close(go[0]);
  std::shared_ptr<core::CgroupFs> kernel = core::kernelCgroupFs();
  bool joined = child > 0;
  for (const fs::path& file : procs) {
    if (!joined) break;
    Result<void> written = kernel->write(file, std::to_string(child));
    if (!written.ok()) {
      ADD_FAILURE() << written.error().message;
      joined = false;
    }
  }
  if (joined) joined = ::write(go[1], "x", 1) == 1;
  ::close(go[1]);  // a child not told to go sees EOF and exits
  int status = 0;
  if (child > 0) ::waitpid(child, &status, 0);
  return joined && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// The v1 back end under a parent cgroup of this test's own, removed at the end.
class RealV1 {
 public:
  explicit RealV1(const std::string& name) : parent_("bai-fences-" + std::to_string(::getpid()) + "-" + name) {
    if (::geteuid() != 0) {
      why_ = "the real cgroup tree needs root";
      return;
    }
    auto log = [this](core::LogLevel, const std::string&, const std::string& message) { line_ = message; };
    Result<std::unique_ptr<LimitsBackend>> detected = core::detectLimitsBackend(kCgroupRoot, parent_, log);
    if (!detected.ok()) {
      why_ = detected.error().message;
      return;
    }
    backend_ = std::move(detected).value();
    if (backend_->describe().find("cgroup v1") == std::string::npos) {
      why_ = "not a cgroup v1 machine: " + line_;
    } else if (!backend_->fencesDevices()) {
      why_ = "no writable v1 devices hierarchy: " + line_;
    }
  }
  // Also what a failed assertion left before release (its processes have exited).
  ~RealV1() {
    for (const char* hierarchy : {"memory", "cpuset", "pids", "devices", "cpu", "cpu,cpuacct"}) {
      fs::path parent = kCgroupRoot / hierarchy / parent_;
      std::error_code error;
      for (const auto& entry : fs::directory_iterator(parent, error)) {
        if (entry.is_directory(error)) ::rmdir(entry.path().c_str());
      }
      ::rmdir(parent.c_str());
    }
  }
  RealV1(const RealV1&) = delete;
  RealV1& operator=(const RealV1&) = delete;

  const std::string& whyNot() const { return why_; }  // empty: usable
  LimitsBackend& backend() { return *backend_; }
  fs::path sessionDir(const std::string& hierarchy, const std::string& sessionId) const {
    return kCgroupRoot / hierarchy / parent_ / ("bai-" + sessionId);
  }
  const std::string& detectionLine() const { return line_; }

 private:
  std::string parent_;
  std::string why_;
  std::string line_;
  std::unique_ptr<LimitsBackend> backend_;
};

SessionLimits fenced(std::vector<core::DeviceRule> rules) {
  SessionLimits limits;
  limits.fenceDevices = true;
  limits.devices = std::move(rules);
  return limits;
}

TEST(RealCgroupFences, V1FenceOpensDevNullAndRefusesDevZero) {
  RealV1 real("v1");
  if (!real.whyNot().empty()) GTEST_SKIP() << real.whyNot();
  std::printf("[ real tree ] %s\n", real.detectionLine().c_str());
  LimitsBackend& backend = real.backend();

  Result<std::vector<fs::path>> procs = backend.prepare("nullonly", fenced({{'c', 1, 3, "rw"}}));
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  EXPECT_EQ(readText(real.sessionDir("devices", "nullonly") / "devices.list"), "c 1:3 rw\n");
  EXPECT_EQ(exitCodeInCgroups(*procs, opensNullButNotZero), kAsExpected);
  ASSERT_TRUE(backend.release("nullonly").ok());
  EXPECT_FALSE(fs::exists(real.sessionDir("devices", "nullonly")));

  // The same cgroups without the fence: /dev/zero opens, so the EPERM above was the fence.
  Result<std::vector<fs::path>> open = backend.prepare("unfenced", {});
  ASSERT_TRUE(open.ok()) << open.error().message;
  EXPECT_EQ(exitCodeInCgroups(*open, opensZero), kAsExpected);
  ASSERT_TRUE(backend.release("unfenced").ok());
}

TEST(RealCgroupFences, V1BaseRulesListExactlyAsWritten) {
  RealV1 real("base");
  if (!real.whyNot().empty()) GTEST_SKIP() << real.whyNot();
  ASSERT_TRUE(real.backend().prepare("base", fenced(core::baseDeviceRules())).ok());
  EXPECT_EQ(readText(real.sessionDir("devices", "base") / "devices.list"),
            "c 1:3 rw\nc 1:5 rw\nc 1:7 rw\nc 1:8 rw\nc 1:9 rw\nc 5:0 rw\nc 5:2 rw\nc 136:* rw\n");
  ASSERT_TRUE(real.backend().release("base").ok());
}

TEST(RealCgroupFences, V1PidsMaxStopsTheSixthProcess) {
  RealV1 real("pids");
  if (!real.whyNot().empty()) GTEST_SKIP() << real.whyNot();
  if (real.detectionLine().find("pids not limited") != std::string::npos) GTEST_SKIP() << real.detectionLine();
  SessionLimits limits;
  limits.pidsMax = 5;
  Result<std::vector<fs::path>> procs = real.backend().prepare("pids", limits);
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  EXPECT_EQ(readText(real.sessionDir("pids", "pids") / "pids.max"), "5\n");
  // The child itself is one of the five.
  EXPECT_EQ(exitCodeInCgroups(*procs, forksItGets), 4);
  ASSERT_TRUE(real.backend().release("pids").ok());
}

// Spins for 600 ms of wall time in the cgroups of `procs` and returns the CPU time it got,
// in milliseconds (from wait4's rusage); -1 when it could not be moved in.
long spinningCpuMillis(const std::vector<fs::path>& procs) {
  int go[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return -1;
  pid_t child = ::fork();
  if (child == 0) {
    ::close(go[1]);
    char byte = 0;
    if (::read(go[0], &byte, 1) != 1) ::_exit(kNeverJoined);
    timespec start{}, now{};
    ::clock_gettime(CLOCK_MONOTONIC, &start);
    do {
      ::clock_gettime(CLOCK_MONOTONIC, &now);
    } while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < 600);
    ::_exit(kAsExpected);
  }
  ::close(go[0]);
  bool joined = child > 0;
  for (const fs::path& file : procs) {
    if (joined && !core::kernelCgroupFs()->write(file, std::to_string(child)).ok()) joined = false;
  }
  if (joined) joined = ::write(go[1], "x", 1) == 1;
  ::close(go[1]);
  int status = 0;
  rusage usage{};
  if (child > 0) ::wait4(child, &status, 0, &usage);
  if (!joined || !WIFEXITED(status) || WEXITSTATUS(status) != kAsExpected) return -1;
  return usage.ru_utime.tv_sec * 1000 + usage.ru_utime.tv_usec / 1000 + usage.ru_stime.tv_sec * 1000 +
         usage.ru_stime.tv_usec / 1000;
}

// 0.2 CPUs: 20 ms per 100 ms period, so a spinning process gets about 120 ms of 600.
TEST(RealCgroupFences, V1CpuQuotaThrottlesASpinningProcess) {
  RealV1 real("cpu");
  if (!real.whyNot().empty()) GTEST_SKIP() << real.whyNot();
  if (real.detectionLine().find("cpu quota not enforced") != std::string::npos) GTEST_SKIP() << real.detectionLine();
  SessionLimits limits;
  limits.cpuMillis = 200;
  Result<std::vector<fs::path>> procs = real.backend().prepare("cpu", limits);
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  fs::path cpu = procs->back().parent_path();
  EXPECT_EQ(readText(cpu / "cpu.cfs_quota_us"), "20000\n");
  EXPECT_EQ(readText(cpu / "cpu.cfs_period_us"), "100000\n");
  long used = spinningCpuMillis(*procs);
  std::printf("[ cpu quota ] 0.2 CPUs: a process spinning for 600 ms got %ld ms of CPU\n", used);
  EXPECT_GE(used, 0);
  EXPECT_LE(used, 200) << "0.2 CPUs allow about 120 ms in 600 ms";
  std::string stat = readText(cpu / "cpu.stat");
  EXPECT_EQ(stat.find("nr_throttled 0\n"), std::string::npos) << stat;
  ASSERT_TRUE(real.backend().release("cpu").ok());
  EXPECT_FALSE(fs::exists(cpu));
}

// The kernel refuses memsw below memory at any moment: a retried prepare going down, then
// up, must write the two files in the right order each time.
TEST(RealCgroupFences, V1MemswFollowsMemoryDownAndUp) {
  RealV1 real("memsw");
  if (!real.whyNot().empty()) GTEST_SKIP() << real.whyNot();
  if (real.detectionLine().find("no swap accounting") != std::string::npos) GTEST_SKIP() << real.detectionLine();
  constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
  fs::path memory = real.sessionDir("memory", "memsw");
  for (auto [memoryBytes, swapBytes] : {std::pair{256 * kMiB, 64 * kMiB}, std::pair{64 * kMiB, 0 * kMiB},
                                        std::pair{512 * kMiB, 128 * kMiB}}) {
    SessionLimits limits{{}, {}, memoryBytes};
    limits.swapBytes = swapBytes;
    Result<std::vector<fs::path>> procs = real.backend().prepare("memsw", limits);
    ASSERT_TRUE(procs.ok()) << procs.error().message;
    EXPECT_EQ(readText(memory / "memory.limit_in_bytes"), std::to_string(memoryBytes) + "\n");
    EXPECT_EQ(readText(memory / "memory.memsw.limit_in_bytes"), std::to_string(memoryBytes + swapBytes) + "\n");
  }
  ASSERT_TRUE(real.backend().release("memsw").ok());
}

bool isCgroup2(const fs::path& dir) {
  struct statfs info {};
  return ::statfs(dir.c_str(), &info) == 0 && info.f_type == CGROUP2_SUPER_MAGIC;
}

// A cgroup of this test's own on the cgroup2 mount, removed once its members are gone.
struct UnifiedTestCgroup {
  fs::path dir = kUnified / ("bai-fences-" + std::to_string(::getpid()));
  UnifiedTestCgroup() { ::mkdir(dir.c_str(), 0755); }
  ~UnifiedTestCgroup() {
    waitUntil([&] { return ::rmdir(dir.c_str()) == 0 || errno == ENOENT; }, std::chrono::seconds(5));
  }
};

std::vector<bpf_insn> programFor(const std::vector<core::DeviceRule>& rules) {
  Result<std::vector<bpf_insn>> program = core::buildDeviceProgram(rules);
  EXPECT_TRUE(program.ok()) << program.error().message;
  return program.ok() ? *program : std::vector<bpf_insn>{};
}

// This machine is v1 for the back end, but its cgroup2 mount runs device programs as a
// v2 node would, so the program is proven here.
TEST(RealCgroupFences, V2DeviceProgramOpensDevNullAndRefusesDevZero) {
  if (::geteuid() != 0) GTEST_SKIP() << "attaching a BPF program needs root";
  if (!isCgroup2(kUnified)) GTEST_SKIP() << kUnified << " is not a cgroup2 mount";
  std::shared_ptr<core::DeviceProgramLoader> loader = core::kernelDeviceProgramLoader();
  if (std::string why = loader->whyUnavailable(); !why.empty()) GTEST_SKIP() << why;
  UnifiedTestCgroup cgroup;
  ASSERT_TRUE(fs::is_directory(cgroup.dir));
  std::vector<fs::path> procs{cgroup.dir / "cgroup.procs"};

  EXPECT_EQ(exitCodeInCgroups(procs, opensZero), kAsExpected) << "no program yet";
  Result<void> attached = loader->attach(cgroup.dir, programFor({{'c', 1, 3, "rw"}}));
  ASSERT_TRUE(attached.ok()) << attached.error().message;
  EXPECT_EQ(exitCodeInCgroups(procs, opensNullButNotZero), kAsExpected);

  // A retried prepare attaches again: the new program replaces the old one.
  attached = loader->attach(cgroup.dir, programFor({{'c', 1, 3, "rw"}, {'c', 1, 5, "r"}}));
  ASSERT_TRUE(attached.ok()) << attached.error().message;
  EXPECT_EQ(exitCodeInCgroups(procs, opensZero), kAsExpected);
}

double medianMillis(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  return samples[samples.size() / 2];
}

// The figure of issue 18: prepare()+release() of a session cgroup on the real v1 tree,
// fenced (base device rules and pids.max) against unfenced, interleaved, median of 100.
TEST(RealCgroupFigures, PrepareAndReleaseWithAndWithoutFences) {
  RealV1 real("figures");
  if (!real.whyNot().empty()) GTEST_SKIP() << real.whyNot();
  constexpr int kRounds = 100;
  SessionLimits plain{{}, {}, std::uint64_t{1} << 30};
  SessionLimits fencedLimits = fenced(core::baseDeviceRules());
  fencedLimits.memoryBytes = plain.memoryBytes;
  fencedLimits.pidsMax = 4096;
  std::vector<double> withFences;
  std::vector<double> without;
  auto timeOne = [&](const std::string& sessionId, const SessionLimits& limits) {
    auto begin = std::chrono::steady_clock::now();
    Result<std::vector<fs::path>> procs = real.backend().prepare(sessionId, limits);
    Result<void> released = real.backend().release(sessionId);
    auto end = std::chrono::steady_clock::now();
    EXPECT_TRUE(procs.ok() && released.ok()) << sessionId;
    return std::chrono::duration<double, std::milli>(end - begin).count();
  };
  for (int round = 0; round < kRounds; ++round) {
    withFences.push_back(timeOne("fenced-" + std::to_string(round), fencedLimits));
    without.push_back(timeOne("plain-" + std::to_string(round), plain));
  }
  double fencedMedian = medianMillis(withFences);
  double plainMedian = medianMillis(without);
  std::printf("[ figures  ] v1 prepare+release, median of %d: with fences %.3f ms, without %.3f ms (+%.3f ms)\n",
              kRounds, fencedMedian, plainMedian, fencedMedian - plainMedian);
  RecordProperty("v1_prepare_release_fenced_p50_us", static_cast<int>(fencedMedian * 1000));
  RecordProperty("v1_prepare_release_unfenced_p50_us", static_cast<int>(plainMedian * 1000));
}

}  // namespace
}  // namespace bai::test
