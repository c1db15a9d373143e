// bai-session-shim run on its own, with spec.json files written by hand: checks the
// documented file formats from the shim's side, independently of SessionRunner.
#include "runtime_test_support.hpp"

#include "clock.hpp"
#include "runtime/session_files.hpp"

#include <nlohmann/json.hpp>

#include <csignal>
#include <fcntl.h>
#include <set>
#include <spawn.h>
#include <sstream>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char** environ;

namespace bai::test {
namespace {

using nlohmann::json;
namespace files = core::session_files;

std::set<std::string> lines(const std::string& text) {
  std::set<std::string> result;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) result.insert(line);
  return result;
}

class ShimTest : public ::testing::Test {
 protected:
  std::filesystem::path dir() const { return temp_.path(); }

  json baseSpec(std::vector<std::string> command) const {
    return {{"command", std::move(command)},
            {"env", {{"PATH", kSessionPath}}},
            {"stdout", "stdout.log"},
            {"stderr", (dir() / "stderr.log").string()}};
  }

  void writeSpec(const json& spec) const { writeSpecText(spec.dump()); }
  void writeSpecText(const std::string& text) const {
    ASSERT_TRUE(core::writeFileAtomically(dir() / "spec.json", text).ok());
  }

  // Runs the shim as the agent would (stdout/stderr to shim.log); returns its wait status.
  // `handover`, when given, becomes the shim's descriptor 3.
  int runShim(std::vector<std::string> args = {}, int handover = -1) const {
    if (args.empty()) args = {dir().string()};
    std::string program = shimPath().string();
    std::vector<char*> argv{program.data()};
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    int logFd = ::open((dir() / "shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, logFd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, logFd, STDERR_FILENO);
    if (handover >= 0) posix_spawn_file_actions_adddup2(&actions, handover, 3);
    posix_spawn_file_actions_addclosefrom_np(&actions, handover >= 0 ? 4 : STDERR_FILENO + 1);
    pid_t pid = 0;
    int error = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(logFd);
    EXPECT_EQ(error, 0);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return status;
  }

  json exitRecord() const { return json::parse(readText(dir() / "exit.json")); }
  std::string stdoutLog() const { return readText(dir() / "stdout.log"); }
  std::string stderrLog() const { return readText(dir() / "stderr.log"); }
  std::string shimLog() const { return readText(dir() / "shim.log"); }

  void runExpectingRecord() const {
    int status = runShim();
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "shim.log: " << shimLog();
    ASSERT_TRUE(std::filesystem::exists(dir() / "exit.json"));
  }

 private:
  TempDir temp_;
};

TEST_F(ShimTest, RecordsASuccessfulCommand) {
  writeSpec(baseSpec({"true"}));
  std::int64_t before = nowMillis();
  runExpectingRecord();
  json record = exitRecord();
  EXPECT_EQ(record["exit_code"], 0);
  EXPECT_FALSE(record.contains("signal"));
  EXPECT_FALSE(record.contains("error"));
  EXPECT_GE(record["ended_at_ms"].get<std::int64_t>(), before);
  EXPECT_LE(record["ended_at_ms"].get<std::int64_t>(), nowMillis());

  std::istringstream ids(readText(dir() / "command.pid"));
  pid_t pid = 0;
  pid_t group = 0;
  ASSERT_TRUE(ids >> pid >> group);
  EXPECT_GT(pid, 0);
  EXPECT_EQ(group, pid);
}

TEST_F(ShimTest, RecordsTheCommandsExitCode) {
  writeSpec(baseSpec({"sh", "-c", "exit 3"}));
  runExpectingRecord();
  EXPECT_EQ(exitRecord()["exit_code"], 3);
}

TEST_F(ShimTest, MissingCommandExits127WithTheReason) {
  writeSpec(baseSpec({"bai-no-such-command"}));
  runExpectingRecord();
  json record = exitRecord();
  EXPECT_EQ(record["exit_code"], 127);
  EXPECT_NE(record["error"].get<std::string>().find("bai-no-such-command"), std::string::npos);
  EXPECT_NE(stderrLog().find("No such file or directory"), std::string::npos) << stderrLog();
}

TEST_F(ShimTest, NonExecutableCommandExits126) {
  std::filesystem::path script = dir() / "not-executable.sh";
  ASSERT_TRUE(core::writeFileAtomically(script, "#!/bin/sh\necho never\n").ok());
  ::chmod(script.c_str(), 0644);
  writeSpec(baseSpec({script.string()}));
  runExpectingRecord();
  EXPECT_EQ(exitRecord()["exit_code"], 126);
  EXPECT_NE(stderrLog().find("Permission denied"), std::string::npos) << stderrLog();
  EXPECT_EQ(stdoutLog().find("never"), std::string::npos);
}

TEST_F(ShimTest, EnvironmentIsExactlyTheGivenOne) {
  ::setenv("BAI_TEST_MUST_NOT_LEAK", "1", 1);
  json spec = baseSpec({"env"});
  spec["env"] = {{"PATH", kSessionPath}, {"BAI_TEST_VALUE", "a b=c"}, {"EMPTY", ""}};
  writeSpec(spec);
  runExpectingRecord();
  ::unsetenv("BAI_TEST_MUST_NOT_LEAK");
  std::set<std::string> expected{std::string("PATH=") + kSessionPath, "BAI_TEST_VALUE=a b=c", "EMPTY="};
  EXPECT_EQ(lines(stdoutLog()), expected);
}

TEST_F(ShimTest, CommandIsLookedUpInItsOwnPath) {
  std::filesystem::path bin = dir() / "bin";
  std::filesystem::create_directory(bin);
  ASSERT_TRUE(core::writeFileAtomically(bin / "bai-hello", "#!/bin/sh\necho hello from session path\n").ok());
  ::chmod((bin / "bai-hello").c_str(), 0755);
  json spec = baseSpec({"bai-hello"});
  spec["env"]["PATH"] = bin.string() + ":" + kSessionPath;
  writeSpec(spec);
  runExpectingRecord();
  EXPECT_EQ(exitRecord()["exit_code"], 0) << stderrLog();
  EXPECT_EQ(stdoutLog(), "hello from session path\n");
}

TEST_F(ShimTest, OutputIsAppendedToTheLogFiles) {
  writeSpec(baseSpec({"sh", "-c", "echo out; echo err >&2"}));
  runExpectingRecord();
  runExpectingRecord();
  EXPECT_EQ(stdoutLog(), "out\nout\n");
  EXPECT_EQ(stderrLog(), "err\nerr\n");
  struct stat info {};
  ASSERT_EQ(::stat((dir() / "stdout.log").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0640u);
}

TEST_F(ShimTest, DeathBySignalIsRecordedAs128PlusTheSignal) {
  for (int signal : {SIGKILL, SIGTERM}) {  // TERM: the shim ignores it, the command must not
    writeSpec(baseSpec({"sh", "-c", "kill -" + std::to_string(signal) + " $$; sleep 5"}));
    runExpectingRecord();
    json record = exitRecord();
    EXPECT_EQ(record["signal"], signal);
    EXPECT_EQ(record["exit_code"], 128 + signal);
  }
}

TEST_F(ShimTest, CommandRunsInANewProcessGroupWithStdinFromDevNull) {
  writeSpec(baseSpec({"sh", "-c", "cat /proc/$$/stat; readlink /proc/$$/fd/0"}));
  runExpectingRecord();
  std::istringstream ids(readText(dir() / "command.pid"));
  pid_t pid = 0;
  ASSERT_TRUE(ids >> pid);
  std::string output = stdoutLog();
  std::size_t close = output.rfind(')');
  ASSERT_NE(close, std::string::npos) << output;
  std::istringstream fields(output.substr(close + 2));
  std::string state;
  pid_t parent = 0;
  pid_t group = 0;
  fields >> state >> parent >> group;
  EXPECT_EQ(group, pid);
  EXPECT_NE(group, ::getpgrp());
  EXPECT_NE(output.find("\n/dev/null\n"), std::string::npos) << output;
}

TEST_F(ShimTest, NoDescriptorOfTheShimReachesTheCommand) {
  writeSpec(baseSpec({"ls", "/proc/self/fd"}));
  runExpectingRecord();
  // 3 is the directory ls itself opens to list the others.
  EXPECT_EQ(lines(stdoutLog()), (std::set<std::string>{"0", "1", "2", "3"}));
}

TEST_F(ShimTest, WorkingDirectoryIsEntered) {
  std::filesystem::path work = dir() / "work";
  std::filesystem::create_directory(work);
  json spec = baseSpec({"pwd"});
  spec["cwd"] = work.string();
  writeSpec(spec);
  runExpectingRecord();
  EXPECT_EQ(stdoutLog(), work.string() + "\n");
}

TEST_F(ShimTest, UnenterableDirectoryIsAStartFailure) {
  json spec = baseSpec({"true"});
  spec["cwd"] = (dir() / "missing").string();
  writeSpec(spec);
  runExpectingRecord();
  json record = exitRecord();
  EXPECT_EQ(record["exit_code"], 126);
  EXPECT_NE(record["error"].get<std::string>().find("missing"), std::string::npos);
}

TEST_F(ShimTest, ACgroupThatCannotBeJoinedIsAStartFailure) {
  json spec = baseSpec({"true"});
  spec["cgroup_procs"] = {(dir() / "no-such-cgroup" / "cgroup.procs").string()};
  writeSpec(spec);
  runExpectingRecord();
  json record = exitRecord();
  EXPECT_EQ(record["exit_code"], 126);
  EXPECT_NE(record["error"].get<std::string>().find("joining cgroup"), std::string::npos) << record.dump();
}

TEST_F(ShimTest, DropsToTheRunAsUser) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to change user";
  json spec = baseSpec({"sh", "-c", "id -u; id -g; id -G"});
  spec["run_as"] = {{"uid", 65534}, {"gid", 65534}};
  writeSpec(spec);
  runExpectingRecord();
  EXPECT_EQ(stdoutLog(), "65534\n65534\n65534\n") << stderrLog();
  struct stat info {};
  ASSERT_EQ(::stat((dir() / "stdout.log").c_str(), &info), 0);
  EXPECT_EQ(info.st_uid, 65534u);
}

TEST_F(ShimTest, LeftoverProcessesAreKilledWhenTheCommandExits) {
  // One background process stays in the group; one escapes into a session of its own.
  json spec = baseSpec({"sh", "-c",
                         "sleep 100 & echo $! > in-group.pid; setsid sleep 100 & escaped=$!; "
                         "until [ \"$(cut -d' ' -f6 /proc/$escaped/stat)\" = \"$escaped\" ]; do :; done; "
                         "echo $escaped > escaped.pid"});
  spec["cwd"] = dir().string();
  writeSpec(spec);
  runExpectingRecord();
  EXPECT_EQ(exitRecord()["exit_code"], 0) << stderrLog();
  for (const char* file : {"in-group.pid", "escaped.pid"}) {
    pid_t pid = std::atoi(readText(dir() / file).c_str());
    ASSERT_GT(pid, 0) << file;
    EXPECT_EQ(::kill(pid, 0), -1) << file << " still exists";
    EXPECT_EQ(errno, ESRCH);
  }
}

// With a handover descriptor the shim starts the command only after the agent's byte;
// end of file instead (the agent died before recording the shim) records that it never ran.
TEST_F(ShimTest, TheCommandWaitsForTheAgentsHandover) {
  writeSpec(baseSpec({"sh", "-c", "echo ran"}));
  int ends[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
  ASSERT_EQ(::write(ends[0], "1", 1), 1);
  ::close(ends[0]);
  runShim({dir().string(), "3"}, ends[1]);
  ::close(ends[1]);
  EXPECT_EQ(stdoutLog(), "ran\n") << shimLog();
  EXPECT_EQ(exitRecord()["exit_code"], 0) << exitRecord().dump();
}

TEST_F(ShimTest, WithoutTheAgentsHandoverTheCommandNeverRuns) {
  writeSpec(baseSpec({"sh", "-c", "echo ran"}));
  int ends[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends), 0);
  ::close(ends[0]);  // the agent died before it recorded the shim
  const int status = runShim({dir().string(), "3"}, ends[1]);
  ::close(ends[1]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << shimLog();
  EXPECT_EQ(stdoutLog(), "") << "the command did not run";
  const json exit = exitRecord();
  EXPECT_EQ(exit["exit_code"], 126) << exit.dump();
  EXPECT_NE(exit.value("error", "").find("never ran"), std::string::npos) << exit.dump();
}

TEST_F(ShimTest, RejectsAHandoverThatIsNoDescriptor) {
  writeSpec(baseSpec({"true"}));
  const int status = runShim({dir().string(), "three"});
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  EXPECT_NE(shimLog().find("usage"), std::string::npos) << shimLog();
}

TEST_F(ShimTest, RejectsAMissingSpec) {
  int status = runShim();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  EXPECT_NE(shimLog().find("spec.json"), std::string::npos) << shimLog();
  EXPECT_FALSE(std::filesystem::exists(dir() / "exit.json"));
}

TEST_F(ShimTest, RejectsUsageWithoutASessionDir) {
  int status = runShim({"a", "b"});
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  EXPECT_NE(shimLog().find("usage"), std::string::npos) << shimLog();
}

json device(const char* field, json value) {
  json node = {{"path", "/dev/null"}, {"type", "c"}, {"major", 1}, {"minor", 3}, {"access", "rw"}};
  node[field] = std::move(value);
  return node;
}

// A valid sandboxed spec with one sandbox field replaced (or, with `sandbox` given, the
// whole sandbox).
std::string sandboxSpecWith(const char* field, json value, json sandbox = nullptr, bool runAs = true) {
  json spec = {{"command", {"true"}}, {"env", json::object()}, {"stdout", "o"}, {"stderr", "e"},
               {"sandbox", {{"work_dir", "/srv/work"}}}};
  if (runAs) spec["run_as"] = {{"uid", 1000}, {"gid", 1000}};
  spec["sandbox"][field] = std::move(value);
  if (!sandbox.is_null()) spec["sandbox"] = json::parse(sandbox.get<std::string>());
  return spec.dump();
}

TEST(ShimSpecFormat, ASandboxSurvivesRenderAndParse) {
  files::ShimSpec spec;
  spec.command = {"true"};
  spec.stdoutPath = "o";
  spec.stderrPath = "e";
  spec.runAs = std::make_pair(uid_t{1000}, gid_t{1001});
  core::Sandbox sandbox;
  sandbox.workDir = "/var/lib/bai/work/s1";
  sandbox.devices = {{"/dev/nvidia0", 'c', 195, 0, "rw"}, {"/dev/sdz", 'b', 8, 1048575, "r"}};
  sandbox.mounts = {{"/opt/cuda", "/usr/local/cuda", true}, {"/scratch", "/home/work/scratch", false}};
  sandbox.hidden = {"/etc/bai", "/var/lib/bai"};
  sandbox.hostNodev = true;
  spec.sandbox = sandbox;
  Result<files::ShimSpec> parsed = files::parseShimSpec(files::renderShimSpec(spec));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_TRUE(parsed->sandbox.has_value());
  const core::Sandbox& got = *parsed->sandbox;
  EXPECT_EQ(got.workDir, sandbox.workDir);
  ASSERT_EQ(got.devices.size(), 2u);
  EXPECT_EQ(got.devices[1].path, "/dev/sdz");
  EXPECT_EQ(got.devices[1].type, 'b');
  EXPECT_EQ(got.devices[1].major, 8u);
  EXPECT_EQ(got.devices[1].minor, 1048575u);
  EXPECT_EQ(got.devices[1].access, "r");
  ASSERT_EQ(got.mounts.size(), 2u);
  EXPECT_EQ(got.mounts[0].source, "/opt/cuda");
  EXPECT_EQ(got.mounts[0].target, "/usr/local/cuda");
  EXPECT_TRUE(got.mounts[0].readOnly);
  EXPECT_FALSE(got.mounts[1].readOnly);
  EXPECT_EQ(got.hidden, sandbox.hidden);
  EXPECT_TRUE(got.hostNodev);
}

TEST(ShimSpecFormat, NoSandboxStaysNone) {
  files::ShimSpec spec;
  spec.command = {"true"};
  spec.stdoutPath = "o";
  spec.stderrPath = "e";
  const std::string text = files::renderShimSpec(spec);
  EXPECT_EQ(text.find("sandbox"), std::string::npos) << text;
  Result<files::ShimSpec> parsed = files::parseShimSpec(text);
  ASSERT_TRUE(parsed.ok());
  EXPECT_FALSE(parsed->sandbox.has_value());
}

TEST_F(ShimTest, ASandboxNeedsTheShimToRunAsRoot) {
  if (::geteuid() == 0) GTEST_SKIP() << "checks the refusal a non-root shim gives";
  writeSpecText(sandboxSpecWith("hidden", json::array()));
  int status = runShim();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  EXPECT_NE(shimLog().find("'sandbox' needs the shim to run as root"), std::string::npos) << shimLog();
}

struct BadSpec {
  const char* name;
  std::string text;
  const char* reason;
};

class ShimSpecErrorTest : public ShimTest, public ::testing::WithParamInterface<BadSpec> {};

TEST_P(ShimSpecErrorTest, IsReportedWithItsReasonAndRunsNothing) {
  writeSpecText(GetParam().text);
  int status = runShim();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 2);
  EXPECT_NE(shimLog().find(GetParam().reason), std::string::npos) << shimLog();
  EXPECT_FALSE(std::filesystem::exists(dir() / "exit.json"));
  EXPECT_FALSE(std::filesystem::exists(dir() / "command.pid"));
}

std::string specWith(const char* field, json value) {
  json spec = {{"command", {"true"}}, {"env", json::object()}, {"stdout", "o"}, {"stderr", "e"}};
  if (value.is_null()) {
    spec.erase(field);
  } else {
    spec[field] = std::move(value);
  }
  return spec.dump();
}

INSTANTIATE_TEST_SUITE_P(
    Specs, ShimSpecErrorTest,
    ::testing::Values(BadSpec{"NotJson", "{\"command\": [", "not valid JSON"},
                      BadSpec{"NotAnObject", "[1, 2]", "not a JSON object"},
                      BadSpec{"NoCommand", specWith("command", nullptr), "'command'"},
                      BadSpec{"EmptyCommand", specWith("command", json::array()), "'command'"},
                      BadSpec{"CommandNotAnArray", specWith("command", "true"), "'command'"},
                      BadSpec{"NoEnv", specWith("env", nullptr), "'env'"},
                      BadSpec{"EnvValueNotAString", specWith("env", {{"A", 1}}), "'env'"},
                      BadSpec{"CpuOutOfRange", specWith("cpus", {-1}), "'cpus'"},
                      BadSpec{"CgroupNotAPath", specWith("cgroup_procs", {1}), "'cgroup_procs'"},
                      BadSpec{"RunAsWithoutGid", specWith("run_as", {{"uid", 1}}), "'run_as'"},
                      BadSpec{"NoStdout", specWith("stdout", nullptr), "'stdout'"},
                      BadSpec{"SandboxNotAnObject", sandboxSpecWith("work_dir", nullptr, "[]"), "'sandbox'"},
                      BadSpec{"SandboxWithoutRunAs", sandboxSpecWith("hidden", json::array(), nullptr, false),
                              "'run_as' must be given with 'sandbox'"},
                      BadSpec{"SandboxWorkDirRelative", sandboxSpecWith("work_dir", "work"), "'sandbox.work_dir'"},
                      BadSpec{"SandboxHiddenWithDotDot", sandboxSpecWith("hidden", {"/srv/../etc"}), "'sandbox.hidden'"},
                      BadSpec{"SandboxDeviceAccess", sandboxSpecWith("devices", {device("access", "rwx")}),
                              "'sandbox.devices'"},
                      BadSpec{"SandboxDeviceType", sandboxSpecWith("devices", {device("type", "p")}),
                              "'sandbox.devices'"},
                      BadSpec{"SandboxDeviceMajor", sandboxSpecWith("devices", {device("major", 4096)}),
                              "'sandbox.devices'"},
                      BadSpec{"SandboxDevicePathRelative", sandboxSpecWith("devices", {device("path", "dev/null")}),
                              "'sandbox.devices'"},
                      BadSpec{"SandboxMountTargetRelative",
                              sandboxSpecWith("mounts", {{{"source", "/srv"}, {"target", "srv"}}}), "'sandbox.mounts'"},
                      BadSpec{"SandboxMountReadOnlyNotABool",
                              sandboxSpecWith("mounts", {{{"source", "/srv"}, {"target", "/srv"}, {"read_only", 1}}}),
                              "'sandbox.mounts'"},
                      BadSpec{"SandboxTooManyHidden", sandboxSpecWith("hidden", json(std::vector<std::string>(257, "/x"))),
                              "'sandbox.hidden'"},
                      BadSpec{"SandboxHostNodevNotABool", sandboxSpecWith("host_nodev", "yes"), "'sandbox.host_nodev'"}),
    [](const ::testing::TestParamInfo<BadSpec>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace bai::test
