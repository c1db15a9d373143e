// What the file operations of bai-storage-proxy (transfers, listings, mkdir, delete, move)
// need of the volumes: a folder's directory and owner, the quota's admission of new bytes,
// and the ownership and access a new file or directory gets. The volumes implement it
// (volume_catalog.hpp); tests give a fake. Any thread.
#pragma once

#include <bai/result.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace bai::storage {

struct FolderOwner {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};

// One folder, as a file operation addresses it.
struct FolderRef {
  std::string volume;
  std::string folderId;
  std::filesystem::path dir;         // the folder's directory: every path is confined below it
  std::filesystem::path stagingDir;  // on the same file system, outside every folder: partial uploads
  FolderOwner owner;
};

class FolderCatalog {
 public:
  virtual ~FolderCatalog() = default;

  // NotFound names the unknown volume or folder.
  virtual Result<FolderRef> folder(const std::string& volume, const std::string& folderId) = 0;

  // Charges `bytes` to the folder's usage if they fit its quota, atomically with other
  // charges, so two uploads never both pass on the same room; OutOfRange otherwise, naming
  // the quota, the usage and what was asked. A folder without a quota is charged too (its
  // usage stays exact). Usage is measured from the disk (the folder and its partial
  // uploads in stagingDir) when first needed and after a restart, and kept by charges and
  // refunds in between.
  virtual Result<void> charge(const FolderRef& folder, std::uint64_t bytes) = 0;
  // Bytes charged that no longer count: an abandoned upload, a replaced or deleted file.
  virtual void refund(const FolderRef& folder, std::uint64_t bytes) = 0;

  // A file or directory the proxy just made in the folder (open descriptor, not yet
  // reachable or just renamed into place) becomes the owner's, mode 0600 or 0700, with the
  // access of the keypairs the folder is shared with.
  virtual Result<void> adopt(const FolderRef& folder, int fd, bool directory) = 0;
};

}  // namespace bai::storage
