// Helpers shared by the reporter's tests: scratch directories, sample events and states,
// percentiles.
#pragma once

#include "temp_dir.hpp"

#include <bai/protocol.hpp>

#include <stdlib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace bai::test {

// For tests about bookkeeping rather than the disk: an fsync costs ~4 ms on this
// machine's disk and nothing on tmpfs.
inline std::filesystem::path memoryBackedBase() {
  std::error_code ignored;
  return std::filesystem::is_directory("/dev/shm", ignored) ? std::filesystem::path("/dev/shm")
                                                            : std::filesystem::temp_directory_path();
}

inline protocol::SessionEvent exitedEvent(const std::string& sessionId, int exitCode) {
  protocol::SessionEvent event;
  event.sessionId = sessionId;
  event.kind = protocol::EventKind::Exited;
  event.exitCode = exitCode;
  event.atMillis = 1'700'000'000'000;
  return event;
}

inline protocol::AgentState sampleState(const std::string& region = "local") {
  protocol::AgentState state;
  state.rpcAddress = "127.0.0.1:6001";
  state.region = region;
  state.scalingGroup = "default";
  state.architecture = "x86_64";
  state.version = "26.11.0";
  state.available = ResourceSlot{{SlotName::of("cpu"), 8}};
  state.slotTypes = {{"cpu", SlotType::Count}};
  return state;
}

// The q-quantile (0..1) of `samples`, nearest rank.
inline double percentile(std::vector<double> samples, double q) {
  if (samples.empty()) return 0.0;
  std::sort(samples.begin(), samples.end());
  const auto rank = static_cast<std::size_t>(q * static_cast<double>(samples.size() - 1) + 0.5);
  return samples[std::min(rank, samples.size() - 1)];
}

inline double millisSince(std::chrono::steady_clock::time_point start, std::chrono::steady_clock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

}  // namespace bai::test
