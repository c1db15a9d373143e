// A storage proxy's manager API for the manager's tests: a real HTTP server answering
// the routes of storage_protocol.hpp from an in-memory map of folders, checking the
// bearer token, and recording what it was asked so tests can assert on it.
#pragma once

#include "http_server.hpp"

#include <bai/protocol.hpp>
#include <bai/storage_protocol.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace bai::manager::test_support {

struct FakeFolder {
  storage_protocol::FolderInfo info;
  std::map<std::uint32_t, storage_protocol::Permission> access;  // uid -> what the ACL grants
  std::vector<storage_protocol::FileEntry> files;                 // paths relative to the folder
};

class FakeStorageProxy {
 public:
  // Serves volume "default" (and any added) below `root` on a free loopback port.
  explicit FakeStorageProxy(std::string token, std::string root = "/srv/bai");
  ~FakeStorageProxy();
  FakeStorageProxy(const FakeStorageProxy&) = delete;
  FakeStorageProxy& operator=(const FakeStorageProxy&) = delete;

  std::string url() const;
  void addVolume(const std::string& name);
  std::optional<FakeFolder> folder(const std::string& id) const;
  std::size_t folderCount() const;
  void setUsage(const std::string& id, std::uint64_t usedBytes, std::uint64_t fileCount);
  void addFile(const std::string& id, storage_protocol::FileEntry entry);
  // The next call is answered with this error instead (once).
  void failNext(int status, const std::string& type, const std::string& detail = "injected");
  // "METHOD target" of every call, in order; bodies of POSTs to file operations.
  std::vector<std::string> calls() const;
  std::vector<std::string> operationBodies() const;
  int unauthorizedCalls() const;
  // Runs once, before the next POST /v1/folders is answered (outside the fake's lock, so
  // it may call the manager, which may call the fake again).
  void beforeNextCreate(std::function<void()> hook);

 private:
  http::Response handle(const http::Request& request);
  http::Response folderRoute(const http::Request& request, const std::vector<std::string>& parts);
  http::Response files(const http::Request& request, FakeFolder& folder, const std::string& operation);

  std::string token_;
  std::string root_;
  mutable std::mutex mutex_;
  std::vector<storage_protocol::VolumeInfo> volumes_;
  std::map<std::string, FakeFolder> folders_;  // by id
  std::vector<std::string> calls_;
  std::vector<std::string> operationBodies_;
  std::optional<std::pair<int, protocol::ApiError>> failNext_;
  int unauthorized_ = 0;
  std::function<void()> beforeCreate_;
  http::Server server_;
};

}  // namespace bai::manager::test_support
