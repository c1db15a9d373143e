#include "fake_manager.hpp"
#include "report/reporter.hpp"
#include "report_test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <thread>

namespace bai::core {
namespace {

using namespace std::chrono_literals;
using test::FakeManager;

constexpr const char* kToken = "cluster-secret-0123456789";

bool isHeartbeat(const test::RecordedRequest& request) {
  return request.path.size() >= 10 && request.path.compare(request.path.size() - 10, 10, "/heartbeat") == 0;
}

protocol::Heartbeat parseHeartbeat(const test::RecordedRequest& request) {
  auto heartbeat = protocol::Heartbeat::fromJson(request.body);
  if (!heartbeat) throw std::runtime_error(heartbeat.error().message);
  return std::move(*heartbeat);
}

class ReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    manager.start();
    auto opened = EventJournal::open(stateDir.path());
    ASSERT_TRUE(opened.ok()) << opened.error().message;
    journal.emplace(std::move(*opened));
  }

  ReporterOptions options(std::chrono::milliseconds interval = 20ms) {
    ReporterOptions o;
    o.agentId = "agent-1";
    o.managerUrl = manager.url();
    o.token = kToken;
    o.interval = interval;
    o.initialBackoff = 10ms;
    o.maxBackoff = 100ms;
    o.requestTimeout = 1000ms;
    o.log = [this](LogLevel level, const std::string& source, const std::string& message) {
      std::lock_guard<std::mutex> lock(logMutex);
      logs.push_back(std::string(logLevelName(level)) + " " + source + ": " + message);
    };
    return o;
  }

  std::unique_ptr<Reporter> startReporter(ReporterOptions o) {
    auto reporter = Reporter::start(
        std::move(o), [this] { return test::sampleState("region-" + std::to_string(digest.load())); },
        [this] { return digest.load(); }, *journal);
    if (!reporter) throw std::runtime_error(reporter.error().message);
    return std::move(*reporter);
  }

  std::size_t logLinesContaining(const std::string& text) {
    std::lock_guard<std::mutex> lock(logMutex);
    return static_cast<std::size_t>(
        std::count_if(logs.begin(), logs.end(), [&](const std::string& line) { return line.find(text) != std::string::npos; }));
  }

  std::string allLogs() {
    std::lock_guard<std::mutex> lock(logMutex);
    std::string text;
    for (const auto& line : logs) text += line + "\n";
    return text;
  }

  bool waitUntilConnected(const Reporter& reporter, bool connected = true) {
    return manager.waitFor([&] { return reporter.counters().connected == connected; }, 5000ms);
  }

  bool waitForHeartbeats(std::size_t count, std::chrono::milliseconds timeout = 5000ms) {
    return manager.waitFor([&] { return manager.heartbeats().size() >= count; }, timeout);
  }

  void appendEvents(Reporter& reporter, int count) {
    for (int i = 0; i < count; ++i) {
      ASSERT_TRUE(journal->append(test::exitedEvent("s" + std::to_string(i), i)).ok());
      reporter.notifyEvent();
    }
  }

  std::atomic<std::uint64_t> digest{1};
  test::TempDir stateDir;
  FakeManager manager{kToken};
  std::optional<EventJournal> journal;
  std::mutex logMutex;
  std::vector<std::string> logs;
};

TEST_F(ReporterTest, RegistrationCarriesTheFullStateThenOnlyTheDigest) {
  auto reporter = startReporter(options());
  ASSERT_TRUE(waitForHeartbeats(4));
  reporter->stop();
  const auto heartbeats = manager.heartbeats();
  ASSERT_TRUE(heartbeats[0].state.has_value());
  EXPECT_EQ(heartbeats[0].state->region, "region-1");
  for (std::size_t i = 1; i < heartbeats.size(); ++i) {
    EXPECT_FALSE(heartbeats[i].state.has_value()) << "heartbeat " << i;
    EXPECT_EQ(heartbeats[i].digest, 1u);
  }
  const auto counters = reporter->counters();
  // stop() may cut off the reply to the last one the manager recorded.
  EXPECT_GE(counters.heartbeatsSent + 1, heartbeats.size());
  EXPECT_LE(counters.heartbeatsSent, heartbeats.size());
  EXPECT_EQ(counters.heartbeatsFailed, 0u);
  EXPECT_TRUE(counters.connected);
  ASSERT_TRUE(counters.lastContact.has_value());
  EXPECT_LT(std::chrono::system_clock::now() - *counters.lastContact, 5s);
  EXPECT_EQ(logLinesContaining("registered with the manager"), 1u) << allLogs();
}

TEST_F(ReporterTest, StateChangeSendsTheFullStateOnce) {
  auto reporter = startReporter(options());
  ASSERT_TRUE(waitForHeartbeats(2));
  digest = 2;
  ASSERT_TRUE(manager.waitFor(
      [&] {
        const auto heartbeats = manager.heartbeats();
        return std::count_if(heartbeats.begin(), heartbeats.end(), [](const auto& h) { return h.digest == 2; }) >= 2;
      },
      5s));
  reporter->stop();
  const auto heartbeats = manager.heartbeats();
  const auto changed = std::find_if(heartbeats.begin(), heartbeats.end(), [](const auto& h) { return h.digest == 2; });
  ASSERT_TRUE(changed->state.has_value());
  EXPECT_EQ(changed->state->region, "region-2");
  EXPECT_FALSE(std::next(changed)->state.has_value());
}

TEST_F(ReporterTest, SendFullRequestIsAnsweredAtOnce) {
  auto reporter = startReporter(options(200ms));
  ASSERT_TRUE(waitUntilConnected(*reporter));
  manager.sendFullOnce();  // the next, digest-only, heartbeat is answered with send_full
  ASSERT_TRUE(waitForHeartbeats(3));
  reporter->stop();
  const auto requests = manager.requests();
  ASSERT_GE(requests.size(), 3u);
  EXPECT_FALSE(parseHeartbeat(requests[1]).state.has_value());
  EXPECT_TRUE(parseHeartbeat(requests[2]).state.has_value());
  EXPECT_LT(requests[2].receivedAt - requests[1].receivedAt, 100ms) << "not an interval later";
}

// Append -> received by the manager, one event at a time. "Isolated": the previous
// event's acknowledgement is on disk before the next append, as with sessions ending
// now and then. "Back to back": the next append follows receipt of the previous one at
// once, so it meets the reporter still syncing that acknowledgement.
TEST_F(ReporterTest, EventsAreDeliveredAtOnceNotOnTheHeartbeatTimer) {
  auto reporter = startReporter(options(5000ms));
  ASSERT_TRUE(waitUntilConnected(*reporter));
  constexpr std::uint64_t kEventsPerMode = 50;
  std::vector<double> isolated;
  std::vector<double> backToBack;
  std::vector<double> notifyToReceived;
  for (std::uint64_t i = 0; i < 2 * kEventsPerMode; ++i) {
    const bool isolate = i < kEventsPerMode;
    if (isolate) {
      ASSERT_TRUE(manager.waitFor([&] { return reporter->counters().eventsSent == i; }, 2000ms));
    }
    const auto appendAt = std::chrono::steady_clock::now();
    ASSERT_TRUE(journal->append(test::exitedEvent("s" + std::to_string(i), 0)).ok());
    const auto notifyAt = std::chrono::steady_clock::now();
    reporter->notifyEvent();
    ASSERT_TRUE(manager.waitFor([&] { return manager.events().size() == i + 1; }, 2000ms)) << "event " << i;
    const auto receivedAt = manager.events().back().receivedAt;
    (isolate ? isolated : backToBack).push_back(test::millisSince(appendAt, receivedAt));
    if (isolate) notifyToReceived.push_back(test::millisSince(notifyAt, receivedAt));
  }
  EXPECT_EQ(manager.heartbeats().size(), 1u) << "events did not wait for a heartbeat";
  EXPECT_TRUE(manager.waitFor([&] { return reporter->counters().eventsSent == 2 * kEventsPerMode; }, 2000ms));
  EXPECT_EQ(journal->unackedCount(), 0u);
  EXPECT_LT(test::percentile(isolated, 0.99), 1000.0);
  EXPECT_LT(test::percentile(backToBack, 0.99), 1000.0);
  std::cout << "[figure] event append (durable, " << stateDir.path().parent_path()
            << ") -> received by the manager: isolated p50 " << test::percentile(isolated, 0.5) << " ms, p99 "
            << test::percentile(isolated, 0.99) << " ms (notifyEvent -> received p50 "
            << test::percentile(notifyToReceived, 0.5) << " ms); back to back p50 " << test::percentile(backToBack, 0.5)
            << " ms, p99 " << test::percentile(backToBack, 0.99) << " ms\n";
}

// A session that ends frees its devices, then journals its event: the state that shows
// them free follows the event at once, so the manager can place on them without waiting
// for the heartbeat timer.
TEST_F(ReporterTest, AStateChangedBeforeAnEventFollowsTheEventAtOnce) {
  auto reporter = startReporter(options(5000ms));
  ASSERT_TRUE(waitUntilConnected(*reporter));
  digest = 2;  // the session's devices were freed
  const auto appendAt = std::chrono::steady_clock::now();
  ASSERT_TRUE(journal->append(test::exitedEvent("s1", 0)).ok());
  reporter->notifyEvent();
  ASSERT_TRUE(manager.waitFor([&] { return manager.heartbeats().size() >= 2; }, 2000ms)) << "not an interval later";
  const auto requests = manager.requests();
  const auto event = std::find_if(requests.begin(), requests.end(), [](const auto& r) { return !isHeartbeat(r); });
  const auto state = std::find_if(requests.begin() + 1, requests.end(), [](const auto& r) { return isHeartbeat(r); });
  ASSERT_NE(event, requests.end());
  ASSERT_NE(state, requests.end());
  EXPECT_LT(event - requests.begin(), state - requests.begin()) << "the event first, then the state";
  const protocol::Heartbeat heartbeat = parseHeartbeat(*state);
  EXPECT_EQ(heartbeat.digest, 2u);
  ASSERT_TRUE(heartbeat.state.has_value());
  EXPECT_EQ(heartbeat.state->region, "region-2");
  std::cout << "[figure] event append -> changed state received: " << test::millisSince(appendAt, state->receivedAt)
            << " ms (heartbeat interval 5000 ms)\n";

  // An event that changed nothing (the digest as sent) sends no heartbeat.
  ASSERT_TRUE(journal->append(test::exitedEvent("s2", 0)).ok());
  reporter->notifyEvent();
  ASSERT_TRUE(manager.waitFor([&] { return manager.events().size() == 2; }, 2000ms));
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(manager.heartbeats().size(), 2u);
}

TEST_F(ReporterTest, EventsSurviveAnOutageAndArriveInOrderAfterAFullHeartbeat) {
  auto reporter = startReporter(options());
  ASSERT_TRUE(waitUntilConnected(*reporter));
  manager.stop();
  constexpr int kEvents = 20;
  appendEvents(*reporter, kEvents);
  ASSERT_TRUE(manager.waitFor([&] { return reporter->counters().heartbeatsFailed >= 3; }, 5000ms));
  EXPECT_FALSE(reporter->counters().connected);
  EXPECT_EQ(journal->unackedCount(), static_cast<std::size_t>(kEvents)) << "kept while the manager is away";

  const std::size_t requestsBeforeRestart = manager.requests().size();
  manager.start();
  ASSERT_TRUE(manager.waitFor([&] { return journal->unackedCount() == 0; }, 5000ms));
  reporter->stop();

  const auto requests = manager.requests();
  ASSERT_GT(requests.size(), requestsBeforeRestart + 1);
  const auto& firstAfterOutage = requests[requestsBeforeRestart];
  ASSERT_TRUE(isHeartbeat(firstAfterOutage)) << firstAfterOutage.path;
  EXPECT_TRUE(parseHeartbeat(firstAfterOutage).state.has_value()) << "the first contact after an outage is full";

  const auto events = manager.events();
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kEvents)) << "nothing lost, nothing sent twice";
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(events[i].event.seq, static_cast<std::uint64_t>(i + 1));
  EXPECT_EQ(logLinesContaining("lost contact with the manager"), 1u) << allLogs();
  EXPECT_EQ(logLinesContaining("contact with the manager restored"), 1u) << allLogs();
  EXPECT_TRUE(reporter->counters().connected);
}

TEST_F(ReporterTest, SlowManagerIsAnOutageUntilItAnswersInTime) {
  auto o = options();
  o.requestTimeout = 100ms;
  auto reporter = startReporter(std::move(o));
  ASSERT_TRUE(waitUntilConnected(*reporter));
  manager.setReplyDelay(400ms);
  ASSERT_TRUE(waitUntilConnected(*reporter, false));
  manager.setReplyDelay(0ms);
  ASSERT_TRUE(waitUntilConnected(*reporter));
  reporter->stop();
  const auto heartbeats = manager.heartbeats();
  const auto lastFull = std::find_if(heartbeats.rbegin(), heartbeats.rend(), [](const auto& h) { return h.state.has_value(); });
  EXPECT_NE(lastFull, std::prev(heartbeats.rend())) << "a full heartbeat after the slow spell, not only at registration";
  EXPECT_EQ(logLinesContaining("lost contact"), 1u) << allLogs();
}

TEST_F(ReporterTest, BackoffGrowsWhileTheManagerIsAway) {
  manager.stop();
  // Failed contact attempts in 400 ms without jitter, backoff from 5 ms up to maxBackoff.
  const auto failedIn400ms = [&](std::chrono::milliseconds maxBackoff) {
    auto o = options();
    o.jitterFraction = 0.0;
    o.initialBackoff = 5ms;
    o.maxBackoff = maxBackoff;
    auto reporter = startReporter(std::move(o));
    std::this_thread::sleep_for(400ms);
    const auto attempts = reporter->counters().heartbeatsFailed;
    reporter->stop();
    return attempts;
  };
  const auto growing = failedIn400ms(10s);
  // Attempts at 0, 5, 15, 35, 75, 155, 315 ms: 7. A fixed 5 ms retry would make ~80.
  EXPECT_GE(growing, 4u);
  EXPECT_LE(growing, 9u);
  EXPECT_EQ(logLinesContaining("cannot reach the manager"), 1u) << allLogs();
  EXPECT_EQ(logs.size(), 1u) << "one line for the outage, none per attempt:\n" << allLogs();

  const auto cappedAttempts = failedIn400ms(20ms);
  // 0, 5, 15, 35, then every 20 ms: ~21.
  EXPECT_GE(cappedAttempts, 12u);
  EXPECT_LE(cappedAttempts, 24u);
  std::cout << "[figure] failed contact attempts in 400 ms: " << growing << " with backoff 5 ms..10 s, " << cappedAttempts
            << " with backoff 5..20 ms\n";
}

TEST_F(ReporterTest, StopIsPromptEvenWithALongInterval) {
  auto reporter = startReporter(options(5000ms));
  ASSERT_TRUE(waitUntilConnected(*reporter));
  const auto start = std::chrono::steady_clock::now();
  reporter->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  reporter->stop();  // idempotent
}

TEST_F(ReporterTest, StopInterruptsARequestInFlight) {
  manager.setReplyDelay(5000ms);
  auto reporter = startReporter(options(5000ms));
  ASSERT_TRUE(manager.waitFor([&] { return !manager.requests().empty(); }, 2000ms));
  const auto start = std::chrono::steady_clock::now();
  reporter.reset();  // the destructor stops too
  EXPECT_LT(std::chrono::steady_clock::now() - start, 100ms);
  EXPECT_EQ(logLinesContaining("cannot reach"), 0u) << "stopping is not an outage:\n" << allLogs();
}

TEST_F(ReporterTest, UnacknowledgedEventsAreResentUntilAcknowledged) {
  manager.setEventAckMode(test::EventAckMode::AckNone);
  auto reporter = startReporter(options(5000ms));
  ASSERT_TRUE(waitUntilConnected(*reporter));
  appendEvents(*reporter, 3);
  ASSERT_TRUE(manager.waitFor([&] { return manager.events().size() >= 9; }, 5000ms)) << "resent";
  EXPECT_EQ(journal->unackedCount(), 3u);
  manager.setEventAckMode(test::EventAckMode::AckAll);
  ASSERT_TRUE(manager.waitFor([&] { return reporter->counters().eventsSent == 3; }, 5000ms));
  reporter->stop();
  EXPECT_EQ(journal->unackedCount(), 0u);
  EXPECT_EQ(logLinesContaining("event delivery stalled"), 1u) << allLogs();
  EXPECT_EQ(logLinesContaining("event delivery to the manager resumed"), 1u) << allLogs();
}

TEST_F(ReporterTest, RefusedEventsAreRetriedWhileHeartbeatsGoOn) {
  manager.setEventAckMode(test::EventAckMode::Fail503);
  auto reporter = startReporter(options());
  ASSERT_TRUE(waitUntilConnected(*reporter));
  appendEvents(*reporter, 2);
  ASSERT_TRUE(manager.waitFor([&] { return reporter->counters().eventsFailed >= 4; }, 5000ms));
  EXPECT_TRUE(reporter->counters().connected) << "a manager that answers is not lost";
  manager.setEventAckMode(test::EventAckMode::AckAll);
  ASSERT_TRUE(manager.waitFor([&] { return journal->unackedCount() == 0; }, 5000ms));
  reporter->stop();
  EXPECT_EQ(manager.events().size(), 2u);
  EXPECT_EQ(logLinesContaining("lost contact"), 0u) << allLogs();
}

TEST_F(ReporterTest, EventsLeftByAnEarlierRunFollowRegistration) {
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(journal->append(test::exitedEvent("old" + std::to_string(i), i)).ok());
  auto reporter = startReporter(options(5000ms));
  ASSERT_TRUE(manager.waitFor([&] { return journal->unackedCount() == 0; }, 5000ms));
  reporter->stop();
  const auto requests = manager.requests();
  ASSERT_GE(requests.size(), 2u);
  ASSERT_TRUE(isHeartbeat(requests[0]));
  EXPECT_TRUE(parseHeartbeat(requests[0]).state.has_value());
  const auto events = manager.events();
  ASSERT_EQ(events.size(), 5u);
  EXPECT_EQ(events.front().event.sessionId, "old0");
  EXPECT_EQ(events.back().event.seq, 5u);
}

TEST_F(ReporterTest, WrongTokenIsLoggedWithoutTheToken) {
  auto o = options();
  o.token = "the-wrong-secret-42";
  auto reporter = startReporter(std::move(o));
  ASSERT_TRUE(manager.waitFor([&] { return reporter->counters().heartbeatsFailed >= 1; }, 5000ms));
  reporter->stop();
  EXPECT_EQ(logLinesContaining("HTTP 401"), 1u) << allLogs();
  EXPECT_EQ(allLogs().find("the-wrong-secret-42"), std::string::npos);
}

TEST(Reporter, RefusesBadOptions) {
  test::TempDir dir;
  auto journal = EventJournal::open(dir.path());
  ASSERT_TRUE(journal.ok());
  auto snapshot = [] { return protocol::AgentState{}; };
  auto digest = [] { return std::uint64_t{0}; };
  ReporterOptions o;
  o.agentId = "agent-1";
  o.managerUrl = "http://127.0.0.1:1";
  o.token = kToken;
  o.jitterFraction = 1.5;
  EXPECT_FALSE(Reporter::start(o, snapshot, digest, *journal).ok());
  o.jitterFraction = 0.2;
  o.maxBackoff = 1ms;
  EXPECT_FALSE(Reporter::start(o, snapshot, digest, *journal).ok());
  o.maxBackoff = 30s;
  EXPECT_FALSE(Reporter::start(o, nullptr, digest, *journal).ok());
  EXPECT_TRUE(Reporter::start(o, snapshot, digest, *journal).ok());
}

}  // namespace
}  // namespace bai::core
