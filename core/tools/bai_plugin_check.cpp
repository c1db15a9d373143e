// bai-plugin-check PLUGIN.so [--config FILE] [--json]: runs an accelerator plugin
// through the whole ABI contract the way the agent loads it. Exit status 0 only when
// every check passes.
#include "check/plugin_checker.hpp"
#include "parse_json.hpp"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <fstream>
#include <iostream>
#include <sstream>

namespace {

// The plugin's config table from a .json file, or from a TOML file (converted to JSON).
std::string readConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read config file " + path);
  std::stringstream text;
  text << in.rdbuf();
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) {
    auto config = bai::parseJson(text.str());
    if (!config) throw std::runtime_error(path + ": " + config.error().message);
    if (!config->is_object()) throw std::runtime_error(path + ": not a JSON object");
    return config->dump();
  }
  try {
    toml::table table = toml::parse(text.str(), path);
    std::stringstream json;
    json << toml::json_formatter{table};
    return json.str();
  } catch (const toml::parse_error& e) {
    std::ostringstream why;
    why << path << ":" << e.source().begin.line << ": " << e.description();
    throw std::runtime_error(why.str());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Checks an accelerator plugin against bai's plugin ABI v1, each check in its own process."};
  std::string plugin, configFile;
  bool json = false;
  int deadlineMs = 5000, cycles = 100;
  app.add_option("plugin", plugin, "the plugin's .so file")->required()->check(CLI::ExistingFile);
  app.add_option("--config", configFile, "the plugin's config table: TOML (as under [plugins.<key>]) or .json")
      ->check(CLI::ExistingFile);
  app.add_flag("--json", json, "print a JSON report for CI");
  app.add_option("--deadline-ms", deadlineMs, "the per-call deadline the agent enforces")->check(CLI::PositiveNumber);
  app.add_option("--cycles", cycles, "create/destroy cycles")->check(CLI::Range(11, 100000));
  bool show = false;
  std::vector<std::string> sessionSlots;
  app.add_flag("--show", show, "print what the plugin reports (describe, list_devices) as JSON instead of checking it");
  app.add_option("--session", sessionSlots,
                 "with --show: SLOT=AMOUNT (repeatable); also grant them from the plugin's maps and print prepare_session's answer");
  bool envOnly = false;
  app.add_flag("--env", envOnly, "with --show --session: print only the session's environment as shell export lines");
  CLI11_PARSE(app, argc, argv);

  bai::core::CheckerOptions options;
  options.plugin = plugin;
  options.deadline = std::chrono::milliseconds(deadlineMs);
  options.cycles = cycles;
  try {
    if (!configFile.empty()) options.configJson = readConfig(configFile);
  } catch (const std::exception& e) {
    std::cerr << "bai-plugin-check: " << e.what() << "\n";
    return 2;
  }
  if (show) {
    std::map<std::string, std::string> request;
    for (const auto& item : sessionSlots) {
      const auto eq = item.find('=');
      if (eq == std::string::npos || eq == 0) {
        std::cerr << "bai-plugin-check: --session '" << item << "' is not SLOT=AMOUNT\n";
        return 2;
      }
      request[item.substr(0, eq)] = item.substr(eq + 1);
    }
    auto shown = bai::core::showPlugin(options, request);
    if (!shown) {
      std::cerr << "bai-plugin-check: " << shown.error().message << "\n";
      return 1;
    }
    if (!envOnly) {
      std::cout << shown->dump(2) << "\n";
      return 0;
    }
    if (!shown->contains("session")) {
      std::cerr << "bai-plugin-check: --env needs --session SLOT=AMOUNT\n";
      return 2;
    }
    // Held in a local: a range-for over a temporary's items() would iterate a dead object.
    const nlohmann::json env = (*shown)["session"]["prepared"].value("env", nlohmann::json::object());
    for (const auto& [name, value] : env.items()) {
      std::string quoted = value.is_string() ? value.get<std::string>() : value.dump();
      for (std::size_t at = quoted.find('\''); at != std::string::npos; at = quoted.find('\'', at + 4)) quoted.replace(at, 1, "'\\''");
      std::cout << "export " << name << "='" << quoted << "'\n";
    }
    return 0;
  }
  const auto results = bai::core::runPluginChecks(options);
  std::cout << (json ? bai::core::formatJson(options.plugin, results) : bai::core::formatText(results));
  for (const auto& r : results) {
    if (r.status != bai::core::CheckStatus::Pass) return 1;
  }
  return 0;
}
