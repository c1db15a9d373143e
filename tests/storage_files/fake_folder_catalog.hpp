// A FolderCatalog over a temporary volume directory, with one optional quota for every
// folder: usage is measured from the disk (the folder's regular files and its staged
// uploads) when first needed, as the proxy's catalog does after a restart, and kept by
// charges and refunds after that.
#pragma once

#include "folder_catalog.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

namespace bai::storage::files::testing {

class FakeFolderCatalog : public FolderCatalog {
 public:
  FakeFolderCatalog(std::filesystem::path volumeRoot, std::optional<std::uint64_t> quota)
      : root_(std::move(volumeRoot)), quota_(quota) {}

  FolderRef add(const std::string& folderId) {
    FolderRef ref{"default", folderId, root_ / "vfolders" / folderId, root_ / ".bai" / "staging" / folderId,
                  {static_cast<std::uint32_t>(::getuid()), static_cast<std::uint32_t>(::getgid())}};
    std::filesystem::create_directories(ref.dir);
    std::filesystem::create_directories(ref.stagingDir);
    const std::lock_guard lock(mutex_);
    folders_[folderId] = ref;
    return ref;
  }

  Result<FolderRef> folder(const std::string& volume, const std::string& folderId) override {
    const std::lock_guard lock(mutex_);
    auto it = folders_.find(folderId);
    if (volume != "default" || it == folders_.end()) return fail(ErrorCode::NotFound, "no folder " + volume + "/" + folderId);
    return it->second;
  }

  Result<void> charge(const FolderRef& folder, std::uint64_t bytes) override {
    const std::lock_guard lock(mutex_);
    std::uint64_t& used = usedLocked(folder);
    if (quota_ && used + bytes > *quota_) {
      return fail(ErrorCode::OutOfRange, "the quota is " + std::to_string(*quota_) + " bytes, " + std::to_string(used) +
                                             " are used and " + std::to_string(bytes) + " more were asked");
    }
    used += bytes;
    return {};
  }

  void refund(const FolderRef& folder, std::uint64_t bytes) override {
    const std::lock_guard lock(mutex_);
    std::uint64_t& used = usedLocked(folder);
    used -= std::min(used, bytes);
  }

  Result<void> adopt(const FolderRef&, int fd, bool directory) override {
    if (::fchmod(fd, directory ? 0700 : 0600) != 0) return fail(ErrorCode::Internal, "fchmod failed");
    ++adopted;
    return {};
  }

  std::uint64_t used(const FolderRef& folder) {
    const std::lock_guard lock(mutex_);
    return usedLocked(folder);
  }

  // What the disk holds now, measured afresh.
  static std::uint64_t measure(const FolderRef& folder) {
    std::uint64_t total = 0;
    for (const auto& dir : {folder.dir, folder.stagingDir}) {
      std::error_code ec;
      for (auto it = std::filesystem::recursive_directory_iterator(dir, ec); !ec && it != std::filesystem::end(it); it.increment(ec)) {
        if (it->is_regular_file(ec) && !it->is_symlink(ec)) total += it->file_size(ec);
      }
    }
    return total;
  }

  std::atomic<int> adopted{0};

 private:
  std::uint64_t& usedLocked(const FolderRef& folder) {
    auto it = used_.find(folder.folderId);
    if (it == used_.end()) it = used_.emplace(folder.folderId, measure(folder)).first;
    return it->second;
  }

  std::filesystem::path root_;
  std::optional<std::uint64_t> quota_;
  std::mutex mutex_;
  std::map<std::string, FolderRef> folders_;
  std::map<std::string, std::uint64_t> used_;
};

}  // namespace bai::storage::files::testing
