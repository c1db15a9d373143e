// Where a daemon's components send log lines: one sink, set by the daemon (or a test).
// Internal to bai; shared by the agent and the manager.
#pragma once

#include <bai/result.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <string>

namespace bai {

enum class LogLevel { Debug, Info, Warning, Error };

const char* logLevelName(LogLevel level);
// "debug", "info", "warning" or "error", as configs write them.
Result<LogLevel> parseLogLevel(const std::string& text);

// `source` names the component or plugin ("host", "plugin cuda-device").
using LogSink = std::function<void(LogLevel level, const std::string& source, const std::string& message)>;

// Writes "level source: message" lines to standard error, dropping those below `minimum`.
LogSink stderrLogSink(LogLevel minimum = LogLevel::Debug);

// The minimum level of a sink, shared with whoever changes it while the daemon runs
// (a SIGHUP reload); each line reads it once.
class LogThreshold {
 public:
  explicit LogThreshold(LogLevel minimum) : minimum_(minimum) {}
  LogLevel get() const { return minimum_.load(std::memory_order_relaxed); }
  void set(LogLevel minimum) { minimum_.store(minimum, std::memory_order_relaxed); }

 private:
  std::atomic<LogLevel> minimum_;
};

// Passes to `inner` the lines at or above the threshold's level at the time of the line.
LogSink thresholdLogSink(LogSink inner, std::shared_ptr<const LogThreshold> threshold);

}  // namespace bai
