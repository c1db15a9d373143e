// The manager's parts, each constructed alone: the Ledger over a real store, the
// AgentDispatcher's per-agent lanes, and the Waiters' long polls.
#include "agent_dispatcher.hpp"
#include "ledger.hpp"
#include "waiters.hpp"

#include "http_server.hpp"

#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace bai::manager {
namespace {

using namespace std::chrono_literals;

// ---- Ledger ------------------------------------------------------------------------

class LedgerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = openStore("sqlite://" + (dir_.path() / "m.db").string());
    ASSERT_TRUE(store.ok()) << store.error().message;
    ledger_ = std::make_unique<Ledger>(std::move(*store), Tunables{}, metrics_, LogSink());
    ASSERT_TRUE(ledger_->load().ok());
    AgentRecord agent;
    agent.id = "a";
    agent.rpcUrl = "http://127.0.0.1:1";
    agent.slots["cpu"] = AgentSlotFigures{Quantity(4), Quantity(), Quantity(4)};
    ASSERT_TRUE(ledger_->store().write([&](StoreTransaction& tx) { return tx.upsertAgent(agent); }).ok());
    const auto guard = ledger_->lock();
    ledger_->state(guard).agents["a"].record = agent;
  }

  SessionRecord pending(const std::string& cpu) {
    SessionRecord session;
    session.name = session.id = "s" + std::to_string(++sessions_);
    session.owner = "AK";
    session.command = {"true"};
    session.requested.set(SlotName::of("cpu"), *Quantity::parse(cpu));
    EXPECT_TRUE(ledger_->store().write([&](StoreTransaction& tx) { return tx.insertSession(session).ok() ? Result<void>() : fail(ErrorCode::Internal, "insert"); }).ok());
    return session;
  }

  // Writes `session` on agent "a" as `status`, its id listed in the transition's `list`.
  Result<void> commit(SessionRecord session, SessionStatus status, std::vector<std::string> Transition::*list) {
    session.status = status;
    session.agentId = "a";
    Transition t;
    t.sessions.push_back(session);
    (t.*list).push_back(session.id);
    const auto guard = ledger_->lock();
    return ledger_->commit(guard, std::move(t));
  }

  Result<void> reserve(const SessionRecord& session) { return commit(session, SessionStatus::Scheduled, &Transition::reserve); }

  Quantity used() {
    const auto guard = ledger_->lock();
    return ledger_->state(guard).agents.at("a").used("cpu");
  }

  test::TempDir dir_;
  Metrics metrics_;
  std::unique_ptr<Ledger> ledger_;
  int sessions_ = 0;
};

TEST_F(LedgerTest, AReservationPastCapacityIsRefusedAndChangesNothing) {
  ASSERT_TRUE(reserve(pending("3")).ok());
  EXPECT_EQ(used(), Quantity(3));
  auto refused = reserve(pending("2"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::Conflict);
  EXPECT_NE(refused.error().message.find("cpu 2"), std::string::npos) << refused.error().message;
  EXPECT_EQ(used(), Quantity(3)) << "memory follows only a committed store";
}

TEST_F(LedgerTest, AnEndedSessionFreesItsReservationAndIsAnnouncedOnce) {
  SessionRecord session = pending("2");
  ASSERT_TRUE(reserve(session).ok());
  std::vector<std::string> ended;
  ledger_->onSessionEnded([&](const SessionRecord& s) { ended.push_back(s.id); });
  ASSERT_TRUE(commit(session, SessionStatus::Terminated, &Transition::release).ok());
  EXPECT_EQ(ledger_->state(ledger_->lock()).active.count(session.id), 0u);
  EXPECT_EQ(used(), Quantity());
  EXPECT_EQ(ended, std::vector<std::string>{session.id});
}

TEST_F(LedgerTest, ASuspendedReservationStopsCountingAndResumesExactly) {
  SessionRecord session = pending("1.5");
  ASSERT_TRUE(reserve(session).ok());
  for (const bool suspend : {true, false}) {
    Transition t;
    (suspend ? t.suspend : t.resume).push_back(session.id);
    const auto guard = ledger_->lock();
    ASSERT_TRUE(ledger_->commit(guard, std::move(t)).ok());
  }
  EXPECT_EQ(used(), *Quantity::parse("1.5"));
}

// ---- AgentDispatcher ---------------------------------------------------------------

// An agent RPC that answers GET /slow only when released, and GET /fast at once.
class FakeAgent {
 public:
  FakeAgent() : server_(http::ServerOptions{"127.0.0.1", 0, 4, 1 << 20, "", ""}, [this](http::Request request, http::Responder respond) {
                  ++requests_;
                  if (request.path == "/slow") {
                    std::lock_guard<std::mutex> lock(mutex_);
                    held_.push_back(std::move(respond));
                    return;
                  }
                  respond(http::Response{200, "text/plain", "fast", {}});
                }) {
    EXPECT_TRUE(server_.start().ok());
  }
  ~FakeAgent() {
    release();
    server_.stop();
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& respond : held_) respond(http::Response{200, "text/plain", "slow", {}});
    held_.clear();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }
  int requests() const { return requests_; }

 private:
  std::mutex mutex_;
  std::vector<http::Responder> held_;
  std::atomic<int> requests_{0};
  http::Server server_;
};

// A dispatcher over a fake agent whose /slow calls hang until released.
class AgentDispatcherTest : public ::testing::Test {
 protected:
  void start(DispatchOptions options) {
    dispatcher_ = std::make_unique<AgentDispatcher>(AgentClient("token", 10s), options, metrics_);
    dispatcher_->start();
  }
  void TearDown() override {
    hung_.release();
    if (dispatcher_) dispatcher_->stop();
  }
  // Releases the hung calls until `count` reaches `expected`.
  bool releaseUntil(const std::atomic<int>& count, int expected) {
    return testing::eventually([&] {
      hung_.release();
      return count == expected;
    });
  }

  Metrics metrics_;
  FakeAgent hung_;
  std::unique_ptr<AgentDispatcher> dispatcher_;
};

TEST_F(AgentDispatcherTest, AHungAgentHoldsOnlyItsOwnLane) {
  FakeAgent healthy;
  start(DispatchOptions{3, 1, 8});
  std::atomic<int> slowAnswers{0};
  for (int i = 0; i < 4; ++i) {
    dispatcher_->get("hung", hung_.url(), "/slow", [&](auto reply) { slowAnswers += reply.ok(); });
  }  // the lane holds 8: none is dropped
  ASSERT_TRUE(testing::eventually([&] { return hung_.requests() == 1; })) << "one call at a time to that agent";
  std::promise<Outcome<AgentReply>> fast;
  const auto started = std::chrono::steady_clock::now();
  dispatcher_->get("healthy", healthy.url(), "/fast", [&](auto reply) { fast.set_value(std::move(reply)); });
  auto future = fast.get_future();
  ASSERT_EQ(future.wait_for(2s), std::future_status::ready) << "another agent's call waited behind the hung one";
  EXPECT_TRUE(future.get().ok());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(hung_.requests(), 1);
  ASSERT_TRUE(releaseUntil(slowAnswers, 4));
}

TEST_F(AgentDispatcherTest, AFullLaneDropsAtOnceAndSaysWhy) {
  start(DispatchOptions{1, 1, 2});
  std::atomic<int> answered{0};
  auto count = [&](auto) { ++answered; };
  dispatcher_->get("hung", hung_.url(), "/slow", count);
  ASSERT_TRUE(testing::eventually([&] { return hung_.requests() == 1; }));  // running: the lane holds two more
  for (int i = 0; i < 2; ++i) dispatcher_->get("hung", hung_.url(), "/slow", count);
  std::promise<std::string> dropped;
  dispatcher_->get("hung", hung_.url(), "/slow", [&](Outcome<AgentReply> reply) {
    dropped.set_value(reply.ok() ? "sent" : reply.error().detail);
  });
  auto future = dropped.get_future();
  ASSERT_EQ(future.wait_for(1s), std::future_status::ready);
  EXPECT_NE(future.get().find("already waiting"), std::string::npos);
  EXPECT_EQ(metrics_.agentCallsDropped.load(), 1u);
  ASSERT_TRUE(releaseUntil(answered, 3));
}

TEST_F(AgentDispatcherTest, ACallQueuedPastItsDeadlineIsNotSent) {
  start(DispatchOptions{1, 1, 8});
  dispatcher_->submit("a", [&](const AgentClient& client) { (void)client.get(hung_.url(), "/slow"); }, [](const std::string&) {});
  ASSERT_TRUE(testing::eventually([&] { return hung_.requests() == 1; }));
  std::atomic<bool> ran{false};
  std::promise<std::string> why;
  dispatcher_->submit(
      "a", [&](const AgentClient&) { ran = true; }, [&](const std::string& reason) { why.set_value(reason); },
      std::chrono::steady_clock::now() + 50ms);
  std::this_thread::sleep_for(100ms);
  hung_.release();
  auto future = why.get_future();
  ASSERT_EQ(future.wait_for(2s), std::future_status::ready);
  EXPECT_NE(future.get().find("deadline"), std::string::npos);
  EXPECT_FALSE(ran);
}

// ---- Waiters -----------------------------------------------------------------------

TEST(Waiters, APollIsAnsweredWhenItsSessionEndsItsWaitRunsOutOrTheManagerStops) {
  std::atomic<int> lookups{0};
  Waiters waiters([&](const Caller&, const std::string& id) -> Outcome<SessionRecord> {
    ++lookups;
    SessionRecord still;
    still.id = id;
    still.status = SessionStatus::Running;
    return still;
  });
  waiters.start();
  const auto later = std::chrono::steady_clock::now() + 60s;
  std::promise<Outcome<SessionRecord>> ended, expired, stopped;
  Waiters::SessionCallback onEnded = [&](auto r) { ended.set_value(std::move(r)); };
  Waiters::SessionCallback onExpired = [&](auto r) { expired.set_value(std::move(r)); };
  Waiters::SessionCallback onStopped = [&](auto r) { stopped.set_value(std::move(r)); };
  ASSERT_TRUE(waiters.add("s1", Caller{"AK", false}, later, onEnded));
  ASSERT_TRUE(waiters.add("s2", Caller{"AK", false}, std::chrono::steady_clock::now() + 50ms, onExpired));
  ASSERT_TRUE(waiters.add("s3", Caller{"AK", false}, later, onStopped));

  SessionRecord over;
  over.id = "s1";
  over.status = SessionStatus::Terminated;
  waiters.finished(over);
  auto endedAnswer = ended.get_future();
  ASSERT_EQ(endedAnswer.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(endedAnswer.get()->status, SessionStatus::Terminated);
  auto expiredAnswer = expired.get_future();
  ASSERT_EQ(expiredAnswer.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(expiredAnswer.get()->status, SessionStatus::Running) << "looked up again when the wait ran out";
  EXPECT_EQ(lookups.load(), 1);

  waiters.stop();
  auto stoppedAnswer = stopped.get_future();
  ASSERT_EQ(stoppedAnswer.wait_for(0s), std::future_status::ready);
  auto answer = stoppedAnswer.get();
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().kind, ErrorKind::ShuttingDown);
  Waiters::SessionCallback late = [](auto) {};
  EXPECT_FALSE(waiters.add("s4", Caller{}, later, late)) << "nothing is queued once stopping";
  EXPECT_TRUE(static_cast<bool>(late)) << "the callback stays with the caller";
}

}  // namespace
}  // namespace bai::manager
