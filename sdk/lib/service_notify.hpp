// What the daemons tell systemd around a SIGHUP reload (sd_notify texts). Internal to bai.
#pragma once

#include <cstdint>
#include <ctime>
#include <string>

namespace bai {

// "RELOADING=1" with the CLOCK_MONOTONIC time systemd's notify-reload protocol asks for;
// "READY=1" follows once the reload is over, whether it was applied or refused.
inline std::string reloadingNotification() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  const std::uint64_t micros = std::uint64_t(now.tv_sec) * 1000000u + std::uint64_t(now.tv_nsec) / 1000u;
  return "RELOADING=1\nMONOTONIC_USEC=" + std::to_string(micros);
}

}  // namespace bai
