// The container runtime's settings ([runtime.container] of the agent's config).
#pragma once

#include "runtime/container_engine.hpp"

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace bai::core {

// [runtime.container] of the agent's config.
struct ContainerSettings {
  std::filesystem::path engineSocket;       // resolved: configured, else the first that exists
  std::optional<std::string> ociRuntime{};  // HostConfig.Runtime when the engine needs one named
  std::vector<Ulimit> ulimits{};            // every container's (nofile, nproc, ...)
  bool readonlyRootfs = false;
  std::vector<std::string> capAdd{};        // capabilities an admin allows back; all others dropped
  std::string network = "bridge";           // HostConfig.NetworkMode
  bool init = true;                         // an init in the container forwards signals and reaps
  std::chrono::milliseconds checkInterval{10000};  // how often the engine's state is read again
};

}  // namespace bai::core
