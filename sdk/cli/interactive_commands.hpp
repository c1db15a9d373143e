// `bai session exec|attach|app`, and the console that `bai session run -i/-t` follows.
#pragma once

#include "command_context.hpp"

#include <CLI/CLI.hpp>

namespace bai::cli {

void addInteractiveCommands(CLI::App* session, CommandContext& context);

// Attaches to a running session's console and forwards this terminal (raw with `tty`
// and a terminal on stdin, detach keys Ctrl-P Ctrl-Q) until the session ends; returns
// bai's exit code: the session's own, 0 after a detach, 125 when none came. A session
// that ended before the attach has its logs printed instead. `ownsSession` (run): an
// interruption destroys it, as `bai session run` does.
int followConsole(CommandContext& context, const client::Client& api, const client::Session& session, bool ownsSession);

}  // namespace bai::cli
