// What a volume's storage does for bai-storage-proxy: small enough for a vendor (Ceph,
// NetApp) to implement. The proxy makes the folder directories, their metadata and their
// ACLs itself; a back end checks its volume, prepares a new folder's directory, applies
// quotas and measures usage. Back ends keep no state between calls but what they return in
// FolderAttributes (stored in the folder's metadata), so any thread may call them.
#pragma once

#include <bai/result.hpp>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace bai::storage {

// What a back end remembers of one folder ("project_id" -> "17"), kept by the proxy.
using FolderAttributes = std::map<std::string, std::string>;

struct FolderUsage {
  std::uint64_t bytes = 0;  // the sizes of its regular files, added up
  std::uint64_t files = 0;  // its regular files
};

class VolumeBackend {
 public:
  virtual ~VolumeBackend() = default;

  virtual std::string name() const = 0;  // as configs write it: "vfs"
  // Whether quotas hold for every writer (sessions too), not only the proxy's uploads.
  virtual bool kernelQuota() const = 0;

  // At start: whether the volume rooted at `root` can be served; the error says why not.
  virtual Result<void> check(const std::filesystem::path& root) = 0;
  // A new folder's directory and its staging directory (partial uploads, renamed into the
  // folder when complete), both made and still empty; returns what to remember of them.
  virtual Result<FolderAttributes> prepareFolder(const std::filesystem::path& root, const std::filesystem::path& dir,
                                                 const std::filesystem::path& stagingDir) = 0;
  // Sets (nullopt: clears) the folder's quota.
  virtual Result<void> applyQuota(const std::filesystem::path& dir, const FolderAttributes& attributes,
                                  std::optional<std::uint64_t> quotaBytes) = 0;
  virtual Result<FolderUsage> measure(const std::filesystem::path& dir, const FolderAttributes& attributes) = 0;
  // Before the folder's tree is removed: what the back end holds for it.
  virtual Result<void> release(const std::filesystem::path& dir, const FolderAttributes& attributes) = 0;
};

// "vfs" or "xfs"; InvalidArgument naming the unknown one.
Result<std::unique_ptr<VolumeBackend>> makeVolumeBackend(const std::string& name);

std::unique_ptr<VolumeBackend> makeVfsBackend();
std::unique_ptr<VolumeBackend> makeXfsBackend();

// Usage by walking the tree: regular files only, never following a symlink, a file with
// several hard links counted once. Shared by the back ends that cannot ask the kernel.
Result<FolderUsage> measureByWalking(const std::filesystem::path& dir);

}  // namespace bai::storage
