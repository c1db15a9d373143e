// bai-plugin-check's engine: runs a plugin through the whole ABI contract, each check
// in a forked child so that a crash or a hang is reported as a failure of that check.
#pragma once

#include <bai/result.hpp>

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace bai::core {

enum class CheckStatus { Pass, Fail, Skip };

const char* checkStatusName(CheckStatus status);

struct CheckResult {
  std::string check;   // "list-devices"
  CheckStatus status = CheckStatus::Fail;
  std::string reason;  // what was expected and what came back
  std::string doc;     // where the plugin guide explains the rule
  double millis = 0;   // how long the check took
};

struct CheckerOptions {
  std::filesystem::path plugin;
  std::string configJson = "{}";
  std::chrono::milliseconds deadline{5000};  // per plugin call
  int cycles = 100;                          // create/destroy cycles
};

// Runs every check in order. A check whose prerequisite failed is skipped.
std::vector<CheckResult> runPluginChecks(const CheckerOptions& options);

// One line per check ("PASS list-devices (3.1 ms)", "FAIL ...: reason (see ...)").
std::string formatText(const std::vector<CheckResult>& results);
std::string formatJson(const std::filesystem::path& plugin, const std::vector<CheckResult>& results);

// What the plugin reports and what a session gets, without the checks: describe and
// list_devices, and, when `request` (slot -> amount) is not empty, the devices the
// plugin's own maps grant for it and prepare_session's answer (the session is released
// again). For people bringing up a node, and for scripts that run a program in a
// session's environment.
Result<nlohmann::json> showPlugin(const CheckerOptions& options, const std::map<std::string, std::string>& request);

}  // namespace bai::core
