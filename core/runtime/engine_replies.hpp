// Readers of the engine's JSON answers into the ContainerEngine types. The engine is not
// trusted: a field of the wrong type is an error naming it, never a crash.
#pragma once

#include "runtime/container_engine.hpp"

#include <nlohmann/json.hpp>

#include <bai/result.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace bai::core {

// GET /version; `libpodApiVersion` is the Libpod-Api-Version header (empty on Docker).
Result<EngineInfo> readEngineVersion(const nlohmann::json& version, std::string_view libpodApiVersion);
Result<std::vector<ImageRecord>> readImageList(const nlohmann::json& images);
Result<ImageRecord> readImageInspect(const nlohmann::json& image);
// {"Id": ...} of a created container or exec.
Result<std::string> readCreatedId(const nlohmann::json& created);
Result<ContainerState> readContainerInspect(const nlohmann::json& container);
// Config.Tty of GET /containers/{id}/json: whether its output is raw (one stream).
Result<bool> readContainerTty(const nlohmann::json& container);
// GET /exec/{id}/json: {"Running": b, "ExitCode": n, "Pid": n}.
Result<ExecState> readExecInspect(const nlohmann::json& exec);
Result<std::vector<ContainerListing>> readContainerList(const nlohmann::json& containers);
// Docker's wait answer {"StatusCode": N, "Error": {"Message": ...}}.
Result<int> readDockerWait(const nlohmann::json& waited);
// Podman's libpod wait answer: the exit code as text ("0\n").
Result<int> readPodmanWait(std::string_view body);
// The error kind of an answer that is not a success: 404 NotFound, 409 Conflict, 400
// InvalidArgument, else Internal; Podman's 500 whose cause is "container state improper"
// (a kill of a container that is not running) is the Conflict Docker answers with 409.
ErrorCode engineErrorCode(unsigned status, std::string_view body);
// The engine's "message" of an error body, or the body itself cut short when not JSON.
std::string engineErrorMessage(std::string_view body);
// RFC 3339 with optional fraction and zone ("2024-05-01T10:00:00.123456789Z") as
// milliseconds since the epoch; 0 for Go's zero time ("0001-01-01T00:00:00Z").
Result<std::int64_t> rfc3339Millis(std::string_view text);

}  // namespace bai::core
