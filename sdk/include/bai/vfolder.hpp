// Virtual folders as libbai-client sees them: the records the manager's /v1/vfolders routes
// answer with, a folder's file listing, the storage hosts, and the short-lived grants a
// client takes to a storage proxy to move bytes (bai/vfolder_transfer.hpp moves them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace bai::client {

// Who else may use a folder, and how ("ro" or "rw").
struct VfolderShare {
  std::string accessKey;
  std::string permission;
};

struct Vfolder {
  std::string id;
  std::string name;
  std::string owner;  // the owner's access key
  std::string host;   // "PROXY:VOLUME"
  std::optional<std::uint64_t> quotaBytes;  // none: no quota
  std::string permission;  // what keypairs it is shared with get by default
  std::string access;      // the caller's: "owner", "rw" or "ro"
  std::vector<VfolderShare> sharedWith;  // the owner's and admins' view only
  std::string createdAt;   // RFC 3339
  std::optional<std::uint64_t> usedBytes;  // measured by the proxy (info only)
  std::optional<std::uint64_t> fileCount;
  std::string json;  // the document as the manager sent it (for --json output)
};

// What createVfolder sends; empty fields are left to the manager.
struct VfolderSpec {
  std::string name;        // 1-64 of [A-Za-z0-9._-], not starting with '.'
  std::string host = "";   // "PROXY:VOLUME"; empty: the manager's default host
  std::string quota = "";  // "10g" or a byte count; empty: none (or the policy's limit)
  std::string permission = "";  // "ro" or "rw" for those it is shared with; empty: rw
};

// One entry of a folder's listing; paths are relative to the folder's root.
struct FileEntry {
  std::string path;
  std::string type;  // "file", "dir", "symlink" or "other"
  std::uint64_t size = 0;
  std::uint32_t mode = 0;  // permission bits
  std::int64_t modifiedAtMs = 0;
};

// A volume a storage proxy serves, as GET /v1/storage/hosts reports it.
struct StorageHost {
  std::string host;  // "PROXY:VOLUME"
  std::string backend;
  bool kernelQuota = false;
  std::uint64_t totalBytes = 0;
  std::uint64_t freeBytes = 0;
  std::string json;
};

enum class TransferOperation { Upload, Download };

// Permission to move bytes below `path` of one folder, straight with its storage proxy,
// until `expiresAt`. The token is a secret: never print or log it.
struct TransferGrant {
  std::string url;    // the proxy's client API ("http://host:6022")
  std::string token;  // sent as X-BAI-Grant
  std::string path;   // normalised by the manager
  std::string expiresAt;
};

// A folder to mount into a new session (SessionSpec::mounts).
struct MountRequest {
  std::string folder;  // name or id
  std::string target = "";  // empty: /home/work/<folder name>
  bool readOnly = false;
};

// A folder a session mounts, as the manager reports it.
struct SessionMount {
  std::string folder;  // its name
  std::string id;
  std::string target;
  bool readOnly = false;
};

}  // namespace bai::client
