// bai: the user's and the admin's command line for a bai cluster. Configured by
// BAI_ENDPOINT, BAI_ACCESS_KEY, BAI_SECRET_KEY or ~/.config/bai/config.toml (docs/cli.md).
#include "admin_commands.hpp"
#include "command_context.hpp"
#include "http_client.hpp"
#include "session_commands.hpp"
#include "vfolder_commands.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

int main(int argc, char** argv) {
  using namespace bai::cli;
  CLI::App app{"bai: run sessions on a bai cluster and administer it.\n"
               "Configuration: BAI_ENDPOINT, BAI_ACCESS_KEY, BAI_SECRET_KEY, or the TOML file\n"
               "~/.config/bai/config.toml (or $BAI_CONFIG; keys endpoint, access-key, secret-key, ca-file; mode 0600).\n"
               "Exit codes: 0 done, 1 the manager refused, 2 bad arguments or configuration, 3 no answer from the\n"
               "manager; `session run` exits with the command's own code, 125 when the session produced none."};
  app.require_subcommand(1);
  app.fallthrough();  // --json and --timing may follow the subcommand
  CommandContext context;
  app.add_flag("--json", context.json, "print JSON documents (as the API returns them) instead of tables");
  app.add_flag("--timing", context.timing, "session commands: print where the time went (submitted -> scheduled -> started -> exited)");
  app.set_version_flag("--version", std::string("bai ") + BAI_VERSION);
  addSessionCommands(app, context);
  addAdminCommands(app, context);
  addVfolderCommands(app, context);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  if (auto ready = bai::http::initialiseCurl(); !ready) return context.usage(ready.error().message);
  return context.action ? context.action() : kExitUsage;
}
