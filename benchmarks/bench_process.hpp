// Daemons and programs started by the benchmarks that run real bai processes
// (bench_heartbeat, bench_session): start them so they die with the benchmark, stop them
// by pid, read their logs and the CPU time they used.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace bai::bench {

// $name when set and not empty, else the path meson built the program at.
inline std::string fromEnvOr(const char* name, const char* built) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : built;
}

// The end of a log file, for error messages.
inline std::string lastLines(const std::filesystem::path& file, std::size_t bytes = 1500) {
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  const std::string all = text.str();
  return all.size() > bytes ? all.substr(all.size() - bytes) : all;
}

// The environment of a child: ours without BAI_* (so a developer's own endpoint or keys
// cannot leak in), plus `extra`.
inline std::vector<std::string> childEnvironment(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("BAI_", 0) != 0) out.emplace_back(*e);
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

// argv/envp for exec: pointers into `strings`, null-terminated.
inline std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (auto& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// fork+exec with stdout and stderr to `log` (O_APPEND), dying with this process
// (PR_SET_PDEATHSIG), so a crashed benchmark leaves no daemon behind. Only
// async-signal-safe calls between fork and exec. -1 when it could not be started.
inline pid_t spawnDaemon(std::vector<std::string> args, const std::filesystem::path& log) {
  auto argv = pointers(args);
  std::vector<std::string> environment = childEnvironment({});
  auto envp = pointers(environment);
  const int logFd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (logFd < 0) return -1;
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // The signal follows the thread that forked: the daemons are started from the main
    // thread, which lives as long as the benchmark does.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(126);
    ::dup2(logFd, STDOUT_FILENO);
    ::dup2(logFd, STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(logFd);
  return pid;
}

inline int exitStatus(int status) { return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status); }

// SIGTERM, then SIGKILL after `grace`; reaps it either way.
inline void stopProcess(pid_t pid, const char* name, std::chrono::milliseconds grace = std::chrono::seconds(10)) {
  if (pid <= 0) return;
  ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  int status = 0;
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      std::fprintf(stderr, "%s: %s ignored SIGTERM for %lld ms; killing it\n", program_invocation_short_name, name,
                   static_cast<long long>(grace.count()));
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

// CPU seconds (user + system, all threads) a process has used, with the children it has
// reaped: for the agent, its session shims and, through them, the sessions' commands.
inline double processCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto nameEnd = text.rfind(')');
  if (nameEnd == std::string::npos) return 0;
  std::istringstream fields(text.substr(nameEnd + 1));
  std::string skipped;
  for (int field = 3; field < 14; ++field) fields >> skipped;  // state .. cmajflt
  long long user = 0, system = 0, childrenUser = 0, childrenSystem = 0;
  fields >> user >> system >> childrenUser >> childrenSystem;
  return static_cast<double>(user + system + childrenUser + childrenSystem) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

}  // namespace bai::bench
