#include "volume_catalog.hpp"

#include "clock.hpp"
#include "runtime/atomic_file.hpp"
#include "tree_walk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace bai::storage {

using core::describeErrno;
using storage_protocol::CreateFolderRequest;
using storage_protocol::FolderInfo;
using storage_protocol::Permission;

namespace {

// A directory the proxy keeps on the volume: made if absent, never a symlink, root's
// (when the proxy runs as root) with exactly `mode`.
Result<void> ensureDirectory(const std::filesystem::path& dir, mode_t mode) {
  if (mkdir(dir.c_str(), mode) != 0 && errno != EEXIST) return fail(ErrorCode::Internal, describeErrno("mkdir " + dir.string(), errno));
  auto fd = openDirectoryAt(AT_FDCWD, dir.c_str());
  if (!fd) return fail(ErrorCode::InvalidArgument, dir.string() + ": " + fd.error().message);
  if (geteuid() == 0 && fchown(fd->get(), 0, 0) != 0) return fail(ErrorCode::Internal, describeErrno("chown " + dir.string(), errno));
  if (fchmod(fd->get(), mode) != 0) return fail(ErrorCode::Internal, describeErrno("chmod " + dir.string(), errno));
  return {};
}

Result<void> checkVolumeRoot(const VolumeSpec& spec) {
  struct stat status {};
  if (stat(spec.path.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) {
    return fail(ErrorCode::InvalidArgument, "volume " + spec.name + ": " + spec.path.string() + " is not a directory");
  }
  if ((status.st_mode & S_IWOTH) != 0) {
    return fail(ErrorCode::InvalidArgument, "volume " + spec.name + ": " + spec.path.string() +
                                                " is writable by others (chmod o-w it): anyone could replace its folders");
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<VolumeCatalog>> VolumeCatalog::open(const std::vector<VolumeSpec>& specs, LogSink log) {
  std::vector<Volume> volumes;
  for (const auto& spec : specs) {
    auto backend = makeVolumeBackend(spec.backend);
    if (!backend) return fail(ErrorCode::InvalidArgument, "volume " + spec.name + ": " + backend.error().message);
    volumes.push_back({spec, std::move(*backend)});
  }
  return open(std::move(volumes), std::move(log));
}

Result<std::unique_ptr<VolumeCatalog>> VolumeCatalog::open(std::vector<Volume> volumes, LogSink log) {
  std::map<std::string, VolumeState> states;
  for (auto& volume : volumes) {
    const VolumeSpec& spec = volume.spec;
    if (states.count(spec.name) != 0) return fail(ErrorCode::InvalidArgument, "volume " + spec.name + " is configured twice");
    if (auto checked = checkVolumeRoot(spec); !checked) return Failure{checked.error()};
    if (auto checked = volume.backend->check(spec.path); !checked) {
      return fail(ErrorCode::InvalidArgument, "volume " + spec.name + ": " + checked.error().message);
    }
    for (const auto& [dir, mode] : {std::pair{spec.path / "vfolders", mode_t{0711}}, {spec.path / ".bai", mode_t{0700}},
                                    {spec.path / ".bai" / "folders", mode_t{0700}}, {spec.path / ".bai" / "staging", mode_t{0700}}}) {
      if (auto made = ensureDirectory(dir, mode); !made) {
        return fail(made.error().code, "volume " + spec.name + ": " + made.error().message);
      }
    }
    if (log) log(LogLevel::Info, "volumes", "serving volume " + spec.name + " (" + volume.backend->name() + ") at " + spec.path.string());
    states.emplace(spec.name, VolumeState{spec, std::move(volume.backend)});
  }
  return std::unique_ptr<VolumeCatalog>(new VolumeCatalog(std::move(states), std::move(log)));
}

VolumeCatalog::VolumeCatalog(std::map<std::string, VolumeState> volumes, LogSink log)
    : volumes_(std::move(volumes)), log_(std::move(log)) {}

std::vector<storage_protocol::VolumeInfo> VolumeCatalog::volumes() const {
  std::vector<storage_protocol::VolumeInfo> out;
  for (const auto& [name, volume] : volumes_) {
    storage_protocol::VolumeInfo info{name, volume.backend->name(), volume.spec.path.string(), volume.backend->kernelQuota(), 0, 0};
    struct statvfs fs {};
    if (statvfs(volume.spec.path.c_str(), &fs) == 0) {
      info.totalBytes = std::uint64_t(fs.f_blocks) * fs.f_frsize;
      info.freeBytes = std::uint64_t(fs.f_bavail) * fs.f_frsize;
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<FolderRef> VolumeCatalog::foldersWithStagedUploads() {
  std::vector<FolderRef> out;
  for (const auto& [name, volume] : volumes_) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(volume.staging(), error)) {
      const std::string id = entry.path().filename().string();
      if (!storage_protocol::isFolderId(id)) continue;
      if (auto ref = folder(name, id)) out.push_back(std::move(*ref));
    }
  }
  return out;
}

bool VolumeCatalog::hasVolume(const std::string& volume) const { return volumes_.count(volume) != 0; }

Result<VolumeCatalog::LockedFolder> VolumeCatalog::lockFolder(const std::string& volume, const std::string& folderId,
                                                              bool mustExist) {
  if (!storage_protocol::isVolumeName(volume)) return fail(ErrorCode::InvalidArgument, "'" + volume + "' is not a volume name");
  if (!storage_protocol::isFolderId(folderId)) return fail(ErrorCode::InvalidArgument, "a folder id is 32 lower-case hex digits");
  const auto found = volumes_.find(volume);
  if (found == volumes_.end()) return fail(ErrorCode::NotFound, "no volume " + volume);
  LockedFolder locked;
  locked.volume = &found->second;
  {
    std::lock_guard guard(mutex_);
    auto& state = folders_[{volume, folderId}];
    if (!state) state = std::make_shared<FolderState>();
    locked.state = state;
  }
  locked.lock = std::unique_lock(locked.state->mutex);
  if (!locked.state->metadata) {
    auto metadata = readFolderMetadata(locked.volume->metadataDir() / (folderId + ".json"));
    if (metadata) {
      locked.state->metadata = std::move(*metadata);
    } else if (metadata.error().code != ErrorCode::NotFound) {
      return Failure{metadata.error()};
    } else if (mustExist) {
      locked.lock.unlock();  // asking for unknown folders must not grow the map
      forget(volume, folderId, std::move(locked.state));
      return fail(ErrorCode::NotFound, "no folder " + folderId + " on volume " + volume);
    }
  }
  return locked;
}

FolderRef VolumeCatalog::refOf(const VolumeState& volume, const FolderMetadata& metadata) const {
  return FolderRef{volume.spec.name, metadata.folderId, volume.folders() / metadata.folderId,
                   volume.staging() / metadata.folderId, FolderOwner{metadata.uid, metadata.gid}};
}

Result<FolderInfo> VolumeCatalog::measuredInfo(const LockedFolder& folder) {
  const FolderMetadata& m = *folder.state->metadata;
  const auto dir = folder.volume->folders() / m.folderId;
  auto usage = folder.volume->backend->measure(dir, m.backend);
  if (!usage) return Failure{usage.error()};
  return FolderInfo{folder.volume->spec.name, m.folderId, dir.string(), m.uid, m.gid, m.quotaBytes, usage->bytes, usage->files};
}

void VolumeCatalog::forget(const std::string& volume, const std::string& folderId, std::shared_ptr<FolderState> state) {
  std::lock_guard guard(mutex_);
  const auto found = folders_.find({volume, folderId});
  // Only when no other thread holds it (the map and `state` are its two owners): one
  // waiting for its lock would otherwise act on a state the map no longer knows.
  if (found != folders_.end() && found->second == state && state.use_count() == 2) folders_.erase(found);
}

Result<CreatedFolder> VolumeCatalog::createFolder(const CreateFolderRequest& request) {
  if (request.uid == 0 || request.gid == 0) return fail(ErrorCode::InvalidArgument, "a folder is never root's (uid and gid above 0)");
  auto folder = lockFolder(request.volume, request.folderId, false);
  if (!folder) return Failure{folder.error()};
  if (const auto& existing = folder->state->metadata) {
    if (existing->uid != request.uid || existing->gid != request.gid) {
      return fail(ErrorCode::Conflict, "folder " + request.folderId + " exists with another owner");
    }
    auto info = measuredInfo(*folder);
    if (!info) return Failure{info.error()};
    return CreatedFolder{std::move(*info), false};
  }
  const VolumeState& volume = *folder->volume;
  const auto dir = volume.folders() / request.folderId;
  // A directory without metadata is what a crash between the two leaves: it is taken over.
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return fail(ErrorCode::Internal, describeErrno("mkdir " + dir.string(), errno));
  }
  auto undo = [&](Error error) -> Result<CreatedFolder> {
    (void)removeTreeAt(AT_FDCWD, dir.c_str());
    return Failure{std::move(error)};
  };
  auto fd = openDirectoryAt(AT_FDCWD, dir.c_str());
  if (!fd) return Failure{fd.error()};
  if (fchown(fd->get(), request.uid, request.gid) != 0 || fchmod(fd->get(), 0700) != 0) {
    return undo(Error{ErrorCode::Internal, describeErrno("chown " + dir.string(), errno)});
  }
  if (mkdir((volume.staging() / request.folderId).c_str(), 0700) != 0 && errno != EEXIST) {
    return undo(Error{ErrorCode::Internal, describeErrno("mkdir staging", errno)});
  }
  FolderMetadata metadata{request.folderId, request.uid, request.gid, request.quotaBytes, {}, {}, nowMillis()};
  auto attributes = volume.backend->prepareFolder(volume.spec.path, dir, volume.staging() / request.folderId);
  if (!attributes) return undo(attributes.error());
  metadata.backend = std::move(*attributes);
  if (auto applied = volume.backend->applyQuota(dir, metadata.backend, metadata.quotaBytes); !applied) return undo(applied.error());
  if (auto written = writeFolderMetadata(volume.metadataDir() / (request.folderId + ".json"), metadata); !written) {
    return undo(written.error());
  }
  folder->state->metadata = std::move(metadata);
  folder->state->chargedBytes.reset();
  if (log_) log_(LogLevel::Info, "volumes", "created folder " + request.folderId + " on " + request.volume);
  auto info = measuredInfo(*folder);
  if (!info) return Failure{info.error()};
  return CreatedFolder{std::move(*info), true};
}

Result<FolderInfo> VolumeCatalog::info(const std::string& volume, const std::string& folderId) {
  auto folder = lockFolder(volume, folderId, true);
  if (!folder) return Failure{folder.error()};
  return measuredInfo(*folder);
}

Result<void> VolumeCatalog::deleteFolder(const std::string& volume, const std::string& folderId) {
  auto folder = lockFolder(volume, folderId, true);
  if (!folder) return Failure{folder.error()};
  const VolumeState& v = *folder->volume;
  if (auto released = v.backend->release(v.folders() / folderId, folder->state->metadata->backend); !released) {
    return released;
  }
  for (const auto& parent : {v.folders(), v.staging()}) {
    auto parentFd = openDirectoryAt(AT_FDCWD, parent.c_str());
    if (!parentFd) return Failure{parentFd.error()};
    if (auto removed = removeTreeAt(parentFd->get(), folderId.c_str()); !removed) return removed;
  }
  // The metadata last: a delete cut short is finished by the next one.
  const auto metadataFile = v.metadataDir() / (folderId + ".json");
  if (unlink(metadataFile.c_str()) != 0 && errno != ENOENT) {
    return fail(ErrorCode::Internal, describeErrno("remove " + metadataFile.string(), errno));
  }
  folder->state->metadata.reset();
  folder->state->chargedBytes.reset();
  folder->lock.unlock();
  forget(volume, folderId, std::move(folder->state));
  if (log_) log_(LogLevel::Info, "volumes", "deleted folder " + folderId + " on " + volume);
  return {};
}

Result<FolderInfo> VolumeCatalog::setQuota(const std::string& volume, const std::string& folderId,
                                           std::optional<std::uint64_t> quotaBytes) {
  auto folder = lockFolder(volume, folderId, true);
  if (!folder) return Failure{folder.error()};
  FolderMetadata metadata = *folder->state->metadata;
  metadata.quotaBytes = quotaBytes;
  const VolumeState& v = *folder->volume;
  if (auto applied = v.backend->applyQuota(v.folders() / folderId, metadata.backend, quotaBytes); !applied) return Failure{applied.error()};
  if (auto written = writeFolderMetadata(v.metadataDir() / (folderId + ".json"), metadata); !written) return Failure{written.error()};
  folder->state->metadata = std::move(metadata);
  return measuredInfo(*folder);
}

Result<void> VolumeCatalog::setAccess(const std::string& volume, const std::string& folderId, std::uint32_t uid,
                                      std::optional<Permission> permission) {
  if (uid == 0 || uid == 0xffffffffu) return fail(ErrorCode::InvalidArgument, "uid " + std::to_string(uid) + " cannot be given a share");
  auto folder = lockFolder(volume, folderId, true);
  if (!folder) return Failure{folder.error()};
  FolderMetadata metadata = *folder->state->metadata;
  if (permission) {
    metadata.shares[uid] = *permission;
  } else {
    metadata.shares.erase(uid);
  }
  const VolumeState& v = *folder->volume;
  // The metadata first: a walk cut short is redone from it by the next change.
  if (auto written = writeFolderMetadata(v.metadataDir() / (folderId + ".json"), metadata); !written) return written;
  folder->state->metadata = metadata;
  auto dir = openDirectoryAt(AT_FDCWD, (v.folders() / folderId).c_str());
  if (!dir) return Failure{dir.error()};
  return applyFolderAclTree(dir->get(), metadata.shares);
}

Result<FolderRef> VolumeCatalog::folder(const std::string& volume, const std::string& folderId) {
  auto folder = lockFolder(volume, folderId, true);
  if (!folder) return Failure{folder.error()};
  return refOf(*folder->volume, *folder->state->metadata);
}

Result<void> VolumeCatalog::charge(const FolderRef& ref, std::uint64_t bytes) {
  auto folder = lockFolder(ref.volume, ref.folderId, true);
  if (!folder) return Failure{folder.error()};
  FolderState& state = *folder->state;
  if (!state.chargedBytes) {
    auto stored = measureByWalking(ref.dir);
    if (!stored) return Failure{stored.error()};
    std::uint64_t staged = 0;
    if (auto partial = measureByWalking(ref.stagingDir); partial) staged = partial->bytes;  // none yet: 0
    state.chargedBytes = stored->bytes + staged;
  }
  const std::uint64_t used = *state.chargedBytes;
  if (const auto quota = state.metadata->quotaBytes; quota && (used > *quota || bytes > *quota - used)) {
    return fail(ErrorCode::OutOfRange, "quota " + std::to_string(*quota) + " bytes, used " + std::to_string(used) + ", asked " +
                                           std::to_string(bytes));
  }
  state.chargedBytes = used + bytes;
  return {};
}

void VolumeCatalog::refund(const FolderRef& ref, std::uint64_t bytes) {
  auto folder = lockFolder(ref.volume, ref.folderId, true);
  if (!folder || !folder->state->chargedBytes) return;  // measured afresh at the next charge
  auto& charged = *folder->state->chargedBytes;
  charged -= std::min(charged, bytes);
}

Result<void> VolumeCatalog::adopt(const FolderRef& ref, int fd, bool directory) {
  auto folder = lockFolder(ref.volume, ref.folderId, true);
  if (!folder) return Failure{folder.error()};
  const FolderMetadata& m = *folder->state->metadata;
  if (fchown(fd, m.uid, m.gid) != 0) return fail(ErrorCode::Internal, describeErrno("chown", errno));
  if (fchmod(fd, directory ? 0700 : 0600) != 0) return fail(ErrorCode::Internal, describeErrno("chmod", errno));
  return applyFolderAcl(fd, directory, m.shares);
}

}  // namespace bai::storage
