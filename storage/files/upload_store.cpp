#include "upload_store.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

namespace bai::storage::files {
namespace {

std::string sha256Hex(const std::string& text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha256(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

std::string shown(const std::string& path) { return "'" + path + "'"; }

// The size of the regular file an upload to `path` replaces (0: none yet).
Result<std::uint64_t, FileError> replacedSize(const FolderFs& fs, const std::string& path) {
  Fd target(fs.resolve(path, O_PATH));
  if (!target.valid()) {
    const int error = -target.release();
    if (error == ENOENT) return std::uint64_t{0};
    if (error == ENOTDIR) return Failure{FileError{FileErrorKind::Exists, "a component of " + shown(path) + " is a file"}};
    return Failure{errnoError(error, "cannot upload to", path)};
  }
  struct stat st {};
  if (::fstat(target.get(), &st) != 0) return Failure{errnoError(errno, "cannot inspect", path)};
  if (S_ISDIR(st.st_mode)) return Failure{FileError{FileErrorKind::Exists, shown(path) + " is a directory"}};
  if (!S_ISREG(st.st_mode)) return Failure{FileError{FileErrorKind::Exists, shown(path) + " exists and is not a regular file"}};
  return static_cast<std::uint64_t>(st.st_size);
}

std::optional<std::uint64_t> stagedSize(const std::string& hostPath) {
  struct stat st {};
  if (::stat(hostPath.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  return static_cast<std::uint64_t>(st.st_size);
}

Result<std::uint64_t, FileError> chargeFor(const FolderFs& fs, std::int64_t bytes) {
  if (bytes <= 0) return std::uint64_t{0};
  auto charged = fs.catalog().charge(fs.folder(), static_cast<std::uint64_t>(bytes));
  if (!charged) return Failure{FileError{FileErrorKind::QuotaExceeded, charged.error().message}};
  return static_cast<std::uint64_t>(bytes);
}

std::int64_t signedSize(std::uint64_t bytes) { return static_cast<std::int64_t>(bytes); }

}  // namespace

UploadStore::UploadStore(std::int64_t expiryMillis, std::function<std::int64_t()> clockMillis)
    : expiryMillis_(expiryMillis), clockMillis_(std::move(clockMillis)) {}

UploadStore::Staging UploadStore::stagingFor(const FolderRef& folder, const std::string& path, std::uint64_t length) const {
  // NUL separates the parts: neither an id nor a path can hold one.
  std::string identity = folder.folderId;
  identity += '\0';
  identity += path;
  identity += '\0';
  identity += std::to_string(length);
  Staging staging;
  staging.name = sha256Hex(identity);
  staging.key = (folder.stagingDir / staging.name).string();
  return staging;
}

Result<UploadProgress, FileError> UploadStore::start(const FolderFs& fs, const std::string& path, std::uint64_t length) {
  removeExpired(fs.catalog(), fs.folder());
  const std::lock_guard lock(mutex_);
  return startLocked(fs, path, length);
}

Result<UploadProgress, FileError> UploadStore::startLocked(const FolderFs& fs, const std::string& path, std::uint64_t length) {
  if (path.empty()) return Failure{FileError{FileErrorKind::InvalidPath, "give the path of the file to upload"}};
  auto replaced = replacedSize(fs, path);
  if (!replaced) return Failure{replaced.error()};
  const Staging staging = stagingFor(fs.folder(), path, length);
  auto known = uploads_.find(staging.key);
  std::optional<std::uint64_t> staged = stagedSize(staging.key);
  if (known != uploads_.end()) {
    if (known->second.busy) return Failure{FileError{FileErrorKind::UploadBusy, "the upload of " + shown(path) + " is being written"}};
    if (!staged) {  // its staging file was removed under us: start afresh
      fs.catalog().refund(fs.folder(), static_cast<std::uint64_t>(known->second.applied));
      uploads_.erase(known);
      known = uploads_.end();
    }
  }
  if (known == uploads_.end()) {
    if (staged && *staged > length) {  // not one this store wrote: drop it, the scan counted it
      ::unlink(staging.key.c_str());
      fs.catalog().refund(fs.folder(), *staged);
      staged.reset();
    }
    // Staged bytes found on disk were counted by the catalog's scan.
    const std::uint64_t counted = staged.value_or(0);
    auto charged = chargeFor(fs, signedSize(length) - signedSize(*replaced) - signedSize(counted));
    if (!charged) return Failure{charged.error()};
    if (!staged) {
      std::error_code ignored;
      std::filesystem::create_directories(fs.folder().stagingDir, ignored);
      const int fd = ::open(staging.key.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
      if (fd < 0) {
        const int error = errno;
        fs.catalog().refund(fs.folder(), *charged);
        return Failure{errnoError(error, "cannot stage the upload of", path)};
      }
      ::close(fd);
      staged = 0;
    }
    known = uploads_.emplace(staging.key, Upload{signedSize(counted + *charged), false}).first;
  }
  if (*staged < length) return UploadProgress{*staged, false};
  // All bytes are staged (an empty file, or a restart between the last byte and the rename).
  Fd fd(::open(staging.key.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return Failure{errnoError(errno, "cannot open the staged upload of", path)};
  auto completed = complete(fs, path, staging, fd.get(), length);
  if (!completed) return Failure{completed.error()};
  return UploadProgress{length, true};
}

struct UploadWriter::Target {
  const FolderFs& fs;
  std::string path;
  UploadStore::Staging staging;
  Fd fd;
  std::uint64_t length = 0;
  std::uint64_t offset = 0;  // where the next piece goes
  std::uint64_t end = 0;     // where this request's body ends
  bool completed = false;    // an empty file, done when it started
};

UploadWriter::UploadWriter(UploadStore& store, std::unique_ptr<Target> target)
    : store_(store), target_(std::move(target)) {}

UploadWriter::~UploadWriter() { store_.release(target_->staging.key); }

Result<void, FileError> UploadWriter::write(std::string_view piece) {
  Target& t = *target_;
  if (piece.size() > t.end - t.offset) {
    return Failure{FileError{FileErrorKind::InvalidRequest, "the body runs past the " + std::to_string(t.end) +
                                                                " bytes it announced"}};
  }
  std::size_t done = 0;
  while (done < piece.size()) {
    const ssize_t n = ::pwrite(t.fd.get(), piece.data() + done, piece.size() - done, static_cast<off_t>(t.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Failure{errnoError(n < 0 ? errno : ENOSPC, "cannot write the upload of", t.path)};
    done += static_cast<std::size_t>(n);
  }
  t.offset += piece.size();
  return {};
}

Result<UploadProgress, FileError> UploadWriter::finish() {
  Target& t = *target_;
  if (t.completed) return UploadProgress{t.length, true};
  if (t.offset < t.length) return UploadProgress{t.offset, false};
  const std::lock_guard lock(store_.mutex_);
  auto completed = store_.complete(t.fs, t.path, t.staging, t.fd.get(), t.length);
  if (!completed) return Failure{completed.error()};
  return UploadProgress{t.length, true};
}

void UploadStore::release(const std::string& key) {
  const std::lock_guard lock(mutex_);
  if (auto it = uploads_.find(key); it != uploads_.end()) it->second.busy = false;
}

Result<std::unique_ptr<UploadWriter>, FileError> UploadStore::openWriter(const FolderFs& fs, const std::string& path,
                                                                         std::uint64_t length, std::uint64_t offset,
                                                                         std::uint64_t bodyBytes, bool restart) {
  if (restart) removeExpired(fs.catalog(), fs.folder());  // a whole file: like a start, it cleans up after others
  const Staging staging = stagingFor(fs.folder(), path, length);
  {
    const std::lock_guard lock(mutex_);
    auto known = uploads_.find(staging.key);
    // After a restart the table is empty while the staged bytes wait on disk.
    if (restart || (known == uploads_.end() && stagedSize(staging.key))) {
      auto started = startLocked(fs, path, length);
      if (!started) return Failure{started.error()};
      if (started->complete) {
        auto done = std::make_unique<UploadWriter::Target>(UploadWriter::Target{fs, path, staging, Fd(), length, length, length, true});
        return std::unique_ptr<UploadWriter>(new UploadWriter(*this, std::move(done)));
      }
      known = uploads_.find(staging.key);
    }
    if (known == uploads_.end()) {
      return Failure{FileError{FileErrorKind::NoSuchUpload, "no upload of " + std::to_string(length) + " bytes to " +
                                                                shown(path) + " is in progress"}};
    }
    if (known->second.busy) return Failure{FileError{FileErrorKind::UploadBusy, "the upload of " + shown(path) + " is being written"}};
    known->second.busy = true;
  }
  auto target = std::make_unique<UploadWriter::Target>(UploadWriter::Target{fs, path, staging, Fd(), length, offset, offset + bodyBytes});
  // From here the writer owns the busy mark: every return below releases it.
  std::unique_ptr<UploadWriter> writer(new UploadWriter(*this, std::move(target)));
  UploadWriter::Target& t = *writer->target_;
  t.fd = Fd(::open(staging.key.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!t.fd.valid()) return Failure{errnoError(errno, "cannot open the staged upload of", path)};
  if (restart && ::ftruncate(t.fd.get(), 0) != 0) return Failure{errnoError(errno, "cannot restart the upload of", path)};
  struct stat st {};
  if (::fstat(t.fd.get(), &st) != 0) return Failure{errnoError(errno, "cannot inspect the staged upload of", path)};
  const auto stagedBytes = static_cast<std::uint64_t>(st.st_size);
  if (offset != stagedBytes) {
    return Failure{FileError{FileErrorKind::OffsetMismatch, "the upload of " + shown(path) + " is at offset " +
                                                                std::to_string(stagedBytes) + ", not " + std::to_string(offset),
                             stagedBytes}};
  }
  if (bodyBytes > length - offset) {
    return Failure{FileError{FileErrorKind::InvalidRequest, "the chunk ends at " + std::to_string(offset + bodyBytes) +
                                                                ", past the upload's length " + std::to_string(length)}};
  }
  return writer;
}

Result<void, FileError> UploadStore::complete(const FolderFs& fs, const std::string& path, const Staging& staging,
                                              int stagingFd, std::uint64_t length) {
  if (::fsync(stagingFd) != 0) return Failure{errnoError(errno, "cannot sync the upload of", path)};
  if (!fs.catalog().adopt(fs.folder(), stagingFd, false)) {
    return Failure{FileError{FileErrorKind::Internal, "cannot give " + shown(path) + " to the folder's owner"}};
  }
  const auto [parent, name] = splitParent(path);
  if (!parent.empty()) {
    auto made = fs.makeDirectory(parent, true);
    if (!made) return made;
  }
  auto parentFd = fs.openDirectory(parent);
  if (!parentFd) return Failure{parentFd.error()};
  struct stat target {};
  std::uint64_t replaced = 0;
  if (::fstatat(parentFd->get(), name.c_str(), &target, AT_SYMLINK_NOFOLLOW) == 0) {
    if (S_ISDIR(target.st_mode)) {
      abandon(fs, staging);
      return Failure{FileError{FileErrorKind::Exists, shown(path) + " is a directory; the upload was dropped"}};
    }
    if (S_ISREG(target.st_mode)) replaced = static_cast<std::uint64_t>(target.st_size);
  }
  Fd stagingDir(::open(fs.folder().stagingDir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!stagingDir.valid() || ::renameat(stagingDir.get(), staging.name.c_str(), parentFd->get(), name.c_str()) != 0) {
    return Failure{errnoError(errno, "cannot put the upload in place at", path)};
  }
  // Usage now holds the new file instead of the replaced one; what was charged so far
  // assumed the replaced size seen at the start, which may have changed since.
  const std::int64_t applied = uploads_[staging.key].applied;
  uploads_.erase(staging.key);
  const std::int64_t owed = signedSize(length) - signedSize(replaced) - applied;
  if (owed < 0) fs.catalog().refund(fs.folder(), static_cast<std::uint64_t>(-owed));
  // The file is in place already; a quota the race overdrew is not enforced after the fact.
  if (owed > 0) (void)fs.catalog().charge(fs.folder(), static_cast<std::uint64_t>(owed));
  return {};
}

void UploadStore::abandon(const FolderFs& fs, const Staging& staging) {
  ::unlink(staging.key.c_str());
  auto known = uploads_.find(staging.key);
  if (known == uploads_.end()) return;
  if (known->second.applied > 0) fs.catalog().refund(fs.folder(), static_cast<std::uint64_t>(known->second.applied));
  uploads_.erase(known);
}

std::size_t UploadStore::removeExpired(FolderCatalog& catalog, const FolderRef& folder) {
  const std::int64_t oldest = clockMillis_() - expiryMillis_;
  std::error_code ec;
  std::size_t removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(folder.stagingDir, ec)) {
    const std::string key = entry.path().string();
    struct stat st {};
    if (::lstat(key.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    const std::int64_t touched = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    if (touched >= oldest) continue;
    std::uint64_t refund = static_cast<std::uint64_t>(st.st_size);  // counted by the scan, if not ours
    {
      const std::lock_guard lock(mutex_);
      auto known = uploads_.find(key);
      if (known != uploads_.end()) {
        if (known->second.busy) continue;
        refund = static_cast<std::uint64_t>(std::max<std::int64_t>(0, known->second.applied));
        uploads_.erase(known);
      }
      if (::unlink(key.c_str()) != 0) continue;
    }
    ++removed;
    if (refund > 0) catalog.refund(folder, refund);
  }
  return removed;
}

}  // namespace bai::storage::files
