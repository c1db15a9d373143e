// One folder's files, every path confined below the folder's directory by the kernel: the
// directory is opened once and every path is resolved from it with openat2(RESOLVE_BENEATH
// | RESOLVE_NO_MAGICLINKS), so a symlink that leads outside fails (PathEscapes) while one
// that stays inside works. Paths are normalised (normalizeFolderPath) before they get here.
// One request's object: not shared between threads.
#pragma once

#include "file_error.hpp"
#include "folder_catalog.hpp"

#include <bai/result.hpp>
#include <bai/storage_protocol.hpp>

#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

namespace bai::storage::files {

inline constexpr std::size_t kMaxListedEntries = 100000;

// An owned descriptor, closed on destruction.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd();
  Fd(Fd&& other) noexcept : fd_(other.release()) {}
  Fd& operator=(Fd&& other) noexcept;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release();

 private:
  int fd_ = -1;
};

struct OpenFile {
  Fd fd;  // open for reading
  std::uint64_t size = 0;
};

class FolderFs {
 public:
  // Opens the folder's directory; NoSuchFile when it is gone.
  static Result<FolderFs, FileError> open(FolderCatalog& catalog, const FolderRef& folder);

  // Follows symlinks that stay inside the folder.
  Result<struct stat, FileError> stat(const std::string& path) const;
  // A regular file opened for reading; anything else is NotARegularFile, and is never
  // opened for reading (a FIFO would block, a device could act).
  Result<OpenFile, FileError> openForReading(const std::string& path) const;
  // A directory's entries (or the one file `path` names), symlinks not followed; the whole
  // subtree when recursive. More than kMaxListedEntries: TooManyEntries.
  Result<std::vector<storage_protocol::FileEntry>, FileError> list(const std::string& path, bool recursive) const;
  // Makes `path` (and its missing parents when `parents`), each new one the owner's.
  // Exists when `path` exists and !parents, or a component is a file.
  Result<void, FileError> makeDirectory(const std::string& path, bool parents) const;
  // A file, symlink or empty directory; a directory's whole tree when `recursive`. The
  // regular files' bytes are refunded to the folder's usage.
  Result<void, FileError> remove(const std::string& path, bool recursive) const;
  // Renames within the folder; Exists when `to` exists; `to`'s parent must exist.
  Result<void, FileError> move(const std::string& from, const std::string& to) const;

  // The directory `path` names, opened O_PATH (for *at calls); "" is the folder's root.
  Result<Fd, FileError> openDirectory(const std::string& path) const;
  // openat2 below the folder: a descriptor, or -errno.
  int resolve(const std::string& path, int flags) const;

  const FolderRef& folder() const { return folder_; }
  FolderCatalog& catalog() const { return *catalog_; }

 private:
  FolderFs(FolderCatalog& catalog, FolderRef folder, Fd root)
      : catalog_(&catalog), folder_(std::move(folder)), root_(std::move(root)) {}

  // One directory, its parent existing; an existing directory is fine unless mustBeNew.
  Result<void, FileError> makeOneDirectory(const std::string& path, bool mustBeNew) const;

  FolderCatalog* catalog_;
  FolderRef folder_;
  Fd root_;
};

// "a/b/c" -> ("a/b", "c"); "c" -> ("", "c").
std::pair<std::string, std::string> splitParent(const std::string& path);

}  // namespace bai::storage::files
