// The stdin side of a hijacked attach or exec connection: bytes written straight to the
// connection's socket through a descriptor of its own, while the connection's thread reads
// the output from the same socket.
#pragma once

#include "runtime/container_engine.hpp"

#include <functional>
#include <memory>

namespace bai::core {

// Takes `socketHandle` (closed with the stream). `closeConnection` ends the reading side
// too; close() calls it. Destroying the stream ends stdin as closeWrite() does, and leaves
// the output to run to its end.
Result<std::unique_ptr<EngineStream>> makeHijackedStdin(int socketHandle, std::function<void()> closeConnection);

}  // namespace bai::core
