#include "folder_metadata.hpp"

#include "runtime/atomic_file.hpp"

#include <nlohmann/json.hpp>

#include <cerrno>

namespace bai::storage {

using json = nlohmann::json;
using storage_protocol::parsePermission;
using storage_protocol::permissionName;

std::string FolderMetadata::toJson() const {
  json shared = json::object();
  for (const auto& [uid, permission] : shares) shared[std::to_string(uid)] = permissionName(permission);
  json attributes = json::object();
  for (const auto& [key, value] : backend) attributes[key] = value;
  return json{{"folder_id", folderId},
              {"uid", uid},
              {"gid", gid},
              {"quota_bytes", quotaBytes ? json(*quotaBytes) : json(nullptr)},
              {"shares", shared},
              {"backend", attributes},
              {"created_at_ms", createdAtMillis}}
      .dump(2);
}

Result<FolderMetadata> FolderMetadata::fromJson(std::string_view text) {
  const json document = json::parse(text, nullptr, false);
  if (document.is_discarded() || !document.is_object()) return fail(ErrorCode::InvalidArgument, "not a JSON object");
  try {
    FolderMetadata m;
    m.folderId = document.at("folder_id").get<std::string>();
    m.uid = document.at("uid").get<std::uint32_t>();
    m.gid = document.at("gid").get<std::uint32_t>();
    if (!document.at("quota_bytes").is_null()) m.quotaBytes = document.at("quota_bytes").get<std::uint64_t>();
    for (const auto& [uid, permission] : document.at("shares").items()) {
      auto parsed = parsePermission(permission.get<std::string>());
      if (!parsed) return Failure{parsed.error()};
      m.shares[static_cast<std::uint32_t>(std::stoul(uid))] = *parsed;
    }
    for (const auto& [key, value] : document.at("backend").items()) m.backend[key] = value.get<std::string>();
    m.createdAtMillis = document.value("created_at_ms", std::int64_t{0});
    return m;
  } catch (const std::exception& error) {
    return fail(ErrorCode::InvalidArgument, std::string("malformed folder metadata: ") + error.what());
  }
}

Result<FolderMetadata> readFolderMetadata(const std::filesystem::path& file) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(std::filesystem::symlink_status(file, ec))) {
    return fail(ErrorCode::NotFound, file.filename().string() + ": no such folder metadata");
  }
  auto text = core::readWholeFile(file);
  if (!text) return Failure{text.error()};
  auto metadata = FolderMetadata::fromJson(*text);
  if (!metadata) return fail(ErrorCode::Internal, file.string() + ": " + metadata.error().message);
  return metadata;
}

Result<void> writeFolderMetadata(const std::filesystem::path& file, const FolderMetadata& metadata) {
  // .bai/ is root's, mode 0700: the temp file's default mode is private enough.
  return core::writeFileAtomically(file, metadata.toJson());
}

}  // namespace bai::storage
