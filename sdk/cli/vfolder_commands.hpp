// `bai vfolder ...`: virtual folders (create, list, info, delete, share, unshare, hosts),
// their files (ls, mkdir, rm, mv) and transfers (upload, download) through the storage proxy.
#pragma once

#include "command_context.hpp"

#include <CLI/CLI.hpp>

namespace bai::cli {

void addVfolderCommands(CLI::App& app, CommandContext& context);

}  // namespace bai::cli
