// The agent's components log through the daemons' shared sink (daemon/log_sink.hpp).
#pragma once

#include "log_sink.hpp"

namespace bai::core {

using bai::LogLevel;
using bai::logLevelName;
using bai::LogThreshold;
using bai::parseLogLevel;
using bai::LogSink;
using bai::stderrLogSink;
using bai::thresholdLogSink;

}  // namespace bai::core
