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

LogSink stderrLogSink(LogLevel minimum) {
  return [minimum](LogLevel level, const std::string& source, const std::string& message) {
    if (level < minimum) return;
    static std::mutex mutex;
    std::lock_guard<std::mutex> lock(mutex);
    std::fprintf(stderr, "%s %s: %s\n", logLevelName(level), source.c_str(), message.c_str());
  };
}

}  // namespace bai
