// SessionRunner with the real shim: exit reporting, reaping under load, destroy with its
// grace period, adopt after an agent "restart", CPU affinity.
#include "runtime_test_support.hpp"

#include "runtime/session_files.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <memory>
#include <sys/stat.h>
#include <sys/wait.h>

namespace bai::test {
namespace {

using core::ExitStatus;
using core::RunSpec;
using core::SessionRunner;

class SessionRunnerTest : public ::testing::Test {
 protected:
  SessionRunnerTest() : runner_(std::make_unique<SessionRunner>(shimPath(), quietLog(), exits_.callback())) {}

  RunSpec spec(const std::string& sessionId, std::vector<std::string> command) const {
    RunSpec spec;
    spec.sessionId = sessionId;
    spec.sessionDir = temp_.path() / sessionId;
    spec.command = std::move(command);
    spec.env = {{"PATH", kSessionPath}};
    return spec;
  }

  std::filesystem::path dirOf(const std::string& sessionId) const { return temp_.path() / sessionId; }

  // The same session in a sandbox, as nobody, with a work dir of its own.
  RunSpec sandboxed(RunSpec spec) const {
    const std::filesystem::path work = temp_.path() / (spec.sessionId + "-work");
    std::filesystem::create_directory(work);
    EXPECT_EQ(::chown(work.c_str(), 65534, 65534), 0);
    spec.runAs = std::make_pair(uid_t{65534}, gid_t{65534});
    spec.sandbox = core::Sandbox{};
    spec.sandbox->workDir = work;
    return spec;
  }

  pid_t commandGroupOf(const std::string& sessionId) const {
    pid_t group = 0;
    waitUntil([&] {
      Result<core::session_files::CommandIds> ids =
          core::session_files::parseCommandIds(readText(dirOf(sessionId) / "command.pid"));
      if (ids.ok()) group = ids->pgid;
      return ids.ok();
    });
    return group;
  }

  bool waitForOutput(const std::string& sessionId, const std::string& text) const {
    return waitUntil([&] { return readText(dirOf(sessionId) / "stdout.log").find(text) != std::string::npos; });
  }

  TempDir temp_;
  ExitCollector exits_;
  std::unique_ptr<SessionRunner> runner_;
};

TEST_F(SessionRunnerTest, ReportsTheExitCodeOnce) {
  Result<std::int64_t> shim = runner_->start(spec("s1", {"sh", "-c", "exit 5"}));
  ASSERT_TRUE(shim.ok()) << shim.error().message;
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->recorded);
  EXPECT_EQ(status->exitCode, 5);
  EXPECT_FALSE(status->signal);
  EXPECT_TRUE(status->error.empty()) << status->error;
  EXPECT_GT(status->endedAtMillis, 0);
  EXPECT_EQ(exits_.reportsFor("s1"), 1u);
  EXPECT_EQ(runner_->watchedCount(), 0u);

  auto identity = core::session_files::parseShimIdentity(readText(dirOf("s1") / "shim.json"));
  ASSERT_TRUE(identity.ok());
  EXPECT_EQ(identity->pid, *shim);
}

TEST_F(SessionRunnerTest, ACommandThatCannotRunIsReportedWithTheReason) {
  ASSERT_TRUE(runner_->start(spec("s1", {"bai-no-such-command"})).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->recorded);
  EXPECT_EQ(status->exitCode, 127);
  EXPECT_NE(status->error.find("bai-no-such-command"), std::string::npos) << status->error;
}

TEST_F(SessionRunnerTest, RefusesBadRequests) {
  EXPECT_EQ(runner_->start(spec("", {"true"})).error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(runner_->start(spec("s1", {})).error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(runner_->destroy("unknown", std::chrono::seconds(1)).error().code, ErrorCode::NotFound);

  ASSERT_TRUE(runner_->start(spec("s1", {"sleep", "100"})).ok());
  EXPECT_EQ(runner_->start(spec("s1", {"true"})).error().code, ErrorCode::Conflict);
  EXPECT_EQ(runner_->adopt("s1", dirOf("s1")).error().code, ErrorCode::Conflict);
  ASSERT_TRUE(runner_->destroy("s1", std::chrono::milliseconds(0)).ok());
  ASSERT_TRUE(exits_.waitFor("s1"));
  EXPECT_EQ(exits_.waitFor("s1")->signal, SIGKILL);
}

TEST_F(SessionRunnerTest, AMissingShimIsAnError) {
  SessionRunner broken("/nonexistent/bai-session-shim", quietLog(), exits_.callback());
  Result<std::int64_t> shim = broken.start(spec("s1", {"true"}));
  ASSERT_FALSE(shim.ok());
  EXPECT_NE(shim.error().message.find("No such file"), std::string::npos) << shim.error().message;
  EXPECT_EQ(broken.watchedCount(), 0u);
}

TEST_F(SessionRunnerTest, ManySessionsFromSeveralThreadsAreAllReapedOnce) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> starters;
  for (int t = 0; t < kThreads; ++t) {
    starters.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!runner_->start(spec("t" + std::to_string(t) + "-" + std::to_string(i), {"true"})).ok()) ++failures;
      }
    });
  }
  for (std::thread& starter : starters) starter.join();
  ASSERT_EQ(failures.load(), 0);
  ASSERT_TRUE(exits_.waitForTotal(kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      std::string sessionId = "t" + std::to_string(t) + "-" + std::to_string(i);
      ASSERT_EQ(exits_.reportsFor(sessionId), 1u) << sessionId;
      EXPECT_EQ(exits_.waitFor(sessionId)->exitCode, 0) << sessionId;
    }
  }
  EXPECT_EQ(exits_.total(), static_cast<std::size_t>(kThreads * kPerThread));
  EXPECT_EQ(zombieChildren(), std::vector<pid_t>{});
  EXPECT_EQ(runner_->watchedCount(), 0u);
}

TEST_F(SessionRunnerTest, DestroyKillsTheCommandAndItsChildren) {
  ASSERT_TRUE(runner_->start(spec("s1", {"sh", "-c", "sleep 100 & sleep 100; wait"})).ok());
  pid_t group = commandGroupOf("s1");
  ASSERT_GT(group, 0);
  ASSERT_TRUE(waitUntil([&] { return groupMembers(group).size() == 3; })) << "sh and two sleeps never ran";

  auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(runner_->destroy("s1", std::chrono::seconds(30)).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(10)) << "waited for the grace period";
  EXPECT_EQ(status->signal, SIGTERM);
  EXPECT_EQ(status->exitCode, 128 + SIGTERM);
  EXPECT_EQ(::kill(-group, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST_F(SessionRunnerTest, DestroyRightAfterStartStillStopsTheCommand) {
  ASSERT_TRUE(runner_->start(spec("s1", {"sleep", "100"})).ok());
  ASSERT_TRUE(runner_->destroy("s1", std::chrono::seconds(30)).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->signal, SIGTERM);
}

TEST_F(SessionRunnerTest, ACommandThatHandlesTermExitsWithItsOwnCodeWithinTheGrace) {
  ASSERT_TRUE(runner_->start(spec("s1", {"sh", "-c", "trap 'exit 7' TERM; echo ready; while :; do sleep 0.05; done"})).ok());
  ASSERT_TRUE(waitForOutput("s1", "ready"));
  auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(runner_->destroy("s1", std::chrono::seconds(30)).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(10));
  EXPECT_EQ(status->exitCode, 7);
  EXPECT_FALSE(status->signal);
}

TEST_F(SessionRunnerTest, ACommandThatIgnoresTermIsKilledAfterTheGrace) {
  ASSERT_TRUE(runner_->start(spec("s1", {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"})).ok());
  ASSERT_TRUE(waitForOutput("s1", "ready"));
  constexpr std::chrono::milliseconds kGrace{300};
  auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(runner_->destroy("s1", kGrace).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  auto elapsed = std::chrono::steady_clock::now() - before;
  ASSERT_TRUE(status);
  EXPECT_EQ(status->signal, SIGKILL);
  EXPECT_EQ(status->exitCode, 128 + SIGKILL);
  EXPECT_GE(elapsed, kGrace);
  EXPECT_LT(elapsed, kGrace + std::chrono::seconds(5));
}

TEST_F(SessionRunnerTest, CpuAffinityIsApplied) {
  cpu_set_t allowed;
  ASSERT_EQ(::sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int cpu = CPU_SETSIZE - 1;
  while (cpu >= 0 && !CPU_ISSET(cpu, &allowed)) --cpu;  // the highest CPU we may use
  ASSERT_GE(cpu, 0);
  RunSpec pinned = spec("s1", {"grep", "Cpus_allowed_list", "/proc/self/status"});
  pinned.cpus = {cpu};
  ASSERT_TRUE(runner_->start(pinned).ok());
  ASSERT_TRUE(exits_.waitFor("s1"));
  EXPECT_EQ(readText(dirOf("s1") / "stdout.log"), "Cpus_allowed_list:\t" + std::to_string(cpu) + "\n");
}

TEST_F(SessionRunnerTest, ASandboxedSessionRunsInItsWorkDirWithItsAffinity) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  cpu_set_t allowed;
  ASSERT_EQ(::sched_getaffinity(0, sizeof allowed, &allowed), 0);
  int cpu = CPU_SETSIZE - 1;
  while (cpu >= 0 && !CPU_ISSET(cpu, &allowed)) --cpu;
  RunSpec run = sandboxed(spec("s1", {"sh", "-c", "pwd; echo $$; grep Cpus_allowed_list /proc/self/status; exit 4"}));
  run.cpus = {cpu};
  ASSERT_TRUE(runner_->start(run).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exitCode, 4) << status->error;
  EXPECT_EQ(readText(dirOf("s1") / "stdout.log"),
            "/home/work\n2\nCpus_allowed_list:\t" + std::to_string(cpu) + "\n");
}

TEST_F(SessionRunnerTest, DestroyStopsASandboxedSessionWithinTheGrace) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  ASSERT_TRUE(runner_->start(sandboxed(spec("s1", {"sh", "-c", "echo ready; sleep 100 & sleep 100; wait"}))).ok());
  ASSERT_TRUE(waitForOutput("s1", "ready"));
  auto before = std::chrono::steady_clock::now();
  ASSERT_TRUE(runner_->destroy("s1", std::chrono::seconds(30)).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_LT(std::chrono::steady_clock::now() - before, std::chrono::seconds(10)) << "waited for the grace period";
  EXPECT_EQ(status->signal, SIGTERM);
  EXPECT_EQ(status->exitCode, 128 + SIGTERM);
}

TEST_F(SessionRunnerTest, ASandboxedSessionThatIgnoresTermIsKilledAfterTheGrace) {
  if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root";
  ASSERT_TRUE(runner_->start(sandboxed(spec("s1", {"sh", "-c", "trap '' TERM; echo ready; while :; do sleep 0.05; done"})))
                  .ok());
  ASSERT_TRUE(waitForOutput("s1", "ready"));
  ASSERT_TRUE(runner_->destroy("s1", std::chrono::milliseconds(300)).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->signal, SIGKILL);
  EXPECT_EQ(status->exitCode, 128 + SIGKILL);
}

TEST_F(SessionRunnerTest, TheCallbackMayCallTheRunner) {
  std::atomic<bool> destroyRefused{false};
  ExitCollector exits;
  std::unique_ptr<SessionRunner> runner;
  auto callback = exits.callback();
  runner = std::make_unique<SessionRunner>(shimPath(), quietLog(), [&](const std::string& id, const ExitStatus& status) {
    destroyRefused = runner->destroy(id, std::chrono::seconds(1)).error().code == ErrorCode::NotFound;
    callback(id, status);
  });
  ASSERT_TRUE(runner->start(spec("s1", {"true"})).ok());
  ASSERT_TRUE(exits.waitFor("s1"));
  EXPECT_TRUE(destroyRefused);
}

// An agent killed between spawning a shim and recording it in shim.json left a command
// running that its next process could neither watch nor stop: it reported the session as
// failed ("the shim is gone") and gave its devices to others while the command ran. The
// runner hands the session over to the shim (a byte on its descriptor 3, named as its
// second argument) only once shim.json is written; the shim runs nothing before that.
// Here a stand-in shim notes what it was handed, and when.
TEST_F(SessionRunnerTest, TheShimIsHandedTheSessionOnlyOnceItIsRecorded) {
  const std::filesystem::path standIn = temp_.path() / "stand-in-shim";
  {
    std::ofstream script(standIn);
    script << "#!/bin/sh\n"
           << "if [ \"$2\" = 3 ] && [ \"$(head -c1 <&3)\" = 1 ] && [ -e \"$1/shim.json\" ]; then\n"
           << "  echo handed-over-after-recording > \"$1/handover\"\n"
           << "else\n"
           << "  echo \"no handover (argument '$2')\" > \"$1/handover\"\n"
           << "fi\n"
           << "printf '{\"exit_code\":0,\"ended_at_ms\":1}' > \"$1/exit.json\"\n";
  }
  std::filesystem::permissions(standIn, std::filesystem::perms::owner_all);
  runner_ = std::make_unique<SessionRunner>(standIn, quietLog(), exits_.callback());
  ASSERT_TRUE(runner_->start(spec("s1", {"true"})).ok());
  ASSERT_TRUE(exits_.waitFor("s1"));
  EXPECT_EQ(readText(dirOf("s1") / "handover"), "handed-over-after-recording\n");
}

TEST_F(SessionRunnerTest, AShimThatDiesIsReportedAsUnrecorded) {
  Result<std::int64_t> shim = runner_->start(spec("s1", {"sleep", "100"}));
  ASSERT_TRUE(shim.ok());
  pid_t group = commandGroupOf("s1");
  ASSERT_GT(group, 0);
  ::kill(static_cast<pid_t>(*shim), SIGKILL);
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ::kill(-group, SIGKILL);  // the orphaned command
  ASSERT_TRUE(status);
  EXPECT_FALSE(status->recorded);
  EXPECT_EQ(status->exitCode, -1);
  EXPECT_NE(status->error.find("killed by signal 9"), std::string::npos) << status->error;
  EXPECT_EQ(zombieChildren(), std::vector<pid_t>{});
}

// A FIFO the session's command blocks on until the test lets it go.
class Gate {
 public:
  explicit Gate(std::filesystem::path path) : path_(std::move(path)) { ::mkfifo(path_.c_str(), 0600); }
  const std::filesystem::path& path() const { return path_; }
  // Opening for writing fails (ENXIO) until the command has opened it for reading.
  bool open() const {
    int fd = -1;
    bool opened = waitUntil([&] { return (fd = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC)) >= 0; });
    if (!opened) return false;
    (void)!::write(fd, "go\n", 3);
    ::close(fd);
    return true;
  }

 private:
  std::filesystem::path path_;
};

TEST_F(SessionRunnerTest, AdoptAfterRestartWatchesTheRunningSession) {
  Gate gate(temp_.path() / "gate");
  ASSERT_TRUE(runner_->start(spec("s1", {"sh", "-c", "read line < \"$0\"; exit 4", gate.path().string()})).ok());
  ASSERT_GT(commandGroupOf("s1"), 0);
  runner_.reset();  // the agent goes down; the session keeps running

  ExitCollector afterRestart;
  SessionRunner restarted(shimPath(), quietLog(), afterRestart.callback());
  ASSERT_TRUE(restarted.adopt("s1", dirOf("s1")).ok());
  EXPECT_EQ(restarted.watchedCount(), 1u);
  ASSERT_TRUE(gate.open());
  std::optional<ExitStatus> status = afterRestart.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->recorded);
  EXPECT_EQ(status->exitCode, 4);
  EXPECT_EQ(exits_.total(), 0u);
  EXPECT_EQ(zombieChildren(), std::vector<pid_t>{});
}

TEST_F(SessionRunnerTest, AdoptReportsASessionThatEndedWhileTheAgentWasDown) {
  Gate gate(temp_.path() / "gate");
  Result<std::int64_t> shim =
      runner_->start(spec("s1", {"sh", "-c", "read line < \"$0\"; exit 9", gate.path().string()}));
  ASSERT_TRUE(shim.ok());
  ASSERT_GT(commandGroupOf("s1"), 0);
  runner_.reset();
  ASSERT_TRUE(gate.open());
  ASSERT_TRUE(waitUntil([&] { return std::filesystem::exists(dirOf("s1") / "exit.json"); }));
  ::waitpid(static_cast<pid_t>(*shim), nullptr, 0);  // as init would, for a shim of a dead agent

  ExitCollector afterRestart;
  SessionRunner restarted(shimPath(), quietLog(), afterRestart.callback());
  ASSERT_TRUE(restarted.adopt("s1", dirOf("s1")).ok());
  std::optional<ExitStatus> status = afterRestart.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->recorded);
  EXPECT_EQ(status->exitCode, 9);
  EXPECT_EQ(afterRestart.reportsFor("s1"), 1u);
}

TEST_F(SessionRunnerTest, AdoptWithoutAnyRecordReportsAnUnknownStatus) {
  std::filesystem::create_directories(dirOf("s1"));
  ASSERT_TRUE(runner_->adopt("s1", dirOf("s1")).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_FALSE(status->recorded);
  EXPECT_FALSE(status->error.empty());
}

TEST_F(SessionRunnerTest, AdoptDoesNotMistakeAReusedPidForTheShim) {
  // shim.json names a live process (this test) whose start time does not match.
  Result<core::ProcessStat> self = core::readProcessStat(::getpid());
  ASSERT_TRUE(self.ok());
  std::filesystem::create_directories(dirOf("s1"));
  ASSERT_TRUE(core::writeFileAtomically(dirOf("s1") / "shim.json",
                                        core::session_files::renderShimIdentity({::getpid(), self->startTime + 1}))
                  .ok());
  ASSERT_TRUE(core::writeFileAtomically(dirOf("s1") / "exit.json",
                                        core::session_files::renderRecordedExit({3, std::nullopt, 1, ""}))
                  .ok());
  ASSERT_TRUE(runner_->adopt("s1", dirOf("s1")).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1", std::chrono::seconds(5));
  ASSERT_TRUE(status) << "the live pid was adopted as the shim";
  EXPECT_TRUE(status->recorded);
  EXPECT_EQ(status->exitCode, 3);
}

TEST_F(SessionRunnerTest, AnUnusableStartIsReportedThroughOnExit) {
  RunSpec unusable = spec("s1", {"true"});
  unusable.cwd = temp_.path() / "missing";
  ASSERT_TRUE(runner_->start(unusable).ok());
  std::optional<ExitStatus> status = exits_.waitFor("s1");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->exitCode, 126);
  EXPECT_NE(status->error.find("missing"), std::string::npos) << status->error;
}

}  // namespace
}  // namespace bai::test
