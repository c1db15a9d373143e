#include "storage_client.hpp"

#include "bearer_request.hpp"

#include "http_client.hpp"

#include <algorithm>
#include <map>

namespace bai::manager {
namespace {

using namespace storage_protocol;

StorageCallError unreadable(int status, const std::string& what, const std::string& why) {
  return StorageCallError{0, {"bad-storage-reply", "Unreadable storage proxy reply",
                              "HTTP " + std::to_string(status) + " " + what + ": " + why}};
}

}  // namespace

DomainError refusalOf(const StorageCallError& failure) {
  if (failure.transport()) return DomainError{ErrorKind::StorageUnavailable, failure.error.detail};
  static const std::map<std::string, ErrorKind> kinds = {
      {"quota-exceeded", ErrorKind::QuotaExceeded},   {"no-such-file", ErrorKind::NoSuchFile},
      {"exists", ErrorKind::FileExists},              {"path-escapes", ErrorKind::PathEscapes},
      {"not-a-regular-file", ErrorKind::NotARegularFile}, {"too-many-entries", ErrorKind::TooManyEntries},
      {"insufficient-storage", ErrorKind::InsufficientStorage}, {"invalid-path", ErrorKind::InvalidPath},
      {"invalid-request", ErrorKind::InvalidRequest},
  };
  auto it = kinds.find(failure.error.type);
  if (it != kinds.end()) return DomainError{it->second, failure.error.detail};
  return DomainError{ErrorKind::StorageFailed, "storage proxy answered HTTP " + std::to_string(failure.httpStatus) + " " +
                                                   failure.error.type + ": " + failure.error.detail};
}

StorageClient::StorageClient(std::string managerUrl, std::string token, std::chrono::milliseconds timeout)
    : url_(std::move(managerUrl)), token_(std::move(token)), timeout_(timeout) {}

StorageCall<StorageClient::Reply> StorageClient::call(const std::string& method, const std::string& path,
                                                      const std::string& body) const {
  http::ClientRequest request = bearerRequest(method, url_ + path, body, token_, timeout_);
  request.maxReplyBytes = kMaxReplyBytes;
  auto response = http::send(request);
  if (!response) {
    return Failure{StorageCallError{0, {"storage-unavailable", "Storage proxy unreachable",
                                        "storage proxy " + url_ + ": " + response.error().message}}};
  }
  if (response->status >= 200 && response->status < 300) return Reply{response->status, std::move(response->body)};
  auto problem = protocol::ApiError::fromJson(response->body);
  if (!problem) {
    return Failure{StorageCallError{response->status, {"storage-error", "Storage proxy error",
                                                       "storage proxy " + url_ + " answered HTTP " + std::to_string(response->status)}}};
  }
  return Failure{StorageCallError{response->status, *problem}};
}

std::string StorageClient::folderPath(const std::string& volume, const std::string& folderId) const {
  return "/v1/folders/" + http::urlEncode(volume) + "/" + http::urlEncode(folderId);
}

StorageCall<std::vector<VolumeInfo>> StorageClient::volumes() const {
  auto reply = call("GET", "/v1/volumes", "");
  if (!reply) return Failure{reply.error()};
  auto volumes = volumesFromJson(reply->body);
  if (!volumes) return Failure{unreadable(reply->status, "GET /v1/volumes", volumes.error().message)};
  return *volumes;
}

StorageCall<FolderInfo> StorageClient::createFolder(const CreateFolderRequest& request) const {
  auto reply = call("POST", "/v1/folders", request.toJson());
  if (!reply) return Failure{reply.error()};
  auto info = FolderInfo::fromJson(reply->body);
  if (!info) return Failure{unreadable(reply->status, "POST /v1/folders", info.error().message)};
  return *info;
}

StorageCall<FolderInfo> StorageClient::folder(const std::string& volume, const std::string& folderId) const {
  auto reply = call("GET", folderPath(volume, folderId), "");
  if (!reply) return Failure{reply.error()};
  auto info = FolderInfo::fromJson(reply->body);
  if (!info) return Failure{unreadable(reply->status, "GET folder", info.error().message)};
  return *info;
}

StorageCall<void> StorageClient::deleteFolder(const std::string& volume, const std::string& folderId) const {
  auto reply = call("DELETE", folderPath(volume, folderId), "");
  if (!reply) return Failure{reply.error()};
  return {};
}

StorageCall<void> StorageClient::setAccess(const std::string& volume, const std::string& folderId, std::uint32_t uid,
                                           Permission permission) const {
  auto reply = call("PUT", folderPath(volume, folderId) + "/access/" + std::to_string(uid), accessToJson(permission));
  if (!reply) return Failure{reply.error()};
  return {};
}

StorageCall<void> StorageClient::removeAccess(const std::string& volume, const std::string& folderId, std::uint32_t uid) const {
  auto reply = call("DELETE", folderPath(volume, folderId) + "/access/" + std::to_string(uid), "");
  if (!reply) return Failure{reply.error()};
  return {};
}

StorageCall<std::vector<FileEntry>> StorageClient::listFiles(const std::string& volume, const std::string& folderId,
                                                             const std::string& path, bool recursive) const {
  auto reply = call("GET", folderPath(volume, folderId) + "/files?path=" + http::urlEncode(path) +
                               "&recursive=" + (recursive ? "1" : "0"), "");
  if (!reply) return Failure{reply.error()};
  auto entries = entriesFromJson(reply->body);
  if (!entries) return Failure{unreadable(reply->status, "GET files", entries.error().message)};
  return *entries;
}

StorageCall<int> StorageClient::fileOperation(const std::string& volume, const std::string& folderId,
                                              const std::string& operation, const std::string& body) const {
  auto reply = call("POST", folderPath(volume, folderId) + "/" + operation, body);
  if (!reply) return Failure{reply.error()};
  return reply->status;
}

}  // namespace bai::manager
