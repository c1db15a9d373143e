// The volumes bai-storage-proxy serves and the folders on them: creating, measuring,
// sharing and deleting folders for the manager API, and the FolderCatalog the file
// operations use (quota charges, adoption of new files).
//
// Threads: any. `mutex_` guards the map of folder states; each FolderState's own mutex
// guards its metadata and usage, so one folder's charges and changes are serialised and
// other folders go on. A state is looked up under `mutex_`, then used under its own mutex
// only (never both held but in that order).
#pragma once

#include "folder_catalog.hpp"
#include "folder_metadata.hpp"
#include "log_sink.hpp"
#include "proxy_config.hpp"
#include "volume_backend.hpp"

#include <bai/storage_protocol.hpp>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace bai::storage {

struct CreatedFolder {
  storage_protocol::FolderInfo info;
  bool created = false;  // false: it existed with the same owner
};

class VolumeCatalog final : public FolderCatalog {
 public:
  // Checks each volume (its root a directory not writable by others, its back end's
  // checks) and makes vfolders/ (0711) and .bai/ (0700) on it; errors name the volume.
  static Result<std::unique_ptr<VolumeCatalog>> open(const std::vector<VolumeSpec>& volumes, LogSink log);
  // The same with back ends given (tests, vendors' builds).
  struct Volume {
    VolumeSpec spec;
    std::unique_ptr<VolumeBackend> backend;
  };
  static Result<std::unique_ptr<VolumeCatalog>> open(std::vector<Volume> volumes, LogSink log);

  std::vector<storage_protocol::VolumeInfo> volumes() const;
  bool hasVolume(const std::string& volume) const;

  // Conflict when the folder exists with another owner.
  Result<CreatedFolder> createFolder(const storage_protocol::CreateFolderRequest& request);
  // Usage measured now. NotFound for an unknown volume or folder.
  Result<storage_protocol::FolderInfo> info(const std::string& volume, const std::string& folderId);
  // The folder's tree, its partial uploads, then its metadata.
  Result<void> deleteFolder(const std::string& volume, const std::string& folderId);
  Result<storage_protocol::FolderInfo> setQuota(const std::string& volume, const std::string& folderId,
                                                std::optional<std::uint64_t> quotaBytes);
  // The ACL entries of `uid` on the whole tree, added, changed or dropped (nullopt).
  Result<void> setAccess(const std::string& volume, const std::string& folderId, std::uint32_t uid,
                         std::optional<storage_protocol::Permission> permission);

  // The folders that have partial uploads staged: the janitor's round.
  std::vector<FolderRef> foldersWithStagedUploads();

  // FolderCatalog
  Result<FolderRef> folder(const std::string& volume, const std::string& folderId) override;
  Result<void> charge(const FolderRef& folder, std::uint64_t bytes) override;
  void refund(const FolderRef& folder, std::uint64_t bytes) override;
  Result<void> adopt(const FolderRef& folder, int fd, bool directory) override;

 private:
  struct VolumeState {
    VolumeSpec spec;
    std::unique_ptr<VolumeBackend> backend;
    std::filesystem::path folders() const { return spec.path / "vfolders"; }
    std::filesystem::path metadataDir() const { return spec.path / ".bai" / "folders"; }
    std::filesystem::path staging() const { return spec.path / ".bai" / "staging"; }
  };
  struct FolderState {
    std::mutex mutex;
    std::optional<FolderMetadata> metadata;  // nullopt: not read yet, or deleted
    std::optional<std::uint64_t> chargedBytes;  // nullopt: not measured since start
  };
  // A folder's state and the lock on it, its metadata read.
  struct LockedFolder {
    const VolumeState* volume = nullptr;
    std::shared_ptr<FolderState> state;
    std::unique_lock<std::mutex> lock;
  };

  VolumeCatalog(std::map<std::string, VolumeState> volumes, LogSink log);
  Result<LockedFolder> lockFolder(const std::string& volume, const std::string& folderId, bool mustExist);
  FolderRef refOf(const VolumeState& volume, const FolderMetadata& metadata) const;
  Result<storage_protocol::FolderInfo> measuredInfo(const LockedFolder& folder);
  void forget(const std::string& volume, const std::string& folderId, std::shared_ptr<FolderState> state);

  const std::map<std::string, VolumeState> volumes_;  // fixed at start
  const LogSink log_;
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, std::string>, std::shared_ptr<FolderState>> folders_;  // (volume, id)
};

}  // namespace bai::storage
