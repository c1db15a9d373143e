// Walking and removing a folder's tree by descriptors, never following a symlink, so that
// a session that plants a link to /etc in its folder cannot make the proxy (root) read,
// change or delete anything outside it. Any thread; nothing shared.
#pragma once

#include <bai/result.hpp>

#include <sys/stat.h>

#include <functional>

namespace bai::storage {

// An open descriptor that closes itself.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd();
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();

 private:
  int fd_ = -1;
};

// Opens the directory `name` under `parentFd` (AT_FDCWD: a path) without following a
// symlink at its last component; NotFound when absent, InvalidArgument when not a dir.
Result<UniqueFd> openDirectoryAt(int parentFd, const char* name);

// Called for each entry below the walked directory, parents before their children, with
// the directory holding it and its lstat. An error stops the walk and is returned.
using TreeVisitor = std::function<Result<void>(int parentFd, const char* name, const struct stat& status)>;

// Visits every entry below the directory `dirFd` (not the directory itself).
Result<void> walkTree(int dirFd, const TreeVisitor& visit);

// Removes `name` under `parentFd` and, when it is a directory, everything below it. A
// missing `name` is not an error.
Result<void> removeTreeAt(int parentFd, const char* name);

}  // namespace bai::storage
