// Starts each session's command through bai-session-shim and watches the shims with
// pidfds on one thread, so that the agent learns every exit exactly once, including the
// exits of sessions started by an earlier agent process (adopt after a restart).
#pragma once

#include "bai/result.hpp"
#include "log.hpp"
#include "runtime/sandbox_spec.hpp"
#include "runtime/session_files.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <sys/types.h>
#include <thread>
#include <utility>
#include <vector>

namespace bai::core {

struct RunSpec {
  std::string sessionId;
  std::filesystem::path sessionDir;  // created when missing; holds the files of session_files.hpp
  std::vector<std::string> command;  // argv; argv[0] is looked up in env's PATH
  // The rest may be left out of an aggregate initializer.
  std::map<std::string, std::string> env{};  // the command's complete environment
  std::vector<int> cpus{};                   // CPU affinity; empty leaves it as the agent's
  std::vector<std::filesystem::path> cgroupProcs{};  // from LimitsBackend::prepare
  std::optional<std::pair<uid_t, gid_t>> runAs{};    // honoured when the agent runs as root
  std::optional<std::filesystem::path> cwd{};        // entered as the run-as user
  std::optional<Sandbox> sandbox{};                  // session_files::ShimSpec::sandbox
  std::optional<session_files::ShimConsole> console{};  // interactive: its stdin, output and execs on console.sock
};
// The command's output goes to sessionDir/stdout.log and sessionDir/stderr.log.

struct ExitStatus {
  int exitCode = -1;          // 128 + signal when killed by a signal; -1 when not recorded
  std::optional<int> signal;
  std::int64_t endedAtMillis = 0;  // wall clock, ms since the epoch
  bool recorded = false;      // false: the shim died and left no exit.json; the status is unknown
  std::string error;          // why the command never ran, or why no status was recorded
};

class SessionRunner {
 public:
  using ExitCallback = std::function<void(const std::string& sessionId, const ExitStatus& status)>;

  // `onExit` runs on the watcher thread, exactly once per started or adopted session, and
  // never after the destructor returns; it may call start/destroy/adopt. Throws
  // std::system_error only when the kernel refuses an epoll or eventfd (at agent start).
  SessionRunner(std::filesystem::path shimPath, LogSink log, ExitCallback onExit);
  // Stops watching; the sessions keep running, for a restarted agent to adopt(). SIGKILLs
  // that destroy() scheduled and that are not yet due are dropped.
  ~SessionRunner();
  SessionRunner(const SessionRunner&) = delete;
  SessionRunner& operator=(const SessionRunner&) = delete;

  // Writes spec.json, spawns the shim, writes shim.json and then hands the session over:
  // the shim starts the command only then, so a command never runs unrecorded. Returns the
  // shim's pid; a command that cannot run is reported through onExit.
  Result<std::int64_t> start(const RunSpec& spec);

  // SIGTERM to the command's process group now, SIGKILL after `grace` unless the session
  // ended; returns at once. NotFound when the session is unknown or already reported.
  Result<void> destroy(const std::string& sessionId, std::chrono::milliseconds grace);

  // After an agent restart: watches the session's shim again when shim.json still names a
  // live process (pid and start time); otherwise reports its exit from exit.json.
  Result<void> adopt(const std::string& sessionId, const std::filesystem::path& sessionDir);

  // Sessions whose exit has not been reported yet.
  std::size_t watchedCount() const;

 private:
  struct Watched {
    std::filesystem::path dir;
    pid_t shimPid = 0;   // 0 while start() is spawning the shim
    int pidfd = -1;      // -1: not watched (starting, or ended before adopt)
    bool ourChild = false;             // reaped here; adopted shims of an earlier agent are not
    std::optional<pid_t> commandGroup;  // from command.pid, once the shim has written it
  };
  using Clock = std::chrono::steady_clock;
  struct PendingSignal {
    std::string sessionId;
    int signal = 0;
    // A SIGKILL still without a command group by then stops the shim itself.
    Clock::time_point giveUpOnGroup;
  };

  Result<void> reserve(const std::string& sessionId, const std::filesystem::path& dir);
  void unreserve(const std::string& sessionId);
  // `handoverFd` becomes the shim's descriptor 3: it starts the command on a byte there.
  Result<pid_t> spawnShim(const RunSpec& spec, int handoverFd);
  Result<void> watch(const std::string& sessionId, pid_t shim, int pidfd, bool ourChild);
  void abandonShim(pid_t shim, const std::filesystem::path& dir);

  void signalSessionLocked(const PendingSignal& request, Watched& session);
  void scheduleLocked(Clock::time_point at, PendingSignal request);
  void wakeWatcher();

  void watchLoop();
  int millisUntilNextSignal();
  void handleShimExit(int pidfd);
  void deliverEndedBeforeAdopt();
  void sendDueSignals();
  ExitStatus readExitStatus(const std::filesystem::path& dir, const std::string& shimEnding);
  void deliver(const std::string& sessionId, const ExitStatus& status);

  const std::filesystem::path shimPath_;
  const LogSink log_;
  const ExitCallback onExit_;
  int epoll_ = -1;
  int wake_ = -1;

  mutable std::mutex mutex_;
  std::map<std::string, Watched> sessions_;
  std::map<int, std::string> sessionByPidfd_;
  std::vector<std::string> endedBeforeAdopt_;
  std::multimap<Clock::time_point, PendingSignal> pendingSignals_;
  bool stopping_ = false;

  std::thread watcher_;  // last: starts after everything above exists
};

}  // namespace bai::core
