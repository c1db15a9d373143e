// The container runtime over an engine in memory: what a container is created with, its
// output in the session's logs, exits, OOM, destroy, pull policies, an engine that is down
// or lost a container, and recovery after an agent restart.
#include "agent/container_runtime.hpp"

#include "memory_engine.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

#include <gtest/gtest.h>

#include <algorithm>

#include <unistd.h>

namespace bai::core {
namespace {

using testing::MemoryEngine;

using bai::testing::readFile;

class ContainerRuntimeTest : public ::testing::Test {
 protected:
  struct Exit {
    std::string id;
    ExitStatus status;
  };

  std::unique_ptr<ContainerRuntime> makeRuntime() {
    ContainerSettings settings;
    settings.engineSocket = "/run/test-engine.sock";
    settings.ulimits = {{"nofile", 1024, 1024}, {"nproc", 4096, 4096}};
    settings.checkInterval = std::chrono::milliseconds(100);
    ContainerRuntimeOptions options{"agent-1", settings,
                                    [this](LogLevel, const std::string&, const std::string& line) {
                                      std::lock_guard<std::mutex> lock(mutex_);
                                      log_ += line + "\n";
                                    },
                                    [this](const std::string& id, const ExitStatus& status) {
                                      std::lock_guard<std::mutex> lock(mutex_);
                                      exits_.push_back({id, status});
                                    },
                                    [this] { ++changes_; }, oomLog_,
                                    [this](const std::string& id, std::int64_t) {
                                      std::lock_guard<std::mutex> lock(mutex_);
                                      started_.push_back(id);
                                    }};
    return std::make_unique<ContainerRuntime>(std::move(options), std::make_unique<MemoryEngine>(engine_));
  }

  LaunchSpec launch(const std::string& id, std::vector<std::string> command = {"sh", "-c", "true"}) {
    LaunchSpec spec;
    spec.sessionId = id;
    spec.sessionDir = dir_.path() / id;
    std::filesystem::create_directories(spec.sessionDir / "work");
    spec.command = std::move(command);
    spec.env = {{"HOME", "/home/work"}, {"FOO", "bar"}};
    spec.owner = {200001, 200002, "tenant-a"};
    spec.isolation.sandbox.workDir = spec.sessionDir / "work";
    spec.isolation.sandbox.devices = spec.isolation.containerDevices = {{"/dev/mock0", 'c', 1, 3, "rw"}};
    spec.isolation.sandbox.mounts = spec.isolation.containerMounts = {{"/opt/data", "/data", true}};
    spec.isolation.limits.cpus = {0, 1};
    spec.isolation.limits.memoryBytes = 64u << 20;
    spec.isolation.limits.swapBytes = 0;
    spec.isolation.limits.pidsMax = 512;
    spec.image = "bai-test/busybox:1";
    return spec;
  }

  std::vector<Exit> exits() {
    std::lock_guard<std::mutex> lock(mutex_);
    return exits_;
  }
  std::vector<std::string> startedIds() {
    std::lock_guard<std::mutex> lock(mutex_);
    return started_;
  }
  std::string log() {
    std::lock_guard<std::mutex> lock(mutex_);
    return log_;
  }
  bool hasContainer(const std::string& name) {
    std::lock_guard<std::mutex> lock(engine_->mutex);
    return engine_->containers.count(name) != 0;
  }

  bai::test::TempDir dir_;
  std::shared_ptr<MemoryEngine::State> engine_ = std::make_shared<MemoryEngine::State>();
  std::mutex mutex_;
  std::vector<Exit> exits_;
  std::vector<std::string> started_;
  std::string log_;
  std::atomic<int> changes_{0};
  std::shared_ptr<KernelOomLog> oomLog_;
};

TEST(ContainerSpecFor, CarriesTheOwnerTheWorkDirDevicesLimitsAndLabels) {
  LaunchSpec spec;
  spec.sessionId = "s1";
  spec.command = {"python", "train.py"};
  spec.env = {{"HOME", "/home/work"}};
  spec.owner = {200001, 200002, "tenant-a"};
  spec.isolation.sandbox.workDir = "/var/lib/bai/agent/sessions/s1/work";
  spec.isolation.sandbox.devices = {{"/dev/nvidia0", 'c', 195, 0, "rw"}, {"/dev/acme0", 'c', 240, 0, "rw"}};
  spec.isolation.containerDevices = {{"/dev/nvidia0", 'c', 195, 0, "rw"}};  // acme0's plugin gave a CDI name
  spec.isolation.containerMounts = {{"/usr/lib/libcuda.so.1", "/usr/lib/libcuda.so.1", true}};
  spec.isolation.cdiDevices = {"acme.com/npu=0"};
  spec.isolation.limits.cpuMillis = 2500;
  spec.isolation.limits.cpus = {2, 3};
  spec.isolation.limits.mems = {0};
  spec.isolation.limits.memoryBytes = 1u << 30;
  spec.isolation.limits.swapBytes = 1u << 20;
  spec.isolation.limits.pidsMax = 4096;
  spec.image = "pytorch/pytorch:2.4";
  ContainerSettings settings;
  settings.capAdd = {"NET_BIND_SERVICE"};
  settings.readonlyRootfs = true;
  settings.network = "none";
  settings.ulimits = {{"nofile", 1024, 2048}};
  settings.ociRuntime = "runc";

  const ContainerSpec c = containerSpecFor(spec, settings, "agent-1");
  EXPECT_EQ(c.name, "bai-s1");
  EXPECT_EQ(c.image, "pytorch/pytorch:2.4");
  EXPECT_EQ(c.command, (std::vector<std::string>{"python", "train.py"}));
  EXPECT_EQ(c.user, "200001:200002") << "the session's owner, never the image's user";
  EXPECT_EQ(c.workingDir, "/home/work");
  ASSERT_EQ(c.binds.size(), 2u);
  EXPECT_EQ(c.binds[0].source, spec.isolation.sandbox.workDir);
  EXPECT_EQ(c.binds[0].target, "/home/work");
  EXPECT_FALSE(c.binds[0].readOnly);
  EXPECT_TRUE(c.binds[1].readOnly) << "a plugin's read-only mount stays read-only";
  ASSERT_EQ(c.devices.size(), 1u) << "the nodes of plugins that gave no CDI name";
  EXPECT_EQ(c.devices[0].path, "/dev/nvidia0");
  EXPECT_EQ(c.cdiDevices, std::vector<std::string>{"acme.com/npu=0"});
  EXPECT_EQ(c.nanoCpus, 2'500'000'000) << "a CPU quota of 2.5";
  EXPECT_EQ(c.cpus, (std::vector<int>{2, 3}));
  EXPECT_EQ(c.mems, (std::vector<int>{0}));
  EXPECT_EQ(c.memoryBytes, std::int64_t{1} << 30);
  EXPECT_EQ(c.memorySwapBytes, (std::int64_t{1} << 30) + (std::int64_t{1} << 20)) << "Docker counts memory + swap";
  EXPECT_EQ(c.pidsLimit, 4096);
  EXPECT_EQ(c.labels.at("ai.bai.session"), "s1");
  EXPECT_EQ(c.labels.at("ai.bai.agent"), "agent-1");
  EXPECT_EQ(c.capAdd, (std::vector<std::string>{"NET_BIND_SERVICE"}));
  EXPECT_TRUE(c.readonlyRootfs);
  EXPECT_TRUE(c.init);
  EXPECT_EQ(c.networkMode, "none");
  EXPECT_EQ(c.ociRuntime, "runc");
  ASSERT_EQ(c.ulimits.size(), 1u);
  EXPECT_EQ(c.ulimits[0].hard, 2048);
}

TEST_F(ContainerRuntimeTest, OutputGoesToTheSessionsLogsAndTheExitCodeIsReported) {
  engine_->scriptFor = [](const ContainerSpec&) {
    return MemoryEngine::Script{{{1, "hello\n"}, {2, "oops\n"}, {1, "world\n"}}, 7};
  };
  auto runtime = makeRuntime();
  EXPECT_TRUE(runtime->report().available);
  auto started = runtime->start(launch("s1"));
  ASSERT_TRUE(started.ok()) << started.error().message;
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 1; }));
  EXPECT_EQ(exits()[0].id, "s1");
  EXPECT_EQ(exits()[0].status.exitCode, 7);
  EXPECT_TRUE(exits()[0].status.recorded);
  EXPECT_TRUE(exits()[0].status.error.empty());
  EXPECT_EQ(readFile(dir_.path() / "s1" / "stdout.log"), "hello\nworld\n");
  EXPECT_EQ(readFile(dir_.path() / "s1" / "stderr.log"), "oops\n");
  EXPECT_TRUE(bai::testing::eventually([&] { return !hasContainer("bai-s1"); })) << "removed once its end is reported";
}

TEST_F(ContainerRuntimeTest, AMissingImageWithPullPolicyNeverFailsTheSessionNamingImageAndAgent) {
  auto runtime = makeRuntime();
  auto spec = launch("s1");
  spec.image = "pytorch/pytorch:2.4";
  auto started = runtime->start(spec);
  ASSERT_FALSE(started.ok());
  EXPECT_EQ(started.error().code, ErrorCode::NotFound) << "the session's failure, not the agent's";
  EXPECT_EQ(started.error().message, "image pytorch/pytorch:2.4 not present on agent agent-1; pull policy never");
  EXPECT_EQ(engine_->created, 0);
}

TEST_F(ContainerRuntimeTest, AnImageToPullIsPulledWhilePreparingThenRunsOrFailsSayingWhy) {
  engine_->pullable = {"acme/tool:1"};
  auto runtime = makeRuntime();
  const int changesBefore = changes_;
  auto spec = launch("s1");
  spec.image = "acme/tool:1";
  spec.pullPolicy = protocol::PullPolicy::IfMissing;
  auto started = runtime->start(spec);
  ASSERT_TRUE(started.ok()) << started.error().message;
  EXPECT_EQ(*started, kStillPreparing) << "the RPC answers at once; the pull goes on";
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 1; }));
  EXPECT_EQ(startedIds(), std::vector<std::string>{"s1"}) << "it ran after its pull";
  EXPECT_EQ(exits()[0].status.exitCode, 0);
  EXPECT_GT(changes_.load(), changesBefore) << "a pulled image is reported";
  auto images = runtime->images();
  EXPECT_TRUE(std::any_of(images.begin(), images.end(), [](const auto& i) { return i.name == "localhost/acme/tool:1"; }));

  auto missing = launch("s2");
  missing.image = "acme/absent:1";
  missing.pullPolicy = protocol::PullPolicy::IfMissing;
  ASSERT_EQ(*runtime->start(missing), kStillPreparing);
  auto always = launch("s3");
  always.pullPolicy = protocol::PullPolicy::Always;  // bai-test/busybox:1 is present but not pullable
  ASSERT_EQ(*runtime->start(always), kStillPreparing) << "always pulls, even an image the engine has";
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 3; }));
  for (const Exit& exit : exits()) {
    if (exit.id == "s1") continue;
    EXPECT_FALSE(exit.status.recorded) << exit.id;
    EXPECT_NE(exit.status.error.find("on agent agent-1 failed: "), std::string::npos) << exit.status.error;
    EXPECT_NE(exit.status.error.find("manifest unknown"), std::string::npos) << exit.status.error;
  }
  EXPECT_EQ(startedIds().size(), 1u);
}

TEST_F(ContainerRuntimeTest, ASessionDestroyedWhileItsImageIsPulledNeverRuns) {
  engine_->pullable = {"acme/tool:1"};
  engine_->pullTakes = std::chrono::milliseconds(300);
  auto runtime = makeRuntime();
  auto spec = launch("s1");
  spec.image = "acme/tool:1";
  spec.pullPolicy = protocol::PullPolicy::IfMissing;
  ASSERT_EQ(*runtime->start(spec), kStillPreparing);
  ASSERT_TRUE(runtime->destroy("s1", std::chrono::milliseconds(100)).ok());
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 1; }));
  EXPECT_EQ(exits()[0].status.exitCode, 128 + SIGTERM);
  EXPECT_TRUE(startedIds().empty());
  std::lock_guard<std::mutex> lock(engine_->mutex);
  EXPECT_EQ(engine_->created, 0) << "no container for a session destroyed before it ran";
}

TEST_F(ContainerRuntimeTest, TheOomKillerEndingAContainerIsAFailureNamingTheLimit) {
  engine_->scriptFor = [](const ContainerSpec&) {
    MemoryEngine::Script script;
    script.oom = true;
    return script;
  };
  auto runtime = makeRuntime();
  ASSERT_TRUE(runtime->start(launch("hog")).ok());
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 1; }));
  EXPECT_EQ(exits()[0].status.exitCode, 137);
  EXPECT_EQ(exits()[0].status.error,
            "out of memory: the kernel's OOM killer ended the container at its memory limit (67108864 bytes)");
}

constexpr const char* kOomRecord =
    "3,1957,23602388603,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=libpod-836ff5,mems_allowed=0,"
    "oom_memcg=/libpod_parent/libpod-836ff5b7c274,task_memcg=/libpod_parent/libpod-836ff5b7c274,task=tail,pid=11257,uid=0";

TEST(KernelOomLog, ReadsTheCgroupsOfOomKillRecordsOnly) {
  auto cgroups = oomKillCgroups(kOomRecord);
  ASSERT_TRUE(cgroups.has_value());
  EXPECT_EQ(cgroups->first, "/libpod_parent/libpod-836ff5b7c274");
  EXPECT_EQ(cgroups->second, "/libpod_parent/libpod-836ff5b7c274");
  EXPECT_FALSE(oomKillCgroups("6,1958,23602388624,-;Memory cgroup out of memory: Killed process 11257 (tail)"));
  EXPECT_FALSE(oomKillCgroups("no record at all"));
}

// A pipe stands in for /dev/kmsg: records written to it arrive as the kernel's would.
struct FakeKernelLog {
  int fds[2] = {-1, -1};
  FakeKernelLog() { EXPECT_EQ(::pipe(fds), 0); }
  ~FakeKernelLog() {
    ::close(fds[0]);
    ::close(fds[1]);
  }
  std::filesystem::path path() const { return "/proc/self/fd/" + std::to_string(fds[0]); }
  void write(const std::string& record) {
    const std::string line = record + "\n";
    EXPECT_EQ(::write(fds[1], line.data(), line.size()), static_cast<ssize_t>(line.size()));
  }
};

TEST(KernelOomLog, SaysWhetherTheOomKillerActedInAContainersCgroup) {
  FakeKernelLog kernel;
  KernelOomLog log(kernel.path());
  ASSERT_TRUE(log.available());
  EXPECT_FALSE(log.killedIn("836ff5b7c274", std::chrono::milliseconds(50)));
  kernel.write("6,1,1,-;an unrelated line");
  kernel.write(kOomRecord);
  EXPECT_TRUE(log.killedIn("836ff5b7c274", std::chrono::seconds(5)));
  EXPECT_FALSE(log.killedIn("aaaaaaaaaaaa", std::chrono::milliseconds(50)));
  EXPECT_FALSE(KernelOomLog("/nonexistent/kmsg").available());
}

TEST_F(ContainerRuntimeTest, AnEngineThatLosesOomKilledIsCorrectedByTheKernelsLog) {
  FakeKernelLog kernel;
  oomLog_ = std::make_shared<KernelOomLog>(kernel.path());
  engine_->scriptFor = [](const ContainerSpec&) {
    MemoryEngine::Script script;
    script.exitCode = std::nullopt;
    return script;
  };
  auto runtime = makeRuntime();
  ASSERT_TRUE(runtime->start(launch("hog")).ok());
  ASSERT_TRUE(runtime->start(launch("killed")).ok());
  kernel.write("3,1,1,-;oom-kill:constraint=CONSTRAINT_MEMCG,oom_memcg=/libpod_parent/libpod-bai-hog,"
               "task_memcg=/libpod_parent/libpod-bai-hog,task=tail,pid=1,uid=200001");
  MemoryEngine::exit(*engine_, "bai-hog", 137);     // State.OOMKilled false, as Podman 4.3 says
  MemoryEngine::exit(*engine_, "bai-killed", 137);  // kill -9 from inside: not memory
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 2; }));
  for (const Exit& exit : exits()) {
    EXPECT_EQ(exit.status.exitCode, 137);
    if (exit.id == "hog") EXPECT_NE(exit.status.error.find("out of memory"), std::string::npos);
    else EXPECT_EQ(exit.status.error, "") << "a SIGKILL that is not the OOM killer's is a plain exit";
  }
}

TEST_F(ContainerRuntimeTest, DestroySendsSigtermThenSigkillAfterTheGrace) {
  engine_->scriptFor = [](const ContainerSpec&) {
    MemoryEngine::Script script;
    script.exitCode = std::nullopt;
    script.ignoreTerm = true;
    return script;
  };
  auto runtime = makeRuntime();
  ASSERT_TRUE(runtime->start(launch("s1")).ok());
  const auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(runtime->destroy("s1", std::chrono::milliseconds(200)).ok());
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 1; }));
  EXPECT_GE(std::chrono::steady_clock::now() - before, std::chrono::milliseconds(200)) << "not before the grace";
  EXPECT_EQ(exits()[0].status.exitCode, 137);
  EXPECT_EQ(exits()[0].status.signal, SIGKILL);
  std::lock_guard<std::mutex> lock(engine_->mutex);
  EXPECT_NE(std::find(engine_->calls.begin(), engine_->calls.end(), "kill bai-s1 15"), engine_->calls.end());
  EXPECT_NE(std::find(engine_->calls.begin(), engine_->calls.end(), "kill bai-s1 9"), engine_->calls.end());
}

TEST_F(ContainerRuntimeTest, AStartTheEngineRefusesIsTheSessionsFailureAndLeavesNoContainer) {
  auto runtime = makeRuntime();
  auto refused = runtime->start(launch("s1", {"no-such-command"}));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(refused.error().message.find("executable file not found"), std::string::npos);
  EXPECT_FALSE(hasContainer("bai-s1"));
}

TEST_F(ContainerRuntimeTest, AnEngineThatIsDownMakesTheRuntimeUnavailableUntilItIsBack) {
  engine_->down = true;
  auto runtime = makeRuntime();
  auto report = runtime->report();
  EXPECT_FALSE(report.available);
  EXPECT_NE(report.reason.find("container engine at /run/test-engine.sock is unreachable"), std::string::npos);
  EXPECT_NE(log().find("container runtime unavailable"), std::string::npos) << "a clear log line";
  auto refused = runtime->start(launch("s1"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::Internal) << "the agent's failure: another agent may take it";

  {
    std::lock_guard<std::mutex> lock(engine_->mutex);
    engine_->down = false;
  }
  EXPECT_TRUE(bai::testing::eventually([&] { return runtime->report().available; })) << "the periodic check finds it up";
  EXPECT_GE(changes_.load(), 1);
}

TEST_F(ContainerRuntimeTest, AfterARestartItCatchesUpOutputWithoutRepeatingItAndReportsTheExit) {
  engine_->scriptFor = [](const ContainerSpec&) {
    MemoryEngine::Script script;
    script.output = {{1, "one\n"}};
    script.exitCode = std::nullopt;
    return script;
  };
  {
    auto first = makeRuntime();
    ASSERT_TRUE(first->start(launch("s1")).ok());
    ASSERT_TRUE(bai::testing::eventually([&] { return readFile(dir_.path() / "s1" / "stdout.log") == "one\n"; }));
  }  // the agent stops: the container runs on
  ASSERT_TRUE(hasContainer("bai-s1"));
  MemoryEngine::emit(*engine_, "bai-s1", 1, "two\n");  // written while no agent listened
  auto second = makeRuntime();
  ASSERT_TRUE(second->adopt("s1", dir_.path() / "s1").ok());
  MemoryEngine::emit(*engine_, "bai-s1", 2, "three\n");
  ASSERT_TRUE(bai::testing::eventually([&] { return readFile(dir_.path() / "s1" / "stderr.log") == "three\n"; }));
  MemoryEngine::exit(*engine_, "bai-s1", 3);
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 1; }));
  EXPECT_EQ(exits()[0].status.exitCode, 3);
  EXPECT_EQ(readFile(dir_.path() / "s1" / "stdout.log"), "one\ntwo\n") << "nothing twice, nothing lost";
}

TEST_F(ContainerRuntimeTest, AStreamThatBreaksWhileTheContainerRunsIsFollowedAgainFromTheEnginesLog) {
  engine_->scriptFor = [](const ContainerSpec&) {
    MemoryEngine::Script script;
    script.output = {{1, "before\n"}};
    script.exitCode = std::nullopt;
    return script;
  };
  auto runtime = makeRuntime();
  ASSERT_TRUE(runtime->start(launch("s1")).ok());
  MemoryEngine::breakAttach(*engine_, "bai-s1");
  MemoryEngine::emit(*engine_, "bai-s1", 1, "after\n");
  ASSERT_TRUE(bai::testing::eventually([&] { return readFile(dir_.path() / "s1" / "stdout.log") == "before\nafter\n"; }));
  EXPECT_TRUE(exits().empty()) << "a broken stream is not an exit";
  MemoryEngine::exit(*engine_, "bai-s1", 0);
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 1; }));
  EXPECT_EQ(exits()[0].status.exitCode, 0);
  EXPECT_EQ(readFile(dir_.path() / "s1" / "stdout.log"), "before\nafter\n");
}

TEST_F(ContainerRuntimeTest, AContainerTheEngineLostEndsItsSessionWithTheReason) {
  auto runtime = makeRuntime();
  std::filesystem::create_directories(dir_.path() / "gone");
  ASSERT_TRUE(runtime->adopt("gone", dir_.path() / "gone").ok());
  ASSERT_TRUE(bai::testing::eventually([&] { return exits().size() == 1; }));
  EXPECT_FALSE(exits()[0].status.recorded);
  EXPECT_NE(exits()[0].status.error.find("its container bai-gone is gone from the engine"), std::string::npos);
}

TEST_F(ContainerRuntimeTest, SweepRemovesContainersOfSessionsItDoesNotRunAndOnlyThisAgents) {
  auto runtime = makeRuntime();
  auto create = [&](const std::string& name, const std::string& session, const std::string& agent) {
    std::lock_guard<std::mutex> lock(engine_->mutex);
    MemoryEngine::Container c;
    c.spec.name = name;
    c.spec.labels = {{"ai.bai.session", session}, {"ai.bai.agent", agent}};
    c.status = "running";
    engine_->containers[name] = c;
  };
  create("bai-live", "live", "agent-1");
  create("bai-stale", "stale", "agent-1");
  create("bai-other", "other", "agent-2");
  runtime->sweep({"live"});
  EXPECT_TRUE(hasContainer("bai-live"));
  EXPECT_FALSE(hasContainer("bai-stale"));
  EXPECT_TRUE(hasContainer("bai-other")) << "another agent's container is not ours to remove";
  EXPECT_NE(log().find("removed container bai-stale"), std::string::npos);
}

}  // namespace
}  // namespace bai::core
