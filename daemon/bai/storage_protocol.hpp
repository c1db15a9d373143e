// The wire between bai-manager and bai-storage-proxy, and the grants a client shows the
// proxy. Internal to bai: both daemons change together.
//
// The manager calls the proxy's manager API (Authorization: Bearer <storage token>) to
// make, measure, share and delete folders, and to list and change files in them. For
// bulk data it signs a short-lived grant (signGrant) that the client sends to the proxy's
// client API in the X-BAI-Grant header; the proxy verifies it (verifyGrant) with a key
// derived from the same storage token, so the manager never carries the bytes.
#pragma once

#include <bai/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bai::storage_protocol {

inline constexpr std::string_view kGrantHeader = "X-BAI-Grant";

// A volume name: 1 to 64 lower-case letters, digits, '-' or '_'.
bool isVolumeName(std::string_view name);
// A folder id as the manager makes them: 32 lower-case hex digits.
bool isFolderId(std::string_view id);

// The longest path inside a folder, and the longest name of one component (bytes).
inline constexpr std::size_t kMaxPathBytes = 4096;
inline constexpr std::size_t kMaxNameBytes = 255;

// A path inside a folder as clients write it: components separated by single '/', none
// empty, "." or ".."; no leading '/' (absolute paths are refused, not re-rooted), no NUL
// or other control character, valid UTF-8, within the limits above. "" is the folder's
// root; one trailing '/' is dropped. Errors name what was wrong, for a 400 invalid-path.
Result<std::string> normalizeFolderPath(std::string_view path);
// Whether `path` (normalised) is `root` or below it: what a grant for `root` covers.
bool pathWithin(std::string_view path, std::string_view root);

enum class Permission { ReadOnly, ReadWrite };
const char* permissionName(Permission permission);  // "ro", "rw"
Result<Permission> parsePermission(std::string_view text);

// GET /v1/volumes
struct VolumeInfo {
  std::string name;
  std::string backend;       // "vfs", "xfs"
  std::string path;          // the volume's root on the proxy's host, and on every agent's
  bool kernelQuota = false;  // quotas hold for sessions' writes too, not only uploads
  std::uint64_t totalBytes = 0;
  std::uint64_t freeBytes = 0;
};
std::string volumesToJson(const std::vector<VolumeInfo>& volumes);  // {"volumes": [...]}
Result<std::vector<VolumeInfo>> volumesFromJson(std::string_view json);

// POST /v1/folders: idempotent for the same owner (answers the folder as it is).
struct CreateFolderRequest {
  std::string volume;
  std::string folderId;
  std::uint32_t uid = 0;  // the owner's: the folder's directory is theirs, mode 0700
  std::uint32_t gid = 0;
  std::optional<std::uint64_t> quotaBytes;  // nullopt: no limit

  std::string toJson() const;
  static Result<CreateFolderRequest> fromJson(std::string_view json);
};

// The answer to POST /v1/folders and GET /v1/folders/{volume}/{id}: usage measured now.
struct FolderInfo {
  std::string volume;
  std::string folderId;
  std::string hostPath;  // absolute: what agents bind into sessions
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::optional<std::uint64_t> quotaBytes;
  std::uint64_t usedBytes = 0;  // the sizes of its regular files, added up
  std::uint64_t fileCount = 0;  // its regular files

  std::string toJson() const;
  static Result<FolderInfo> fromJson(std::string_view json);
};

// PUT /v1/folders/{volume}/{id}/quota: {"quota_bytes": N | null}.
std::string quotaToJson(std::optional<std::uint64_t> quotaBytes);
Result<std::optional<std::uint64_t>> quotaFromJson(std::string_view json);

// PUT /v1/folders/{volume}/{id}/access/{uid}: {"permission": "ro"|"rw"} lets that uid's
// sessions read (and write) the folder; DELETE .../access/{uid} takes it back.
std::string accessToJson(Permission permission);
Result<Permission> accessFromJson(std::string_view json);

// One entry of a listing (manager API GET .../files, client API GET /v1/list).
struct FileEntry {
  std::string path;  // relative to the folder's root, normalised
  std::string type;  // "file", "dir", "symlink" or "other"
  std::uint64_t size = 0;
  std::uint32_t mode = 0;  // permission bits
  std::int64_t modifiedAtMillis = 0;
};
std::string entriesToJson(const std::vector<FileEntry>& entries);  // {"entries": [...]}
Result<std::vector<FileEntry>> entriesFromJson(std::string_view json);

// A client's permission to upload into or download from one folder, below `path`.
enum class GrantOperation { Download, Upload };
const char* grantOperationName(GrantOperation operation);  // "download", "upload"

struct Grant {
  GrantOperation operation = GrantOperation::Download;
  std::string volume;
  std::string folderId;
  std::string path;     // normalised; "" covers the whole folder
  std::string subject;  // the access key it was given to (for the proxy's log)
  std::int64_t expiresAtMillis = 0;
};

// The key grants are signed with: HMAC-SHA256 of a fixed label keyed with the storage
// token, so the token itself never signs anything a client holds.
std::string grantKey(std::string_view storageToken);
// "v1.<hex of the grant's JSON>.<hex HMAC-SHA256 of that hex>".
std::string signGrant(const Grant& grant, std::string_view key);

enum class GrantRefusal { Malformed, BadSignature, Expired };
struct GrantError {
  GrantRefusal refusal = GrantRefusal::Malformed;
  std::string message;
};
// The grant if `token` is well formed, signed with `key` and unexpired at `nowMillis`.
// The signature is compared in constant time before the payload is parsed.
Result<Grant, GrantError> verifyGrant(std::string_view token, std::string_view key, std::int64_t nowMillis);

}  // namespace bai::storage_protocol
