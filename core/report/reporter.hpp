// The agent's link to the manager: registers, heartbeats, and pushes session events the
// moment they are journalled, on its own thread, riding out manager outages.
#pragma once

#include "log.hpp"
#include "report/event_journal.hpp"
#include "report/manager_client.hpp"

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

namespace bai::core {

struct ReporterOptions {
  std::string agentId;
  std::string managerUrl;
  std::string token;  // the cluster token; never logged
  std::chrono::milliseconds interval{5000};
  double jitterFraction = 0.2;  // each wait is scaled by a random factor in [1 - j, 1 + j]
  std::chrono::milliseconds initialBackoff{500};
  std::chrono::milliseconds maxBackoff{30000};
  std::chrono::milliseconds connectTimeout{2000};
  std::chrono::milliseconds requestTimeout{5000};
  std::size_t maxEventsPerBatch = 256;
  LogSink log;  // may be empty
};

// A consistent-enough view for metrics; each field is read atomically on its own.
struct ReporterCounters {
  std::uint64_t heartbeatsSent = 0;    // answered with 2xx
  std::uint64_t heartbeatsFailed = 0;  // unreachable, timed out or refused
  std::uint64_t eventsSent = 0;        // acknowledged by the manager
  std::uint64_t eventsFailed = 0;      // carried by event posts that failed
  std::optional<std::chrono::system_clock::time_point> lastContact;
  bool connected = false;
};

class Reporter {
 public:
  // Called on the reporter's thread; they must be thread-safe and must not throw.
  // `digest` changes whenever what `snapshot` returns does (the agent's state version).
  using Snapshot = std::function<protocol::AgentState()>;
  using Digest = std::function<std::uint64_t()>;

  // Starts the thread, which registers at once. `journal` must outlive the reporter.
  static Result<std::unique_ptr<Reporter>> start(ReporterOptions options, Snapshot snapshot, Digest digest,
                                                 EventJournal& journal);

  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;
  ~Reporter();

  // Call after EventJournal::append: the events go out now, not at the next heartbeat.
  void notifyEvent();

  // Ends the thread promptly, interrupting a request in flight. Idempotent.
  void stop();

  ReporterCounters counters() const;

 private:
  using Clock = std::chrono::steady_clock;

  Reporter(ReporterOptions options, ManagerClient client, Snapshot snapshot, Digest digest, EventJournal& journal);

  void run();
  bool waitForWork();
  bool sendHeartbeat();
  bool pushEvents();  // true when the manager took some
  bool pushOneBatch();
  void onContactLost(const Error& error);
  void onContact();
  void onEventDeliveryStalled(const std::string& why);
  Clock::duration jittered(std::chrono::milliseconds base);
  std::chrono::milliseconds nextBackoff(std::chrono::milliseconds& backoff) const;
  void log(LogLevel level, const std::string& message) const;

  const ReporterOptions options_;
  ManagerClient client_;
  const Snapshot snapshot_;
  const Digest digest_;
  EventJournal& journal_;

  // Shared with other threads.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopRequested_ = false;
  bool eventsNotified_ = false;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> heartbeatsSent_{0};
  std::atomic<std::uint64_t> heartbeatsFailed_{0};
  std::atomic<std::uint64_t> eventsSent_{0};
  std::atomic<std::uint64_t> eventsFailed_{0};
  std::atomic<std::int64_t> lastContactMillis_{0};  // Unix time; 0 = never
  std::mutex stopMutex_;
  std::thread thread_;

  // Only the reporter's thread touches these.
  bool needFullState_ = true;
  std::optional<std::uint64_t> lastDigestSent_;
  bool everConnected_ = false;
  bool outageLogged_ = false;
  std::uint64_t failedAttemptsInOutage_ = 0;
  Clock::time_point outageStartedAt_{};
  std::chrono::milliseconds contactBackoff_;
  std::chrono::milliseconds eventBackoff_;
  Clock::time_point nextHeartbeatAt_{};
  Clock::time_point eventRetryAt_ = Clock::time_point::max();
  bool eventDeliveryStalled_ = false;
  std::mt19937_64 random_;
};

}  // namespace bai::core
