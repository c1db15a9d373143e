#include "runtime/kernel_oom_log.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>

namespace bai::core {
namespace {

constexpr std::size_t kKeptCgroups = 1024;

std::string fieldOf(std::string_view message, std::string_view key) {
  const auto at = message.find(key);
  if (at == std::string_view::npos) return "";
  const auto start = at + key.size();
  const auto end = message.find(',', start);
  return std::string(message.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
}

}  // namespace

std::optional<std::pair<std::string, std::string>> oomKillCgroups(std::string_view record) {
  const auto semicolon = record.find(';');
  if (semicolon == std::string_view::npos) return std::nullopt;
  std::string_view message = record.substr(semicolon + 1);
  if (message.substr(0, 9) != "oom-kill:") return std::nullopt;
  if (const auto end = message.find('\n'); end != std::string_view::npos) message = message.substr(0, end);
  return std::pair{fieldOf(message, "oom_memcg="), fieldOf(message, "task_memcg=")};
}

KernelOomLog::KernelOomLog(std::filesystem::path path) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd_ < 0) return;
  (void)::lseek(fd_, 0, SEEK_END);  // kills from now on (a pipe in tests cannot seek)
  stop_ = ::eventfd(0, EFD_CLOEXEC);
  if (stop_ < 0) {
    ::close(fd_);
    fd_ = -1;
    return;
  }
  reader_ = std::thread([this] { readLoop(); });
}

KernelOomLog::~KernelOomLog() {
  if (reader_.joinable()) {
    const std::uint64_t one = 1;
    (void)!::write(stop_, &one, sizeof one);
    reader_.join();
  }
  if (fd_ >= 0) ::close(fd_);
  if (stop_ >= 0) ::close(stop_);
}

void KernelOomLog::readLoop() {
  std::array<char, 8192> buffer{};
  std::string partial;  // a pipe may split or join records; /dev/kmsg gives one per read
  while (true) {
    pollfd fds[2] = {{fd_, POLLIN, 0}, {stop_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const ssize_t n = ::read(fd_, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR || errno == EPIPE) continue;  // EPIPE: records overwritten
      return;
    }
    if (n == 0) return;  // a pipe's writer went away
    partial.append(buffer.data(), static_cast<std::size_t>(n));
    for (auto end = partial.find('\n'); end != std::string::npos; end = partial.find('\n')) {
      take(std::string_view(partial).substr(0, end));
      partial.erase(0, end + 1);
    }
    if (partial.size() > buffer.size()) partial.clear();  // no record is that long
  }
}

void KernelOomLog::take(std::string_view record) {
  auto cgroups = oomKillCgroups(record);
  if (!cgroups) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const std::string& cgroup : {cgroups->first, cgroups->second}) {
      if (cgroup.empty()) continue;
      cgroups_.push_back(cgroup);
      if (cgroups_.size() > kKeptCgroups) cgroups_.pop_front();
    }
  }
  added_.notify_all();
}

bool KernelOomLog::seenLocked(const std::string& fragment) const {
  return std::any_of(cgroups_.begin(), cgroups_.end(),
                     [&](const std::string& cgroup) { return cgroup.find(fragment) != std::string::npos; });
}

bool KernelOomLog::killedIn(const std::string& fragment, std::chrono::milliseconds wait) {
  if (!available() || fragment.empty()) return false;
  std::unique_lock<std::mutex> lock(mutex_);
  return added_.wait_for(lock, wait, [&] { return seenLocked(fragment); });
}

}  // namespace bai::core
