// Loads every plugin in the given directories through the agent's host, prints what it
// loaded and skipped, and tears everything down: the program valgrind runs in the
// leak test, and a quick manual check of a plugin directory.
#include "plugin/plugin_host.hpp"

#include <cstdio>

int main(int argc, char** argv) {
  bai::core::PluginHostOptions options;
  for (int i = 1; i < argc; ++i) options.searchPath.emplace_back(argv[i]);
  options.callDeadline = std::chrono::milliseconds(2000);
  {
    bai::core::PluginHost host(options);
    host.loadAll();
    for (const auto& plugin : host.plugins()) {
      std::printf("loaded %s key=%s devices=%zu\n", plugin->identity().name.c_str(), plugin->identity().key.c_str(),
                  plugin->discovery().devices.size());
    }
    for (const auto& skipped : host.skipped()) std::printf("skipped %s: %s\n", skipped.file.c_str(), skipped.reason.c_str());
  }
  return 0;
}
