// Helpers shared by the runtime tests: temp dirs, polling with a deadline, the shim's
// path, exit collection and /proc scans for zombies and process groups.
#pragma once

#include "temp_dir.hpp"

#include "runtime/atomic_file.hpp"
#include "runtime/proc_stat.hpp"
#include "runtime/session_runner.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace bai::test {

inline std::filesystem::path shimPath() {
  const char* path = std::getenv("BAI_SESSION_SHIM");
  if (path == nullptr) throw std::runtime_error("BAI_SESSION_SHIM is not set (run through meson test)");
  return path;
}

// Polls `condition` (a few ms apart) until it holds or `timeout` passes.
template <class Condition>
bool waitUntil(Condition condition, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

inline std::string readText(const std::filesystem::path& file) {
  Result<std::string> text = core::readWholeFile(file);
  return text.ok() ? *text : std::string();
}

inline std::vector<pid_t> allPids() {
  std::vector<pid_t> pids;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (!name.empty() && name.find_first_not_of("0123456789") == std::string::npos) pids.push_back(std::stoi(name));
  }
  return pids;
}

inline std::vector<pid_t> zombieChildren() {
  std::vector<pid_t> zombies;
  for (pid_t pid : allPids()) {
    Result<core::ProcessStat> stat = core::readProcessStat(pid);
    if (stat.ok() && stat->ppid == ::getpid() && stat->state == 'Z') zombies.push_back(pid);
  }
  return zombies;
}

// Live (non-zombie) members of a process group.
inline std::vector<pid_t> groupMembers(pid_t group) {
  std::vector<pid_t> members;
  for (pid_t pid : allPids()) {
    Result<core::ProcessStat> stat = core::readProcessStat(pid);
    if (stat.ok() && stat->pgrp == group && stat->state != 'Z') members.push_back(pid);
  }
  return members;
}

// Collects onExit calls; every test checks that each session is reported exactly once.
class ExitCollector {
 public:
  core::SessionRunner::ExitCallback callback() {
    return [this](const std::string& sessionId, const core::ExitStatus& status) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        reports_[sessionId].push_back(status);
        ++total_;
      }
      changed_.notify_all();
    };
  }

  std::optional<core::ExitStatus> waitFor(const std::string& sessionId,
                                          std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return reports_.count(sessionId) != 0; })) return std::nullopt;
    return reports_[sessionId].front();
  }

  bool waitForTotal(std::size_t count, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return total_ >= count; });
  }

  std::size_t reportsFor(const std::string& sessionId) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = reports_.find(sessionId);
    return found == reports_.end() ? 0 : found->second.size();
  }

  std::size_t total() {
    std::lock_guard<std::mutex> lock(mutex_);
    return total_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::vector<core::ExitStatus>> reports_;
  std::size_t total_ = 0;
};

inline core::LogSink quietLog() {
  return [](core::LogLevel, const std::string&, const std::string&) {};
}

// The PATH sessions get in the tests.
inline const char* kSessionPath = "/usr/local/bin:/usr/bin:/bin";

}  // namespace bai::test
