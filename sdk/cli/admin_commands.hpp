// `bai admin agent|resource-slots|keypair|policy|scaling-group`.
#pragma once

#include "command_context.hpp"

#include <CLI/CLI.hpp>

namespace bai::cli {

void addAdminCommands(CLI::App& app, CommandContext& context);

}  // namespace bai::cli
