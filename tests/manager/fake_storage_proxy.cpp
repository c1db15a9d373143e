#include "fake_storage_proxy.hpp"

#include <bai/protocol.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>
#include <stdexcept>

namespace bai::manager::test_support {
namespace {

using namespace storage_protocol;
using http::Response;
using Json = nlohmann::json;

Response problem(int status, const std::string& type, const std::string& detail) {
  return {status, "application/json", protocol::ApiError{type, type, detail}.toJson(), {}};
}

Response ok(int status, std::string body) { return {status, "application/json", std::move(body), {}}; }

std::vector<std::string> split(const std::string& path) {
  std::vector<std::string> parts;
  std::size_t start = 1;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    parts.push_back(http::urlDecode(path.substr(start, end - start)));
    start = end + 1;
  }
  return parts;
}

bool directChild(const std::string& path, const std::string& parent) {
  if (!pathWithin(path, parent) || path == parent) return false;
  const std::string rest = parent.empty() ? path : path.substr(parent.size() + 1);
  return rest.find('/') == std::string::npos;
}

}  // namespace

FakeStorageProxy::FakeStorageProxy(std::string token, std::string root)
    : token_(std::move(token)),
      root_(std::move(root)),
      server_({"127.0.0.1", 0, 2, 1 << 20, "", ""}, [this](const http::Request& r) { return handle(r); }) {
  addVolume("default");
  if (!server_.start()) throw std::runtime_error("the fake storage proxy did not start");
}

FakeStorageProxy::~FakeStorageProxy() { server_.stop(); }

std::string FakeStorageProxy::url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

void FakeStorageProxy::addVolume(const std::string& name) {
  std::lock_guard<std::mutex> lock(mutex_);
  volumes_.push_back(VolumeInfo{name, "vfs", root_ + "/" + name, false, 1000000, 600000});
}

std::optional<FakeFolder> FakeStorageProxy::folder(const std::string& id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = folders_.find(id);
  return it == folders_.end() ? std::nullopt : std::optional(it->second);
}

std::size_t FakeStorageProxy::folderCount() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return folders_.size();
}

void FakeStorageProxy::setUsage(const std::string& id, std::uint64_t usedBytes, std::uint64_t fileCount) {
  std::lock_guard<std::mutex> lock(mutex_);
  folders_.at(id).info.usedBytes = usedBytes;
  folders_.at(id).info.fileCount = fileCount;
}

void FakeStorageProxy::addFile(const std::string& id, FileEntry entry) {
  std::lock_guard<std::mutex> lock(mutex_);
  folders_.at(id).files.push_back(std::move(entry));
}

void FakeStorageProxy::failNext(int status, const std::string& type, const std::string& detail) {
  std::lock_guard<std::mutex> lock(mutex_);
  failNext_ = std::pair{status, protocol::ApiError{type, type, detail}};
}

std::vector<std::string> FakeStorageProxy::calls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return calls_;
}

std::vector<std::string> FakeStorageProxy::operationBodies() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return operationBodies_;
}

int FakeStorageProxy::unauthorizedCalls() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return unauthorized_;
}

void FakeStorageProxy::beforeNextCreate(std::function<void()> hook) {
  std::lock_guard<std::mutex> lock(mutex_);
  beforeCreate_ = std::move(hook);
}

Response FakeStorageProxy::handle(const http::Request& request) {
  if (request.method == "POST" && request.path == "/v1/folders") {
    std::function<void()> hook;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      hook = std::exchange(beforeCreate_, nullptr);
    }
    if (hook) hook();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  if (request.header("authorization") != "Bearer " + token_) {
    ++unauthorized_;
    return problem(401, "unauthorized", "bad storage token");
  }
  calls_.push_back(request.method + " " + request.target);
  if (failNext_) {
    auto [status, error] = *failNext_;
    failNext_.reset();
    return {status, "application/json", error.toJson(), {}};
  }
  if (request.method == "GET" && request.path == "/v1/volumes") return ok(200, volumesToJson(volumes_));
  if (request.method == "POST" && request.path == "/v1/folders") {
    auto create = CreateFolderRequest::fromJson(request.body);
    if (!create) return problem(400, "invalid-request", create.error().message);
    auto volume = std::find_if(volumes_.begin(), volumes_.end(), [&](const VolumeInfo& v) { return v.name == create->volume; });
    if (volume == volumes_.end()) return problem(404, "no-such-volume", "no volume '" + create->volume + "'");
    if (auto it = folders_.find(create->folderId); it != folders_.end()) {
      if (it->second.info.uid != create->uid) return problem(409, "folder-exists", "another owner's");
      return ok(200, it->second.info.toJson());
    }
    FolderInfo info{create->volume, create->folderId, volume->path + "/vfolders/" + create->folderId, create->uid,
                    create->gid, create->quotaBytes, 0, 0};
    folders_[create->folderId] = FakeFolder{info, {}, {}};
    return ok(201, info.toJson());
  }
  const auto parts = split(request.path);  // v1 folders VOLUME ID ...
  if (parts.size() >= 4 && parts[0] == "v1" && parts[1] == "folders") return folderRoute(request, parts);
  return problem(404, "not-found", request.method + " " + request.path);
}

Response FakeStorageProxy::folderRoute(const http::Request& request, const std::vector<std::string>& parts) {
  auto it = folders_.find(parts[3]);
  if (it == folders_.end() || it->second.info.volume != parts[2]) return problem(404, "no-such-folder", "no folder " + parts[3]);
  FakeFolder& folder = it->second;
  if (parts.size() == 4 && request.method == "GET") return ok(200, folder.info.toJson());
  if (parts.size() == 4 && request.method == "DELETE") {
    folders_.erase(it);
    return {204, "", "", {}};
  }
  if (parts.size() == 6 && parts[4] == "access") {
    const auto uid = static_cast<std::uint32_t>(std::stoul(parts[5]));
    if (request.method == "DELETE") {
      folder.access.erase(uid);
      return {204, "", "", {}};
    }
    auto permission = accessFromJson(request.body);
    if (!permission) return problem(400, "invalid-request", permission.error().message);
    folder.access[uid] = *permission;
    return {204, "", "", {}};
  }
  if (parts.size() == 5) return files(request, folder, parts[4]);
  return problem(404, "not-found", request.path);
}

Response FakeStorageProxy::files(const http::Request& request, FakeFolder& folder, const std::string& operation) {
  if (operation == "files" && request.method == "GET") {
    auto path = normalizeFolderPath(request.query.count("path") ? request.query.at("path") : "");
    if (!path) return problem(400, "invalid-path", path.error().message);
    const bool recursive = request.query.count("recursive") && request.query.at("recursive") == "1";
    std::vector<FileEntry> out;
    for (const auto& entry : folder.files) {
      if (entry.path == *path && entry.type != "dir") return ok(200, entriesToJson({entry}));
      const bool below = entry.path != *path && pathWithin(entry.path, *path);
      if (recursive ? below : directChild(entry.path, *path)) out.push_back(entry);
    }
    if (out.empty() && !path->empty()) return problem(404, "no-such-file", "no '" + *path + "'");
    return ok(200, entriesToJson(out));
  }
  if (request.method != "POST") return problem(405, "method-not-allowed", request.path);
  operationBodies_.push_back(request.body);
  const Json body = Json::parse(request.body, nullptr, false);
  if (operation == "mkdir") {
    folder.files.push_back(FileEntry{body.value("path", ""), "dir", 0, 0755, 0});
    return ok(201, "{}");
  }
  if (operation == "delete") {
    const std::string path = body.value("path", "");
    auto gone = std::remove_if(folder.files.begin(), folder.files.end(), [&](const FileEntry& e) { return pathWithin(e.path, path); });
    if (gone == folder.files.end()) return problem(404, "no-such-file", "no '" + path + "'");
    folder.files.erase(gone, folder.files.end());
    return {204, "", "", {}};
  }
  if (operation == "move") {
    for (auto& entry : folder.files) {
      if (entry.path == body.value("from", "")) entry.path = body.value("to", "");
    }
    return {204, "", "", {}};
  }
  return problem(404, "not-found", request.path);
}

}  // namespace bai::manager::test_support
