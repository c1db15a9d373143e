// What the proxy keeps of each folder beside the volume's data, in
// R/.bai/folders/<id>.json: its owner, quota, shares and the back end's attributes. The
// file is the truth after a restart; the manager keeps its own records.
#pragma once

#include "posix_acl.hpp"
#include "volume_backend.hpp"

#include <bai/result.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace bai::storage {

struct FolderMetadata {
  std::string folderId;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::optional<std::uint64_t> quotaBytes;
  FolderShares shares;
  FolderAttributes backend;
  std::int64_t createdAtMillis = 0;

  std::string toJson() const;
  static Result<FolderMetadata> fromJson(std::string_view json);
};

// NotFound when the folder has no metadata file.
Result<FolderMetadata> readFolderMetadata(const std::filesystem::path& file);
// Replaces the file atomically (temp file + rename), mode 0600.
Result<void> writeFolderMetadata(const std::filesystem::path& file, const FolderMetadata& metadata);

}  // namespace bai::storage
