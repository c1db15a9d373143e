#include "proxy_config.hpp"

#include <bai/storage_protocol.hpp>

#include <sys/stat.h>

namespace bai::storage {

using config::KeyType;

const config::Schema& proxyConfigSchema() {
  static const config::Schema schema("bai-storage-proxy", {
      {"proxy.log-level", KeyType::String, "\"info\"", "debug, info, warning or error"},
      {"api.manager-listen", KeyType::String, "\"127.0.0.1:6021\"",
       "host:port of the manager API (folders, quotas, shares; Bearer storage token)"},
      {"api.client-listen", KeyType::String, "\"127.0.0.1:6022\"",
       "host:port of the client API (uploads and downloads with a grant signed by the manager)"},
      {"api.token-file", KeyType::String, "\"\"",
       "file (mode 0600) with the storage token the manager calls with and signs grants from; required"},
      {"api.threads", KeyType::Integer, "4", "threads serving each listener"},
      {"api.max-chunk", KeyType::Size, "\"64m\"", "largest body of one upload request (PATCH chunk or PUT file), 1k to 1g"},
      {"api.upload-expiry", KeyType::Seconds, "86400", "a partial upload untouched this long is removed and refunded"},
      {"api.tls-cert-file", KeyType::String, "\"\"", "PEM certificate: serve both listeners over HTTPS"},
      {"api.tls-key-file", KeyType::String, "\"\"", "PEM private key for api.tls-cert-file"},
      {"volumes.*", KeyType::Table, "",
       "a volume: backend = \"vfs\" (any POSIX file system; quotas hold for uploads only) or \"xfs\" "
       "(project quotas, mounted -o prjquota), path = its absolute root, mounted at the same path on every agent"},
  });
  return schema;
}

namespace {

Result<VolumeSpec> volumeSpec(const std::string& name, const nlohmann::json& table, const std::string& where) {
  if (!storage_protocol::isVolumeName(name)) {
    return fail(ErrorCode::InvalidArgument, where + ": '" + name + "' is not a volume name (1 to 64 of a-z, 0-9, '-', '_')");
  }
  VolumeSpec spec{name, "vfs", {}};
  bool hasPath = false;
  for (const auto& [key, value] : table.items()) {
    if (key != "backend" && key != "path") {
      return fail(ErrorCode::InvalidArgument, where + "." + key + ": unknown key (backend, path)");
    }
    if (!value.is_string()) return fail(ErrorCode::InvalidArgument, where + "." + key + ": expected a string");
    if (key == "backend") spec.backend = value.get<std::string>();
    if (key == "path") {
      spec.path = value.get<std::string>();
      hasPath = true;
    }
  }
  if (spec.backend != "vfs" && spec.backend != "xfs") {
    return fail(ErrorCode::InvalidArgument, where + ".backend: '" + spec.backend + "' is not vfs or xfs");
  }
  if (!hasPath) return fail(ErrorCode::InvalidArgument, where + ".path: required");
  if (!spec.path.is_absolute()) {
    return fail(ErrorCode::InvalidArgument, where + ".path: '" + spec.path.string() + "' is not an absolute path");
  }
  spec.path = spec.path.lexically_normal();
  struct stat status {};
  if (stat(spec.path.c_str(), &status) != 0 || !S_ISDIR(status.st_mode)) {
    return fail(ErrorCode::InvalidArgument, where + ".path: '" + spec.path.string() + "' is not an existing directory");
  }
  return spec;
}

}  // namespace

Result<ProxySettings> proxySettings(const config::Config& c, const std::string& source) {
  const std::string file = source.empty() ? "(defaults)" : source;
  auto invalid = [&](const std::string& message) { return fail(ErrorCode::InvalidArgument, file + ": " + message); };
  ProxySettings s;
  auto level = parseLogLevel(c.string("proxy.log-level"));
  if (!level) return invalid("proxy.log-level: " + level.error().message);
  s.logLevel = *level;
  s.managerListen = c.string("api.manager-listen");
  s.clientListen = c.string("api.client-listen");
  const std::string tokenFile = c.string("api.token-file");
  if (tokenFile.empty()) return invalid("api.token-file: required (a 0600 file with the storage token the manager has too)");
  std::error_code ec;
  s.tokenFile = std::filesystem::absolute(tokenFile, ec);
  const std::int64_t threads = c.integer("api.threads");
  if (threads < 1 || threads > 64) return invalid("api.threads must be 1 to 64");
  s.threads = static_cast<int>(threads);
  s.maxChunkBytes = c.size("api.max-chunk");
  if (s.maxChunkBytes < (1u << 10) || s.maxChunkBytes > (1u << 30)) {
    return invalid("api.max-chunk must be 1k to 1g, not " + std::to_string(s.maxChunkBytes));
  }
  const double expiry = c.seconds("api.upload-expiry");
  if (expiry < 60) return invalid("api.upload-expiry must be at least 60 seconds");
  s.uploadExpiry = std::chrono::seconds(static_cast<std::int64_t>(expiry));
  s.tlsCertificateFile = c.string("api.tls-cert-file");
  s.tlsKeyFile = c.string("api.tls-key-file");
  if (s.tlsCertificateFile.empty() != s.tlsKeyFile.empty()) return invalid("api.tls-cert-file and api.tls-key-file go together");
  for (const auto& [name, table] : c.tables("volumes")) {
    auto spec = volumeSpec(name, table, "volumes." + name);
    if (!spec) return invalid(spec.error().message);
    s.volumes.push_back(std::move(*spec));
  }
  if (s.volumes.empty()) return invalid("no [volumes.NAME] table: the proxy serves at least one volume");
  return s;
}

}  // namespace bai::storage
