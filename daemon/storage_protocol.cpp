#include <bai/storage_protocol.hpp>

#include <bai/request_signing.hpp>

#include "http_server.hpp"
#include "protocol_reader.hpp"

#include <openssl/crypto.h>

#include <limits>

namespace bai::storage_protocol {
namespace {

using json = nlohmann::json;
using protocol::detail::parseDocument;
using protocol::detail::Reader;

bool isLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

std::string toHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::optional<std::string> fromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  out.reserve(hex.size() / 2);
  auto value = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (std::size_t i = 0; i < hex.size(); i += 2) {
    if (!isLowerHex(hex[i]) || !isLowerHex(hex[i + 1])) return std::nullopt;
    out += static_cast<char>(value(hex[i]) * 16 + value(hex[i + 1]));
  }
  return out;
}

Failure<Error> invalid(const std::string& message) { return fail(ErrorCode::InvalidArgument, message); }

// An unsigned member that must fit in 32 bits (uid, gid, mode).
std::uint32_t id32(Reader& r, const char* key) {
  const std::uint64_t value = r.unsignedInteger(key);
  if (value > std::numeric_limits<std::uint32_t>::max()) r.note(r.where() + "." + key + ": out of range");
  return static_cast<std::uint32_t>(value);
}

std::optional<std::uint64_t> optionalBytes(Reader& r, const json& object, const char* key) {
  if (!object.contains(key) || object[key].is_null()) return std::nullopt;
  return r.unsignedInteger(key);
}

json optionalJson(const std::optional<std::uint64_t>& value) { return value ? json(*value) : json(nullptr); }

}  // namespace

bool isVolumeName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_')) return false;
  }
  return true;
}

bool isFolderId(std::string_view id) {
  if (id.size() != 32) return false;
  for (char c : id) {
    if (!isLowerHex(c)) return false;
  }
  return true;
}

Result<std::string> normalizeFolderPath(std::string_view path) {
  if (path.size() > kMaxPathBytes) {
    return invalid("the path is " + std::to_string(path.size()) + " bytes long; at most " +
                   std::to_string(kMaxPathBytes) + " are allowed");
  }
  if (!path.empty() && path.front() == '/') return invalid("'" + std::string(path) + "' is absolute; give a path inside the folder");
  if (!http::isValidUtf8(path)) return invalid("the path is not valid UTF-8");
  for (unsigned char c : path) {
    if (c < 0x20 || c == 0x7f) return invalid("the path contains a control character (NUL, newline or the like)");
  }
  if (!path.empty() && path.back() == '/') path.remove_suffix(1);
  std::string out;
  if (path.empty()) return out;
  for (std::size_t begin = 0; begin <= path.size();) {
    const std::size_t end = std::min(path.find('/', begin), path.size());
    const std::string_view name = path.substr(begin, end - begin);
    if (name.empty()) return invalid("'" + std::string(path) + "' has an empty component ('//')");
    if (name == "." || name == "..") return invalid("'" + std::string(path) + "' contains '" + std::string(name) + "'");
    if (name.size() > kMaxNameBytes) {
      return invalid("a name in the path is " + std::to_string(name.size()) + " bytes long; at most " +
                     std::to_string(kMaxNameBytes) + " are allowed");
    }
    if (!out.empty()) out += '/';
    out += name;
    begin = end + 1;
  }
  return out;
}

bool pathWithin(std::string_view path, std::string_view root) {
  if (root.empty()) return true;
  if (path.size() < root.size() || path.substr(0, root.size()) != root) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

const char* permissionName(Permission permission) { return permission == Permission::ReadOnly ? "ro" : "rw"; }

Result<Permission> parsePermission(std::string_view text) {
  if (text == "ro") return Permission::ReadOnly;
  if (text == "rw") return Permission::ReadWrite;
  return invalid("permission '" + std::string(text) + "': use \"ro\" or \"rw\"");
}

std::string volumesToJson(const std::vector<VolumeInfo>& volumes) {
  json list = json::array();
  for (const VolumeInfo& v : volumes) {
    list.push_back({{"name", v.name},
                    {"backend", v.backend},
                    {"path", v.path},
                    {"kernel_quota", v.kernelQuota},
                    {"total_bytes", v.totalBytes},
                    {"free_bytes", v.freeBytes}});
  }
  return json{{"volumes", list}}.dump();
}

Result<std::vector<VolumeInfo>> volumesFromJson(std::string_view text) {
  auto document = parseDocument(text, "volumes", false);
  if (!document) return Failure{document.error()};
  Reader top(*document, "volumes");
  const json* list = top.array("volumes");
  if (!top.ok()) return top.failure();
  std::vector<VolumeInfo> out;
  for (const json& item : *list) {
    if (!item.is_object()) return invalid("volumes: expected objects");
    Reader r(item, "volumes[]");
    VolumeInfo v;
    v.name = r.string("name");
    v.backend = r.string("backend");
    v.path = r.string("path");
    v.kernelQuota = r.boolean("kernel_quota");
    v.totalBytes = r.unsignedInteger("total_bytes");
    v.freeBytes = r.unsignedInteger("free_bytes");
    if (!r.ok()) return r.failure();
    out.push_back(std::move(v));
  }
  return out;
}

std::string CreateFolderRequest::toJson() const {
  return json{{"volume", volume}, {"folder_id", folderId}, {"uid", uid}, {"gid", gid}, {"quota_bytes", optionalJson(quotaBytes)}}
      .dump();
}

Result<CreateFolderRequest> CreateFolderRequest::fromJson(std::string_view text) {
  auto document = parseDocument(text, "create-folder", false);
  if (!document) return Failure{document.error()};
  Reader r(*document, "create-folder");
  CreateFolderRequest request;
  request.volume = r.string("volume");
  request.folderId = r.string("folder_id");
  request.uid = id32(r, "uid");
  request.gid = id32(r, "gid");
  request.quotaBytes = optionalBytes(r, *document, "quota_bytes");
  if (!r.ok()) return r.failure();
  if (!isVolumeName(request.volume)) return invalid("create-folder.volume: '" + request.volume + "' is not a volume name");
  if (!isFolderId(request.folderId)) return invalid("create-folder.folder_id: expected 32 lower-case hex digits");
  if (request.uid == 0) return invalid("create-folder.uid: a folder is never root's");
  return request;
}

std::string FolderInfo::toJson() const {
  return json{{"volume", volume},          {"folder_id", folderId},    {"host_path", hostPath},
              {"uid", uid},                {"gid", gid},               {"quota_bytes", optionalJson(quotaBytes)},
              {"used_bytes", usedBytes},   {"file_count", fileCount}}
      .dump();
}

Result<FolderInfo> FolderInfo::fromJson(std::string_view text) {
  auto document = parseDocument(text, "folder", false);
  if (!document) return Failure{document.error()};
  Reader r(*document, "folder");
  FolderInfo info;
  info.volume = r.string("volume");
  info.folderId = r.string("folder_id");
  info.hostPath = r.string("host_path");
  info.uid = id32(r, "uid");
  info.gid = id32(r, "gid");
  info.quotaBytes = optionalBytes(r, *document, "quota_bytes");
  info.usedBytes = r.unsignedInteger("used_bytes");
  info.fileCount = r.unsignedInteger("file_count");
  if (!r.ok()) return r.failure();
  return info;
}

std::string quotaToJson(std::optional<std::uint64_t> quotaBytes) {
  return json{{"quota_bytes", optionalJson(quotaBytes)}}.dump();
}

Result<std::optional<std::uint64_t>> quotaFromJson(std::string_view text) {
  auto document = parseDocument(text, "quota", false);
  if (!document) return Failure{document.error()};
  Reader r(*document, "quota");
  if (!document->contains("quota_bytes")) return invalid("quota: missing 'quota_bytes' (a byte count or null)");
  std::optional<std::uint64_t> quota = optionalBytes(r, *document, "quota_bytes");
  if (!r.ok()) return r.failure();
  return quota;
}

std::string accessToJson(Permission permission) { return json{{"permission", permissionName(permission)}}.dump(); }

Result<Permission> accessFromJson(std::string_view text) {
  auto document = parseDocument(text, "access", false);
  if (!document) return Failure{document.error()};
  Reader r(*document, "access");
  const std::string permission = r.string("permission");
  if (!r.ok()) return r.failure();
  return parsePermission(permission);
}

std::string entriesToJson(const std::vector<FileEntry>& entries) {
  json list = json::array();
  for (const FileEntry& e : entries) {
    list.push_back(
        {{"path", e.path}, {"type", e.type}, {"size", e.size}, {"mode", e.mode}, {"modified_at_ms", e.modifiedAtMillis}});
  }
  return json{{"entries", list}}.dump();
}

Result<std::vector<FileEntry>> entriesFromJson(std::string_view text) {
  auto document = parseDocument(text, "entries", false);
  if (!document) return Failure{document.error()};
  Reader top(*document, "entries");
  const json* list = top.array("entries");
  if (!top.ok()) return top.failure();
  std::vector<FileEntry> out;
  out.reserve(list->size());
  for (const json& item : *list) {
    if (!item.is_object()) return invalid("entries: expected objects");
    Reader r(item, "entries[]");
    FileEntry e;
    e.path = r.string("path");
    e.type = r.string("type");
    e.size = r.unsignedInteger("size");
    e.mode = id32(r, "mode");
    e.modifiedAtMillis = r.integer("modified_at_ms");
    if (!r.ok()) return r.failure();
    out.push_back(std::move(e));
  }
  return out;
}

const char* grantOperationName(GrantOperation operation) {
  return operation == GrantOperation::Upload ? "upload" : "download";
}

std::string grantKey(std::string_view storageToken) {
  return auth::hmacSha256Hex(storageToken, "bai-storage-grant-v1");
}

std::string signGrant(const Grant& grant, std::string_view key) {
  const std::string payload = toHex(json{{"op", grantOperationName(grant.operation)},
                                         {"volume", grant.volume},
                                         {"folder", grant.folderId},
                                         {"path", grant.path},
                                         {"sub", grant.subject},
                                         {"exp", grant.expiresAtMillis}}
                                        .dump());
  return "v1." + payload + "." + auth::hmacSha256Hex(key, payload);
}

Result<Grant, GrantError> verifyGrant(std::string_view token, std::string_view key, std::int64_t nowMillis) {
  auto refuse = [](GrantRefusal refusal, std::string message) {
    return Failure<GrantError>{GrantError{refusal, std::move(message)}};
  };
  constexpr std::size_t kMaxTokenBytes = 16384;
  if (token.size() > kMaxTokenBytes || token.substr(0, 3) != "v1.") {
    return refuse(GrantRefusal::Malformed, "the grant is not a bai storage grant (v1.<payload>.<signature>)");
  }
  const std::string_view rest = token.substr(3);
  const std::size_t dot = rest.find('.');
  if (dot == std::string_view::npos) return refuse(GrantRefusal::Malformed, "the grant has no signature");
  const std::string_view payload = rest.substr(0, dot);
  const std::string_view signature = rest.substr(dot + 1);
  const std::string expected = auth::hmacSha256Hex(key, payload);
  if (signature.size() != expected.size() || CRYPTO_memcmp(signature.data(), expected.data(), expected.size()) != 0) {
    return refuse(GrantRefusal::BadSignature, "the grant's signature does not match: it was altered or not made here");
  }
  const std::optional<std::string> text = fromHex(payload);
  if (!text) return refuse(GrantRefusal::Malformed, "the grant's payload is not hex");
  auto document = parseDocument(*text, "grant", false);
  if (!document) return refuse(GrantRefusal::Malformed, document.error().message);
  Reader r(*document, "grant");
  Grant grant;
  const std::string operation = r.string("op");
  grant.volume = r.string("volume");
  grant.folderId = r.string("folder");
  grant.path = r.string("path");
  grant.subject = r.string("sub");
  grant.expiresAtMillis = r.integer("exp");
  if (!r.ok()) return refuse(GrantRefusal::Malformed, r.failure().error.message);
  if (operation != "upload" && operation != "download") return refuse(GrantRefusal::Malformed, "grant.op: unknown");
  grant.operation = operation == "upload" ? GrantOperation::Upload : GrantOperation::Download;
  if (nowMillis >= grant.expiresAtMillis) {
    return refuse(GrantRefusal::Expired, "the grant expired " + std::to_string((nowMillis - grant.expiresAtMillis) / 1000) +
                                             " s ago; ask the manager for a new one");
  }
  return grant;
}

}  // namespace bai::storage_protocol
