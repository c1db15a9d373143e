// bai-plugin-check's engine: runs a plugin through the whole ABI contract, each check
// in a forked child so that a crash or a hang is reported as a failure of that check.
#pragma once

#include <chrono>
#include <filesystem>
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

}  // namespace bai::core
