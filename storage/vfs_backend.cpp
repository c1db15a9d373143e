// The vfs back end: any POSIX file system. Nothing in the kernel limits a folder, so its
// quota holds only for what the proxy writes (uploads, charged by the catalog); sessions
// writing to a mounted folder are not stopped. VolumeInfo.kernel_quota says so.
#include "runtime/atomic_file.hpp"
#include "tree_walk.hpp"
#include "volume_backend.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <set>
#include <utility>

namespace bai::storage {

namespace {

class VfsBackend final : public VolumeBackend {
 public:
  std::string name() const override { return "vfs"; }
  bool kernelQuota() const override { return false; }

  Result<void> check(const std::filesystem::path&) override { return {}; }
  Result<FolderAttributes> prepareFolder(const std::filesystem::path&, const std::filesystem::path&,
                                         const std::filesystem::path&) override {
    return FolderAttributes{};
  }
  Result<void> applyQuota(const std::filesystem::path&, const FolderAttributes&, std::optional<std::uint64_t>) override {
    return {};  // the catalog's accounting enforces it
  }
  Result<FolderUsage> measure(const std::filesystem::path& dir, const FolderAttributes&) override {
    return measureByWalking(dir);
  }
  Result<void> release(const std::filesystem::path&, const FolderAttributes&) override { return {}; }
};

}  // namespace

Result<FolderUsage> measureByWalking(const std::filesystem::path& dir) {
  auto root = openDirectoryAt(AT_FDCWD, dir.c_str());
  if (!root) return Failure{root.error()};
  FolderUsage usage;
  std::set<std::pair<dev_t, ino_t>> linked;  // files seen with more than one link
  auto walked = walkTree(root->get(), [&](int, const char*, const struct stat& status) -> Result<void> {
    if (!S_ISREG(status.st_mode)) return {};
    if (status.st_nlink > 1 && !linked.insert({status.st_dev, status.st_ino}).second) return {};
    usage.bytes += static_cast<std::uint64_t>(status.st_size);
    usage.files += 1;
    return {};
  });
  if (!walked) return Failure{walked.error()};
  return usage;
}

std::unique_ptr<VolumeBackend> makeVfsBackend() { return std::make_unique<VfsBackend>(); }

Result<std::unique_ptr<VolumeBackend>> makeVolumeBackend(const std::string& name) {
  if (name == "vfs") return makeVfsBackend();
  if (name == "xfs") return makeXfsBackend();
  return fail(ErrorCode::InvalidArgument, "backend '" + name + "' is not vfs or xfs");
}

}  // namespace bai::storage
