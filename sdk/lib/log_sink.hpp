// Where a daemon's components send log lines: one sink, set by the daemon (or a test).
// Internal to bai; shared by the agent and the manager.
#pragma once

#include <functional>
#include <string>

namespace bai {

enum class LogLevel { Debug, Info, Warning, Error };

const char* logLevelName(LogLevel level);

// `source` names the component or plugin ("host", "plugin cuda-device").
using LogSink = std::function<void(LogLevel level, const std::string& source, const std::string& message)>;

// Writes "level source: message" lines to standard error, dropping those below `minimum`.
LogSink stderrLogSink(LogLevel minimum = LogLevel::Debug);

}  // namespace bai
