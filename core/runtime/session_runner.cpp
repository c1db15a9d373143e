#include "runtime/session_runner.hpp"

#include "clock.hpp"
#include "runtime/atomic_file.hpp"
#include "runtime/proc_stat.hpp"
#include "runtime/session_files.hpp"

#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <system_error>
#include <unistd.h>

extern char** environ;

namespace bai::core {
namespace {

namespace files = session_files;

// A destroy that comes before the shim has written command.pid retries this often.
constexpr std::chrono::milliseconds kGroupLookupRetry{2};
// How long an immediate SIGKILL waits for command.pid before it stops the shim instead.
constexpr std::chrono::seconds kGroupLookupPatience{1};

int openPidfd(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

bool hasExited(int pidfd) {
  pollfd entry{pidfd, POLLIN, 0};
  return ::poll(&entry, 1, 0) == 1;
}

std::optional<pid_t> readCommandGroup(const std::filesystem::path& dir) {
  Result<std::string> text = readWholeFile(dir / files::kCommandIds);
  if (!text.ok()) return std::nullopt;
  Result<files::CommandIds> ids = files::parseCommandIds(*text);
  if (!ids.ok()) return std::nullopt;
  return ids->pgid;
}

std::string lastLine(const std::string& text) {
  std::size_t end = text.find_last_not_of("\n ");
  if (end == std::string::npos) return "";
  std::size_t start = text.rfind('\n', end);
  return text.substr(start == std::string::npos ? 0 : start + 1, end + 1 - (start == std::string::npos ? 0 : start + 1));
}

std::string describeWaitStatus(int status) {
  if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

// The files a previous run in this dir may have left would be mistaken for this run's.
void removeStaleRecords(const std::filesystem::path& dir) {
  for (const char* name : {files::kExit, files::kCommandIds, files::kShimIdentity}) {
    ::unlink((dir / name).c_str());
  }
}

// The shim's descriptor on which the runner hands the session over (its second argument).
constexpr int kHandoverFd = 3;

// Lets the shim run the command: the shim is recorded in shim.json and watched, so a
// restarted agent finds it. A shim that died meanwhile is reported by the watcher.
void handOver(int handover) {
  (void)::send(handover, "1", 1, MSG_NOSIGNAL);
  ::close(handover);
}

class SpawnSetup {
 public:
  SpawnSetup(int logFd, int handoverFd) {
    ::posix_spawn_file_actions_init(&actions_);
    ::posix_spawnattr_init(&attributes_);
    ::posix_spawn_file_actions_addopen(&actions_, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    ::posix_spawn_file_actions_adddup2(&actions_, logFd, STDOUT_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions_, logFd, STDERR_FILENO);
    ::posix_spawn_file_actions_adddup2(&actions_, handoverFd, kHandoverFd);
    // The agent's own descriptors (sockets, plugin pipes) must not reach the session.
    ::posix_spawn_file_actions_addclosefrom_np(&actions_, kHandoverFd + 1);
    // Its own session: the shim outlives the agent's terminal and process group. Signals
    // blocked or ignored by agent threads are restored for it.
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    ::posix_spawnattr_setsigmask(&attributes_, &none);
    ::posix_spawnattr_setsigdefault(&attributes_, &all);
    ::posix_spawnattr_setflags(&attributes_, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSID);
  }
  ~SpawnSetup() {
    ::posix_spawn_file_actions_destroy(&actions_);
    ::posix_spawnattr_destroy(&attributes_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  const posix_spawn_file_actions_t* actions() const { return &actions_; }
  const posix_spawnattr_t* attributes() const { return &attributes_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attributes_;
};

}  // namespace

SessionRunner::SessionRunner(std::filesystem::path shimPath, LogSink log, ExitCallback onExit)
    : shimPath_(std::move(shimPath)), log_(log ? std::move(log) : stderrLogSink()), onExit_(std::move(onExit)) {
  epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_ < 0) {
    int error = errno;
    ::close(epoll_);
    throw std::system_error(error, std::generic_category(), "eventfd");
  }
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = wake_;
  ::epoll_ctl(epoll_, EPOLL_CTL_ADD, wake_, &event);
  watcher_ = std::thread(&SessionRunner::watchLoop, this);
}

SessionRunner::~SessionRunner() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wakeWatcher();
  watcher_.join();
  for (const auto& [pidfd, sessionId] : sessionByPidfd_) ::close(pidfd);
  ::close(wake_);
  ::close(epoll_);
}

std::size_t SessionRunner::watchedCount() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return sessions_.size();
}

Result<std::int64_t> SessionRunner::start(const RunSpec& spec) {
  if (spec.sessionId.empty()) return fail(ErrorCode::InvalidArgument, "session id is empty");
  if (spec.command.empty() || spec.command[0].empty()) {
    return fail(ErrorCode::InvalidArgument, "session " + spec.sessionId + ": empty command");
  }
  std::error_code dirError;
  std::filesystem::create_directories(spec.sessionDir, dirError);
  if (dirError) {
    return fail(ErrorCode::Internal, "session dir " + spec.sessionDir.string() + ": " + dirError.message());
  }
  if (Result<void> reserved = reserve(spec.sessionId, spec.sessionDir); !reserved.ok()) return Failure{reserved.error()};

  // The shim runs the command only once handed over: until shim.json names it, an agent
  // killed meanwhile could never watch or stop what it ran.
  int handover[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, handover) != 0) {
    const int error = errno;
    unreserve(spec.sessionId);
    return fail(ErrorCode::Internal, describeErrno("socketpair", error));
  }
  Result<pid_t> shim = spawnShim(spec, handover[1]);
  ::close(handover[1]);
  if (!shim.ok()) {
    ::close(handover[0]);
    unreserve(spec.sessionId);
    return Failure{shim.error()};
  }
  // A pidfd and the /proc start time name this shim for good, even after pid reuse.
  int pidfd = openPidfd(*shim);
  int pidfdError = errno;
  Result<ProcessStat> stat = readProcessStat(*shim);
  Result<void> identity = stat.ok() ? writeFileAtomically(spec.sessionDir / files::kShimIdentity,
                                                          files::renderShimIdentity({*shim, stat->startTime}))
                                    : Result<void>(Failure{stat.error()});
  if (pidfd < 0 || !identity.ok()) {
    std::string reason = pidfd < 0 ? describeErrno("pidfd_open", pidfdError) : identity.error().message;
    ::close(handover[0]);
    if (pidfd >= 0) ::close(pidfd);
    abandonShim(*shim, spec.sessionDir);
    unreserve(spec.sessionId);
    return fail(ErrorCode::Internal, "session " + spec.sessionId + ": cannot watch its shim: " + reason);
  }
  if (Result<void> watched = watch(spec.sessionId, *shim, pidfd, /*ourChild=*/true); !watched.ok()) {
    ::close(handover[0]);
    abandonShim(*shim, spec.sessionDir);
    return Failure{watched.error()};
  }
  handOver(handover[0]);
  return static_cast<std::int64_t>(*shim);
}

Result<void> SessionRunner::reserve(const std::string& sessionId, const std::filesystem::path& dir) {
  std::lock_guard<std::mutex> lock(mutex_);
  Watched reserved;
  reserved.dir = dir;
  if (!sessions_.emplace(sessionId, std::move(reserved)).second) {
    return fail(ErrorCode::Conflict, "session " + sessionId + " is already running");
  }
  return {};
}

void SessionRunner::unreserve(const std::string& sessionId) {
  std::lock_guard<std::mutex> lock(mutex_);
  sessions_.erase(sessionId);
}

Result<pid_t> SessionRunner::spawnShim(const RunSpec& spec, int handoverFd) {
  files::ShimSpec shimSpec{spec.command, spec.env, spec.cwd, spec.cpus, spec.cgroupProcs, spec.runAs,
                           spec.sessionDir / "stdout.log", spec.sessionDir / "stderr.log", spec.sandbox};
  shimSpec.console = spec.console;
  removeStaleRecords(spec.sessionDir);
  if (Result<void> written = writeFileAtomically(spec.sessionDir / files::kSpec, files::renderShimSpec(shimSpec));
      !written.ok()) {
    return Failure{written.error()};
  }
  std::filesystem::path logPath = spec.sessionDir / files::kShimLog;
  int logFd = ::open(logPath.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (logFd < 0) return fail(ErrorCode::Internal, describeErrno("opening " + logPath.string(), errno));

  std::string shimArg = shimPath_.string();
  std::string dirArg = spec.sessionDir.string();
  std::string handoverArg = std::to_string(kHandoverFd);
  char* argv[] = {shimArg.data(), dirArg.data(), handoverArg.data(), nullptr};
  pid_t pid = 0;
  int error = 0;
  {
    SpawnSetup setup(logFd, handoverFd);
    error = ::posix_spawn(&pid, shimArg.c_str(), setup.actions(), setup.attributes(), argv, environ);
  }
  ::close(logFd);
  if (error != 0) return fail(ErrorCode::Internal, describeErrno("starting " + shimArg, error));
  return pid;
}

// Without a pidfd the shim could not be watched: stop it and whatever it started.
void SessionRunner::abandonShim(pid_t shim, const std::filesystem::path& dir) {
  ::kill(shim, SIGKILL);
  while (::waitpid(shim, nullptr, 0) < 0 && errno == EINTR) {
  }
  if (std::optional<pid_t> group = readCommandGroup(dir)) ::kill(-*group, SIGKILL);
}

// On failure the session is forgotten and the pidfd closed; the caller decides about the shim.
Result<void> SessionRunner::watch(const std::string& sessionId, pid_t shim, int pidfd, bool ourChild) {
  std::lock_guard<std::mutex> lock(mutex_);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = pidfd;
  if (::epoll_ctl(epoll_, EPOLL_CTL_ADD, pidfd, &event) != 0) {
    std::string reason = describeErrno("epoll_ctl", errno);
    ::close(pidfd);
    sessions_.erase(sessionId);
    return fail(ErrorCode::Internal, "session " + sessionId + ": cannot watch its shim: " + reason);
  }
  Watched& session = sessions_[sessionId];
  session.shimPid = shim;
  session.pidfd = pidfd;
  session.ourChild = ourChild;
  sessionByPidfd_[pidfd] = sessionId;
  return {};
}

Result<void> SessionRunner::destroy(const std::string& sessionId, std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto found = sessions_.find(sessionId);
  if (found == sessions_.end()) return fail(ErrorCode::NotFound, "session " + sessionId + " is not running");
  Clock::time_point now = Clock::now();
  if (grace.count() <= 0) {
    signalSessionLocked({sessionId, SIGKILL, now + kGroupLookupPatience}, found->second);
    return {};
  }
  signalSessionLocked({sessionId, SIGTERM, now + grace}, found->second);
  scheduleLocked(now + grace, {sessionId, SIGKILL, now + grace});
  return {};
}

// Signals the command's process group, only while the shim lives: once it has ended, the
// group is gone (the shim kills what is left) and its number may name someone else.
void SessionRunner::signalSessionLocked(const PendingSignal& request, Watched& session) {
  if (session.pidfd >= 0 && hasExited(session.pidfd)) return;
  bool spawning = session.shimPid == 0;  // command.pid may still be a previous run's
  if (!spawning && !session.commandGroup) session.commandGroup = readCommandGroup(session.dir);
  if (session.commandGroup) {
    ::kill(-*session.commandGroup, request.signal);
    return;
  }
  if (request.signal == SIGKILL && session.pidfd >= 0 && Clock::now() >= request.giveUpOnGroup) {
    // The shim never got to fork the command: stop the shim itself.
    ::syscall(SYS_pidfd_send_signal, session.pidfd, SIGKILL, nullptr, 0);
    return;
  }
  scheduleLocked(Clock::now() + kGroupLookupRetry, request);
}

void SessionRunner::scheduleLocked(Clock::time_point at, PendingSignal request) {
  pendingSignals_.emplace(at, std::move(request));
  wakeWatcher();
}

Result<void> SessionRunner::adopt(const std::string& sessionId, const std::filesystem::path& sessionDir) {
  if (Result<void> reserved = reserve(sessionId, sessionDir); !reserved.ok()) return Failure{reserved.error()};
  Result<std::string> text = readWholeFile(sessionDir / files::kShimIdentity);
  Result<files::ShimIdentity> identity =
      text.ok() ? files::parseShimIdentity(*text) : Result<files::ShimIdentity>(Failure{text.error()});
  if (identity.ok()) {
    // Open first, then compare start times: a match proves the pidfd names our shim.
    int pidfd = openPidfd(identity->pid);
    if (pidfd < 0 && errno != ESRCH) {
      std::string reason = describeErrno("pidfd_open", errno);
      unreserve(sessionId);
      return fail(ErrorCode::Internal, "session " + sessionId + ": cannot watch its shim: " + reason);
    }
    Result<ProcessStat> stat = pidfd >= 0 ? readProcessStat(identity->pid) : Result<ProcessStat>(fail(ErrorCode::NotFound, ""));
    if (stat.ok() && stat->startTime == identity->startTime) {
      return watch(sessionId, identity->pid, pidfd, /*ourChild=*/stat->ppid == ::getpid());
    }
    if (pidfd >= 0) ::close(pidfd);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  endedBeforeAdopt_.push_back(sessionId);
  wakeWatcher();
  return {};
}

void SessionRunner::wakeWatcher() {
  std::uint64_t one = 1;
  (void)!::write(wake_, &one, sizeof one);
}

void SessionRunner::watchLoop() {
  constexpr int kMaxEvents = 64;
  epoll_event events[kMaxEvents];
  for (;;) {
    int ready = ::epoll_wait(epoll_, events, kMaxEvents, millisUntilNextSignal());
    if (ready < 0 && errno != EINTR) {
      log_(LogLevel::Error, "session runner", describeErrno("epoll_wait", errno));
      return;
    }
    for (int i = 0; i < ready; ++i) {
      if (events[i].data.fd == wake_) {
        std::uint64_t count = 0;
        (void)!::read(wake_, &count, sizeof count);
      } else {
        handleShimExit(events[i].data.fd);
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stopping_) return;
    }
    deliverEndedBeforeAdopt();
    sendDueSignals();
  }
}

int SessionRunner::millisUntilNextSignal() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (pendingSignals_.empty()) return -1;
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(pendingSignals_.begin()->first - Clock::now());
  return static_cast<int>(std::max<std::int64_t>(0, wait.count()));
}

void SessionRunner::handleShimExit(int pidfd) {
  std::string sessionId;
  Watched session;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto byFd = sessionByPidfd_.find(pidfd);
    if (byFd == sessionByPidfd_.end()) return;
    sessionId = std::move(byFd->second);
    sessionByPidfd_.erase(byFd);
    auto found = sessions_.find(sessionId);
    session = std::move(found->second);
    sessions_.erase(found);
    ::epoll_ctl(epoll_, EPOLL_CTL_DEL, pidfd, nullptr);
  }
  std::string shimEnding = "the shim has ended";
  if (session.ourChild) {
    int status = 0;
    pid_t reaped = 0;
    do {
      reaped = ::waitpid(session.shimPid, &status, WNOHANG);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == session.shimPid) shimEnding = "the shim " + describeWaitStatus(status);
  }
  ::close(pidfd);
  deliver(sessionId, readExitStatus(session.dir, shimEnding));
}

void SessionRunner::deliverEndedBeforeAdopt() {
  std::vector<std::pair<std::string, std::filesystem::path>> ended;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (std::string& sessionId : endedBeforeAdopt_) {
      auto found = sessions_.find(sessionId);
      ended.emplace_back(std::move(sessionId), found->second.dir);
      sessions_.erase(found);
    }
    endedBeforeAdopt_.clear();
  }
  for (const auto& [sessionId, dir] : ended) deliver(sessionId, readExitStatus(dir, "the shim is gone"));
}

void SessionRunner::sendDueSignals() {
  std::lock_guard<std::mutex> lock(mutex_);
  Clock::time_point now = Clock::now();
  std::vector<PendingSignal> due;
  while (!pendingSignals_.empty() && pendingSignals_.begin()->first <= now) {
    due.push_back(std::move(pendingSignals_.begin()->second));
    pendingSignals_.erase(pendingSignals_.begin());
  }
  for (const PendingSignal& pending : due) {
    auto found = sessions_.find(pending.sessionId);
    if (found != sessions_.end()) signalSessionLocked(pending, found->second);
  }
}

ExitStatus SessionRunner::readExitStatus(const std::filesystem::path& dir, const std::string& shimEnding) {
  Result<std::string> text = readWholeFile(dir / files::kExit);
  Result<files::RecordedExit> recorded =
      text.ok() ? files::parseRecordedExit(*text) : Result<files::RecordedExit>(Failure{text.error()});
  ExitStatus status;
  if (recorded.ok()) {
    status.exitCode = recorded->exitCode;
    status.signal = recorded->signal;
    status.endedAtMillis = recorded->endedAtMillis;
    status.recorded = true;
    status.error = std::move(recorded->error);
    return status;
  }
  status.endedAtMillis = nowMillis();
  status.error = shimEnding + " without recording the command's exit (" + recorded.error().message + ")";
  Result<std::string> shimLog = readWholeFile(dir / files::kShimLog);
  if (shimLog.ok() && !lastLine(*shimLog).empty()) status.error += ": " + lastLine(*shimLog);
  return status;
}

void SessionRunner::deliver(const std::string& sessionId, const ExitStatus& status) {
  if (!status.recorded) log_(LogLevel::Warning, "session runner", "session " + sessionId + ": " + status.error);
  try {
    onExit_(sessionId, status);
  } catch (const std::exception& error) {
    // The watcher must survive a faulty callback, or no later exit would be reported.
    log_(LogLevel::Error, "session runner", "exit callback for session " + sessionId + " threw: " + error.what());
  }
}

}  // namespace bai::core
