// --ready-file: a daemon tells scripts and tests where it serves once it does.
#pragma once

#include <bai/result.hpp>

#include <filesystem>
#include <string_view>

namespace bai {

// Writes "address\n" (host:port) to `file` through a temp file and a rename, so that a
// reader polling for the file never sees it half written.
Result<void> writeReadyFile(const std::filesystem::path& file, std::string_view address);

}  // namespace bai
