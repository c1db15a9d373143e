#include "runtime/atomic_file.hpp"

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace bai::core {
namespace {

// Several threads (and processes) may replace files in one dir: the temp name carries
// the pid and a per-process counter so that no two writers share a temp file.
std::filesystem::path uniqueTempPath(const std::filesystem::path& file) {
  static std::atomic<unsigned long> counter{0};
  std::string name = "." + file.filename().string() + ".tmp." + std::to_string(::getpid()) + "." +
                     std::to_string(counter.fetch_add(1, std::memory_order_relaxed));
  return file.parent_path() / name;
}

Result<void> writeAll(int fd, std::string_view content) {
  while (!content.empty()) {
    ssize_t written = ::write(fd, content.data(), content.size());
    if (written < 0) {
      if (errno == EINTR) continue;
      return fail(ErrorCode::Internal, describeErrno("write", errno));
    }
    content.remove_prefix(static_cast<std::size_t>(written));
  }
  return {};
}

}  // namespace

std::string describeErrno(std::string_view what, int errnum) {
  return std::string(what) + ": " + std::strerror(errnum);
}

Result<void> writeFileAtomically(const std::filesystem::path& file, std::string_view content) {
  std::filesystem::path temp = uniqueTempPath(file);
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return fail(ErrorCode::Internal, describeErrno("creating " + temp.string(), errno));
  Result<void> written = writeAll(fd, content);
  if (::close(fd) != 0 && written.ok()) written = fail(ErrorCode::Internal, describeErrno("closing " + temp.string(), errno));
  if (written.ok() && ::rename(temp.c_str(), file.c_str()) != 0) {
    written = fail(ErrorCode::Internal, describeErrno("renaming " + temp.string() + " to " + file.string(), errno));
  }
  if (!written.ok()) {
    ::unlink(temp.c_str());
    return fail(ErrorCode::Internal, "writing " + file.string() + ": " + written.error().message);
  }
  return {};
}

Result<std::string> readWholeFile(const std::filesystem::path& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return fail(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Internal, describeErrno(file.string(), errno));
  }
  std::string content;
  char buffer[4096];
  for (;;) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) {
      int saved = errno;
      ::close(fd);
      return fail(ErrorCode::Internal, describeErrno("reading " + file.string(), saved));
    }
    if (got == 0) break;
    content.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return content;
}

}  // namespace bai::core
