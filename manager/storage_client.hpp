// The manager's calls to a storage proxy's manager API (storage_protocol.hpp): make,
// measure, share and delete folders, and list and change files in them. Authenticated
// with the proxy's bearer token, which never appears in a log or an error. Blocking:
// never called under the ledger's lock.
#pragma once

#include "domain_error.hpp"

#include <bai/protocol.hpp>
#include <bai/result.hpp>
#include <bai/storage_protocol.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace bai::manager {

// The proxy answered with an error (httpStatus set, error its document) or the exchange
// failed (httpStatus 0: unreachable, timed out, an unreadable answer).
struct StorageCallError {
  int httpStatus = 0;
  protocol::ApiError error;

  bool transport() const { return httpStatus == 0; }
};

// The proxy's refusal as the manager's kind (quota-exceeded, no-such-file, ... pass
// through with their detail, which names the path or the limit, never a token); an
// unreachable proxy is StorageUnavailable.
DomainError refusalOf(const StorageCallError& failure);

template <class T>
using StorageCall = Result<T, StorageCallError>;

class StorageClient {
 public:
  static constexpr std::size_t kMaxReplyBytes = 64u << 20;  // a listing of 100000 entries fits

  // `managerUrl`: "http://127.0.0.1:6021", no trailing '/'.
  StorageClient(std::string managerUrl, std::string token, std::chrono::milliseconds timeout);

  StorageCall<std::vector<storage_protocol::VolumeInfo>> volumes() const;
  StorageCall<storage_protocol::FolderInfo> createFolder(const storage_protocol::CreateFolderRequest& request) const;
  StorageCall<storage_protocol::FolderInfo> folder(const std::string& volume, const std::string& folderId) const;
  StorageCall<void> deleteFolder(const std::string& volume, const std::string& folderId) const;
  StorageCall<void> setAccess(const std::string& volume, const std::string& folderId, std::uint32_t uid,
                              storage_protocol::Permission permission) const;
  StorageCall<void> removeAccess(const std::string& volume, const std::string& folderId, std::uint32_t uid) const;
  // GET .../files?path=&recursive=: `path` normalised by the caller.
  StorageCall<std::vector<storage_protocol::FileEntry>> listFiles(const std::string& volume, const std::string& folderId,
                                                                  const std::string& path, bool recursive) const;
  // POST .../{operation} ("mkdir", "delete", "move") with its JSON body; the status it answered.
  StorageCall<int> fileOperation(const std::string& volume, const std::string& folderId, const std::string& operation,
                                 const std::string& body) const;

  const std::string& url() const { return url_; }

 private:
  struct Reply {
    int status = 0;
    std::string body;
  };
  // The answer when its status is 2xx; else the proxy's error document (or a transport error).
  StorageCall<Reply> call(const std::string& method, const std::string& path, const std::string& body) const;
  std::string folderPath(const std::string& volume, const std::string& folderId) const;

  std::string url_;
  std::string token_;  // never logged, never in an error
  std::chrono::milliseconds timeout_;
};

}  // namespace bai::manager
