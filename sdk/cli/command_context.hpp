// What every `bai` command shares: the output mode, the client (made from the config on
// first use), the exit codes scripts rely on, and the one-line error report.
#pragma once

#include <bai/client.hpp>

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace bai::cli {

// Exit codes (docs/cli.md). `bai session run` instead exits with the command's own code,
// or kRunFailed when the session produced none.
inline constexpr int kExitOk = 0;
inline constexpr int kExitRefused = 1;      // the manager answered with an error
inline constexpr int kExitUsage = 2;        // bad arguments or configuration
inline constexpr int kExitUnreachable = 3;  // no (valid) answer from the manager
inline constexpr int kExitRunFailed = 125;  // run: the session ended without an exit code
inline constexpr int kExitInterrupted = 130;

class CommandContext {
 public:
  bool json = false;    // --json: documents for scripts instead of tables
  bool timing = false;  // --timing: where a session's time went

  // The command chosen on the command line, set by its parse callback.
  std::function<int()> action;

  // The client, or nullptr after printing why there is none (call usageFailed()).
  const client::Client* api();
  // The cluster's slot types for formatting; empty when they cannot be read.
  const std::map<std::string, std::string>& slotTypes();

  // Prints "bai: <what went wrong>" and a hint, and returns the exit code for it.
  int fail(const client::ApiError& error) const;
  int usage(const std::string& message) const;

 private:
  std::optional<client::Client> client_;
  std::optional<std::map<std::string, std::string>> slotTypes_;
};

}  // namespace bai::cli
