// Test support: every line a LogSink is given, kept for looking at afterwards
// ("<level> <source>: <message>", or "<level> <message>" without the source).
#pragma once

#include "log_sink.hpp"

#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

namespace bai::testing {

class CapturedLog {
 public:
  explicit CapturedLog(bool withSource = true) : withSource_(withSource) {}

  LogSink sink() {
    return [this](LogLevel level, const std::string& source, const std::string& message) {
      std::lock_guard<std::mutex> lock(mutex_);
      lines_.push_back(std::string(logLevelName(level)) + " " + (withSource_ ? source + ": " : "") + message);
    };
  }
  bool contains(const std::string& text) const {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& line : lines_) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  }
  std::size_t countStartingWith(const std::string& prefix) const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::size_t n = 0;
    for (const auto& line : lines_) n += line.rfind(prefix, 0) == 0 ? 1 : 0;
    return n;
  }
  std::string text() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::string out;
    for (const auto& line : lines_) out += line + "\n";
    return out;
  }

 private:
  bool withSource_;
  mutable std::mutex mutex_;
  std::vector<std::string> lines_;
};

}  // namespace bai::testing
