// The kernel's OOM kills in memory cgroups, read from /dev/kmsg as they happen. A container
// engine should say when the OOM killer ended a container (State.OOMKilled), but Podman 4.3
// with conmon 2.1 loses it (conmon writes its marker into its working directory), so the
// agent also asks the kernel: its "oom-kill:" record names the cgroup, which holds the
// container's id.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace bai::core {

// The memory cgroups an "oom-kill:" record names (oom_memcg and task_memcg), or nothing
// for any other record. A record is "<prio>,<seq>,<usec>,<flags>;<message>".
std::optional<std::pair<std::string, std::string>> oomKillCgroups(std::string_view record);

class KernelOomLog {
 public:
  // Reads the log from its end on a thread of its own; a log that cannot be opened (not
  // root) reads nothing, and available() says so.
  explicit KernelOomLog(std::filesystem::path path = "/dev/kmsg");
  ~KernelOomLog();
  KernelOomLog(const KernelOomLog&) = delete;
  KernelOomLog& operator=(const KernelOomLog&) = delete;

  bool available() const { return fd_ >= 0; }
  // Whether the OOM killer acted in a cgroup whose path contains `fragment` (a container's
  // id), waiting up to `wait` for its record to be read.
  bool killedIn(const std::string& fragment, std::chrono::milliseconds wait);

 private:
  void readLoop();
  void take(std::string_view record);
  bool seenLocked(const std::string& fragment) const;

  int fd_ = -1;
  int stop_ = -1;  // an eventfd that ends the reading
  mutable std::mutex mutex_;
  std::condition_variable added_;
  std::deque<std::string> cgroups_;  // the latest ones, bounded
  std::thread reader_;
};

}  // namespace bai::core
