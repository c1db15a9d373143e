#include "runtime/container_engine.hpp"

namespace bai::core {

const char* engineFlavorName(EngineFlavor flavor) {
  switch (flavor) {
    case EngineFlavor::Docker: return "docker";
    case EngineFlavor::Podman: return "podman";
  }
  return "unknown";
}

bool isUnreachable(const Error& error) {
  return error.code == ErrorCode::Internal && error.message.rfind("engine unreachable: ", 0) == 0;
}

}  // namespace bai::core
