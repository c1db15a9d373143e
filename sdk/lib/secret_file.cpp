#include "secret_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace bai {
namespace {

constexpr off_t kMaxTokenFileBytes = 64 * 1024;

std::string octalMode(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// Root reads any file, so the mode bits are checked here rather than left to open().
Result<void> checkTokenFileMode(const struct stat& info, const std::string& where, const std::filesystem::path& file) {
  if (!S_ISREG(info.st_mode)) return fail(ErrorCode::InvalidArgument, where + " is not a regular file");
  if ((info.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    return fail(ErrorCode::InvalidArgument, where + " has mode " + octalMode(info.st_mode) +
                                                ", which lets group or others read it; run: chmod 600 " + file.string());
  }
  if (info.st_size > kMaxTokenFileBytes) return fail(ErrorCode::InvalidArgument, where + " is larger than 64 KiB");
  return {};
}

Result<std::string> readCheckedTokenFile(int fd, const std::string& where, const std::filesystem::path& file) {
  struct stat info {};
  if (::fstat(fd, &info) != 0) return fail(ErrorCode::Internal, where + ": " + std::strerror(errno));
  if (auto checked = checkTokenFileMode(info, where, file); !checked) return Failure{checked.error()};
  std::string content(static_cast<std::size_t>(info.st_size), '\0');
  const ssize_t got = ::read(fd, content.data(), content.size());
  if (got < 0) return fail(ErrorCode::Internal, where + ": " + std::strerror(errno));
  content.resize(static_cast<std::size_t>(got));
  return content;
}

}  // namespace

Result<std::string> readClusterToken(std::filesystem::path file) {
  const std::string where = "cluster token file " + file.string();
  const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno == ENOENT ? ErrorCode::NotFound : ErrorCode::Internal, where + ": " + std::strerror(errno));
  auto content = readCheckedTokenFile(fd, where, file);
  ::close(fd);
  if (!content) return content;

  std::string token = std::move(*content);
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  if (token.empty()) return fail(ErrorCode::InvalidArgument, where + " is empty");
  if (!isPrintableWithoutSpaces(token)) {
    return fail(ErrorCode::InvalidArgument, where + " contains whitespace or control characters; a token is one line");
  }
  return token;
}

bool isPrintableWithoutSpaces(const std::string& text) {
  for (const char c : text) {
    if (c <= 0x20 || c >= 0x7f) return false;
  }
  return true;
}

Result<void> writeSecretFile(const std::filesystem::path& file, const std::string& content) {
  const int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return fail(errno == EEXIST ? ErrorCode::Conflict : ErrorCode::Internal,
                file.string() + ": " + std::strerror(errno) + (errno == EEXIST ? " (not overwritten)" : ""));
  }
  const ssize_t written = ::write(fd, content.data(), content.size());
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (written != static_cast<ssize_t>(content.size()) || !synced) {
    ::unlink(file.c_str());
    return fail(ErrorCode::Internal, file.string() + ": could not be written");
  }
  return {};
}

}  // namespace bai
