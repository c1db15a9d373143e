// The folder API's JSON: what it reads from request bodies and writes for folders,
// grants, hosts and sessions' mounts. Part of the API layer, like api_views.hpp.
#pragma once

#include "vfolder_service.hpp"

#include <nlohmann/json_fwd.hpp>

#include <string>
#include <vector>

namespace bai::manager {

// POST /v1/vfolders: {"name", "host"?, "quota": "10g" | bytes?, "permission": "ro"|"rw"?}.
Outcome<NewVfolder> parseNewVfolder(const std::string& body);
// {"id", "name", "owner", "host", "quota_bytes", "permission", "access", "shared_with",
// "created_at", "used_bytes"?, "file_count"?}
nlohmann::json vfolderToJson(const VfolderView& folder);
// {"url", "grant", "path", "expires_at"}
nlohmann::json grantToJson(const IssuedGrant& grant);
// {"hosts": [{"host", "backend", "kernel_quota", "total_bytes", "free_bytes"}]}
nlohmann::json hostsToJson(const std::vector<StorageHost>& hosts);
// A session request's "mounts": [{"folder", "target"?, "read_only"?}].
Outcome<std::vector<MountRequest>> mountRequestsOf(const nlohmann::json& value);
// A session's "mounts": [{"folder", "id", "target", "read_only"}].
nlohmann::json mountsJson(const std::vector<SessionMount>& mounts);

}  // namespace bai::manager
