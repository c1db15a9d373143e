// Files holding secrets (the cluster token, keypairs): read only when no one but the
// owner can read them, written only new and with mode 0600. Internal to bai.
#pragma once

#include <bai/result.hpp>

#include <filesystem>
#include <string>

namespace bai {

// Reads the cluster token from `file`, which must be a regular file that neither group
// nor others may access (mode 0600 or stricter). A trailing newline is dropped.
Result<std::string> readClusterToken(std::filesystem::path file);

// A token travels in an HTTP header: printable ASCII without spaces.
bool isPrintableWithoutSpaces(const std::string& text);

// Creates `file` with mode 0600 holding `content`; an existing file is never replaced
// (Conflict).
Result<void> writeSecretFile(const std::filesystem::path& file, const std::string& content);

}  // namespace bai
