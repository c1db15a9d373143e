#include "report/reporter.hpp"

#include "clock.hpp"

#include <algorithm>
#include <utility>

namespace bai::core {
namespace {

Result<void> validate(const ReporterOptions& options) {
  using std::chrono::milliseconds;
  if (options.interval <= milliseconds::zero()) return fail(ErrorCode::InvalidArgument, "heartbeat interval must be positive");
  if (options.jitterFraction < 0.0 || options.jitterFraction >= 1.0) {
    return fail(ErrorCode::InvalidArgument, "jitter fraction must be in [0, 1)");
  }
  if (options.initialBackoff <= milliseconds::zero() || options.maxBackoff < options.initialBackoff) {
    return fail(ErrorCode::InvalidArgument, "backoff must be positive with max >= initial");
  }
  if (options.maxEventsPerBatch == 0) return fail(ErrorCode::InvalidArgument, "max events per batch must be positive");
  return {};
}

}  // namespace

Result<std::unique_ptr<Reporter>> Reporter::start(ReporterOptions options, Snapshot snapshot, Digest digest,
                                                  EventJournal& journal) {
  if (!snapshot || !digest) return fail(ErrorCode::InvalidArgument, "reporter needs snapshot and digest functions");
  if (auto valid = validate(options); !valid) return Failure{valid.error()};
  auto client = ManagerClient::create(
      {options.managerUrl, options.agentId, options.token, options.connectTimeout, options.requestTimeout});
  if (!client) return Failure{client.error()};

  std::unique_ptr<Reporter> reporter(
      new Reporter(std::move(options), std::move(*client), std::move(snapshot), std::move(digest), journal));
  reporter->thread_ = std::thread(&Reporter::run, reporter.get());
  return reporter;
}

Reporter::Reporter(ReporterOptions options, ManagerClient client, Snapshot snapshot, Digest digest,
                   EventJournal& journal)
    : options_(std::move(options)),
      client_(std::move(client)),
      snapshot_(std::move(snapshot)),
      digest_(std::move(digest)),
      journal_(journal),
      contactBackoff_(options_.initialBackoff),
      eventBackoff_(options_.initialBackoff),
      random_(std::random_device{}()) {}

Reporter::~Reporter() { stop(); }

void Reporter::notifyEvent() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    eventsNotified_ = true;
  }
  wake_.notify_one();
}

void Reporter::stop() {
  std::lock_guard<std::mutex> stopLock(stopMutex_);
  stopping_.store(true);  // before cancel(): the failure it causes is not an outage
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopRequested_ = true;
  }
  wake_.notify_all();
  client_.cancel();
  if (thread_.joinable()) thread_.join();
}

ReporterCounters Reporter::counters() const {
  ReporterCounters counters;
  counters.heartbeatsSent = heartbeatsSent_.load();
  counters.heartbeatsFailed = heartbeatsFailed_.load();
  counters.eventsSent = eventsSent_.load();
  counters.eventsFailed = eventsFailed_.load();
  counters.connected = connected_.load();
  if (const std::int64_t millis = lastContactMillis_.load(); millis != 0) {
    counters.lastContact = std::chrono::system_clock::time_point(std::chrono::milliseconds(millis));
  }
  return counters;
}

void Reporter::run() {
  while (waitForWork()) {
  }
}

// Sleeps until a heartbeat or an event retry is due, or new events arrive while the
// manager is reachable; then does that work. Returns false once stop() was called.
bool Reporter::waitForWork() {
  bool notified = false;
  {
    std::unique_lock<std::mutex> lock(mutex_);
    const Clock::time_point wakeAt = connected_ ? std::min(nextHeartbeatAt_, eventRetryAt_) : nextHeartbeatAt_;
    wake_.wait_until(lock, wakeAt, [&] { return stopRequested_ || (eventsNotified_ && connected_.load()); });
    if (stopRequested_) return false;
    notified = std::exchange(eventsNotified_, false);
  }
  const Clock::time_point now = Clock::now();
  bool eventsDue = notified || now >= eventRetryAt_;
  // Any successful heartbeat may be the first contact after an outage: events follow it.
  if (now >= nextHeartbeatAt_ && sendHeartbeat()) eventsDue = true;
  // A session that ended freed its devices before its event was journalled: the state
  // that shows them free follows the event now, not a heartbeat interval later, so the
  // manager can place the next session on them at once.
  if (eventsDue && connected_ && pushEvents() && lastDigestSent_ != digest_()) sendHeartbeat();
  return true;
}

bool Reporter::sendHeartbeat() {
  const std::uint64_t digest = digest_();  // read before the snapshot, which is then at least as new
  const bool full = needFullState_ || lastDigestSent_ != digest;
  protocol::Heartbeat heartbeat{options_.agentId, digest, std::nullopt};
  if (full) heartbeat.state = snapshot_();

  auto reply = client_.heartbeat(heartbeat);
  if (!reply && stopping_) return false;  // cancelled by stop(): not a failure of the manager
  if (!reply) {
    ++heartbeatsFailed_;
    onContactLost(reply.error());
    return false;
  }
  ++heartbeatsSent_;
  onContact();
  lastDigestSent_ = digest;
  needFullState_ = reply->sendFull;
  // The manager's copy is stale: answer with the full state now, not an interval later
  // (but not in a loop if it keeps asking after a full one).
  const bool resendNow = reply->sendFull && !full;
  nextHeartbeatAt_ = Clock::now() + (resendNow ? Clock::duration::zero() : jittered(options_.interval));
  return true;
}

bool Reporter::pushEvents() {
  bool delivered = false;
  while (connected_ && !stopping_ && pushOneBatch()) delivered = true;
  return delivered;
}

// Sends the oldest unacknowledged events; true when the manager took some and more may wait.
bool Reporter::pushOneBatch() {
  protocol::EventBatch batch{options_.agentId, journal_.unacked(options_.maxEventsPerBatch)};
  if (batch.events.empty()) {
    eventRetryAt_ = Clock::time_point::max();
    eventBackoff_ = options_.initialBackoff;
    return false;
  }
  auto ack = client_.sendEvents(batch);
  if (!ack && stopping_) return false;
  if (!ack) {
    eventsFailed_ += batch.events.size();
    if (client_.lastHttpStatus() == 0) {
      onContactLost(ack.error());  // the next contact is a full heartbeat, then these events
    } else {
      onEventDeliveryStalled(ack.error().message);
    }
    return false;
  }
  lastContactMillis_ = nowMillis();

  const std::uint64_t first = batch.events.front().seq;
  // An ack past this batch can only vouch for the batch: the journal refuses seqs it never wrote.
  const std::uint64_t through = std::min(ack->ackedThrough, batch.events.back().seq);
  if (through < first) {
    onEventDeliveryStalled("the manager acknowledged none of the " + std::to_string(batch.events.size()) +
                           " events sent (acked through seq " + std::to_string(ack->ackedThrough) + ")");
    return false;
  }
  if (auto recorded = journal_.acknowledge(through); !recorded) {
    log(LogLevel::Error, "cannot record acknowledged events: " + recorded.error().message);
    if (journal_.ackedThrough() < through) {
      onEventDeliveryStalled(recorded.error().message);
      return false;
    }
  }
  eventsSent_ += static_cast<std::uint64_t>(std::count_if(batch.events.begin(), batch.events.end(),
                                                          [&](const auto& event) { return event.seq <= through; }));
  eventBackoff_ = options_.initialBackoff;
  eventRetryAt_ = Clock::time_point::max();
  if (eventDeliveryStalled_) log(LogLevel::Info, "event delivery to the manager resumed");
  eventDeliveryStalled_ = false;
  return true;
}

// One log line per outage, not one per attempt; the backoff grows until contact returns.
void Reporter::onContactLost(const Error& error) {
  connected_.store(false);
  needFullState_ = true;  // the manager may have lost or expired our state meanwhile
  if (!outageLogged_) {
    const char* what = everConnected_ ? "lost contact with the manager: " : "cannot reach the manager: ";
    log(LogLevel::Warning, what + error.message + "; retrying with backoff");
    outageLogged_ = true;
    outageStartedAt_ = Clock::now();
    failedAttemptsInOutage_ = 0;
  }
  ++failedAttemptsInOutage_;
  nextHeartbeatAt_ = Clock::now() + jittered(nextBackoff(contactBackoff_));
}

void Reporter::onContact() {
  lastContactMillis_ = nowMillis();
  contactBackoff_ = options_.initialBackoff;
  if (connected_.exchange(true)) return;
  std::string message = everConnected_ ? "contact with the manager restored" : "registered with the manager at " + options_.managerUrl;
  if (outageLogged_) {
    const auto outage = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - outageStartedAt_);
    message += " after " + std::to_string(failedAttemptsInOutage_) + " failed attempts over " +
               std::to_string(outage.count()) + " ms";
  }
  log(LogLevel::Info, message);
  everConnected_ = true;
  outageLogged_ = false;
}

void Reporter::onEventDeliveryStalled(const std::string& why) {
  if (!eventDeliveryStalled_) log(LogLevel::Warning, "event delivery stalled: " + why + "; retrying with backoff");
  eventDeliveryStalled_ = true;
  eventRetryAt_ = Clock::now() + jittered(nextBackoff(eventBackoff_));
}

Reporter::Clock::duration Reporter::jittered(std::chrono::milliseconds base) {
  if (options_.jitterFraction <= 0.0) return base;
  std::uniform_real_distribution<double> factor(1.0 - options_.jitterFraction, 1.0 + options_.jitterFraction);
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(static_cast<double>(base.count()) * factor(random_)));
}

// Returns the current backoff and doubles it for next time, up to the maximum.
std::chrono::milliseconds Reporter::nextBackoff(std::chrono::milliseconds& backoff) const {
  const std::chrono::milliseconds current = backoff;
  backoff = std::min(backoff * 2, options_.maxBackoff);
  return current;
}

void Reporter::log(LogLevel level, const std::string& message) const {
  if (options_.log) options_.log(level, "reporter", message);
}

}  // namespace bai::core
