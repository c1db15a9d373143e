// The manager API's file operations in one folder (the daemon has checked the storage
// token and found the folder; `action` is the last segment of the path):
//   GET  /v1/folders/{volume}/{id}/files?path=P&recursive=0|1  -> {"entries": [...]}
//   POST .../mkdir  {"path": P, "parents": bool}   -> 201
//   POST .../delete {"path": P, "recursive": bool} -> 204 (the bytes refunded)
//   POST .../move   {"from": P, "to": Q}            -> 204
// Any thread.
#pragma once

#include "folder_catalog.hpp"
#include "http_server.hpp"

#include <string_view>

namespace bai::storage::files {

class FolderFileRoutes {
 public:
  explicit FolderFileRoutes(FolderCatalog& catalog) : catalog_(catalog) {}

  http::Response handle(const http::Request& request, const FolderRef& folder, std::string_view action);

 private:
  FolderCatalog& catalog_;
};

}  // namespace bai::storage::files
