// bai-session-shim with a sandbox in spec.json: each check is a command run inside the
// session whose output or failure is asserted. Needs root (namespaces, mounts, setuid);
// skipped otherwise. The session and its host files live under /var/tmp, not /tmp: the
// sandbox's /tmp is private, which would hide them and make the checks pass for nothing.
#include "runtime_test_support.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <fcntl.h>
#include <set>
#include <spawn.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>

extern char** environ;

namespace bai::test {
namespace {

using nlohmann::json;

constexpr uid_t kSessionUid = 65534;
constexpr gid_t kSessionGid = 65534;

std::vector<std::string> lineList(const std::string& text) {
  std::vector<std::string> result;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) result.push_back(line);
  return result;
}

void writeHostFile(const std::filesystem::path& file, const std::string& text) {
  ASSERT_TRUE(core::writeFileAtomically(file, text).ok()) << file;
}

class SandboxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (namespaces, mounts, setuid)";
    session_ = dir() / "session";
    work_ = dir() / "work";
    std::filesystem::create_directory(session_);
    std::filesystem::create_directory(work_);
    ASSERT_EQ(::chown(work_.c_str(), kSessionUid, kSessionGid), 0);
    ASSERT_EQ(::chmod(work_.c_str(), 0700), 0);
    // The session's user must reach its logs' dir on the host only through the shim.
    ASSERT_EQ(::chmod(dir().c_str(), 0755), 0);
  }

  const std::filesystem::path& dir() const { return temp_.path(); }
  const std::filesystem::path& work() const { return work_; }

  json sandboxSpec(const std::string& script) const {
    return {{"command", {"sh", "-c", script}},
            {"env", {{"PATH", kSessionPath}, {"HOME", core::kSessionHome}}},
            {"stdout", "stdout.log"},
            {"stderr", "stderr.log"},
            {"run_as", {{"uid", kSessionUid}, {"gid", kSessionGid}}},
            {"sandbox", {{"work_dir", work_.string()}}}};
  }

  void writeSpec(const json& spec) const { writeHostFile(session_ / "spec.json", spec.dump()); }

  pid_t startShim() const {
    std::string program = shimPath().string();
    std::string sessionArg = session_.string();
    std::vector<char*> argv{program.data(), sessionArg.data(), nullptr};
    int logFd = ::open((session_ / "shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, logFd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, logFd, STDERR_FILENO);
    posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
    pid_t pid = 0;
    int error = ::posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(logFd);
    EXPECT_EQ(error, 0);
    return pid;
  }

  void waitForShim(pid_t shim) const {
    int status = 0;
    ASSERT_EQ(::waitpid(shim, &status, 0), shim);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "shim.log: " << readText(session_ / "shim.log");
  }

  // Runs `script` in a sandbox built from `spec` to its end; returns exit.json.
  json runSpec(const json& spec) const {
    writeSpec(spec);
    waitForShim(startShim());
    return json::parse(readText(session_ / "exit.json"));
  }
  json run(const std::string& script) const { return runSpec(sandboxSpec(script)); }

  std::string out() const { return readText(session_ / "stdout.log"); }
  std::string err() const { return readText(session_ / "stderr.log"); }
  pid_t commandGroup() const { return std::atoi(readText(session_ / "command.pid").c_str()); }

 private:
  TempDir temp_{"/var/tmp"};
  std::filesystem::path session_;
  std::filesystem::path work_;
};

TEST_F(SandboxTest, SeesOnlyItsOwnProcessesUnderItsInit) {
  const std::string hostPid = std::to_string(::getpid());
  json exit = run("echo $$; for p in /proc/[0-9]*; do echo ${p#/proc/}; done; "
                  "tr '\\0' ' ' < /proc/1/cmdline; echo; kill -0 " + hostPid + " || echo cannot-signal-host");
  EXPECT_EQ(exit["exit_code"], 0) << err();
  std::vector<std::string> lines = lineList(out());
  ASSERT_EQ(lines.size(), 5u) << out();
  EXPECT_EQ(lines[0], "2") << "the command is pid 2, under init";
  EXPECT_EQ(lines[1], "1");
  EXPECT_EQ(lines[2], "2");
  EXPECT_NE(lines[3].find("bai-session-shim"), std::string::npos) << lines[3];
  EXPECT_EQ(lines[4], "cannot-signal-host");
}

TEST_F(SandboxTest, WorkDirIsTheWritableHomeAndCwd) {
  json exit = run("pwd; echo $HOME; echo written > note; id -u -n 2>/dev/null; true");
  EXPECT_EQ(exit["exit_code"], 0) << err();
  std::vector<std::string> lines = lineList(out());
  ASSERT_GE(lines.size(), 2u) << out();
  EXPECT_EQ(lines[0], "/home/work");
  EXPECT_EQ(lines[1], "/home/work");
  EXPECT_EQ(readText(work() / "note"), "written\n");
  struct stat info {};
  ASSERT_EQ(::stat((work() / "note").c_str(), &info), 0);
  EXPECT_EQ(info.st_uid, kSessionUid);
}

TEST_F(SandboxTest, TheHostIsReadOnly) {
  json exit = run("cat /etc/hostname >/dev/null && echo host-readable; touch /usr/bai-sandbox-probe");
  EXPECT_NE(exit["exit_code"], 0);
  EXPECT_EQ(out(), "host-readable\n");
  EXPECT_NE(err().find("Read-only file system"), std::string::npos) << err();
  EXPECT_FALSE(std::filesystem::exists("/usr/bai-sandbox-probe"));
}

TEST_F(SandboxTest, TmpAndShmArePrivate) {
  TempDir hostTmp;  // under the host's /tmp
  writeHostFile(hostTmp.path() / "visible-on-host", "x");
  json exit = run("ls -A /tmp /dev/shm; test -e " + (hostTmp.path() / "visible-on-host").string() +
                  " || echo invisible; touch /tmp/mine /dev/shm/mine && echo writable");
  EXPECT_EQ(exit["exit_code"], 0) << err();
  EXPECT_EQ(out(), "/dev/shm:\n\n/tmp:\ninvisible\nwritable\n");
  EXPECT_FALSE(std::filesystem::exists("/tmp/mine"));
}

TEST_F(SandboxTest, HiddenPathsAreEmpty) {
  std::filesystem::create_directory(dir() / "secret-dir");
  writeHostFile(dir() / "secret-dir" / "key", "dir secret");
  writeHostFile(dir() / "secret-file", "file secret");
  writeHostFile(dir() / "public-file", "public");
  for (const char* name : {"secret-dir", "secret-dir/key", "secret-file", "public-file"}) {
    ::chmod((dir() / name).c_str(), std::filesystem::is_directory(dir() / name) ? 0755 : 0644);
  }
  json spec = sandboxSpec("ls -A " + (dir() / "secret-dir").string() + "; cat " + (dir() / "secret-file").string() +
                          " " + (dir() / "public-file").string());
  spec["sandbox"]["hidden"] = {(dir() / "secret-dir").string(), (dir() / "secret-file").string(),
                               (dir() / "not-there").string()};
  json exit = runSpec(spec);
  EXPECT_EQ(exit["exit_code"], 0) << err();
  EXPECT_EQ(out(), "public") << "the unmasked file shows the host is visible; the masked ones are empty";
}

// As the agent hides its state dir, which holds the session dir and the work dir.
TEST_F(SandboxTest, HidingTheDirThatHoldsTheSessionStillRunsIt) {
  json spec = sandboxSpec("ls -A " + dir().string() + "; pwd; echo kept > note");
  spec["sandbox"]["hidden"] = {dir().string()};
  json exit = runSpec(spec);
  EXPECT_EQ(exit["exit_code"], 0) << err();
  EXPECT_EQ(out(), "/home/work\n");
  EXPECT_EQ(readText(work() / "note"), "kept\n");
}

// A device node made with the numbers of /dev/null stands in for a granted accelerator.
class GrantedDevice {
 public:
  explicit GrantedDevice(std::filesystem::path path) : path_(std::move(path)) {
    ::unlink(path_.c_str());
    made_ = ::mknod(path_.c_str(), S_IFCHR, ::makedev(1, 3)) == 0 && ::chmod(path_.c_str(), 0666) == 0;
  }
  ~GrantedDevice() { ::unlink(path_.c_str()); }
  GrantedDevice(const GrantedDevice&) = delete;
  GrantedDevice& operator=(const GrantedDevice&) = delete;
  bool made() const { return made_; }
  json node(unsigned minor = 3) const {
    return {{"path", path_.string()}, {"type", "c"}, {"major", 1}, {"minor", minor}, {"access", "rw"}};
  }

 private:
  std::filesystem::path path_;
  bool made_ = false;
};

TEST_F(SandboxTest, DevHoldsOnlyTheBaseAndGrantedNodes) {
  const std::string name = "bai-sandbox-test-" + std::to_string(::getpid());
  GrantedDevice inDev("/dev/" + name);
  GrantedDevice nested(dir() / "granted-node");  // outside /dev: bound over the host's path
  ASSERT_TRUE(inDev.made() && nested.made()) << "mknod failed";
  json spec = sandboxSpec("ls /dev; echo data > /dev/" + name + " && wc -c < /dev/" + name + "; wc -c < " +
                          (dir() / "granted-node").string() + "; ls /dev/pts");
  spec["sandbox"]["devices"] = {inDev.node(), nested.node()};
  json exit = runSpec(spec);
  EXPECT_EQ(exit["exit_code"], 0) << err();
  std::vector<std::string> lines = lineList(out());
  std::vector<std::string> expected{name,   "fd",     "full",   "null", "ptmx", "pts",  "random", "shm",
                                    "stderr", "stdin", "stdout", "tty",  "urandom", "zero"};
  std::sort(expected.begin(), expected.end());
  ASSERT_GE(lines.size(), expected.size() + 3) << out() << err();
  std::vector<std::string> listed(lines.begin(), lines.begin() + static_cast<long>(expected.size()));
  EXPECT_EQ(listed, expected);
  EXPECT_EQ(lines[expected.size()], "0") << "the granted node is /dev/null's twin: writes vanish";
  EXPECT_EQ(lines[expected.size() + 1], "0");
  EXPECT_EQ(lines[expected.size() + 2], "ptmx") << "a private devpts instance";
}

TEST_F(SandboxTest, ADeviceWhoseNumbersDifferIsAStartFailure) {
  GrantedDevice node(dir() / "wrong-node");
  ASSERT_TRUE(node.made());
  json spec = sandboxSpec("echo ran");
  spec["sandbox"]["devices"] = {node.node(/*minor=*/5)};
  json exit = runSpec(spec);
  EXPECT_EQ(exit["exit_code"], 126);
  EXPECT_NE(exit["error"].get<std::string>().find("wrong-node: the host's node is not c 1:5"), std::string::npos)
      << exit.dump();
  EXPECT_EQ(out(), "");
}

TEST_F(SandboxTest, RunsAsTheGivenUserWithNoPrivilegeLeft) {
  json exit = run("id -u; id -g; id -G; grep -E '^(NoNewPrivs|Cap(Inh|Prm|Eff|Bnd|Amb)):' /proc/self/status");
  EXPECT_EQ(exit["exit_code"], 0) << err();
  EXPECT_EQ(out(), "65534\n65534\n65534\n"
                   "CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n"
                   "CapBnd:\t0000000000000000\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\n");
}

TEST_F(SandboxTest, ARootSessionHasNoCapabilities) {
  // Opening a kernel-wide /proc file for writing, writing nothing, is harmless where it works.
  const std::string sysrqLine = std::filesystem::exists("/proc/sysrq-trigger") ? "sysrq-protected\n" : "";
  json spec = sandboxSpec("id -u; grep -E '^Cap(Prm|Eff|Bnd)' /proc/self/status; "
                          "(: > /proc/sys/vm/drop_caches) || echo sys-protected; "
                          "[ ! -e /proc/sysrq-trigger ] || (: > /proc/sysrq-trigger) || echo sysrq-protected; "
                          "touch /usr/bai-sandbox-probe");
  spec["run_as"] = {{"uid", 0}, {"gid", 0}};
  ASSERT_EQ(::chown(work().c_str(), 0, 0), 0);  // without CAP_DAC_OVERRIDE root enters only its own dir
  json exit = runSpec(spec);
  EXPECT_NE(exit["exit_code"], 0);
  EXPECT_EQ(out(), "0\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\n"
                   "sys-protected\n" + sysrqLine);
  EXPECT_NE(err().find("Read-only file system"), std::string::npos) << err();
}

TEST_F(SandboxTest, BindMountsAreReadOnlyOrWritableAsAsked) {
  std::filesystem::create_directory(dir() / "dataset");
  writeHostFile(dir() / "dataset" / "sample", "sample data");
  ::chmod((dir() / "dataset").c_str(), 0755);
  ::chmod((dir() / "dataset" / "sample").c_str(), 0644);
  std::filesystem::create_directory(dir() / "scratch");
  ASSERT_EQ(::chown((dir() / "scratch").c_str(), kSessionUid, kSessionGid), 0);
  json spec = sandboxSpec("cat /home/work/dataset/sample; echo; touch /home/work/dataset/x || echo read-only; "
                          "touch /tmp/a/scratch/y && echo written");
  spec["sandbox"]["mounts"] = {
      {{"source", (dir() / "dataset").string()}, {"target", "/home/work/dataset"}, {"read_only", true}},
      {{"source", (dir() / "scratch").string()}, {"target", "/tmp/a/scratch"}, {"read_only", false}}};
  json exit = runSpec(spec);
  EXPECT_EQ(exit["exit_code"], 0) << err();
  EXPECT_EQ(out(), "sample data\nread-only\nwritten\n");
  EXPECT_NE(err().find("Read-only file system"), std::string::npos) << err();
  EXPECT_TRUE(std::filesystem::exists(dir() / "scratch" / "y"));
  EXPECT_FALSE(std::filesystem::exists(dir() / "dataset" / "x"));
}

TEST_F(SandboxTest, AMountTargetOnTheReadOnlyViewIsAStartFailure) {
  json spec = sandboxSpec("echo ran");
  spec["sandbox"]["mounts"] = {{{"source", dir().string()}, {"target", "/opt/bai-no-such-target"}}};
  json exit = runSpec(spec);
  EXPECT_EQ(exit["exit_code"], 126);
  EXPECT_EQ(exit["error"], "mount target /opt/bai-no-such-target: cannot create it (Read-only file system)");
  EXPECT_NE(err().find("/opt/bai-no-such-target"), std::string::npos) << err();
  EXPECT_EQ(out(), "");
}

TEST_F(SandboxTest, AMissingMountSourceIsAStartFailure) {
  json spec = sandboxSpec("echo ran");
  spec["sandbox"]["mounts"] = {{{"source", (dir() / "absent").string()}, {"target", "/tmp/x"}}};
  json exit = runSpec(spec);
  EXPECT_EQ(exit["exit_code"], 126);
  EXPECT_NE(exit["error"].get<std::string>().find("mount source " + (dir() / "absent").string()), std::string::npos)
      << exit.dump();
}

TEST_F(SandboxTest, ExitCodesAreTheCommandsAsBefore) {
  EXPECT_EQ(run("exit 3")["exit_code"], 3);
  json spec = sandboxSpec("unused");
  spec["command"] = {"bai-no-such-command"};
  json missing = runSpec(spec);
  EXPECT_EQ(missing["exit_code"], 127);
  EXPECT_NE(missing["error"].get<std::string>().find("bai-no-such-command"), std::string::npos);
  json killed = run("kill -KILL $$");
  EXPECT_EQ(killed["exit_code"], 137);
  EXPECT_EQ(killed["signal"], SIGKILL);
}

// The agent signals the group in command.pid: init's, which passes the signal on.
class SandboxSignalTest : public SandboxTest {
 protected:
  json runAndSignalGroup(const std::string& script, int signal) const {
    writeSpec(sandboxSpec(script));
    pid_t shim = startShim();
    EXPECT_TRUE(waitUntil([&] { return out().find("started") != std::string::npos; })) << err();
    EXPECT_EQ(::kill(-commandGroup(), signal), 0);
    waitForShim(shim);
    return json::parse(readText(dir() / "session" / "exit.json"));
  }
};

TEST_F(SandboxSignalTest, SigtermToTheGroupEndsSleep) {
  json exit = runAndSignalGroup("echo started; exec sleep 100", SIGTERM);
  EXPECT_EQ(exit["exit_code"], 143) << exit.dump();
  EXPECT_EQ(exit["signal"], SIGTERM);
}

TEST_F(SandboxSignalTest, ATermTrapRunsOnce) {
  json exit = runAndSignalGroup("trap 'echo trapped; exit 7' TERM; echo started; sleep 100 & wait", SIGTERM);
  EXPECT_EQ(exit["exit_code"], 7) << exit.dump();
  EXPECT_EQ(out(), "started\ntrapped\n");
}

TEST_F(SandboxSignalTest, SigkillToTheGroupEndsEverything) {
  json exit = runAndSignalGroup("trap '' TERM; echo started; sleep 100", SIGKILL);
  EXPECT_EQ(exit["exit_code"], 137) << exit.dump();
}

bool hostHasProcessWithArgument(const std::string& argument) {
  for (pid_t pid : allPids()) {
    std::string cmdline = readText("/proc/" + std::to_string(pid) + "/cmdline");
    if (cmdline.find(argument) != std::string::npos) return true;
  }
  return false;
}

TEST_F(SandboxTest, OrphansDieWithTheCommand) {
  const std::string marker = "4321." + std::to_string(::getpid());  // a sleep argument no one else uses
  json exit = run("setsid sh -c 'exec sleep " + marker + "' & "
                  "until grep -q " + marker + " /proc/$!/cmdline 2>/dev/null; do :; done; echo orphan-running");
  EXPECT_EQ(exit["exit_code"], 0) << err();
  EXPECT_EQ(out(), "orphan-running\n");
  EXPECT_FALSE(hostHasProcessWithArgument(marker));
}

}  // namespace
}  // namespace bai::test
