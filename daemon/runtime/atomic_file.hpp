// Small file helpers shared by the daemons and bai-session-shim. The session dir
// is how the agent, the shim and a restarted agent talk, so every record in it is
// replaced atomically (temp file + rename) and readers never see half a file.
#pragma once

#include "bai/result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace bai::core {

// Writes `content` to a unique temp file next to `file`, then renames it over `file`.
// Not fsync'ed: the records must survive a crash of the agent or the shim, not of the
// machine (sessions do not survive a reboot either).
Result<void> writeFileAtomically(const std::filesystem::path& file, std::string_view content);

Result<std::string> readWholeFile(const std::filesystem::path& file);

// "what: strerror(errnum)" for error messages built from a failed system call.
std::string describeErrno(std::string_view what, int errnum);

}  // namespace bai::core
