// Client's virtual-folder calls: the manager's /v1/vfolders routes and /v1/storage/hosts.
#include <bai/client.hpp>

#include "api_reply.hpp"
#include "bounded_json.hpp"
#include "http_client.hpp"

#include <nlohmann/json.hpp>

namespace bai::client {
namespace {

using Json = nlohmann::json;

Failure<ApiError> invalidReply(const std::string& what) {
  return Failure<ApiError>{ApiError{0, "invalid-reply", "Unexpected answer from the manager", what}};
}

// A 2xx JSON reply converted by `convert`, else the server's error.
template <class T, class Convert>
ClientResult<T> expectJson(const ClientResult<RawResponse>& response, Convert convert) {
  if (!response) return Failure{response.error()};
  if (response->status < 200 || response->status > 299) {
    return Failure{client_internal::errorFromReply(response->status, response->body)};
  }
  const internal::BoundedJson parsed = internal::parseBoundedJson(response->body);
  if (!parsed) return invalidReply("the body is not JSON: " + parsed.error);
  try {
    return convert(parsed.document);
  } catch (const std::exception& e) {  // a missing key or a JSON type error
    return invalidReply(e.what());
  }
}

// A 2xx reply whose body does not matter (204), else the server's error.
ClientResult<void> expectDone(const ClientResult<RawResponse>& response) {
  if (!response) return Failure{response.error()};
  if (response->status < 200 || response->status > 299) {
    return Failure{client_internal::errorFromReply(response->status, response->body)};
  }
  return {};
}

std::optional<std::uint64_t> optionalCount(const Json& doc, const char* key) {
  const auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return std::nullopt;
  return it->get<std::uint64_t>();
}

Vfolder vfolderFrom(const Json& doc) {
  Vfolder v;
  v.id = doc.at("id").get<std::string>();
  v.name = doc.at("name").get<std::string>();
  v.owner = doc.value("owner", "");
  v.host = doc.value("host", "");
  v.quotaBytes = optionalCount(doc, "quota_bytes");
  v.permission = doc.value("permission", "");
  v.access = doc.value("access", "");
  for (const Json& share : doc.value("shared_with", Json::array())) {
    v.sharedWith.push_back({share.at("access_key").get<std::string>(), share.value("permission", "")});
  }
  v.createdAt = doc.value("created_at", "");
  v.usedBytes = optionalCount(doc, "used_bytes");
  v.fileCount = optionalCount(doc, "file_count");
  v.json = doc.dump();
  return v;
}

FileEntry fileEntryFrom(const Json& doc) {
  return FileEntry{doc.at("path").get<std::string>(), doc.at("type").get<std::string>(),
                   doc.value("size", std::uint64_t{0}), doc.value("mode", std::uint32_t{0}),
                   doc.value("modified_at_ms", std::int64_t{0})};
}

StorageHost storageHostFrom(const Json& doc) {
  return StorageHost{doc.at("host").get<std::string>(), doc.value("backend", ""), doc.value("kernel_quota", false),
                     doc.value("total_bytes", std::uint64_t{0}), doc.value("free_bytes", std::uint64_t{0}), doc.dump()};
}

std::string folderTarget(const std::string& ref) { return "/v1/vfolders/" + http::urlEncode(ref); }

}  // namespace

ClientResult<Vfolder> Client::createVfolder(const VfolderSpec& spec) const {
  Json doc = {{"name", spec.name}};
  if (!spec.host.empty()) doc["host"] = spec.host;
  if (!spec.quota.empty()) {
    // A plain byte count goes as a number, "10g" as the text the manager parses.
    const bool digits = spec.quota.size() <= 19 && spec.quota.find_first_not_of("0123456789") == std::string::npos;
    if (digits) {
      doc["quota"] = std::stoull(spec.quota);
    } else {
      doc["quota"] = spec.quota;
    }
  }
  if (!spec.permission.empty()) doc["permission"] = spec.permission;
  return expectJson<Vfolder>(call("POST", "/v1/vfolders", doc.dump()), vfolderFrom);
}

ClientResult<std::vector<Vfolder>> Client::vfolders(bool all) const {
  return expectJson<std::vector<Vfolder>>(call("GET", all ? "/v1/vfolders?all=1" : "/v1/vfolders"), [](const Json& doc) {
    std::vector<Vfolder> out;
    for (const Json& item : doc.at("vfolders")) out.push_back(vfolderFrom(item));
    return out;
  });
}

ClientResult<Vfolder> Client::vfolder(const std::string& ref) const {
  return expectJson<Vfolder>(call("GET", folderTarget(ref)), vfolderFrom);
}

ClientResult<void> Client::deleteVfolder(const std::string& ref) const { return expectDone(call("DELETE", folderTarget(ref))); }

ClientResult<Vfolder> Client::shareVfolder(const std::string& ref, const std::string& accessKey,
                                           const std::string& permission) const {
  Json doc = {{"access_key", accessKey}};
  if (!permission.empty()) doc["permission"] = permission;
  return expectJson<Vfolder>(call("POST", folderTarget(ref) + "/shares", doc.dump()), vfolderFrom);
}

ClientResult<void> Client::unshareVfolder(const std::string& ref, const std::string& accessKey) const {
  return expectDone(call("DELETE", folderTarget(ref) + "/shares/" + http::urlEncode(accessKey)));
}

ClientResult<std::vector<FileEntry>> Client::vfolderFiles(const std::string& ref, const std::string& path,
                                                          bool recursive) const {
  const std::string target =
      folderTarget(ref) + "/files?path=" + http::urlEncode(path) + "&recursive=" + (recursive ? "1" : "0");
  return expectJson<std::vector<FileEntry>>(call("GET", target), [](const Json& doc) {
    std::vector<FileEntry> out;
    for (const Json& item : doc.at("entries")) out.push_back(fileEntryFrom(item));
    return out;
  });
}

ClientResult<void> Client::vfolderMkdir(const std::string& ref, const std::string& path, bool parents) const {
  return expectDone(call("POST", folderTarget(ref) + "/mkdir", Json{{"path", path}, {"parents", parents}}.dump()));
}

ClientResult<void> Client::vfolderDelete(const std::string& ref, const std::string& path, bool recursive) const {
  return expectDone(call("POST", folderTarget(ref) + "/delete", Json{{"path", path}, {"recursive", recursive}}.dump()));
}

ClientResult<void> Client::vfolderMove(const std::string& ref, const std::string& from, const std::string& to) const {
  return expectDone(call("POST", folderTarget(ref) + "/move", Json{{"from", from}, {"to", to}}.dump()));
}

ClientResult<std::vector<StorageHost>> Client::storageHosts() const {
  return expectJson<std::vector<StorageHost>>(call("GET", "/v1/storage/hosts"), [](const Json& doc) {
    std::vector<StorageHost> out;
    for (const Json& item : doc.at("hosts")) out.push_back(storageHostFrom(item));
    return out;
  });
}

ClientResult<TransferGrant> Client::vfolderGrant(const std::string& ref, TransferOperation operation,
                                                 const std::string& path) const {
  const Json doc = {{"operation", operation == TransferOperation::Upload ? "upload" : "download"}, {"path", path}};
  return expectJson<TransferGrant>(call("POST", folderTarget(ref) + "/grants", doc.dump()), [](const Json& reply) {
    return TransferGrant{reply.at("url").get<std::string>(), reply.at("grant").get<std::string>(),
                         reply.value("path", ""), reply.value("expires_at", "")};
  });
}

}  // namespace bai::client
