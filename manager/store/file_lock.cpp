#include "file_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace bai::manager {
namespace {

// The pid the holder wrote, for the message; "unknown" when unreadable.
std::string holderOf(int fd) {
  char text[32] = {};
  const ssize_t got = ::pread(fd, text, sizeof text - 1, 0);
  std::string pid = got > 0 ? std::string(text, static_cast<std::size_t>(got)) : "";
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return !pid.empty() && pid.find_first_not_of("0123456789") == std::string::npos ? pid : "unknown";
}

}  // namespace

Result<FileLock> FileLock::take(const std::string& url, const std::string& file) {
  const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return fail(ErrorCode::Internal, url + ": cannot open the lock file '" + file + "': " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    const std::string holder = holderOf(fd);
    ::close(fd);
    if (error != EWOULDBLOCK) {
      return fail(ErrorCode::Internal, url + ": cannot lock '" + file + "': " + std::strerror(error));
    }
    return fail(ErrorCode::Conflict, url + " is in use by another bai-manager (pid " + holder + ", lock file '" + file +
                                         "'): one database serves one manager");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  const bool noted = ::ftruncate(fd, 0) == 0 && ::pwrite(fd, pid.data(), pid.size(), 0) == static_cast<ssize_t>(pid.size());
  (void)noted;  // only for the message above: the lock is held either way
  return FileLock(fd);
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace bai::manager
