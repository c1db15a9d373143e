// How bai's daemons live under systemd (or a shell): the signals they take, READY=1 once
// serving, RELOADING=1 ... READY=1 around each SIGHUP reload, STOPPING=1 at the end.
// Internal to bai; the daemons link libsystemd.
#pragma once

#include <systemd/sd-daemon.h>

#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <ctime>
#include <functional>
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

// Blocks SIGTERM, SIGINT and SIGHUP in this thread and every thread it starts later, so
// that only serveUntilStopped() takes them. Call before starting any thread.
inline sigset_t blockDaemonSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Tells systemd the daemon is ready, runs `reload` on each SIGHUP, and returns the signal
// that stops it (after STOPPING=1).
inline int serveUntilStopped(const sigset_t& signals, const std::function<void()>& reload) {
  sd_notify(0, "READY=1");
  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGHUP) {
    sd_notify(0, reloadingNotification().c_str());
    reload();
    sd_notify(0, "READY=1");
  }
  sd_notify(0, "STOPPING=1");
  return signal;
}

}  // namespace bai
