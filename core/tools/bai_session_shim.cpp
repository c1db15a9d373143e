// bai-session-shim SESSION_DIR [HANDOVER_FD]
//
// Runs one session's command for the agent. The agent is multithreaded, and work between
// fork and exec there (malloc, hwloc) can deadlock; this single-threaded helper does it
// instead: it reads SESSION_DIR/spec.json, forks the command into a new process group,
// joins the session's cgroups, sets CPU affinity, drops privileges, redirects output,
// execs with exactly the given environment, and records the outcome atomically in
// SESSION_DIR/exit.json, so that an agent restarted meanwhile still learns it.
//
// With a sandbox in the spec the shim joins the cgroups, then starts an init as pid 1 of
// a new PID namespace; init builds the session's filesystem (runtime/sandbox_mounts), forks
// the command into a group of its own, drops every privilege there
// (runtime/sandbox_privileges), forwards termination signals to it and reports its wait
// status (runtime/sandbox_init). command.pid then names init and init's group: signalling
// that group reaches init, which passes the signal on once, and SIGKILL ends the namespace.
//
// With HANDOVER_FD the command starts only after the agent, having recorded this shim in
// shim.json, sends one byte there. End of file instead (the agent died first, and no
// agent could ever watch or stop the command) records in exit.json that it never ran.
//
// With a console in the spec (an interactive session) the command's stdin, stdout and
// stderr are a pseudo-terminal or pipes that the shim relays, in one poll loop, to the
// logs and to the clients of SESSION_DIR/console.sock (runtime/shim_console_server),
// which also runs execs: forked by the shim like the command, or, in a sandbox, by init
// inside the namespaces (runtime/shim_exec_channel).
//
// Exit status: 0 when exit.json was written; 2 when the spec is unusable; 1 when the
// shim itself failed (fork, writing its records). The reason is one line on stderr.
#include "clock.hpp"
#include "runtime/atomic_file.hpp"
#include "runtime/sandbox_init.hpp"
#include "runtime/sandbox_mounts.hpp"
#include "runtime/sandbox_privileges.hpp"
#include "runtime/session_files.hpp"
#include "runtime/shim_console_server.hpp"
#include "runtime/shim_exec_channel.hpp"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fcntl.h>
#include <grp.h>
#include <map>
#include <memory>
#include <sched.h>
#include <string>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <vector>

extern char** environ;

namespace {

using bai::Result;
using bai::core::describeErrno;
using bai::core::ShimExecRequest;
namespace files = bai::core::session_files;
namespace shim = bai::core::shim;

constexpr int kExitSpecUnusable = 2;
constexpr int kExitShimFailed = 1;
// Shell conventions: 127 "not found"; 126 "found but could not be run" (and setup failures).
constexpr int kCommandNotFound = 127;
constexpr int kCommandNotRunnable = 126;
// Where init builds a sandbox's root: inside the session dir, so it goes with it.
constexpr const char* kSandboxRoot = "root";

[[noreturn]] void die(int status, const std::string& reason) {
  std::fprintf(stderr, "bai-session-shim: %s\n", reason.c_str());
  std::exit(status);
}

// What the command child needs, built before fork so the child only makes system calls.
struct PreparedCommand {
  std::vector<std::string> envEntries;  // "NAME=value"
  std::vector<char*> argv;
  std::vector<char*> envp;
  cpu_set_t cpus;
  bool setAffinity = false;
  int stdinFd = -1;
  int stdoutFd = -1;
  int stderrFd = -1;
  // An interactive session's pty or pipes, the command's 0, 1 and 2 instead of the above.
  const shim::ChildEnds* console = nullptr;
};

int openLog(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) die(kExitSpecUnusable, describeErrno("opening log " + file.string(), errno));
  return fd;
}

void checkRunAs(const files::ShimSpec& spec) {
  if (spec.sandbox && ::geteuid() != 0) die(kExitSpecUnusable, "spec.json: 'sandbox' needs the shim to run as root");
  if (!spec.runAs || ::geteuid() == 0) return;
  if (spec.runAs->first != ::getuid() || spec.runAs->second != ::getgid()) {
    die(kExitSpecUnusable, "spec.json: 'run_as' needs the shim to run as root");
  }
}

PreparedCommand prepare(files::ShimSpec& spec, const std::filesystem::path& sessionDir) {
  PreparedCommand prepared;
  for (std::string& arg : spec.command) prepared.argv.push_back(arg.data());
  prepared.argv.push_back(nullptr);
  for (const auto& [name, value] : spec.env) prepared.envEntries.push_back(name + "=" + value);
  for (std::string& entry : prepared.envEntries) prepared.envp.push_back(entry.data());
  prepared.envp.push_back(nullptr);
  CPU_ZERO(&prepared.cpus);
  for (int cpu : spec.cpus) CPU_SET(cpu, &prepared.cpus);
  prepared.setAffinity = !spec.cpus.empty();
  prepared.stdinFd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (prepared.stdinFd < 0) die(kExitShimFailed, describeErrno("opening /dev/null", errno));
  prepared.stdoutFd = openLog(sessionDir / spec.stdoutPath);  // an absolute path replaces sessionDir
  prepared.stderrFd = openLog(sessionDir / spec.stderrPath);
  if (spec.runAs) {
    // The logs are the session's output: its user may reopen them (e.g. /dev/stderr).
    for (int fd : {prepared.stdoutFd, prepared.stderrFd}) {
      if (::fchown(fd, spec.runAs->first, spec.runAs->second) != 0) {
        die(kExitShimFailed, describeErrno("giving the logs to the run-as user", errno));
      }
    }
  }
  return prepared;
}

// In the command child (statusPipe -1: an exec's child): report why the command could not start (to its stderr log and,
// through the status pipe, to the shim for exit.json) and exit with `status`.
[[noreturn]] void failStart(int statusPipe, int status, const std::string& reason) {
  std::string line = "bai-session-shim: " + reason + "\n";
  (void)!::write(STDERR_FILENO, line.data(), line.size());
  if (statusPipe >= 0) (void)!::write(statusPipe, reason.data(), reason.size());
  ::_exit(status);
}

void joinCgroups(const files::ShimSpec& spec, int statusPipe) {
  std::string pid = std::to_string(::getpid());
  for (const auto& procs : spec.cgroupProcs) {
    int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, pid.data(), pid.size()) != static_cast<ssize_t>(pid.size())) {
      failStart(statusPipe, kCommandNotRunnable, describeErrno("joining cgroup " + procs.string(), errno));
    }
    ::close(fd);
  }
}

void dropPrivileges(const files::ShimSpec& spec, int statusPipe) {
  if (!spec.runAs || ::geteuid() != 0) return;
  auto [uid, gid] = *spec.runAs;
  if (::setgroups(0, nullptr) != 0) failStart(statusPipe, kCommandNotRunnable, describeErrno("setgroups", errno));
  if (::setgid(gid) != 0) failStart(statusPipe, kCommandNotRunnable, describeErrno("setgid", errno));
  if (::setuid(uid) != 0) failStart(statusPipe, kCommandNotRunnable, describeErrno("setuid", errno));
}

// Dispositions first, then the mask: a pending SIGTERM then takes its default action.
void resetSignals() {
  for (int signal = 1; signal < NSIG; ++signal) ::signal(signal, SIG_DFL);  // fails harmlessly for KILL/STOP
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
}

void redirectOutput(const PreparedCommand& prepared, int statusPipe) {
  if (::dup2(prepared.stdinFd, STDIN_FILENO) < 0 || ::dup2(prepared.stdoutFd, STDOUT_FILENO) < 0 ||
      ::dup2(prepared.stderrFd, STDERR_FILENO) < 0) {
    failStart(statusPipe, kCommandNotRunnable, describeErrno("redirecting output", errno));
  }
}

void enterCgroupsAndCpus(const files::ShimSpec& spec, const PreparedCommand& prepared, int statusPipe) {
  joinCgroups(spec, statusPipe);
  if (prepared.setAffinity && ::sched_setaffinity(0, sizeof prepared.cpus, &prepared.cpus) != 0) {
    failStart(statusPipe, kCommandNotRunnable, describeErrno("setting CPU affinity", errno));
  }
}

[[noreturn]] void execCommand(const files::ShimSpec& spec, const PreparedCommand& prepared, int statusPipe) {
  resetSignals();
  // execvpe() would search the shim's PATH; with environ replaced, execvp searches the
  // command's own PATH and passes exactly the given environment.
  environ = const_cast<char**>(prepared.envp.data());
  ::execvp(prepared.argv[0], prepared.argv.data());
  int error = errno;
  failStart(statusPipe, error == ENOENT || error == ENOTDIR ? kCommandNotFound : kCommandNotRunnable,
            describeErrno("cannot run '" + spec.command[0] + "'", error));
}

// Its own group, so that the agent signals the whole session without hitting the shim
// (with a tty, its own session, whose controlling terminal the pty is).
void enterOwnGroup(const PreparedCommand& prepared, int statusPipe) {
  if (prepared.console != nullptr) {
    Result<void> adopted = shim::adoptChildEnds(*prepared.console);
    if (!adopted.ok()) failStart(statusPipe, kCommandNotRunnable, adopted.error().message);
    return;
  }
  if (::setpgid(0, 0) != 0) failStart(statusPipe, kCommandNotRunnable, describeErrno("setpgid", errno));
}

[[noreturn]] void runCommand(const files::ShimSpec& spec, const PreparedCommand& prepared, int statusPipe) {
  enterOwnGroup(prepared, statusPipe);
  if (prepared.console == nullptr) redirectOutput(prepared, statusPipe);
  enterCgroupsAndCpus(spec, prepared, statusPipe);
  dropPrivileges(spec, statusPipe);
  if (spec.cwd && ::chdir(spec.cwd->c_str()) != 0) {
    failStart(statusPipe, kCommandNotRunnable, describeErrno("entering " + spec.cwd->string(), errno));
  }
  execCommand(spec, prepared, statusPipe);
}

// The sandboxed command, forked by init inside the new root: a group of its own (the one
// init forwards signals to), no privileges, then exec.
[[noreturn]] void runSandboxedCommand(const files::ShimSpec& spec, const PreparedCommand& prepared, int statusPipe) {
  enterOwnGroup(prepared, statusPipe);
  Result<void> dropped = bai::core::sandbox::dropAllPrivileges(spec.runAs->first, spec.runAs->second);
  if (!dropped.ok()) failStart(statusPipe, kCommandNotRunnable, dropped.error().message);
  const std::string cwd = spec.cwd ? spec.cwd->string() : std::string(bai::core::kSessionHome);
  if (::chdir(cwd.c_str()) != 0) failStart(statusPipe, kCommandNotRunnable, describeErrno("entering " + cwd, errno));
  execCommand(spec, prepared, statusPipe);
}

// An exec's child, forked by the shim or by a sandbox's init: the command's user,
// cgroups (inherited from init in a sandbox), privileges, work dir and environment, plus
// the request's environment. A failure is written to its stderr; it exits 126 or 127.
[[noreturn]] void runExec(const files::ShimSpec& spec, const ShimExecRequest& request, const shim::ChildEnds& ends) {
  Result<void> adopted = shim::adoptChildEnds(ends);
  if (!adopted.ok()) failStart(-1, kCommandNotRunnable, adopted.error().message);
  std::string cwd;
  if (spec.sandbox) {
    Result<void> dropped = bai::core::sandbox::dropAllPrivileges(spec.runAs->first, spec.runAs->second);
    if (!dropped.ok()) failStart(-1, kCommandNotRunnable, dropped.error().message);
    cwd = spec.cwd ? spec.cwd->string() : std::string(bai::core::kSessionHome);
  } else {
    PreparedCommand affinity;
    CPU_ZERO(&affinity.cpus);
    for (int cpu : spec.cpus) CPU_SET(cpu, &affinity.cpus);
    affinity.setAffinity = !spec.cpus.empty();
    enterCgroupsAndCpus(spec, affinity, -1);
    dropPrivileges(spec, -1);
    if (spec.cwd) cwd = spec.cwd->string();
  }
  if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) failStart(-1, kCommandNotRunnable, describeErrno("entering " + cwd, errno));
  files::ShimSpec exec = spec;
  exec.command = request.command;
  for (const auto& [name, value] : request.env) exec.env[name] = value;
  PreparedCommand prepared;
  for (std::string& arg : exec.command) prepared.argv.push_back(arg.data());
  prepared.argv.push_back(nullptr);
  for (const auto& [name, value] : exec.env) prepared.envEntries.push_back(name + "=" + value);
  for (std::string& entry : prepared.envEntries) prepared.envp.push_back(entry.data());
  prepared.envp.push_back(nullptr);
  execCommand(exec, prepared, -1);
}

// Execs of a session without a sandbox: the shim forks them as it forked the command.
class ForkingExecLauncher : public shim::ExecLauncher {
 public:
  explicit ForkingExecLauncher(const files::ShimSpec& spec) : spec_(spec) {}

  Result<void> start(std::uint32_t id, const ShimExecRequest& request, const shim::ChildEnds& child) override {
    pid_t pid = ::fork();
    if (pid < 0) return bai::fail(bai::ErrorCode::Internal, describeErrno("fork", errno));
    if (pid == 0) runExec(spec_, request, child);
    execs_[pid] = id;
    return {};
  }
  void hangUp(std::uint32_t id) override {
    for (const auto& [pid, exec] : execs_) {
      if (exec == id && ::kill(-pid, SIGHUP) != 0) ::kill(pid, SIGHUP);
    }
  }
  int eventFd() const override { return -1; }
  std::vector<std::pair<std::uint32_t, int>> takeEnded() override { return {}; }
  std::optional<std::uint32_t> reaped(pid_t pid, int) override {
    auto found = execs_.find(pid);
    if (found == execs_.end()) return std::nullopt;
    std::uint32_t id = found->second;
    execs_.erase(found);
    return id;
  }

 private:
  const files::ShimSpec& spec_;
  std::map<pid_t, std::uint32_t> execs_;
};

// Execs of a sandboxed session: init forks them inside the namespaces.
class InitExecLauncher : public shim::ExecLauncher {
 public:
  explicit InitExecLauncher(int channel) : channel_(channel) {}

  Result<void> start(std::uint32_t id, const ShimExecRequest& request, const shim::ChildEnds& child) override {
    if (channel_ < 0) return bai::fail(bai::ErrorCode::Conflict, "the session has ended");
    return shim::sendExecStart(channel_, id, bai::core::renderExecRequest(request), {child.in, child.out, child.err});
  }
  void hangUp(std::uint32_t id) override {
    if (channel_ >= 0) (void)shim::sendExecHangUp(channel_, id);
  }
  int eventFd() const override { return channel_; }
  std::vector<std::pair<std::uint32_t, int>> takeEnded() override {
    Result<std::optional<shim::ExecMessage>> message = shim::receiveExecMessage(channel_);
    if (message.ok() && message->has_value() && (*message)->kind == shim::ExecMessageKind::Ended) {
      return {{(*message)->id, (*message)->status}};
    }
    if (!message.ok() || !message->has_value()) {  // init is gone, and the session with it
      ::close(channel_);
      channel_ = -1;
    }
    return {};
  }
  std::optional<std::uint32_t> reaped(pid_t, int) override { return std::nullopt; }

 private:
  int channel_;
};

// In init: an exec the shim asked for, forked inside the namespaces.
pid_t startExecInSandbox(const files::ShimSpec& spec, const shim::ExecMessage& start) {
  Result<ShimExecRequest> request = bai::core::parseExecRequest(start.request);
  pid_t pid = request.ok() ? ::fork() : -1;
  if (pid == 0) runExec(spec, *request, shim::ChildEnds{start.fds[0], start.fds[1], start.fds[2], request->tty});
  for (int fd : start.fds) {
    if (fd >= 0) ::close(fd);
  }
  return pid;
}

// pid 1 of the session's PID namespace. Cgroups and affinity first: the sandbox sees
// cgroupfs read-only. A setup failure is reported like a failed exec (126, the reason).
[[noreturn]] void runSandboxInit(const files::ShimSpec& spec, const PreparedCommand& prepared,
                                 const std::filesystem::path& sessionDir, int statusPipe, int reportPipe,
                                 int execChannel) {
  if (::setpgid(0, 0) != 0) failStart(statusPipe, kCommandNotRunnable, describeErrno("setpgid", errno));
  bai::core::sandbox::blockInitSignals();
  redirectOutput(prepared, statusPipe);
  enterCgroupsAndCpus(spec, prepared, statusPipe);
  Result<void> entered = bai::core::sandbox::enterSandbox(*spec.sandbox, sessionDir / kSandboxRoot);
  if (!entered.ok()) failStart(statusPipe, kCommandNotRunnable, entered.error().message);
  pid_t command = ::fork();
  if (command < 0) failStart(statusPipe, kCommandNotRunnable, describeErrno("fork", errno));
  if (command == 0) {
    ::close(reportPipe);
    runSandboxedCommand(spec, prepared, statusPipe);
  }
  // Also here: the group must exist before a signal is forwarded. A tty's command makes
  // its own session, which it could not once it leads a group.
  if (prepared.console == nullptr || !prepared.console->tty) ::setpgid(command, command);
  ::close(statusPipe);
  for (int fd : {prepared.stdinFd, prepared.stdoutFd, prepared.stderrFd}) ::close(fd);
  if (prepared.console != nullptr) {
    shim::ChildEnds ends = *prepared.console;
    shim::closeChildEnds(ends);  // only the command holds them: its end is then seen
  }
  bai::core::sandbox::superviseCommand(command, reportPipe, execChannel,
                                       [&spec](const shim::ExecMessage& start) { return startExecInSandbox(spec, start); });
}

// Whether the agent handed the session over (a byte) rather than dying first (end of file).
bool handedOver(int handover) {
  char byte = 0;
  ssize_t got = 0;
  do {
    got = ::read(handover, &byte, 1);
  } while (got < 0 && errno == EINTR);
  ::close(handover);
  return got == 1;
}

int parseHandoverFd(const std::string& text) {
  const bool digits = !text.empty() && text.size() < 6 && text.find_first_not_of("0123456789") == std::string::npos;
  if (!digits) die(kExitSpecUnusable, "usage: bai-session-shim SESSION_DIR [HANDOVER_FD]");
  return std::stoi(text);
}

// Until exec succeeds the pipe stays open; a failed start writes its reason, then closes it.
std::string readStartError(int statusPipe) {
  std::string reason;
  char buffer[512];
  for (;;) {
    ssize_t got = ::read(statusPipe, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    reason.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(statusPipe);
  return reason;
}

// As a child subreaper the shim inherits the session's orphans: reap them as they die,
// so that none lingers as a zombie, until the command itself exits.
int waitForCommand(pid_t command) {
  for (;;) {
    int status = 0;
    pid_t reaped = ::waitpid(-1, &status, 0);
    if (reaped == command) return status;
    if (reaped < 0 && errno != EINTR) die(kExitShimFailed, describeErrno("waitpid", errno));
  }
}

std::vector<pid_t> readChildren(bool& readable) {
  Result<std::string> text =
      bai::core::readWholeFile("/proc/self/task/" + std::to_string(::getpid()) + "/children");
  readable = text.ok();
  std::vector<pid_t> children;
  if (!readable) return children;
  const char* cursor = text->c_str();
  char* end = nullptr;
  for (long pid = std::strtol(cursor, &end, 10); end != cursor; pid = std::strtol(cursor, &end, 10)) {
    children.push_back(static_cast<pid_t>(pid));
    cursor = end;
  }
  return children;
}

// The session ends with its command (as a container ends with its first process): what
// is left of its group, and any orphan that moved to another group, is killed and reaped.
void killLeftovers(pid_t group) {
  ::kill(-group, SIGKILL);
  for (;;) {
    bool readable = false;
    std::vector<pid_t> children = readChildren(readable);
    if (!readable) break;
    if (children.empty()) return;
    for (pid_t child : children) ::kill(child, SIGKILL);
    while (::waitpid(-1, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  while (::waitpid(-1, nullptr, WNOHANG) > 0) {  // without /proc children lists: reap what is dead
  }
}

// What init reported about the command; init's own status when it died without a report.
int commandStatusFromInit(int reportPipe, int initStatus) {
  int status = 0;
  ssize_t got = 0;
  do {
    got = ::read(reportPipe, &status, sizeof status);
  } while (got < 0 && errno == EINTR);
  ::close(reportPipe);
  return got == static_cast<ssize_t>(sizeof status) ? status : initStatus;
}

files::RecordedExit describeStatus(int status, std::string startError) {
  files::RecordedExit exit;
  exit.endedAtMillis = bai::nowMillis();
  if (WIFSIGNALED(status)) {
    exit.signal = WTERMSIG(status);
    exit.exitCode = 128 + WTERMSIG(status);
  } else {
    exit.exitCode = WEXITSTATUS(status);
  }
  exit.error = std::move(startError);
  return exit;
}

// Blocked rather than ignored: the command child inherits the mask, so a SIGTERM sent to
// its group before it has restored the default dispositions stays pending, and is
// delivered (not lost) when resetSignals() unblocks it.
void blockTerminationSignals() {
  sigset_t termination;
  sigemptyset(&termination);
  for (int signal : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&termination, signal);
  ::sigprocmask(SIG_BLOCK, &termination, nullptr);
  ::signal(SIGCHLD, SIG_DFL);  // an inherited SIG_IGN would make the kernel reap the command
}

files::ShimSpec readSpec(const std::filesystem::path& sessionDir) {
  Result<std::string> text = bai::core::readWholeFile(sessionDir / files::kSpec);
  if (!text.ok()) die(kExitSpecUnusable, "cannot read spec: " + text.error().message);
  Result<files::ShimSpec> spec = files::parseShimSpec(*text);
  if (!spec.ok()) die(kExitSpecUnusable, spec.error().message);
  return std::move(spec).value();
}


// The console of an interactive session and who starts its execs; none without a console.
struct Console {
  std::unique_ptr<shim::ExecLauncher> launcher;
  std::unique_ptr<shim::ConsoleServer> server;
  std::array<int, 2> initChannel{-1, -1};  // a sandbox's: [0] the shim's end, [1] init's
};

Console openConsole(const files::ShimSpec& spec, const std::filesystem::path& sessionDir, PreparedCommand& prepared) {
  Console console;
  if (!spec.console) return console;
  if (spec.sandbox) {
    Result<std::array<int, 2>> channel = shim::openExecChannel();
    if (!channel.ok()) die(kExitShimFailed, channel.error().message);
    console.initChannel = *channel;
    console.launcher = std::make_unique<InitExecLauncher>(console.initChannel[0]);
  } else {
    console.launcher = std::make_unique<ForkingExecLauncher>(spec);
  }
  Result<std::unique_ptr<shim::ConsoleServer>> server = shim::ConsoleServer::open(
      sessionDir, *spec.console, prepared.stdoutFd, prepared.stderrFd, *console.launcher);
  if (!server.ok()) die(kExitShimFailed, "console: " + server.error().message);
  console.server = std::move(server).value();
  prepared.console = &console.server->commandEnds();
  return console;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) die(kExitSpecUnusable, "usage: bai-session-shim SESSION_DIR [HANDOVER_FD]");
  const std::filesystem::path sessionDir = argv[1];
  const int handover = argc == 3 ? parseHandoverFd(argv[2]) : -1;
  blockTerminationSignals();
  files::ShimSpec spec = readSpec(sessionDir);
  checkRunAs(spec);
  PreparedCommand prepared = prepare(spec, sessionDir);
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) die(kExitShimFailed, describeErrno("PR_SET_CHILD_SUBREAPER", errno));
  if (handover >= 0 && !handedOver(handover)) {
    files::RecordedExit never{kCommandNotRunnable, std::nullopt, bai::nowMillis(),
                              "the agent stopped before it handed the session over; the command never ran"};
    Result<void> recorded = bai::core::writeFileAtomically(sessionDir / files::kExit, files::renderRecordedExit(never));
    if (!recorded.ok()) die(kExitShimFailed, recorded.error().message);
    return 0;
  }
  Console console = openConsole(spec, sessionDir, prepared);

  int statusPipe[2];
  if (::pipe2(statusPipe, O_CLOEXEC) != 0) die(kExitShimFailed, describeErrno("pipe2", errno));
  int reportPipe[2] = {-1, -1};
  if (spec.sandbox) {
    if (::pipe2(reportPipe, O_CLOEXEC) != 0) die(kExitShimFailed, describeErrno("pipe2", errno));
    // The shim stays outside; its next child, init, is pid 1 of the new namespace.
    if (::unshare(CLONE_NEWPID) != 0) die(kExitShimFailed, describeErrno("unshare(CLONE_NEWPID)", errno));
  }
  pid_t command = ::fork();
  if (command < 0) die(kExitShimFailed, describeErrno("fork", errno));
  if (command == 0) {
    ::close(statusPipe[0]);
    if (!spec.sandbox) runCommand(spec, prepared, statusPipe[1]);
    ::close(reportPipe[0]);
    if (console.server) {
      ::close(console.initChannel[0]);
      console.server->releaseInChild();
    }
    runSandboxInit(spec, prepared, sessionDir, statusPipe[1], reportPipe[1], console.initChannel[1]);
  }
  ::close(statusPipe[1]);
  if (spec.sandbox) ::close(reportPipe[1]);
  if (console.initChannel[1] >= 0) ::close(console.initChannel[1]);
  if (console.server) console.server->closeCommandEnds();
  // A tty's command makes its own session, which it could not once it leads a group:
  // command.pid then waits for its exec (or failure), by which time the session exists.
  const bool commandMakesSession = prepared.console != nullptr && prepared.console->tty && !spec.sandbox;
  std::string startError;
  if (commandMakesSession) {
    startError = readStartError(statusPipe[0]);
  } else {
    ::setpgid(command, command);  // also set here, so that the group exists before command.pid names it
  }
  Result<void> ids = bai::core::writeFileAtomically(sessionDir / files::kCommandIds,
                                                    files::renderCommandIds({command, command}));
  if (!ids.ok()) {
    ::kill(-command, SIGKILL);  // unrecorded, the agent could never stop it
    die(kExitShimFailed, ids.error().message);
  }
  ::close(prepared.stdinFd);
  if (!console.server) {
    ::close(prepared.stdoutFd);
    ::close(prepared.stderrFd);
  }
  if (!commandMakesSession) startError = readStartError(statusPipe[0]);
  int status = console.server ? console.server->relayUntilExit(command) : waitForCommand(command);
  if (spec.sandbox) status = commandStatusFromInit(reportPipe[0], status);
  files::RecordedExit exit = describeStatus(status, std::move(startError));
  killLeftovers(command);
  if (console.server) console.server->finish(exit.exitCode);
  Result<void> recorded = bai::core::writeFileAtomically(sessionDir / files::kExit, files::renderRecordedExit(exit));
  if (!recorded.ok()) die(kExitShimFailed, recorded.error().message);
  return 0;
}
