// ContainerEngine over the Docker Engine API on the engine's unix socket: Docker and
// Podman's compatible service (podman system service). The flavor comes from GET /version
// and is kept; what differs between them is the wait call and how CDI devices are passed.
#pragma once

#include "runtime/container_engine.hpp"

#include <chrono>
#include <filesystem>
#include <memory>

namespace bai::core {

struct EngineOptions {
  std::chrono::milliseconds callTimeout{std::chrono::seconds(30)};  // each plain call, whole
  std::chrono::milliseconds pullTimeout{std::chrono::minutes(30)};  // one image pull, whole
};

// Used from any number of threads at once; each call opens its own connection. Each
// attach reads on a thread of its own until the container's output ends. Destroying the
// engine closes the attached streams still open (their `ended` gets an "engine
// unreachable: connection closed by the client" error) and waits for their threads, so an
// `ended` callback must not destroy the engine itself.
//
// The stream of attachInteractive and startExec writes stdin straight to the hijacked
// socket (any thread; a write waits while the engine does not read). closeWrite() is a
// half-close: the command reads end of file. close(), or destroying the stream, ends the
// connection: the output's `ended` then gets "connection closed by the client". On Podman
// 4.3 that also ends a plain (non-tty) container's stdin; a tty console outlives it.
std::unique_ptr<ContainerEngine> makeDockerEngine(std::filesystem::path socket, EngineOptions options = {});

}  // namespace bai::core
