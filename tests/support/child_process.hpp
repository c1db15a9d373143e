// Test support for the integration tests that start, kill and restart the real daemons:
// a child process with its output in a log file, a free loopback port to restart a
// daemon on, and the marker that finds every process a test started (sessions too).
#pragma once

#include "daemon_process.hpp"
#include "wait.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace bai::testing {

// Every process of one test carries KEY=marker in its environment (daemons and session
// shims through inheritance, session commands through their env), so that teardown can
// end them all, whatever forked them.
constexpr const char* kMarkerVariable = "BAI_MANAGER_TEST_RUN";

// A port nobody listens on now: bound to 0 here, noted, closed. The manager sets
// SO_REUSEADDR, so it can take it again after the previous run was killed.
inline int freeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

// A secret file as the daemons want it: the text and a newline, mode 0600.
inline void writeSecret(const std::filesystem::path& file, const std::string& text) {
  std::ofstream(file) << text << "\n";
  ::chmod(file.c_str(), 0600);
}

// The first of the variables a cluster test needs (paths of the daemons and plugins the
// build made) that is not set; empty when all are.
inline std::string missingClusterVariable() {
  for (const char* name : {"BAI_MANAGER", "BAI_AGENT", "BAI_SESSION_SHIM", "BAI_CPU_PLUGIN_DIR", "BAI_MOCK_PLUGIN_DIR",
                           "BAI_MOCK_CONFIG_DIR"}) {
    if (env(name).empty()) return name;
  }
  return {};
}

// The processes (other than this one) whose environment holds kMarkerVariable=marker.
inline std::vector<pid_t> markedProcesses(const std::string& marker) {
  const std::string needle = std::string(kMarkerVariable) + "=" + marker;
  std::vector<pid_t> out;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = static_cast<pid_t>(std::stol(name));
    if (pid == ::getpid()) continue;
    const std::string environment = readFile(entry.path() / "environ");
    for (std::size_t start = 0; start < environment.size();) {
      std::size_t end = environment.find('\0', start);
      if (end == std::string::npos) end = environment.size();
      if (environment.compare(start, end - start, needle) == 0) {
        out.push_back(pid);
        break;
      }
      start = end + 1;
    }
  }
  return out;
}

// SIGKILLs every marked process until none is left (sessions outlive a killed agent, so
// they are not all children of the test); `reap` collects the test's own children.
template <typename Reap>
void killMarkedProcesses(const std::string& marker, Reap reap) {
  for (int round = 0; round < 50; ++round) {
    const auto pids = markedProcesses(marker);
    if (pids.empty()) return;
    for (pid_t pid : pids) ::kill(pid, SIGKILL);
    reap();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

// One child process (a daemon, or `bai-manager init`) with the marker in its environment,
// stdout and stderr to log files. Killed with SIGKILL when destroyed.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess() { stop(SIGKILL); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool spawn(const std::vector<std::string>& args, const std::filesystem::path& out, const std::filesystem::path& err,
             const std::string& marker, const std::filesystem::path& cwd = {}) {
    std::vector<std::string> environment;
    for (char** e = environ; *e != nullptr; ++e) environment.emplace_back(*e);
    environment.push_back(std::string(kMarkerVariable) + "=" + marker);
    std::vector<char*> envp;
    for (auto& e : environment) envp.push_back(e.data());
    envp.push_back(nullptr);
    pid_ = spawnLogged(args, out, err, envp.data(), cwd);
    return pid_ != 0;
  }

  // Waits for the end: the exit code, or -signal.
  int wait() {
    if (pid_ <= 0) return status_;
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
    return status_;
  }

  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = 0;
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
      return false;
    }
    return true;
  }

  void signal(int number) {
    if (pid_ > 0) ::kill(pid_, number);
  }

  // Sends `number` and waits; SIGKILL after 10 s if it has not ended by then.
  int stop(int number = SIGTERM) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, number);
    ::kill(pid_, SIGCONT);
    if (!eventually([&] { return !alive(); }, std::chrono::seconds(10))) ::kill(pid_, SIGKILL);
    return wait();
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = 0;
  int status_ = -1;
};

}  // namespace bai::testing
