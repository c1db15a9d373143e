// The limits back ends against a fake cgroupfs (v2, v1 hybrid, nothing usable), and once
// against the machine's real /sys/fs/cgroup where it is writable.
#include "fake_cgroupfs.hpp"
#include "runtime_test_support.hpp"

#include "runtime/cgroup_limits.hpp"
#include "runtime/device_program.hpp"

#include <csignal>
#include <sstream>
#include <spawn.h>
#include <sys/wait.h>

extern char** environ;

namespace bai::test {
namespace {

namespace fs = std::filesystem;
using core::LimitsBackend;
using core::SessionLimits;

constexpr std::uint64_t kOneGiB = std::uint64_t{1} << 30;

std::string trimmed(const fs::path& file) {
  std::string text = readText(file);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

// A real process to put in a fake cgroup, so that release has something to kill.
class Sleeper {
 public:
  Sleeper() {
    char sleep[] = "sleep";
    char seconds[] = "100";
    char* argv[] = {sleep, seconds, nullptr};
    if (::posix_spawnp(&pid_, "sleep", nullptr, nullptr, argv, environ) != 0) pid_ = 0;
  }
  ~Sleeper() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Sleeper(const Sleeper&) = delete;
  Sleeper& operator=(const Sleeper&) = delete;

  pid_t pid() const { return pid_; }
  // The signal that ended it, waiting at most a few seconds; 0 when it is still alive.
  int endedBy() {
    int status = 0;
    bool ended = waitUntil([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, std::chrono::seconds(5));
    reaped_ = ended;
    return ended && WIFSIGNALED(status) ? WTERMSIG(status) : 0;
  }

 private:
  pid_t pid_ = 0;
  bool reaped_ = false;
};

// Records the programs the v2 back end attaches instead of calling bpf(2).
class FakeDeviceProgramLoader final : public core::DeviceProgramLoader {
 public:
  std::string unavailable;  // what whyUnavailable() says
  std::optional<std::string> attachFails;

  struct Attached {
    fs::path cgroupDir;
    std::vector<bpf_insn> program;
  };
  std::vector<Attached> attached;

  std::string whyUnavailable() override { return unavailable; }
  Result<void> attach(const fs::path& cgroupDir, const std::vector<bpf_insn>& program) override {
    if (attachFails) return fail(ErrorCode::Internal, *attachFails);
    attached.push_back({cgroupDir, program});
    return {};
  }
};

bool sameProgram(const std::vector<bpf_insn>& a, const std::vector<bpf_insn>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](const bpf_insn& x, const bpf_insn& y) {
           return x.code == y.code && x.dst_reg == y.dst_reg && x.src_reg == y.src_reg && x.off == y.off && x.imm == y.imm;
         });
}

SessionLimits fencedLimits(std::vector<core::DeviceRule> rules) {
  SessionLimits limits;
  limits.fenceDevices = true;
  limits.devices = std::move(rules);
  return limits;
}

class LimitsTest : public ::testing::Test {
 protected:
  fs::path root() const { return temp_.path() / "cgroup"; }

  std::unique_ptr<LimitsBackend> detect(FakeCgroupFs::Options options = {}, std::string parent = "bai") {
    fake_ = std::make_shared<FakeCgroupFs>(root(), options);
    for (const fs::path& dir : readOnly_) fake_->makeReadOnly(dir);
    auto log = [this](core::LogLevel level, const std::string&, const std::string& message) {
      logLines_.push_back(std::string(core::logLevelName(level)) + " " + message);
    };
    Result<std::unique_ptr<LimitsBackend>> backend =
        core::detectLimitsBackend(root(), std::move(parent), log, fake_, loader_);
    EXPECT_TRUE(backend.ok());
    EXPECT_EQ(logLines_.size(), 1u) << "detection says once which back end and why";
    return backend.ok() ? std::move(backend).value() : nullptr;
  }

  static bool listsWordIn(const fs::path& file, const std::string& word) {
    std::istringstream words(readText(file));
    for (std::string w; words >> w;) {
      if (w == word) return true;
    }
    return false;
  }

  bool wrote(const fs::path& file, const std::string& value) const {
    for (const auto& [path, written] : fake_->writes()) {
      if (path == file && written == value) return true;
    }
    return false;
  }

  // "name=value" for each write to a file of `dir`, in order.
  std::vector<std::string> writesIn(const fs::path& dir) const {
    std::vector<std::string> lines;
    for (const auto& [path, written] : fake_->writes()) {
      if (path.parent_path() == dir) lines.push_back(path.filename().string() + "=" + written);
    }
    return lines;
  }

  TempDir temp_;
  std::shared_ptr<FakeDeviceProgramLoader> loader_ = std::make_shared<FakeDeviceProgramLoader>();
  std::shared_ptr<FakeCgroupFs> fake_;
  std::vector<fs::path> readOnly_;
  std::vector<std::string> logLines_;
};

TEST_F(LimitsTest, V2IsChosenWhenItOffersCpusetAndMemory) {
  FakeCgroupFs::buildV2Root(root(), "cpuset cpu io memory pids", {});
  auto backend = detect();
  ASSERT_TRUE(backend);
  EXPECT_TRUE(backend->enforcing());
  EXPECT_NE(backend->describe().find("cgroup v2"), std::string::npos);
  EXPECT_EQ(logLines_[0].rfind("info limits: cgroup v2", 0), 0u) << logLines_[0];
}

TEST_F(LimitsTest, V2PrepareCreatesTheSessionCgroupWithItsLimits) {
  FakeCgroupFs::buildV2Root(root(), "cpuset cpu io memory pids", {});
  auto backend = detect();
  Result<std::vector<fs::path>> procs = backend->prepare("s1", {{0, 1, 2}, {0}, kOneGiB});
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  fs::path session = root() / "bai" / "bai-s1";
  EXPECT_EQ(*procs, std::vector<fs::path>{session / "cgroup.procs"});
  EXPECT_EQ(trimmed(root() / "cgroup.subtree_control"), "cpu cpuset memory pids") << "cpu: the quota's controller";
  EXPECT_EQ(trimmed(root() / "bai" / "cgroup.subtree_control"), "cpu cpuset memory pids") << "cpu: the quota's controller";
  EXPECT_EQ(trimmed(session / "cpuset.cpus"), "0-2");
  EXPECT_EQ(trimmed(session / "cpuset.mems"), "0");
  EXPECT_EQ(trimmed(session / "memory.max"), "1073741824");
}

TEST_F(LimitsTest, V2PrepareWithoutLimitsKeepsTheKernelDefaults) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory", {});
  auto backend = detect();
  ASSERT_TRUE(backend->prepare("s1", {}).ok());
  fs::path session = root() / "bai" / "bai-s1";
  EXPECT_EQ(trimmed(session / "memory.max"), "max");
  EXPECT_EQ(trimmed(session / "cpuset.cpus"), "");
  // A retried prepare reuses the cgroup.
  ASSERT_TRUE(backend->prepare("s1", {{3}, {}, std::nullopt}).ok());
  EXPECT_EQ(trimmed(session / "cpuset.cpus"), "3");
}

TEST_F(LimitsTest, V2PrepareThatTheKernelRefusesLeavesNothingBehind) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory", {});
  auto backend = detect();
  Result<std::vector<fs::path>> procs = backend->prepare("s1", {{7}, {}, kOneGiB});  // the machine has CPUs 0-3
  ASSERT_FALSE(procs.ok());
  EXPECT_NE(procs.error().message.find("cpuset.cpus"), std::string::npos) << procs.error().message;
  EXPECT_FALSE(fs::exists(root() / "bai" / "bai-s1"));
}

TEST_F(LimitsTest, V2ReleaseKillsThroughCgroupKillAndRemovesTheCgroup) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory", {});
  auto backend = detect();
  Result<std::vector<fs::path>> procs = backend->prepare("s1", {});
  ASSERT_TRUE(procs.ok());
  Sleeper sleeper;
  ASSERT_TRUE(fake_->write(procs->front(), std::to_string(sleeper.pid())).ok());
  ASSERT_TRUE(fake_->makeDir(root() / "bai" / "bai-s1" / "nested").ok());  // made by the session

  Result<void> released = backend->release("s1");
  ASSERT_TRUE(released.ok()) << released.error().message;
  EXPECT_TRUE(wrote(root() / "bai" / "bai-s1" / "cgroup.kill", "1"));
  EXPECT_EQ(sleeper.endedBy(), SIGKILL);
  EXPECT_FALSE(fs::exists(root() / "bai" / "bai-s1"));
  EXPECT_TRUE(fs::exists(root() / "bai"));
}

TEST_F(LimitsTest, V2ReleaseKillsEachProcessWithoutCgroupKill) {
  FakeCgroupFs::Options oldKernel;
  oldKernel.cgroupKill = false;
  FakeCgroupFs::buildV2Root(root(), "cpuset memory", oldKernel);
  auto backend = detect(oldKernel);
  Result<std::vector<fs::path>> procs = backend->prepare("s1", {});
  ASSERT_TRUE(procs.ok());
  Sleeper sleeper;
  ASSERT_TRUE(fake_->write(procs->front(), std::to_string(sleeper.pid())).ok());
  ASSERT_TRUE(backend->release("s1").ok());
  EXPECT_EQ(sleeper.endedBy(), SIGKILL);
  EXPECT_FALSE(fs::exists(root() / "bai" / "bai-s1"));
}

TEST_F(LimitsTest, ReleasingAnUnknownSessionIsFine) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory", {});
  EXPECT_TRUE(detect()->release("never-prepared").ok());
}

TEST_F(LimitsTest, SessionIdsThatCannotNameACgroupAreRefused) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory", {});
  auto backend = detect();
  for (const char* id : {"", "../escape", "a/b", "new\nline"}) {
    Result<std::vector<fs::path>> procs = backend->prepare(id, {});
    ASSERT_FALSE(procs.ok()) << id;
    EXPECT_EQ(procs.error().code, ErrorCode::InvalidArgument) << id;
  }
  EXPECT_FALSE(backend->release("../escape").ok());
}

TEST_F(LimitsTest, AParentOutsideTheRootIsRefused) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory", {});
  auto fake = std::make_shared<FakeCgroupFs>(root(), FakeCgroupFs::Options{});
  for (const char* parent : {"/abs", "../up", "", "a/../../b"}) {
    Result<std::unique_ptr<LimitsBackend>> backend = core::detectLimitsBackend(root(), parent, quietLog(), fake);
    ASSERT_FALSE(backend.ok()) << parent;
    EXPECT_EQ(backend.error().code, ErrorCode::InvalidArgument);
  }
}

TEST_F(LimitsTest, V1IsChosenOnAHybridWithoutUsableV2) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  ASSERT_TRUE(backend);
  EXPECT_TRUE(backend->enforcing());
  EXPECT_NE(backend->describe().find("cgroup v1"), std::string::npos);
  EXPECT_NE(logLines_[0].find("cgroup.controllers is missing"), std::string::npos) << logLines_[0];
}

TEST_F(LimitsTest, V1PrepareCreatesEveryHierarchyAndMakesTheCpusetJoinable) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect({}, "agents/bai");
  Result<std::vector<fs::path>> procs = backend->prepare("s1", {{1, 2}, {}, 512 << 20});
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  fs::path memory = root() / "memory" / "agents" / "bai" / "bai-s1";
  fs::path cpuset = root() / "cpuset" / "agents" / "bai" / "bai-s1";
  fs::path pids = root() / "pids" / "agents" / "bai" / "bai-s1";
  fs::path devices = root() / "devices" / "agents" / "bai" / "bai-s1";
  EXPECT_EQ(*procs, (std::vector<fs::path>{memory / "cgroup.procs", cpuset / "cgroup.procs", pids / "cgroup.procs",
                                           devices / "cgroup.procs"}));
  EXPECT_EQ(trimmed(devices / "devices.list"), "a *:* rwm") << "no fence asked, none set";
  EXPECT_EQ(trimmed(memory / "memory.limit_in_bytes"), "536870912");
  EXPECT_EQ(trimmed(root() / "cpuset" / "agents" / "cpuset.cpus"), "0-3");
  EXPECT_EQ(trimmed(root() / "cpuset" / "agents" / "bai" / "cpuset.mems"), "0");
  EXPECT_EQ(trimmed(cpuset / "cpuset.cpus"), "1-2");
  EXPECT_EQ(trimmed(cpuset / "cpuset.mems"), "0");  // inherited: a v1 cpuset needs both
  for (const fs::path& file : *procs) {
    EXPECT_TRUE(fake_->write(file, std::to_string(::getpid())).ok()) << file;
  }
}

TEST_F(LimitsTest, V1PrepareWithoutCpusInheritsTheParents) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  ASSERT_TRUE(backend->prepare("s1", {}).ok());
  EXPECT_EQ(trimmed(root() / "cpuset" / "bai" / "bai-s1" / "cpuset.cpus"), "0-3");
  EXPECT_EQ(trimmed(root() / "memory" / "bai" / "bai-s1" / "memory.limit_in_bytes"), "9223372036854771712");
}

TEST_F(LimitsTest, V1ReleaseKillsAndRemovesBothCgroups) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  Result<std::vector<fs::path>> procs = backend->prepare("s1", {});
  ASSERT_TRUE(procs.ok());
  Sleeper sleeper;
  for (const fs::path& file : *procs) ASSERT_TRUE(fake_->write(file, std::to_string(sleeper.pid())).ok());
  ASSERT_TRUE(backend->release("s1").ok());
  EXPECT_EQ(sleeper.endedBy(), SIGKILL);
  for (const char* hierarchy : {"memory", "cpuset", "pids", "devices"}) {
    EXPECT_FALSE(fs::exists(root() / hierarchy / "bai" / "bai-s1")) << hierarchy;
    EXPECT_TRUE(fs::exists(root() / hierarchy / "bai")) << hierarchy;
  }
}

TEST_F(LimitsTest, AReadOnlyHierarchyLeavesLimitsAdvisory) {
  FakeCgroupFs::buildV1Root(root(), {});
  readOnly_.push_back(root() / "memory");
  auto backend = detect();
  ASSERT_TRUE(backend);
  EXPECT_FALSE(backend->enforcing());
  EXPECT_NE(backend->describe().find("not writable"), std::string::npos) << backend->describe();
}

TEST_F(LimitsTest, NothingUsableIsAdvisoryAndSaysSo) {
  fs::create_directories(root());
  auto backend = detect();
  ASSERT_TRUE(backend);
  EXPECT_FALSE(backend->enforcing());
  EXPECT_EQ(backend->describe().rfind("advisory", 0), 0u) << backend->describe();
  EXPECT_EQ(logLines_[0].rfind("warning limits: advisory", 0), 0u) << logLines_[0];
  Result<std::vector<fs::path>> procs = backend->prepare("s1", {{0}, {0}, kOneGiB});
  ASSERT_TRUE(procs.ok());
  EXPECT_TRUE(procs->empty());
  EXPECT_TRUE(backend->release("s1").ok());
}

TEST_F(LimitsTest, V2WithoutTheMemoryControllerIsNotUsed) {
  FakeCgroupFs::buildV2Root(root(), "cpuset cpu", {});
  auto backend = detect();
  ASSERT_TRUE(backend);
  EXPECT_FALSE(backend->enforcing());
  EXPECT_NE(backend->describe().find("no memory controller"), std::string::npos) << backend->describe();
}

// ---- Device fences, pids and swap (issue 18) ----

TEST_F(LimitsTest, V1FenceDeniesEverythingThenAllowsEachRuleInOrder) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  ASSERT_TRUE(backend->fencesDevices());
  EXPECT_NE(backend->describe().find("/{memory,cpuset,pids,devices}/bai"), std::string::npos) << backend->describe();
  Result<std::vector<fs::path>> procs = backend->prepare(
      "s1", fencedLimits({{'c', 1, 3, "rw"}, {'c', 136, std::nullopt, "rw"}, {'b', std::nullopt, std::nullopt, "m"}}));
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  fs::path devices = root() / "devices" / "bai" / "bai-s1";
  EXPECT_EQ(writesIn(devices), (std::vector<std::string>{"devices.deny=a", "devices.allow=c 1:3 rw",
                                                         "devices.allow=c 136:* rw", "devices.allow=b *:* m"}));
  EXPECT_EQ(readText(devices / "devices.list"), "c 1:3 rw\nc 136:* rw\nb *:* m\n");
  EXPECT_EQ(procs->back(), devices / "cgroup.procs") << "the command joins the fenced cgroup";
}

TEST_F(LimitsTest, V1RetriedFenceStartsOverFromDenyAll) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  ASSERT_TRUE(backend->prepare("s1", fencedLimits(core::baseDeviceRules())).ok());
  ASSERT_TRUE(backend->prepare("s1", fencedLimits({{'c', 1, 3, "r"}})).ok());
  EXPECT_EQ(readText(root() / "devices" / "bai" / "bai-s1" / "devices.list"), "c 1:3 r\n");
}

TEST_F(LimitsTest, V1EmptyFenceDeniesEveryDevice) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  ASSERT_TRUE(backend->prepare("s1", fencedLimits({})).ok());
  fs::path devices = root() / "devices" / "bai" / "bai-s1";
  EXPECT_EQ(writesIn(devices), std::vector<std::string>{"devices.deny=a"});
  EXPECT_EQ(readText(devices / "devices.list"), "");
}

TEST_F(LimitsTest, V1BadDeviceRuleFailsThePrepareAndLeavesNothing) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  Result<std::vector<fs::path>> procs = backend->prepare("s1", fencedLimits({{'c', 1, 3, "rw"}, {'c', 1, 5, "rx"}}));
  ASSERT_FALSE(procs.ok());
  EXPECT_EQ(procs.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(procs.error().message.find("c 1:5 'rx'"), std::string::npos) << procs.error().message;
  for (const char* hierarchy : {"memory", "cpuset", "pids", "devices"}) {
    EXPECT_FALSE(fs::exists(root() / hierarchy / "bai" / "bai-s1")) << hierarchy;
  }
}

TEST_F(LimitsTest, V1PidsMaxGoesIntoThePidsCgroup) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  SessionLimits limits;
  limits.pidsMax = 64;
  ASSERT_TRUE(backend->prepare("s1", limits).ok());
  EXPECT_EQ(trimmed(root() / "pids" / "bai" / "bai-s1" / "pids.max"), "64");
}

TEST_F(LimitsTest, V1SwapIsMemswOnTopOfMemory) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  EXPECT_NE(backend->describe().find("swap limited by memory.memsw"), std::string::npos) << backend->describe();
  SessionLimits limits{{}, {}, kOneGiB};
  limits.swapBytes = kOneGiB / 2;
  ASSERT_TRUE(backend->prepare("s1", limits).ok());
  fs::path memory = root() / "memory" / "bai" / "bai-s1";
  // From unlimited, the ceiling comes down after the memory limit.
  EXPECT_EQ(writesIn(memory), (std::vector<std::string>{"memory.limit_in_bytes=1073741824",
                                                        "memory.memsw.limit_in_bytes=1610612736"}));
}

// The fake kernel refuses any write that would leave memsw below memory, as Linux does.
TEST_F(LimitsTest, V1RetriedPrepareKeepsMemswAboveMemoryGoingDownAndUp) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  fs::path memory = root() / "memory" / "bai" / "bai-s1";
  struct Step {
    std::uint64_t memory;
    std::uint64_t swap;
  };
  for (Step step : {Step{4 * kOneGiB, kOneGiB}, Step{kOneGiB, 0}, Step{kOneGiB / 2, kOneGiB / 4}, Step{8 * kOneGiB, 0}}) {
    SessionLimits limits{{}, {}, step.memory};
    limits.swapBytes = step.swap;
    Result<std::vector<fs::path>> procs = backend->prepare("s1", limits);
    ASSERT_TRUE(procs.ok()) << step.memory << "+" << step.swap << ": " << procs.error().message;
    EXPECT_EQ(trimmed(memory / "memory.limit_in_bytes"), std::to_string(step.memory));
    EXPECT_EQ(trimmed(memory / "memory.memsw.limit_in_bytes"), std::to_string(step.memory + step.swap));
  }
}

TEST_F(LimitsTest, V1WithoutPidsDevicesOrSwapAccountingSaysWhatIsMissing) {
  FakeCgroupFs::Options bare;
  bare.pidsHierarchy = false;
  bare.devicesHierarchy = false;
  bare.swapAccounting = false;
  FakeCgroupFs::buildV1Root(root(), bare);
  auto backend = detect(bare);
  ASSERT_TRUE(backend->enforcing());
  EXPECT_FALSE(backend->fencesDevices());
  EXPECT_NE(backend->describe().find("/{memory,cpuset}/bai"), std::string::npos) << backend->describe();
  for (const char* gap : {"pids not limited", "devices not fenced", "no swap accounting", "swap not limited"}) {
    EXPECT_NE(logLines_[0].find(gap), std::string::npos) << gap << " in: " << logLines_[0];
  }
  SessionLimits limits = fencedLimits(core::baseDeviceRules());
  limits.memoryBytes = kOneGiB;
  limits.swapBytes = kOneGiB;
  limits.pidsMax = 10;
  Result<std::vector<fs::path>> procs = backend->prepare("s1", limits);
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  EXPECT_EQ(procs->size(), 2u);
  EXPECT_EQ(writesIn(root() / "memory" / "bai" / "bai-s1"), std::vector<std::string>{"memory.limit_in_bytes=1073741824"});
}

TEST_F(LimitsTest, V1ReadOnlyDevicesHierarchyIsAGapNotAFailure) {
  FakeCgroupFs::buildV1Root(root(), {});
  readOnly_.push_back(root() / "devices");
  auto backend = detect();
  ASSERT_TRUE(backend->enforcing());
  EXPECT_FALSE(backend->fencesDevices());
  EXPECT_NE(logLines_[0].find("devices is not writable: devices not fenced"), std::string::npos) << logLines_[0];
}

TEST_F(LimitsTest, V2WritesPidsSwapAndAttachesTheDeviceProgram) {
  FakeCgroupFs::buildV2Root(root(), "cpuset cpu io memory pids", {});
  auto backend = detect();
  ASSERT_TRUE(backend->fencesDevices());
  EXPECT_NE(backend->describe().find("(cpuset, memory, pids, cpu, device program)"), std::string::npos)
      << backend->describe();
  SessionLimits limits = fencedLimits(core::baseDeviceRules());
  limits.memoryBytes = kOneGiB;
  limits.swapBytes = kOneGiB / 4;
  limits.pidsMax = 100;
  ASSERT_TRUE(backend->prepare("s1", limits).ok());
  fs::path session = root() / "bai" / "bai-s1";
  EXPECT_EQ(writesIn(session), (std::vector<std::string>{"memory.max=1073741824", "memory.swap.max=268435456",
                                                         "pids.max=100"}));
  ASSERT_EQ(loader_->attached.size(), 1u);
  EXPECT_EQ(loader_->attached[0].cgroupDir, session);
  Result<std::vector<bpf_insn>> expected = core::buildDeviceProgram(core::baseDeviceRules());
  ASSERT_TRUE(expected.ok());
  EXPECT_TRUE(sameProgram(loader_->attached[0].program, *expected));
}

TEST_F(LimitsTest, V2WithoutAFenceAttachesNoProgram) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory pids", {});
  auto backend = detect();
  ASSERT_TRUE(backend->prepare("s1", {{}, {}, kOneGiB}).ok());
  EXPECT_TRUE(loader_->attached.empty());
  EXPECT_EQ(trimmed(root() / "bai" / "bai-s1" / "memory.swap.max"), "0") << "no swap unless asked";
}

TEST_F(LimitsTest, V2WithoutPidsSwapOrDevicePrograms) {
  FakeCgroupFs::Options noSwap;
  noSwap.swapAccounting = false;
  FakeCgroupFs::buildV2Root(root(), "cpuset memory", noSwap);
  loader_->unavailable = "loading the device program: Operation not permitted";
  auto backend = detect(noSwap);
  ASSERT_TRUE(backend->enforcing());
  EXPECT_FALSE(backend->fencesDevices());
  for (const char* gap : {"v2 has no pids controller: pids not limited", "Operation not permitted): devices not fenced"}) {
    EXPECT_NE(logLines_[0].find(gap), std::string::npos) << gap << " in: " << logLines_[0];
  }
  SessionLimits limits = fencedLimits(core::baseDeviceRules());
  limits.memoryBytes = kOneGiB;
  limits.swapBytes = kOneGiB;
  limits.pidsMax = 10;
  ASSERT_TRUE(backend->prepare("s1", limits).ok());
  EXPECT_EQ(writesIn(root() / "bai" / "bai-s1"), std::vector<std::string>{"memory.max=1073741824"});
  EXPECT_TRUE(loader_->attached.empty());
}

TEST_F(LimitsTest, V2ProgramThatDoesNotAttachFailsThePrepareAndLeavesNothing) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory pids", {});
  loader_->attachFails = "attaching the device program: Invalid argument";
  auto backend = detect();
  Result<std::vector<fs::path>> procs = backend->prepare("s1", fencedLimits(core::baseDeviceRules()));
  ASSERT_FALSE(procs.ok());
  EXPECT_NE(procs.error().message.find("attaching the device program"), std::string::npos) << procs.error().message;
  EXPECT_FALSE(fs::exists(root() / "bai" / "bai-s1"));
}

TEST_F(LimitsTest, V2BadDeviceRuleIsRefusedBeforeAnythingLoads) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory pids", {});
  auto backend = detect();
  Result<std::vector<fs::path>> procs = backend->prepare("s1", fencedLimits({{'c', 4096, 0, "rw"}}));
  ASSERT_FALSE(procs.ok());
  EXPECT_EQ(procs.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(procs.error().message.find("major"), std::string::npos) << procs.error().message;
  EXPECT_TRUE(loader_->attached.empty());
  EXPECT_FALSE(fs::exists(root() / "bai" / "bai-s1"));
}

// ---- The CPU quota: a CFS quota over a 100 ms period ---------------------------------------

TEST_F(LimitsTest, V1CpuQuotaWritesThePeriodThenTheQuotaInTheCpuHierarchy) {
  FakeCgroupFs::Options options;
  options.cpuHierarchy = "cpu,cpuacct";  // systemd co-mounts cpu with cpuacct
  FakeCgroupFs::buildV1Root(root(), options);
  auto backend = detect(options);
  EXPECT_NE(backend->describe().find("/{memory,cpuset,pids,devices,cpu}/bai"), std::string::npos) << backend->describe();
  EXPECT_EQ(logLines_[0].find("cpu quota not enforced"), std::string::npos) << logLines_[0];
  SessionLimits limits;
  limits.cpuMillis = 2250;
  Result<std::vector<fs::path>> procs = backend->prepare("s1", limits);
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  fs::path cpu = root() / "cpu,cpuacct" / "bai" / "bai-s1";
  EXPECT_EQ(procs->back(), cpu / "cgroup.procs") << "the session joins the cpu cgroup too";
  EXPECT_EQ(writesIn(cpu), (std::vector<std::string>{"cpu.cfs_period_us=100000", "cpu.cfs_quota_us=225000"}));
  ASSERT_TRUE(backend->release("s1").ok());
  EXPECT_FALSE(fs::exists(cpu));
}

TEST_F(LimitsTest, V1CpuHierarchyWithoutAQuotaAsksKeepsTheKernelDefault) {
  FakeCgroupFs::Options options;
  options.cpuHierarchy = "cpu";
  FakeCgroupFs::buildV1Root(root(), options);
  auto backend = detect(options);
  ASSERT_TRUE(backend->prepare("s1", {{}, {}, kOneGiB}).ok());
  EXPECT_TRUE(writesIn(root() / "cpu" / "bai" / "bai-s1").empty());
  EXPECT_EQ(trimmed(root() / "cpu" / "bai" / "bai-s1" / "cpu.cfs_quota_us"), "-1");
}

TEST_F(LimitsTest, V1WithoutACpuHierarchyLogsTheQuotaAsNotEnforced) {
  FakeCgroupFs::buildV1Root(root(), {});
  auto backend = detect();
  EXPECT_NE(logLines_[0].find("is not a v1 cpu hierarchy: cpu quota not enforced"), std::string::npos) << logLines_[0];
  SessionLimits limits;
  limits.cpuMillis = 500;
  Result<std::vector<fs::path>> procs = backend->prepare("s1", limits);
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  EXPECT_EQ(procs->size(), 4u);
  EXPECT_FALSE(fs::exists(root() / "cpu"));
}

TEST_F(LimitsTest, V1ReadOnlyCpuHierarchyIsAGapNotAFailure) {
  FakeCgroupFs::Options options;
  options.cpuHierarchy = "cpu";
  FakeCgroupFs::buildV1Root(root(), options);
  readOnly_.push_back(root() / "cpu");
  auto backend = detect(options);
  ASSERT_TRUE(backend->enforcing());
  EXPECT_NE(logLines_[0].find("cpu is not writable: cpu quota not enforced"), std::string::npos) << logLines_[0];
}

TEST_F(LimitsTest, V2CpuMaxIsTheQuotaAndThePeriod) {
  FakeCgroupFs::buildV2Root(root(), "cpuset cpu memory pids", {});
  auto backend = detect();
  EXPECT_EQ(logLines_[0].find("cpu quota not enforced"), std::string::npos) << logLines_[0];
  SessionLimits limits;
  limits.cpuMillis = 500;
  ASSERT_TRUE(backend->prepare("s1", limits).ok());
  EXPECT_EQ(writesIn(root() / "bai" / "bai-s1"), std::vector<std::string>{"cpu.max=50000 100000"});
  EXPECT_TRUE(listsWordIn(root() / "bai" / "cgroup.subtree_control", "cpu"));
}

TEST_F(LimitsTest, V2WithoutTheCpuControllerLogsTheQuotaAsNotEnforced) {
  FakeCgroupFs::buildV2Root(root(), "cpuset memory pids", {});
  auto backend = detect();
  EXPECT_NE(logLines_[0].find("v2 has no cpu controller: cpu quota not enforced"), std::string::npos) << logLines_[0];
  SessionLimits limits;
  limits.cpuMillis = 500;
  ASSERT_TRUE(backend->prepare("s1", limits).ok());
  EXPECT_TRUE(writesIn(root() / "bai" / "bai-s1").empty());
}

TEST_F(LimitsTest, ACpuQuotaUnderTheKernelsMinimumIsRefusedAndLeavesNothing) {
  for (bool v2 : {false, true}) {
    fs::remove_all(root());
    FakeCgroupFs::Options options;
    options.cpuHierarchy = "cpu";
    if (v2) FakeCgroupFs::buildV2Root(root(), "cpuset cpu memory", options);
    else FakeCgroupFs::buildV1Root(root(), options);
    logLines_.clear();
    auto backend = detect(options);
    SessionLimits limits;
    limits.cpuMillis = 9;
    Result<std::vector<fs::path>> procs = backend->prepare("s1", limits);
    ASSERT_FALSE(procs.ok()) << (v2 ? "v2" : "v1");
    EXPECT_EQ(procs.error().code, ErrorCode::InvalidArgument);
    EXPECT_NE(procs.error().message.find("0.01 CPUs"), std::string::npos) << procs.error().message;
    EXPECT_FALSE(fs::exists(v2 ? root() / "bai" / "bai-s1" : root() / "cpu" / "bai" / "bai-s1"));
    EXPECT_FALSE(fs::exists(root() / "memory" / "bai" / "bai-s1"));
  }
}

// The machine's own cgroup tree: a session cgroup with a memory limit, the shim's command
// joining it, then release. Skipped where no hierarchy is writable.
TEST(RealCgroupTree, SessionJoinsItsCgroupAndReleaseRemovesIt) {
  std::string parent = "bai-test-" + std::to_string(::getpid());
  std::vector<std::string> logLines;
  auto log = [&](core::LogLevel, const std::string&, const std::string& message) { logLines.push_back(message); };
  Result<std::unique_ptr<LimitsBackend>> detected = core::detectLimitsBackend("/sys/fs/cgroup", parent, log);
  ASSERT_TRUE(detected.ok());
  LimitsBackend& backend = **detected;
  if (!backend.enforcing()) GTEST_SKIP() << backend.describe();
  std::printf("[ real tree ] %s\n", logLines.at(0).c_str());
  bool v1 = backend.describe().find("cgroup v1") != std::string::npos;
  std::vector<fs::path> parentDirs = v1 ? std::vector<fs::path>{fs::path("/sys/fs/cgroup/memory") / parent,
                                                                fs::path("/sys/fs/cgroup/cpuset") / parent}
                                        : std::vector<fs::path>{fs::path("/sys/fs/cgroup") / parent};
  struct RemoveParents {
    std::vector<fs::path> dirs;
    ~RemoveParents() {
      for (const fs::path& dir : dirs) ::rmdir(dir.c_str());
      for (const char* optional : {"pids", "devices", "cpu"}) {  // where the back end used them
        ::rmdir((fs::path("/sys/fs/cgroup") / optional / dirs.front().filename()).c_str());
      }
    }
  } removeParents{parentDirs};

  const std::string sessionId = "real-" + std::to_string(::getpid());
  const std::string cgroupName = parent + "/bai-" + sessionId;
  Result<std::vector<fs::path>> procs = backend.prepare(sessionId, {{0}, {}, 64 << 20});
  ASSERT_TRUE(procs.ok()) << procs.error().message;
  fs::path memoryLimit = v1 ? parentDirs[0] / ("bai-" + sessionId) / "memory.limit_in_bytes"
                            : parentDirs[0] / ("bai-" + sessionId) / "memory.max";
  EXPECT_EQ(trimmed(memoryLimit), std::to_string(64 << 20));

  TempDir temp;
  ExitCollector exits;
  {
    core::SessionRunner runner(shimPath(), quietLog(), exits.callback());
    core::RunSpec spec;
    spec.sessionId = sessionId;
    spec.sessionDir = temp.path() / sessionId;
    spec.command = {"cat", "/proc/self/cgroup"};
    spec.env = {{"PATH", kSessionPath}};
    spec.cgroupProcs = *procs;
    ASSERT_TRUE(runner.start(spec).ok());
    std::optional<core::ExitStatus> status = exits.waitFor(sessionId);
    ASSERT_TRUE(status);
    EXPECT_EQ(status->exitCode, 0) << status->error;
  }
  std::string membership = readText(temp.path() / sessionId / "stdout.log");
  std::printf("[ real tree ] the session's /proc/self/cgroup:\n%s", membership.c_str());
  if (v1) {
    EXPECT_NE(membership.find(":memory:/" + cgroupName + "\n"), std::string::npos) << membership;
    EXPECT_NE(membership.find(":cpuset:/" + cgroupName + "\n"), std::string::npos) << membership;
  } else {
    EXPECT_NE(membership.find("0::/" + cgroupName + "\n"), std::string::npos) << membership;
  }

  Result<void> released = backend.release(sessionId);
  ASSERT_TRUE(released.ok()) << released.error().message;
  for (const fs::path& dir : parentDirs) EXPECT_FALSE(fs::exists(dir / ("bai-" + sessionId))) << dir;
}

}  // namespace
}  // namespace bai::test
