// The few fields of /proc/PID/stat the runtime needs to recognise and watch processes.
#pragma once

#include "bai/result.hpp"

#include <cstdint>
#include <sys/types.h>

namespace bai::core {

struct ProcessStat {
  char state = '?';  // 'R', 'S', 'Z' (zombie), ...
  pid_t ppid = 0;
  pid_t pgrp = 0;
  std::uint64_t startTime = 0;  // field 22, clock ticks since boot: with the pid, names one process
};

// NotFound when no such process exists (any more).
Result<ProcessStat> readProcessStat(pid_t pid);

}  // namespace bai::core
