// The body of POST /containers/create for a ContainerSpec, as Docker or Podman takes it.
#pragma once

#include "runtime/container_engine.hpp"

#include <nlohmann/json.hpp>

#include <bai/result.hpp>

#include <string>

namespace bai::core {

// The API version Docker needs for DeviceRequests with the "cdi" driver (Docker 25).
inline constexpr const char* kCdiDockerApiVersion = "1.44";
// The version every call but a CDI create uses: Docker 20.10 and Podman 4 both speak it.
inline constexpr const char* kBaseApiVersion = "1.41";

// The create body; InvalidArgument when the engine cannot take the spec as asked (CDI
// devices on a Docker older than API 1.44).
Result<nlohmann::json> containerSpecJson(const ContainerSpec& spec, const EngineInfo& engine);

// The API version prefix the create call needs: "/v1.44" for Docker with CDI devices.
std::string createApiPrefix(const ContainerSpec& spec, const EngineInfo& engine);

// Whether API version `have` ("1.43") is at least `need` ("1.44"); false when unreadable.
bool apiVersionAtLeast(const std::string& have, const std::string& need);

}  // namespace bai::core
