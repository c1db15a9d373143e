#include "tree_walk.hpp"

#include "runtime/atomic_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace bai::storage {

using core::describeErrno;

namespace {

// Deeper trees are refused rather than exhausting descriptors: one is open per level.
constexpr int kMaxDepth = 512;

// The entries of the directory `dirFd` (names only, "." and ".." left out), read through
// a duplicate so that `dirFd` stays usable.
Result<std::vector<std::string>> entryNames(int dirFd) {
  const int copy = fcntl(dirFd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) return fail(ErrorCode::Internal, describeErrno("dup", errno));
  DIR* dir = fdopendir(copy);
  if (dir == nullptr) {
    const int error = errno;
    close(copy);
    return fail(ErrorCode::Internal, describeErrno("fdopendir", error));
  }
  rewinddir(dir);
  std::vector<std::string> names;
  errno = 0;
  while (dirent* entry = readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
    errno = 0;
  }
  const int error = errno;
  closedir(dir);
  if (error != 0) return fail(ErrorCode::Internal, describeErrno("readdir", error));
  return names;
}

Result<void> walkLevel(int dirFd, const TreeVisitor& visit, int depth) {
  if (depth > kMaxDepth) return fail(ErrorCode::OutOfRange, "directories nested deeper than " + std::to_string(kMaxDepth));
  auto names = entryNames(dirFd);
  if (!names) return Failure{names.error()};
  for (const auto& name : *names) {
    struct stat status {};
    if (fstatat(dirFd, name.c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // removed while we walk
      return fail(ErrorCode::Internal, describeErrno("lstat " + name, errno));
    }
    if (auto visited = visit(dirFd, name.c_str(), status); !visited) return visited;
    if (!S_ISDIR(status.st_mode)) continue;
    auto child = openDirectoryAt(dirFd, name.c_str());
    if (!child) {
      if (child.error().code == ErrorCode::NotFound) continue;
      return Failure{child.error()};
    }
    if (auto walked = walkLevel(child->get(), visit, depth + 1); !walked) return walked;
  }
  return {};
}

}  // namespace

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) close(fd_);
}

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = other.release();
  }
  return *this;
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

Result<UniqueFd> openDirectoryAt(int parentFd, const char* name) {
  const int fd = openat(parentFd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd >= 0) return UniqueFd(fd);
  const int error = errno;
  if (error == ENOENT) return fail(ErrorCode::NotFound, std::string(name) + ": no such directory");
  if (error == ENOTDIR || error == ELOOP) return fail(ErrorCode::InvalidArgument, std::string(name) + ": not a directory");
  return fail(ErrorCode::Internal, describeErrno(std::string("open ") + name, error));
}

Result<void> walkTree(int dirFd, const TreeVisitor& visit) { return walkLevel(dirFd, visit, 0); }

namespace {

// Empties the directory `dirFd`. Directories `kMaxDepth` levels down are moved up into
// `topFd` (the directory being removed) instead of descended into, so neither the stack
// nor the descriptors grow with a tree's depth; the caller's next pass removes them.
Result<void> emptyLevel(int dirFd, int topFd, int depth, std::uint64_t& moved) {
  auto names = entryNames(dirFd);
  if (!names) return Failure{names.error()};
  for (const auto& name : *names) {
    struct stat status {};
    if (fstatat(dirFd, name.c_str(), &status, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return fail(ErrorCode::Internal, describeErrno("lstat " + name, errno));
    }
    if (S_ISDIR(status.st_mode)) {
      if (depth >= kMaxDepth) {
        int renamed = -1;
        do {  // a name taken (by the folder's own files) is skipped, never replaced
          const std::string up = ".bai-removing-" + std::to_string(moved++);
          renamed = renameat2(dirFd, name.c_str(), topFd, up.c_str(), RENAME_NOREPLACE);
        } while (renamed != 0 && errno == EEXIST);
        if (renamed != 0) return fail(ErrorCode::Internal, describeErrno("move up " + name, errno));
        continue;
      }
      auto child = openDirectoryAt(dirFd, name.c_str());
      if (!child) {
        if (child.error().code == ErrorCode::NotFound) continue;
        return Failure{child.error()};
      }
      if (auto emptied = emptyLevel(child->get(), topFd, depth + 1, moved); !emptied) return emptied;
    }
    if (unlinkat(dirFd, name.c_str(), S_ISDIR(status.st_mode) ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) {
      return fail(ErrorCode::Internal, describeErrno("remove " + name, errno));
    }
  }
  return {};
}

}  // namespace

Result<void> removeTreeAt(int parentFd, const char* name) {
  struct stat status {};
  if (fstatat(parentFd, name, &status, AT_SYMLINK_NOFOLLOW) != 0) {
    if (errno == ENOENT) return {};
    return fail(ErrorCode::Internal, describeErrno(std::string("lstat ") + name, errno));
  }
  if (S_ISDIR(status.st_mode)) {
    auto dir = openDirectoryAt(parentFd, name);
    if (!dir) return dir.error().code == ErrorCode::NotFound ? Result<void>{} : Result<void>{Failure{dir.error()}};
    std::uint64_t moved = 0;
    for (;;) {  // until no directory was moved up by the last pass
      const std::uint64_t before = moved;
      if (auto emptied = emptyLevel(dir->get(), dir->get(), 0, moved); !emptied) return emptied;
      if (moved == before) break;
    }
  }
  if (unlinkat(parentFd, name, S_ISDIR(status.st_mode) ? AT_REMOVEDIR : 0) != 0 && errno != ENOENT) {
    return fail(ErrorCode::Internal, describeErrno(std::string("remove ") + name, errno));
  }
  return {};
}

}  // namespace bai::storage
