// bai-storage-proxy's configuration: the declared keys of storage-proxy.toml and the
// settings they resolve to (paths absolute, sizes typed, volumes checked).
#pragma once

#include "config_schema.hpp"
#include "log_sink.hpp"

#include <bai/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace bai::storage {

const config::Schema& proxyConfigSchema();

// One [volumes.NAME] table.
struct VolumeSpec {
  std::string name;
  std::string backend;         // "vfs" or "xfs"
  std::filesystem::path path;  // absolute, an existing directory
};

struct ProxySettings {
  LogLevel logLevel = LogLevel::Info;
  std::string managerListen;  // host:port
  std::string clientListen;
  std::filesystem::path tokenFile;  // absolute; read (0600 or stricter) by readStorageToken
  int threads = 4;
  std::uint64_t maxChunkBytes = 64u << 20;
  std::chrono::seconds uploadExpiry{86400};
  std::string tlsCertificateFile;  // both set: both listeners serve HTTPS
  std::string tlsKeyFile;
  std::vector<VolumeSpec> volumes;  // sorted by name
};

// `source` names the config file in errors.
Result<ProxySettings> proxySettings(const config::Config& config, const std::string& source);

}  // namespace bai::storage
