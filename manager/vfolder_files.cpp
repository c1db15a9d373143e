// VfolderService's file operations: listings and changes inside a folder, relayed to
// its proxy with every path normalised here first.
#include "vfolder_service.hpp"

#include "parse_json.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace bai::manager {

using storage_protocol::FileEntry;

Outcome<std::vector<FileEntry>> VfolderService::listFiles(const Caller& caller, const std::string& ref, const std::string& path,
                                                          bool recursive) {
  auto folder = resolve(caller, ref);
  if (!folder) return Failure{folder.error()};
  auto normalised = storage_protocol::normalizeFolderPath(path);
  if (!normalised) return refuse(ErrorKind::InvalidPath, normalised.error().message, "path");
  auto proxy = proxyOf(folder->record.host);
  if (!proxy) return Failure{proxy.error()};
  auto entries = proxy->first->client.listFiles(proxy->second, folder->record.id, *normalised, recursive);
  if (!entries) return Failure{refusalOf(entries.error())};
  return std::move(*entries);
}

namespace {

// The fields each operation takes: paths (normalised) and flags (booleans).
struct OperationShape {
  const char* name;
  std::vector<const char*> paths;
  const char* flag;  // nullptr: none
};
const OperationShape kOperations[] = {{"mkdir", {"path"}, "parents"}, {"delete", {"path"}, "recursive"}, {"move", {"from", "to"}, nullptr}};

}  // namespace

Outcome<int> VfolderService::changeFiles(const Caller& caller, const std::string& ref, const std::string& operation,
                                         const std::string& body) {
  const OperationShape* shape = nullptr;
  for (const auto& known : kOperations) {
    if (operation == known.name) shape = &known;
  }
  if (shape == nullptr) return refuse(ErrorKind::InvalidRequest, "unknown file operation '" + operation + "' (mkdir, delete, move)");
  auto doc = parseJson(body);
  if (!doc || !doc->is_object()) return refuse(ErrorKind::InvalidRequest, "the body of " + operation + " is not a JSON object");
  nlohmann::json relayed = nlohmann::json::object();
  for (const auto& [key, value] : doc->items()) {
    const bool isPath = std::find_if(shape->paths.begin(), shape->paths.end(), [&](const char* p) { return key == p; }) !=
                        shape->paths.end();
    if (isPath) {
      if (!value.is_string()) return refuse(ErrorKind::InvalidRequest, key + " must be a string", key);
      auto normalised = storage_protocol::normalizeFolderPath(value.get<std::string>());
      if (!normalised) return refuse(ErrorKind::InvalidPath, key + ": " + normalised.error().message, key);
      // The folder's root is not a thing to make, delete or move.
      if (normalised->empty()) return refuse(ErrorKind::InvalidPath, key + " names the folder's root", key);
      relayed[key] = *normalised;
    } else if (shape->flag != nullptr && key == shape->flag) {
      if (!value.is_boolean()) return refuse(ErrorKind::InvalidRequest, key + " must be true or false", key);
      relayed[key] = value;
    } else {
      return refuse(ErrorKind::InvalidRequest, "unknown field '" + key + "' of " + operation, key);
    }
  }
  for (const char* path : shape->paths) {
    if (!relayed.contains(path)) return refuse(ErrorKind::InvalidRequest, std::string(path) + " is required", path);
  }
  auto folder = resolve(caller, ref);
  if (!folder) return Failure{folder.error()};
  if (folder->access == VfolderAccess::ReadOnly) {
    return refuse(ErrorKind::VfolderReadOnly, "folder '" + folder->record.name + "' is shared with you read-only");
  }
  auto proxy = proxyOf(folder->record.host);
  if (!proxy) return Failure{proxy.error()};
  auto status = proxy->first->client.fileOperation(proxy->second, folder->record.id, operation, relayed.dump());
  if (!status) return Failure{refusalOf(status.error())};
  return *status;
}

}  // namespace bai::manager
