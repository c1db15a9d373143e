#include "manager_api.hpp"

#include "bearer_token.hpp"

#include <bai/protocol.hpp>
#include <bai/storage_protocol.hpp>

#include <charconv>

namespace bai::storage {

namespace sp = storage_protocol;

namespace {

std::vector<std::string> splitPath(const std::string& path) {
  std::vector<std::string> segments;
  std::size_t start = 1;
  while (start <= path.size()) {
    const std::size_t end = std::min(path.find('/', start), path.size());
    segments.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  return segments;
}

http::Response invalidRequest(const std::string& detail) {
  return apiErrorResponse(400, "invalid-request", "Invalid request", detail);
}

http::Response notFoundRoute(const http::Request& request) {
  return apiErrorResponse(404, "not-found", "No such route", request.method + " " + request.path);
}

http::Response json(int status, std::string body) {
  http::Response response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

http::Response noContent() {
  http::Response response;
  response.status = 204;
  return response;
}

// A uid as a path segment: decimal, 1 to 4294967294 (0 is root, 2^32-1 is "no uid").
std::optional<std::uint32_t> parseUid(const std::string& text) {
  std::uint64_t value = 0;
  if (text.empty() || text.size() > 10 || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  std::from_chars(text.data(), text.data() + text.size(), value);
  if (value == 0 || value >= 0xffffffffu) return std::nullopt;
  return static_cast<std::uint32_t>(value);
}

}  // namespace

http::Response apiErrorResponse(int status, const std::string& type, const std::string& title, const std::string& detail) {
  http::Response response;
  response.status = status;
  response.body = protocol::ApiError{type, title, detail}.toJson();
  return response;
}

ManagerApi::ManagerApi(VolumeCatalog& catalog, std::string storageToken, FileRoutes fileRoutes, LogSink log)
    : catalog_(catalog), token_(std::move(storageToken)), fileRoutes_(std::move(fileRoutes)), log_(std::move(log)) {}

http::Response ManagerApi::handle(const http::Request& request) {
  if (!bearerTokenMatches(request.header("authorization"), token_)) {
    return apiErrorResponse(401, "unauthorized", "Unauthorized", "this API takes Authorization: Bearer <storage token>");
  }
  const auto segments = splitPath(request.path);
  if (segments.size() < 2 || segments[0] != "v1") return notFoundRoute(request);
  return route(request, segments);
}

http::Response ManagerApi::route(const http::Request& request, const std::vector<std::string>& segments) {
  if (segments[1] == "volumes" && segments.size() == 2) {
    if (request.method != "GET") return notFoundRoute(request);
    return json(200, sp::volumesToJson(catalog_.volumes()));
  }
  if (segments[1] != "folders") return notFoundRoute(request);
  if (segments.size() == 2) {
    if (request.method != "POST") return notFoundRoute(request);
    auto create = sp::CreateFolderRequest::fromJson(request.body);
    if (!create) return invalidRequest(create.error().message);
    auto created = catalog_.createFolder(*create);
    if (!created) {
      if (created.error().code == ErrorCode::Conflict) {
        return apiErrorResponse(409, "folder-exists", "Folder exists", created.error().message);
      }
      return catalogError(created.error(), create->volume);
    }
    return json(created->created ? 201 : 200, created->info.toJson());
  }
  return folderRoute(request, segments);
}

// /v1/folders/{volume}/{id}[/quota | /access/{uid} | /files | /mkdir | /delete | /move]
http::Response ManagerApi::folderRoute(const http::Request& request, const std::vector<std::string>& segments) {
  if (segments.size() < 4) return notFoundRoute(request);
  const std::string& volume = segments[2];
  const std::string& id = segments[3];
  const std::string action = segments.size() > 4 ? segments[4] : "";
  const std::string& method = request.method;
  if (segments.size() == 4 && method == "GET") {
    auto info = catalog_.info(volume, id);
    return info ? json(200, info->toJson()) : catalogError(info.error(), volume);
  }
  if (segments.size() == 4 && method == "DELETE") {
    auto deleted = catalog_.deleteFolder(volume, id);
    return deleted ? noContent() : catalogError(deleted.error(), volume);
  }
  if (segments.size() == 5 && action == "quota" && method == "PUT") {
    auto quota = sp::quotaFromJson(request.body);
    if (!quota) return invalidRequest(quota.error().message);
    auto info = catalog_.setQuota(volume, id, *quota);
    return info ? json(200, info->toJson()) : catalogError(info.error(), volume);
  }
  if (segments.size() == 6 && action == "access" && (method == "PUT" || method == "DELETE")) {
    const auto uid = parseUid(segments[5]);
    if (!uid) return invalidRequest("'" + segments[5] + "' is not a uid (1 to 4294967294)");
    std::optional<sp::Permission> permission;
    if (method == "PUT") {
      auto parsed = sp::accessFromJson(request.body);
      if (!parsed) return invalidRequest(parsed.error().message);
      permission = *parsed;
    }
    auto changed = catalog_.setAccess(volume, id, *uid, permission);
    if (!changed) return catalogError(changed.error(), volume);
    if (log_) {
      log_(LogLevel::Info, "manager-api", "folder " + id + ": uid " + segments[5] + " " +
                                              (permission ? std::string(sp::permissionName(*permission)) : std::string("removed")));
    }
    return noContent();
  }
  const bool fileAction = segments.size() == 5 && ((action == "files" && method == "GET") ||
                                                   ((action == "mkdir" || action == "delete" || action == "move") && method == "POST"));
  if (fileAction) {
    auto folder = catalog_.folder(volume, id);
    if (!folder) return catalogError(folder.error(), volume);
    return fileRoutes_(request, *folder, action);
  }
  return notFoundRoute(request);
}

http::Response ManagerApi::catalogError(const Error& error, const std::string& volume) {
  switch (error.code) {
    case ErrorCode::NotFound:
      if (!catalog_.hasVolume(volume)) return apiErrorResponse(404, "no-such-volume", "No such volume", error.message);
      return apiErrorResponse(404, "no-such-folder", "No such folder", error.message);
    case ErrorCode::InvalidArgument:
      return invalidRequest(error.message);
    case ErrorCode::Conflict:
      return apiErrorResponse(409, "exists", "Exists", error.message);
    case ErrorCode::OutOfRange:
      return apiErrorResponse(413, "quota-exceeded", "Quota exceeded", error.message);
    case ErrorCode::Internal:
      break;
  }
  if (log_) log_(LogLevel::Error, "manager-api", error.message);
  return apiErrorResponse(500, "internal", "Internal error", error.message);
}

}  // namespace bai::storage
