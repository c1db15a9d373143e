#include "log_sink.hpp"

#include <cstdio>
#include <mutex>

namespace bai {

const char* logLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warning: return "warning";
    case LogLevel::Error: return "error";
  }
  return "unknown";
}

Result<LogLevel> parseLogLevel(const std::string& text) {
  for (LogLevel level : {LogLevel::Debug, LogLevel::Info, LogLevel::Warning, LogLevel::Error}) {
    if (text == logLevelName(level)) return level;
  }
  return fail(ErrorCode::InvalidArgument, "'" + text + "' is not a log level (debug, info, warning, error)");
}

LogSink stderrLogSink(LogLevel minimum) {
  return [minimum](LogLevel level, const std::string& source, const std::string& message) {
    if (level < minimum) return;
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    std::fprintf(stderr, "%s %s: %s\n", logLevelName(level), source.c_str(), message.c_str());
  };
}

LogSink thresholdLogSink(LogSink inner, std::shared_ptr<const LogThreshold> threshold) {
  return [inner = std::move(inner), threshold = std::move(threshold)](LogLevel level, const std::string& source,
                                                                       const std::string& message) {
    if (inner && level >= threshold->get()) inner(level, source, message);
  };
}

}  // namespace bai
