// The wall clock as bai records it (session times, heartbeats, stored rows). Header-only
// so that bai-session-shim, which links nothing of bai, reads the same clock.
#pragma once

#include <chrono>
#include <cstdint>

namespace bai {

// Milliseconds since the Unix epoch.
inline std::int64_t nowMillis() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace bai
