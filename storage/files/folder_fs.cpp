#include "folder_fs.hpp"

#include "http_server.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <utility>

namespace bai::storage::files {
namespace {

constexpr std::uint64_t kResolveFlags = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

std::string shown(const std::string& path) { return path.empty() ? "the folder's root" : "'" + path + "'"; }

std::string typeOf(mode_t mode) {
  if (S_ISREG(mode)) return "file";
  if (S_ISDIR(mode)) return "dir";
  if (S_ISLNK(mode)) return "symlink";
  return "other";
}

storage_protocol::FileEntry entryOf(const std::string& path, const struct stat& st) {
  storage_protocol::FileEntry entry;
  entry.path = path;
  entry.type = typeOf(st.st_mode);
  entry.size = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  entry.mode = st.st_mode & 07777;
  entry.modifiedAtMillis = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
  return entry;
}

std::string joined(const std::string& parent, const std::string& name) { return parent.empty() ? name : parent + "/" + name; }

// The names in a directory (not "." or ".."), read through a duplicate of `dirFd`.
Result<std::vector<std::string>, FileError> namesIn(int dirFd, const std::string& path) {
  const int copy = ::openat(dirFd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (copy < 0) return Failure{errnoError(errno, "cannot read the directory", path)};
  DIR* dir = ::fdopendir(copy);
  if (dir == nullptr) {
    const int error = errno;
    ::close(copy);
    return Failure{errnoError(error, "cannot read the directory", path)};
  }
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  return names;
}

// Deletes everything below the directory `dirFd`, adding up the regular files' bytes.
Result<void, FileError> emptyDirectory(int dirFd, const std::string& path, std::uint64_t& freed) {
  auto names = namesIn(dirFd, path);
  if (!names) return Failure{names.error()};
  for (const auto& name : *names) {
    const std::string child = joined(path, name);
    struct stat st {};
    if (::fstatat(dirFd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;
      return Failure{errnoError(errno, "cannot inspect", child)};
    }
    if (S_ISDIR(st.st_mode)) {
      Fd sub(::openat(dirFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!sub.valid()) return Failure{errnoError(errno, "cannot open the directory", child)};
      auto emptied = emptyDirectory(sub.get(), child, freed);
      if (!emptied) return emptied;
      if (::unlinkat(dirFd, name.c_str(), AT_REMOVEDIR) != 0) return Failure{errnoError(errno, "cannot delete", child)};
    } else {
      if (::unlinkat(dirFd, name.c_str(), 0) != 0 && errno != ENOENT) return Failure{errnoError(errno, "cannot delete", child)};
      if (S_ISREG(st.st_mode)) freed += static_cast<std::uint64_t>(st.st_size);
    }
  }
  return {};
}

}  // namespace

FileError errnoError(int error, const std::string& what, const std::string& path) {
  const std::string where = what + " " + shown(path);
  switch (error) {
    case ENOENT: return {FileErrorKind::NoSuchFile, shown(path) + " does not exist"};
    case ENOTDIR: return {FileErrorKind::NoSuchFile, where + ": a component of the path is not a directory"};
    case EXDEV: return {FileErrorKind::PathEscapes, where + ": a symlink in the path leads outside the folder"};
    case ELOOP: return {FileErrorKind::PathEscapes, where + ": too many symlinks, or one that is not a plain link"};
    case EEXIST: return {FileErrorKind::Exists, shown(path) + " already exists"};
    case ENOTEMPTY: return {FileErrorKind::Exists, shown(path) + " is a directory that is not empty"};
    case EISDIR: return {FileErrorKind::Exists, shown(path) + " is a directory"};
    case ENOSPC:
    case EDQUOT: return {FileErrorKind::InsufficientStorage, where + ": " + std::strerror(error)};
    case ENAMETOOLONG: return {FileErrorKind::InvalidPath, where + ": the name is too long"};
    default: return {FileErrorKind::Internal, where + ": " + std::strerror(error)};
  }
}

Fd::~Fd() {
  if (fd_ >= 0) ::close(fd_);
}

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

int Fd::release() { return std::exchange(fd_, -1); }

std::pair<std::string, std::string> splitParent(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {"", path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

Result<FolderFs, FileError> FolderFs::open(FolderCatalog& catalog, const FolderRef& folder) {
  Fd root(::open(folder.dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) {
    const int error = errno;
    return Failure{FileError{error == ENOENT ? FileErrorKind::NoSuchFile : FileErrorKind::Internal,
                             "the folder's directory cannot be opened: " + std::string(std::strerror(error))}};
  }
  return FolderFs(catalog, folder, std::move(root));
}

int FolderFs::resolve(const std::string& path, int flags) const {
  open_how how{};
  how.flags = static_cast<std::uint64_t>(flags | O_CLOEXEC);
  how.resolve = kResolveFlags;
  const char* name = path.empty() ? "." : path.c_str();
  long fd;
  do {
    fd = ::syscall(SYS_openat2, root_.get(), name, &how, sizeof how);
  } while (fd < 0 && errno == EAGAIN);
  return fd < 0 ? -errno : static_cast<int>(fd);
}

Result<Fd, FileError> FolderFs::openDirectory(const std::string& path) const {
  const int fd = resolve(path, O_PATH | O_DIRECTORY);
  if (fd < 0) return Failure{errnoError(-fd, "cannot open the directory", path)};
  return Fd(fd);
}

Result<struct stat, FileError> FolderFs::stat(const std::string& path) const {
  Fd fd(resolve(path, O_PATH));
  if (!fd.valid()) return Failure{errnoError(-fd.release(), "cannot open", path)};
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Failure{errnoError(errno, "cannot inspect", path)};
  return st;
}

Result<OpenFile, FileError> FolderFs::openForReading(const std::string& path) const {
  Fd handle(resolve(path, O_PATH));
  if (!handle.valid()) return Failure{errnoError(-handle.release(), "cannot open", path)};
  struct stat st {};
  if (::fstat(handle.get(), &st) != 0) return Failure{errnoError(errno, "cannot inspect", path)};
  if (!S_ISREG(st.st_mode)) {
    return Failure{FileError{FileErrorKind::NotARegularFile, shown(path) + " is a " + typeOf(st.st_mode) +
                                                                 (S_ISDIR(st.st_mode) ? "ectory" : "") + ", not a regular file"}};
  }
  // Reopening the checked inode itself, not the path again: nothing can be swapped in between.
  const std::string self = "/proc/self/fd/" + std::to_string(handle.get());
  Fd file(::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
  if (!file.valid()) return Failure{errnoError(errno, "cannot open", path)};
  return OpenFile{std::move(file), static_cast<std::uint64_t>(st.st_size)};
}

Result<std::vector<storage_protocol::FileEntry>, FileError> FolderFs::list(const std::string& path, bool recursive) const {
  Fd handle(resolve(path, O_PATH));
  if (!handle.valid()) return Failure{errnoError(-handle.release(), "cannot list", path)};
  struct stat st {};
  if (::fstat(handle.get(), &st) != 0) return Failure{errnoError(errno, "cannot inspect", path)};
  std::vector<storage_protocol::FileEntry> entries;
  if (!S_ISDIR(st.st_mode)) {
    entries.push_back(entryOf(path, st));
    return entries;
  }
  Fd dir(resolve(path, O_RDONLY | O_DIRECTORY));
  if (!dir.valid()) return Failure{errnoError(-dir.release(), "cannot list", path)};
  std::function<Result<void, FileError>(int, const std::string&)> walk = [&](int dirFd, const std::string& at) -> Result<void, FileError> {
    auto names = namesIn(dirFd, at);
    if (!names) return Failure{names.error()};
    for (const auto& name : *names) {
      // A name that is not UTF-8 (a session may write one) cannot go into JSON, and no
      // client path could name it (normalizeFolderPath refuses it): left out.
      if (!http::isValidUtf8(name)) continue;
      struct stat child {};
      if (::fstatat(dirFd, name.c_str(), &child, AT_SYMLINK_NOFOLLOW) != 0) continue;  // gone meanwhile
      if (entries.size() == kMaxListedEntries) {
        return Failure{FileError{FileErrorKind::TooManyEntries, shown(path) + " holds more than " +
                                                                    std::to_string(kMaxListedEntries) + " entries"}};
      }
      const std::string childPath = joined(at, name);
      entries.push_back(entryOf(childPath, child));
      if (recursive && S_ISDIR(child.st_mode)) {
        Fd sub(::openat(dirFd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!sub.valid()) continue;  // replaced by a non-directory meanwhile
        auto walked = walk(sub.get(), childPath);
        if (!walked) return walked;
      }
    }
    return {};
  };
  auto walked = walk(dir.get(), path);
  if (!walked) return Failure{walked.error()};
  return entries;
}

Result<void, FileError> FolderFs::makeOneDirectory(const std::string& path, bool mustBeNew) const {
  const auto [parent, name] = splitParent(path);
  auto parentFd = openDirectory(parent);
  if (!parentFd) return Failure{parentFd.error()};
  if (::mkdirat(parentFd->get(), name.c_str(), 0700) != 0) {
    if (errno != EEXIST) return Failure{errnoError(errno, "cannot make the directory", path)};
    struct stat st {};
    if (::fstatat(parentFd->get(), name.c_str(), &st, 0) != 0 || !S_ISDIR(st.st_mode)) {
      return Failure{FileError{FileErrorKind::Exists, shown(path) + " exists and is not a directory"}};
    }
    if (mustBeNew) return Failure{errnoError(EEXIST, "", path)};
    return {};
  }
  Fd made(::openat(parentFd->get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!made.valid()) return Failure{errnoError(errno, "cannot open the new directory", path)};
  auto adopted = catalog_->adopt(folder_, made.get(), true);
  if (!adopted) return Failure{FileError{FileErrorKind::Internal, "cannot give " + shown(path) + " to the folder's owner"}};
  return {};
}

Result<void, FileError> FolderFs::makeDirectory(const std::string& path, bool parents) const {
  if (path.empty()) {
    if (parents) return {};
    return Failure{FileError{FileErrorKind::Exists, "the folder's root already exists"}};
  }
  // Without `parents` only the last component is made, so its parent must exist.
  std::size_t end = parents ? path.find('/') : std::string::npos;
  while (true) {
    const std::string prefix = path.substr(0, end);
    const bool last = end == std::string::npos;
    auto made = makeOneDirectory(prefix, last && !parents);
    if (!made) return made;
    if (last) break;
    end = path.find('/', end + 1);
  }
  return {};
}

Result<void, FileError> FolderFs::remove(const std::string& path, bool recursive) const {
  if (path.empty()) return Failure{FileError{FileErrorKind::InvalidPath, "the folder's root cannot be deleted"}};
  const auto [parent, name] = splitParent(path);
  auto parentFd = openDirectory(parent);
  if (!parentFd) return Failure{parentFd.error()};
  struct stat st {};
  if (::fstatat(parentFd->get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Failure{errnoError(errno, "cannot delete", path)};
  }
  std::uint64_t freed = 0;
  Result<void, FileError> outcome;
  if (S_ISDIR(st.st_mode)) {
    if (recursive) {
      Fd dir(::openat(parentFd->get(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      if (!dir.valid()) return Failure{errnoError(errno, "cannot open the directory", path)};
      outcome = emptyDirectory(dir.get(), path, freed);
    }
    if (outcome && ::unlinkat(parentFd->get(), name.c_str(), AT_REMOVEDIR) != 0) {
      outcome = Failure{errnoError(errno, "cannot delete", path)};
    }
  } else if (::unlinkat(parentFd->get(), name.c_str(), 0) != 0) {
    outcome = Failure{errnoError(errno, "cannot delete", path)};
  } else if (S_ISREG(st.st_mode)) {
    freed = static_cast<std::uint64_t>(st.st_size);
  }
  // What was deleted before a failure is gone all the same.
  if (freed > 0) catalog_->refund(folder_, freed);
  return outcome;
}

Result<void, FileError> FolderFs::move(const std::string& from, const std::string& to) const {
  if (from.empty() || to.empty()) return Failure{FileError{FileErrorKind::InvalidPath, "the folder's root cannot be moved"}};
  if (storage_protocol::pathWithin(to, from)) {
    return Failure{FileError{FileErrorKind::InvalidRequest, shown(from) + " cannot be moved into itself"}};
  }
  const auto [fromParent, fromName] = splitParent(from);
  const auto [toParent, toName] = splitParent(to);
  auto fromDir = openDirectory(fromParent);
  if (!fromDir) return Failure{fromDir.error()};
  auto toDir = openDirectory(toParent);
  if (!toDir) return Failure{toDir.error()};
  if (::renameat2(fromDir->get(), fromName.c_str(), toDir->get(), toName.c_str(), RENAME_NOREPLACE) != 0) {
    const int error = errno;
    if (error == EEXIST) return Failure{errnoError(error, "", to)};
    return Failure{errnoError(error, "cannot move", error == ENOENT ? from : to)};
  }
  return {};
}

}  // namespace bai::storage::files
