// `bai session create|run|list|info|logs|destroy`; the interactive commands (exec, attach,
// app) are interactive_commands.hpp's.
#pragma once

#include "command_context.hpp"

#include <CLI/CLI.hpp>

namespace bai::cli {

void addSessionCommands(CLI::App& app, CommandContext& context);

}  // namespace bai::cli
