// The proxy's manager API (listener [api] manager-listen): volumes, folders, quotas and
// shares, every call with "Authorization: Bearer <storage token>". The file operations
// inside a folder (…/files, …/mkdir, …/delete, …/move) are routed, once the folder is
// found, to the FileRoutes given (storage/files). Any thread.
#pragma once

#include "http_server.hpp"
#include "volume_catalog.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace bai::storage {

class ManagerApi {
 public:
  // `action` is "files", "mkdir", "delete" or "move".
  using FileRoutes = std::function<http::Response(const http::Request&, const FolderRef&, std::string_view action)>;

  // `catalog` must outlive the API.
  ManagerApi(VolumeCatalog& catalog, std::string storageToken, FileRoutes fileRoutes, LogSink log);

  http::Response handle(const http::Request& request);

 private:
  http::Response route(const http::Request& request, const std::vector<std::string>& segments);
  http::Response folderRoute(const http::Request& request, const std::vector<std::string>& segments);
  http::Response catalogError(const Error& error, const std::string& volume);

  VolumeCatalog& catalog_;
  const std::string token_;
  const FileRoutes fileRoutes_;
  const LogSink log_;
};

// {type,title,detail} (protocol::ApiError) with `status`: what every error of the proxy's
// APIs looks like.
http::Response apiErrorResponse(int status, const std::string& type, const std::string& title, const std::string& detail);

}  // namespace bai::storage
