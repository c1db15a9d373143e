#include "vfolder_views.hpp"

#include "parse_json.hpp"

#include <bai/request_signing.hpp>
#include <bai/slots.hpp>

#include <nlohmann/json.hpp>

namespace bai::manager {
namespace {

using Json = nlohmann::json;

std::string rfc3339(std::int64_t millis) {
  return auth::formatRfc3339Utc(std::chrono::system_clock::time_point(std::chrono::milliseconds(millis)));
}

// A quota: bytes as a whole number, or a size as people write it ("10g").
Outcome<std::uint64_t> quotaOf(const Json& value) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_string()) {
    auto size = BinarySize::parse(value.get<std::string>());
    if (size) return size->bytes();
    return refuse(ErrorKind::InvalidRequest, "quota: " + size.error().message, "quota");
  }
  return refuse(ErrorKind::InvalidRequest, "quota must be a size such as \"10g\" or a whole number of bytes", "quota");
}

}  // namespace

Outcome<NewVfolder> parseNewVfolder(const std::string& body) {
  auto parsed = parseJson(body);
  if (!parsed) return refuse(ErrorKind::InvalidRequest, parsed.error().message);
  if (!parsed->is_object()) return refuse(ErrorKind::InvalidRequest, "the body is not a JSON object");
  NewVfolder folder;
  bool named = false;
  for (const auto& [key, value] : parsed->items()) {
    if (key == "name" || key == "host") {
      if (!value.is_string()) return refuse(ErrorKind::InvalidRequest, key + " must be a string", key);
      if (key == "name") {
        folder.name = value.get<std::string>();
        named = true;
      } else {
        folder.host = value.get<std::string>();
      }
    } else if (key == "quota") {
      if (value.is_null()) continue;
      auto quota = quotaOf(value);
      if (!quota) return Failure{quota.error()};
      folder.quotaBytes = *quota;
    } else if (key == "permission") {
      auto permission = value.is_string() ? storage_protocol::parsePermission(value.get<std::string>())
                                          : Result<storage_protocol::Permission>(fail(ErrorCode::InvalidArgument, ""));
      if (!permission) return refuse(ErrorKind::InvalidRequest, "permission must be \"ro\" or \"rw\"", key);
      folder.permission = *permission;
    } else {
      return refuse(ErrorKind::InvalidRequest, "unknown field '" + key + "' (name, host, quota, permission)", key);
    }
  }
  if (!named) return refuse(ErrorKind::InvalidRequest, "name is required", "name");
  return folder;
}

Json vfolderToJson(const VfolderView& view) {
  const VfolderRecord& folder = view.record;
  Json shared = Json::array();
  for (const auto& share : view.shares) {
    shared.push_back({{"access_key", share.accessKey}, {"permission", storage_protocol::permissionName(share.permission)}});
  }
  Json out = {{"id", folder.id},
              {"name", folder.name},
              {"owner", folder.owner},
              {"host", folder.host},
              {"quota_bytes", folder.quotaBytes ? Json(*folder.quotaBytes) : Json()},
              {"permission", storage_protocol::permissionName(folder.permission)},
              {"access", vfolderAccessName(view.access)},
              {"shared_with", shared},
              {"created_at", rfc3339(folder.createdAtMillis)}};
  if (view.usage) {
    out["used_bytes"] = view.usage->usedBytes;
    out["file_count"] = view.usage->fileCount;
  }
  return out;
}

Json grantToJson(const IssuedGrant& grant) {
  return {{"url", grant.url}, {"grant", grant.token}, {"path", grant.path}, {"expires_at", rfc3339(grant.expiresAtMillis)}};
}

Json hostsToJson(const std::vector<StorageHost>& hosts) {
  Json out = Json::array();
  for (const auto& [host, volume] : hosts) {
    out.push_back({{"host", host},
                   {"backend", volume.backend},
                   {"kernel_quota", volume.kernelQuota},
                   {"total_bytes", volume.totalBytes},
                   {"free_bytes", volume.freeBytes}});
  }
  return {{"hosts", out}};
}

Outcome<std::vector<MountRequest>> mountRequestsOf(const Json& value) {
  const std::string shape = R"(mounts must be a list of {"folder": NAME, "target": "/home/work/...", "read_only": bool})";
  if (!value.is_array()) return refuse(ErrorKind::InvalidRequest, shape, "mounts");
  std::vector<MountRequest> mounts;
  for (const Json& entry : value) {
    if (!entry.is_object()) return refuse(ErrorKind::InvalidRequest, shape, "mounts");
    MountRequest mount;
    for (const auto& [key, field] : entry.items()) {
      if (key == "folder" && field.is_string()) {
        mount.folder = field.get<std::string>();
      } else if (key == "target" && field.is_string()) {
        mount.target = field.get<std::string>();
      } else if (key == "read_only" && field.is_boolean()) {
        mount.readOnly = field.get<bool>();
      } else {
        return refuse(ErrorKind::InvalidRequest, shape + "; not '" + key + "': " + field.dump(), "mounts");
      }
    }
    if (mount.folder.empty()) return refuse(ErrorKind::InvalidRequest, "each mount names its folder", "mounts");
    mounts.push_back(std::move(mount));
  }
  return mounts;
}

Json mountsJson(const std::vector<SessionMount>& mounts) {
  Json out = Json::array();
  for (const auto& [mount, name] : mounts) {
    out.push_back({{"folder", name}, {"id", mount.folderId}, {"target", mount.target}, {"read_only", mount.readOnly}});
  }
  return out;
}

}  // namespace bai::manager
