// A temporary volume with two folders, a fake catalog and a TransferApi, and helpers
// that build requests as the HTTP server hands them to the handler.
#pragma once

#include "fake_folder_catalog.hpp"
#include "transfer_api.hpp"

#include <bai/protocol.hpp>
#include <bai/storage_protocol.hpp>

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

namespace bai::storage::files::testing {

namespace sp = storage_protocol;

inline const std::string kFolderId = "0123456789abcdef0123456789abcdef";
inline const std::string kOtherFolderId = "fedcba9876543210fedcba9876543210";
inline const std::string kStorageToken = "storage-token-for-tests";

inline std::string readFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

inline void writeFile(const std::filesystem::path& path, const std::string& content) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << content;
}

// The bytes a response sends: its string body, or its file range read back.
inline std::string bodyOf(const http::Response& response) {
  if (!response.file) return response.body;
  std::string out(response.file->length, '\0');
  const ssize_t n = ::pread(response.file->fd, out.data(), out.size(), static_cast<off_t>(response.file->offset));
  out.resize(n < 0 ? 0 : static_cast<std::size_t>(n));
  return out;
}

class TransferTest : public ::testing::Test {
 protected:
  TransferTest() {
    char pattern[] = "/tmp/bai-storage-files-XXXXXX";
    root_ = ::mkdtemp(pattern);
    restart();
  }
  ~TransferTest() override {
    api.reset();
    catalog.reset();
    std::filesystem::remove_all(root_);
  }

  // A new catalog and API over the same disk, as after a proxy restart.
  void restart(std::optional<std::uint64_t> quota = std::nullopt) {
    if (quota) quota_ = quota;
    api.reset();
    catalog = std::make_unique<FakeFolderCatalog>(root_, quota_);
    folder = catalog->add(kFolderId);
    other = catalog->add(kOtherFolderId);
    api = std::make_unique<TransferApi>(*catalog, sp::grantKey(kStorageToken),
                                        TransferOptions{1 << 20, 24LL * 3600 * 1000, [this] { return nowMillis; }});
  }

  std::string grant(sp::GrantOperation operation, const std::string& path = "", const std::string& folderId = kFolderId,
                    std::int64_t ttlMillis = 60000) const {
    return sp::signGrant(sp::Grant{operation, "default", folderId, path, "AKTEST", nowMillis + ttlMillis},
                         sp::grantKey(kStorageToken));
  }
  std::string uploadGrant(const std::string& path = "") const { return grant(sp::GrantOperation::Upload, path); }
  std::string downloadGrant(const std::string& path = "") const { return grant(sp::GrantOperation::Download, path); }

  http::Response call(const std::string& method, const std::string& route, const std::string& path, const std::string& grantToken,
                      std::map<std::string, std::string> headers = {}, std::string body = "") {
    http::Request request;
    request.method = method;
    request.path = route;
    request.target = route + "?path=...";
    request.query["path"] = path;
    request.headers = std::move(headers);
    if (!grantToken.empty()) request.headers["x-bai-grant"] = grantToken;
    if (method == "PATCH" || method == "PUT") return streamed(std::move(request), body);
    request.body = std::move(body);
    return api->handle(request);
  }
  // PATCH and PUT the way the daemon serves them: the head to TransferApi::stream, then the
  // body in small pieces.
  http::Response streamed(http::Request head, const std::string& body) {
    head.headers["content-length"] = std::to_string(body.size());
    auto decision = api->stream(head);
    if (!decision) {
      ADD_FAILURE() << head.method << " was not streamed";
      return {};
    }
    if (auto* refused = std::get_if<http::Response>(&*decision)) return std::move(*refused);
    auto& stream = std::get<http::BodyStream>(*decision);
    const std::size_t kPiece = body.size() < 4096 ? 5 : 64 * 1024;  // small bodies in many pieces
    for (std::size_t at = 0; at < body.size(); at += kPiece) {
      if (auto refused = stream.write(std::string_view(body).substr(at, kPiece))) return std::move(*refused);
    }
    return stream.finish();
  }
  http::Response download(const std::string& path, const std::string& range = "") {
    std::map<std::string, std::string> headers;
    if (!range.empty()) headers["range"] = range;
    return call("GET", "/v1/download", path, downloadGrant(), headers);
  }
  http::Response start(const std::string& path, std::uint64_t length) {
    return call("POST", "/v1/upload", path, uploadGrant(), {{"upload-length", std::to_string(length)}});
  }
  http::Response patch(const std::string& path, std::uint64_t length, std::uint64_t offset, std::string bytes) {
    return call("PATCH", "/v1/upload", path, uploadGrant(),
                {{"upload-length", std::to_string(length)}, {"upload-offset", std::to_string(offset)}}, std::move(bytes));
  }
  http::Response put(const std::string& path, std::string bytes) {
    return call("PUT", "/v1/upload", path, uploadGrant(), {}, std::move(bytes));
  }

  std::size_t stagedUploads() const {
    std::size_t count = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(folder.stagingDir)) ++count;
    return count;
  }

  static std::string typeOf(const http::Response& response) {
    auto error = protocol::ApiError::fromJson(response.body);
    return error ? error->type : "(not an error: " + response.body + ")";
  }

  std::filesystem::path root_;
  std::optional<std::uint64_t> quota_;
  std::int64_t nowMillis = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch()).count();
  std::unique_ptr<FakeFolderCatalog> catalog;
  std::unique_ptr<TransferApi> api;
  FolderRef folder;
  FolderRef other;
};

}  // namespace bai::storage::files::testing
