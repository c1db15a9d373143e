// The storage folders a session asked for, checked and turned into bind mounts. The manager
// names each folder's directory on the node; the agent binds only real directories under its
// [storage] mount-roots, so a wrong or hostile request cannot bind the host's /etc into a
// session. Read-only mounts are made read-only by the kernel (a read-only bind in the sandbox,
// ":ro" for the container engine).
#pragma once

#include "runtime/sandbox_spec.hpp"

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <filesystem>
#include <vector>

namespace bai::core {

// Each mount's source must be absolute, exist as a directory, be the same path with every
// symlink resolved, and lie below one of `roots`; errors name the folder and the reason.
Result<std::vector<BindMount>> folderBinds(const std::vector<protocol::FolderMount>& mounts,
                                           const std::vector<std::filesystem::path>& roots);

}  // namespace bai::core
