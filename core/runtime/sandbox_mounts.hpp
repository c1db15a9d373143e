// The filesystem a sandboxed session sees, built by bai-session-shim's init (pid 1 of the
// session's PID namespace, running as root): the host's / read-only, then over it a
// private /proc, a /dev of the allowed nodes only, private /tmp and /dev/shm, the work
// dir at kSessionHome, the hidden paths masked and the extra bind mounts.
#pragma once

#include "bai/result.hpp"
#include "runtime/sandbox_spec.hpp"

#include <filesystem>

namespace bai::core::sandbox {

// Enters new mount, IPC and UTS namespaces (nothing propagates back to the host), builds
// the new root in `rootDir` (created root-owned 0700) and pivots into it; the caller's
// cwd is then "/". On failure the message names the step and the path; the caller's
// mount namespace is then half built and it must exit.
Result<void> enterSandbox(const Sandbox& sandbox, const std::filesystem::path& rootDir);

}  // namespace bai::core::sandbox
