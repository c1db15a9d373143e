// The manager's core in process: a real store (SQLite), heartbeats and events fed
// directly, and a fake agent RPC (a real HTTP server) that the dispatch calls.
#include "http_server.hpp"
#include "api_views.hpp"
#include "manager.hpp"
#include "manager_api.hpp"
#include "manager_test_support.hpp"
#include "admin_records.hpp"

#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <functional>
#include <future>
#include <thread>

namespace bai::manager {
namespace {

using namespace std::chrono_literals;

using bai::testing::eventually;

// An agent's RPC that starts whatever it is asked (or refuses, or is away).
class FakeAgentRpc {
 public:
  enum class Mode { Accept, Refuse, BadRequest };

  explicit FakeAgentRpc(std::uint16_t port = 0, std::string cert = "", std::string key = "")
      : tls_(!cert.empty()),
        server_({"127.0.0.1", port, 1, 1 << 20, cert, key}, [this](const http::Request& r) { return handle(r); }) {}

  std::uint16_t start() {
    EXPECT_TRUE(server_.start().ok());
    return server_.port();
  }
  void stop() { server_.stop(); }
  std::string url() const { return (tls_ ? "https" : "http") + std::string("://127.0.0.1:") + std::to_string(server_.port()); }
  void setMode(Mode mode) { mode_ = mode; }
  // Like a real agent whose free shares are scattered: refuses more than this on one GPU.
  void setLargestShares(double largest) { largestShares_ = largest; }
  std::vector<std::string> created() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return created_;
  }
  std::vector<std::string> destroyed() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return destroyed_;
  }
  std::vector<std::string> refused() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return refused_;
  }
  // Whom the create of session `id` said it runs as (nullopt: no owner, or no create).
  std::optional<protocol::SessionOwner> ownerOf(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = owners_.find(id);
    return it == owners_.end() ? std::nullopt : it->second;
  }
  // The create of session `id` as the agent read it (nullopt: none came).
  std::optional<protocol::CreateSessionRequest> createOf(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = creates_.find(id);
    return it == creates_.end() ? std::nullopt : std::optional(it->second);
  }

 private:
  http::Response handle(const http::Request& request) {
    if (request.header("authorization") != "Bearer token") return {401, "application/json", "{}", {}};
    if (request.method == "POST" && request.path == "/v1/sessions") {
      if (mode_ == Mode::Refuse) {
        return {409, "application/json", protocol::ApiError{"insufficient-resource", "Busy", "no room here"}.toJson(), {}};
      }
      if (mode_ == Mode::BadRequest) {
        return {400, "application/json", protocol::ApiError{"invalid-resource-combination", "Bad", "exclusive slots"}.toJson(), {}};
      }
      auto create = protocol::CreateSessionRequest::fromJson(request.body);
      EXPECT_TRUE(create.ok());
      std::lock_guard<std::mutex> lock(mutex_);
      if (create->slots.get("cuda.shares").toDouble() > largestShares_) {
        refused_.push_back(create->sessionId);
        return {409, "application/json",
                protocol::ApiError{"fractional-resource-fragmented", "Fragmented", "no GPU has that much free"}.toJson(), {}};
      }
      created_.push_back(create->sessionId);
      owners_[create->sessionId] = create->owner;
      creates_[create->sessionId] = *create;
      protocol::SessionInfo info;
      info.id = create->sessionId;
      info.state = protocol::SessionState::Running;
      info.startedAtMillis = 1;
      return {201, "application/json", info.toJson(), {}};
    }
    if (request.method == "DELETE" && request.path.rfind("/v1/sessions/", 0) == 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      protocol::SessionInfo info;
      info.id = request.path.substr(13);
      destroyed_.push_back(info.id);
      info.state = protocol::SessionState::Running;  // stopping; its exit event follows
      return {200, "application/json", info.toJson(), {}};
    }
    return {404, "application/json", protocol::ApiError{"not-found", "No", request.path}.toJson(), {}};
  }

  bool tls_;
  http::Server server_;
  std::atomic<Mode> mode_{Mode::Accept};
  std::atomic<double> largestShares_{1e18};
  mutable std::mutex mutex_;
  std::vector<std::string> created_;
  std::vector<std::string> destroyed_;
  std::vector<std::string> refused_;
  std::map<std::string, std::optional<protocol::SessionOwner>> owners_;
  std::map<std::string, protocol::CreateSessionRequest> creates_;
};

using test_support::nodeState;

protocol::AgentState withLargest(protocol::AgentState state, const std::string& slot, const char* largest) {
  state.largestAllocatable.set(SlotName::of(slot), *Quantity::parse(largest));
  return state;
}

// The real store, whose writes fail while `failWrites` is set (a full disk, say).
class FlakyStore final : public Store {
 public:
  FlakyStore(std::unique_ptr<Store> store, std::shared_ptr<std::atomic<bool>> failWrites)
      : store_(std::move(store)), failWrites_(std::move(failWrites)) {}
  Result<void> write(const TransactionFn& fn) override {
    if (*failWrites_) return fail(ErrorCode::Internal, "disk full (injected)");
    return store_->write(fn);
  }
  Result<void> read(const TransactionFn& fn) override { return store_->read(fn); }
  int schemaVersion() const override { return store_->schemaVersion(); }
  std::string describe() const override { return store_->describe(); }

 private:
  std::unique_ptr<Store> store_;
  std::shared_ptr<std::atomic<bool>> failWrites_;
};

class ManagerCoreTest : public ::testing::Test {
 protected:
  void startManager(std::chrono::milliseconds heartbeatTimeout = 10s, const std::string& agentCaFile = "") {
    ManagerSettings settings;
    settings.agentCaFile = agentCaFile;
    for (const char* variable : {"BAI_POLICY_DIR", "BAI_POLICY_FIXTURE_DIR"}) {
      if (const char* dir = std::getenv(variable)) settings.policyPath.push_back(dir);
    }
    settings.heartbeatTimeout = heartbeatTimeout;
    settings.schedulerPeriod = 50ms;
    settings.agentRpcTimeout = 2s;
    settings.dispatchThreads = 2;
    settings.defaultSessionSlots = defaultSessionSlots_;
    auto store = openStore("sqlite://" + (dir_.path() / "m.db").string());
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto flaky = std::make_unique<FlakyStore>(std::move(*store), failWrites_);
    auto manager = Manager::start(settings, std::move(flaky), "token", LogSink());
    ASSERT_TRUE(manager.ok()) << manager.error().message;
    manager_ = std::move(*manager);
  }

  void report(const std::string& id, const protocol::AgentState& state, std::uint64_t digest = 1) {
    protocol::Heartbeat heartbeat{id, digest, state};
    auto reply = manager_->heartbeat(id, heartbeat);
    ASSERT_TRUE(reply.ok()) << reply.error().detail;
  }

  protocol::EventAck event(const std::string& agentId, std::uint64_t seq, const std::string& session, protocol::EventKind kind,
                           std::optional<int> exitCode = std::nullopt) {
    protocol::EventBatch batch{agentId, {{seq, session, kind, exitCode, "", 1000}}};
    auto ack = manager_->events(agentId, batch);
    EXPECT_TRUE(ack.ok());
    return ack ? *ack : protocol::EventAck{};
  }

  SessionRecord submit(std::vector<std::pair<std::string, std::string>> resources, const Caller& caller = kAdmin,
                       const std::string& group = "default") {
    NewSession request;
    request.command = {"true"};
    request.resources = std::move(resources);
    request.scalingGroup = group;
    auto created = manager_->createSession(caller, request);
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().detail);
    return created ? *created : SessionRecord{};
  }

  SessionStatus status(const std::string& id) { return manager_->session(kAdmin, id)->status; }

  // The manager's figures for one slot of an agent: zeros if it lacks the slot, -1 used
  // and capacity if the agent is unknown.
  AgentSlotFigures figures(const std::string& agentId, const std::string& slot) {
    for (const auto& agent : manager_->agents()) {
      if (agent.record.id == agentId) {
        auto it = agent.record.slots.find(slot);
        return it == agent.record.slots.end() ? AgentSlotFigures{} : it->second;
      }
    }
    return {Quantity(-1), Quantity(-1), Quantity(-1)};
  }
  Quantity used(const std::string& agentId, const std::string& slot) { return figures(agentId, slot).used; }
  Quantity capacity(const std::string& agentId, const std::string& slot) { return figures(agentId, slot).capacity; }

  std::uint64_t agentRowsSaved() const { return manager_->metrics().agentRowsSaved.load(); }

  // Stores scaling group `name` as `configure` leaves a fresh record.
  void storeGroup(const std::string& name, const std::function<void(ScalingGroupRecord&)>& configure) {
    ScalingGroupRecord group;
    group.name = name;
    configure(group);
    ASSERT_TRUE(manager_->admin().upsertScalingGroup(group).ok());
  }

  AgentStatus agentStatus(const std::string& agentId) {
    for (const auto& agent : manager_->agents()) {
      if (agent.record.id == agentId) return agent.record.status;
    }
    return AgentStatus::Lost;
  }

  static inline const Caller kAdmin{"AKADMIN", true};
  std::vector<std::pair<std::string, std::string>> defaultSessionSlots_ = ManagerSettings{}.defaultSessionSlots;
  test::TempDir dir_;
  std::shared_ptr<std::atomic<bool>> failWrites_ = std::make_shared<std::atomic<bool>>(false);
  std::unique_ptr<Manager> manager_;
};

TEST_F(ManagerCoreTest, AnAgentRegistersByFullHeartbeatAndIsAskedForItWhenStale) {
  startManager();
  EXPECT_TRUE(manager_->heartbeat("a", {"a", 7, std::nullopt})->sendFull) << "unknown agent";
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "4"}, {"mem", "8589934592"}, {"acme.device", "2"}}), 7);
  EXPECT_FALSE(manager_->heartbeat("a", {"a", 7, std::nullopt})->sendFull);
  EXPECT_TRUE(manager_->heartbeat("a", {"a", 8, std::nullopt})->sendFull) << "its state changed since";
  const auto types = manager_->slotTypes();
  EXPECT_EQ(types.at("acme.device"), SlotType::Count);
  EXPECT_EQ(types.at("mem"), SlotType::Bytes);
  EXPECT_FALSE(manager_->heartbeat("b", {"a", 1, std::nullopt}).ok()) << "the URL and body must name the same agent";
}

TEST_F(ManagerCoreTest, AChangedReportIsSavedBeforeItsAnswerAndAnUnchangedOneWritesNothing) {
  startManager();
  const auto fourCores = nodeState("http://127.0.0.1:1", {{"cpu", "4"}});
  report("a", fourCores, 1);
  const std::uint64_t saved = agentRowsSaved();
  report("a", fourCores, 2);
  EXPECT_EQ(agentRowsSaved(), saved) << "only the digest changed: nothing to write";
  EXPECT_FALSE(manager_->heartbeat("a", {"a", 2, std::nullopt})->sendFull) << "yet the new digest is known";

  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "8"}}), 3);
  EXPECT_EQ(agentRowsSaved(), saved + 1);
  manager_.reset();
  startManager();
  EXPECT_EQ(capacity("a", "cpu"), Quantity(8)) << "answered means stored";
}

TEST_F(ManagerCoreTest, ChangedReportsOfManyAgentsAtOnceAreAllSavedAndAnswered) {
  startManager();
  constexpr int kAgents = 8, kReports = 25;
  auto state = [](int cores) { return nodeState("http://127.0.0.1:1", {{"cpu", std::to_string(cores)}}); };
  for (int agent = 0; agent < kAgents; ++agent) report("agent-" + std::to_string(agent), state(1), 1);
  const std::uint64_t saved = agentRowsSaved();
  const std::uint64_t batches = manager_->metrics().agentRowBatches.load();
  std::atomic<int> failures{0};
  std::vector<std::thread> agents;
  for (int agent = 0; agent < kAgents; ++agent) {
    agents.emplace_back([&, agent] {
      const std::string id = "agent-" + std::to_string(agent);
      for (std::uint64_t n = 2; n <= kReports + 1; ++n) {
        if (!manager_->heartbeat(id, {id, n, state(static_cast<int>(n) + agent)}).ok()) ++failures;
      }
    });
  }
  for (auto& agent : agents) agent.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(agentRowsSaved(), saved + kAgents * kReports);
  const std::uint64_t commits = manager_->metrics().agentRowBatches.load() - batches;
  EXPECT_GE(commits, 1u);
  EXPECT_LE(commits, static_cast<std::uint64_t>(kAgents * kReports));
  manager_.reset();
  startManager();
  for (int agent = 0; agent < kAgents; ++agent) {
    EXPECT_EQ(capacity("agent-" + std::to_string(agent), "cpu"), Quantity(kReports + 1 + agent)) << "the last report won";
  }
}

TEST_F(ManagerCoreTest, AReportTheStoreCannotSaveIsRefusedAndAskedForAgain) {
  startManager();
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "4"}}), 1);
  const auto eightCores = nodeState("http://127.0.0.1:1", {{"cpu", "8"}});
  *failWrites_ = true;
  auto refused = manager_->heartbeat("a", {"a", 2, eightCores});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::StoreFailed);
  EXPECT_EQ(refused.error().kind, ErrorKind::StoreFailed);
  *failWrites_ = false;
  EXPECT_TRUE(manager_->heartbeat("a", {"a", 2, std::nullopt})->sendFull) << "its unsaved state is asked for again";
  report("a", eightCores, 2);
  manager_.reset();
  startManager();
  EXPECT_EQ(capacity("a", "cpu"), Quantity(8));
}

TEST_F(ManagerCoreTest, AChangedReportDuringShutdownIsSavedAndAnswered) {
  startManager();
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "4"}}), 1);
  manager_->shutdown();  // the API still answers until the HTTP server stops
  auto reply = manager_->heartbeat("a", {"a", 2, nodeState("http://127.0.0.1:1", {{"cpu", "8"}})});
  ASSERT_TRUE(reply.ok()) << "answered, not left to the stopped writer";
  manager_.reset();
  startManager();
  EXPECT_EQ(capacity("a", "cpu"), Quantity(8));
}

TEST_F(ManagerCoreTest, AConflictingSlotTypeIsNotTakenFromThatAgent) {
  startManager();
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "4"}, {"mem", "1024"}}));
  auto state = nodeState("http://127.0.0.1:2", {{"cpu", "4"}, {"mem", "1024"}});
  state.slotTypes["mem"] = SlotType::Count;
  report("b", state);
  EXPECT_EQ(manager_->slotTypes().at("mem"), SlotType::Bytes) << "never silently changed";
  for (const auto& agent : manager_->agents()) {
    const std::size_t expected = agent.record.id == "b" ? 0u : 1u;  // b's mem is refused
    EXPECT_EQ(agent.record.slots.count("mem"), expected) << agent.record.id;
  }
  EXPECT_NE(metricsText(manager_->figures(), manager_->metrics()).find("bai_manager_slot_type_conflicts_total 1"), std::string::npos);
}

TEST_F(ManagerCoreTest, EnqueueRefusesUnknownAndUnservedSlotsAndParsesSizes) {
  startManager();
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "4"}, {"mem", "8589934592"}, {"cuda.device", "0"}}));
  NewSession request;
  request.command = {"true"};
  request.resources = {{"acme.device", "1"}};
  auto unknown = manager_->createSession(kAdmin, request);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().kind, ErrorKind::UnknownSlot);
  EXPECT_NE(unknown.error().detail.find("acme.device"), std::string::npos);
  request.resources = {{"cuda.device", "1"}};
  auto unserved = manager_->createSession(kAdmin, request);
  ASSERT_FALSE(unserved.ok());
  EXPECT_EQ(unserved.error().kind, ErrorKind::SlotNotServed);
  EXPECT_NE(unserved.error().detail.find("cuda.device"), std::string::npos);
  request.resources = {{"cpu", "1"}};
  request.scalingGroup = "elsewhere";
  EXPECT_EQ(manager_->createSession(kAdmin, request).error().kind, ErrorKind::UnknownScalingGroup);
  storeGroup("elsewhere", [](ScalingGroupRecord&) {});  // a group with no agents
  EXPECT_EQ(manager_->createSession(kAdmin, request).error().kind, ErrorKind::SlotNotServed);
  request.scalingGroup = "default";
  request.resources = {{"mem", "-1"}};
  EXPECT_EQ(manager_->createSession(kAdmin, request).error().kind, ErrorKind::InvalidResource);
  request.command = {};
  request.resources = {{"cpu", "1"}};
  EXPECT_EQ(manager_->createSession(kAdmin, request).error().kind, ErrorKind::InvalidRequest);
  const SessionRecord sized = submit({{"mem", "4g"}, {"cuda.device", "0"}});
  EXPECT_EQ(sized.requested.get("mem"), Quantity(4LL << 30));
  EXPECT_FALSE(sized.requested.contains("cuda.device")) << "zero amounts are not requests";
}

TEST_F(ManagerCoreTest, APlacedSessionRunsAndItsExitFreesTheReservationOnce) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  report("a", nodeState(rpc.url(), {{"cpu", "4"}, {"cuda.device", "2"}}));
  const SessionRecord session = submit({{"cpu", "1"}, {"cuda.device", "2"}});
  EXPECT_TRUE(protocol::isSessionId(session.id)) << session.id << ": the agent takes only such ids";
  ASSERT_TRUE(eventually([&] { return status(session.id) == SessionStatus::Running; }));
  EXPECT_EQ(rpc.created(), std::vector<std::string>{session.id});
  EXPECT_EQ(used("a", "cuda.device"), Quantity(2));
  EXPECT_EQ(manager_->session(kAdmin, session.id)->agentId, "a");

  // A second one waits: no GPU left. Its reason says which slot is short.
  const SessionRecord waiting = submit({{"cuda.device", "1"}});
  ASSERT_TRUE(eventually([&] { return manager_->pendingReason(waiting.id).find("cuda.device") != std::string::npos; }));
  EXPECT_EQ(status(waiting.id), SessionStatus::Pending);

  EXPECT_EQ(event("a", 1, session.id, protocol::EventKind::Exited, 3).ackedThrough, 1u);
  auto ended = manager_->session(kAdmin, session.id);
  EXPECT_EQ(ended->status, SessionStatus::Terminated);
  EXPECT_EQ(ended->exitCode, 3);
  // Delivered again (the agent missed our ack): acknowledged, not applied twice.
  EXPECT_EQ(event("a", 1, session.id, protocol::EventKind::Exited, 9).ackedThrough, 1u);
  EXPECT_EQ(manager_->session(kAdmin, session.id)->exitCode, 3);
  // The freed GPUs go to the waiting session.
  ASSERT_TRUE(eventually([&] { return status(waiting.id) == SessionStatus::Running; }));
  EXPECT_EQ(used("a", "cuda.device"), Quantity(1));
  EXPECT_EQ(used("a", "cpu"), Quantity(1)) << "the default cpu of the session that named none";
}

TEST_F(ManagerCoreTest, ARefusingAgentIsPassedOverForAnother) {
  FakeAgentRpc busy, willing;
  busy.start();
  willing.start();
  busy.setMode(FakeAgentRpc::Mode::Refuse);
  startManager();
  // busy looks emptier, so the dispersed-or-concentrated choice is not what decides.
  report("busy", nodeState(busy.url(), {{"cpu", "4"}}));
  report("willing", nodeState(willing.url(), {{"cpu", "4"}}));
  const SessionRecord first = submit({{"cpu", "3"}});
  ASSERT_TRUE(eventually([&] { return status(first.id) == SessionStatus::Running; }));
  const SessionRecord second = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(second.id) == SessionStatus::Running; }));
  for (const auto& id : {first.id, second.id}) EXPECT_EQ(manager_->session(kAdmin, id)->agentId, "willing");
  EXPECT_EQ(used("busy", "cpu"), Quantity()) << "a refusal releases the reservation";
  EXPECT_EQ(used("willing", "cpu"), Quantity(4));
}

TEST_F(ManagerCoreTest, ABadRequestRefusalEndsTheSessionWithTheAgentsReason) {
  FakeAgentRpc rpc;
  rpc.start();
  rpc.setMode(FakeAgentRpc::Mode::BadRequest);
  startManager();
  report("a", nodeState(rpc.url(), {{"cpu", "4"}}));
  const SessionRecord session = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(session.id) == SessionStatus::Error; }));
  EXPECT_NE(manager_->session(kAdmin, session.id)->statusReason.find("exclusive slots"), std::string::npos);
  EXPECT_EQ(used("a", "cpu"), Quantity());
}

TEST_F(ManagerCoreTest, ASilentAgentIsLostAndComesBackWithWhatStillRuns) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager(400ms);
  report("a", nodeState(rpc.url(), {{"cpu", "4"}}));
  const SessionRecord running = submit({{"cpu", "2"}});
  ASSERT_TRUE(eventually([&] { return status(running.id) == SessionStatus::Running; }));
  const SessionRecord cancelled = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(cancelled.id) == SessionStatus::Running; }));

  ASSERT_TRUE(eventually([&] { return agentStatus("a") == AgentStatus::Lost; }, 3s));
  EXPECT_EQ(status(running.id), SessionStatus::Running) << "its state stays; only the accounting frees it";
  EXPECT_NE(manager_->session(kAdmin, running.id)->statusReason.find("lost"), std::string::npos);
  EXPECT_EQ(used("a", "cpu"), Quantity());
  // Destroyed while the agent is away: carried out when it returns.
  EXPECT_EQ(manager_->destroySession(kAdmin, cancelled.id)->status, SessionStatus::Terminating);
  EXPECT_TRUE(manager_->heartbeat("a", {"a", 1, std::nullopt})->sendFull) << "a lost agent must send its state";

  report("a", nodeState(rpc.url(), {{"cpu", "4"}}, {running.id, cancelled.id}), 2);
  EXPECT_EQ(agentStatus("a"), AgentStatus::Alive);
  EXPECT_EQ(used("a", "cpu"), Quantity(3)) << "what still runs counts again";
  EXPECT_EQ(manager_->session(kAdmin, running.id)->statusReason, "");
  ASSERT_TRUE(eventually([&] { return rpc.destroyed() == std::vector<std::string>{cancelled.id}; }));
  event("a", 1, cancelled.id, protocol::EventKind::Exited, 143);
  EXPECT_EQ(status(cancelled.id), SessionStatus::Terminated);
  EXPECT_EQ(used("a", "cpu"), Quantity(2));
}

TEST_F(ManagerCoreTest, ARestartRetriesPlacementsInFlightWithTheSameId) {
  FakeAgentRpc away;
  const std::uint16_t port = away.start();
  away.stop();  // the agent's RPC does not answer: the start stays in flight
  startManager();
  report("a", nodeState("http://127.0.0.1:" + std::to_string(port), {{"cpu", "4"}}));
  const SessionRecord session = submit({{"cpu", "2"}});
  ASSERT_TRUE(eventually([&] { return status(session.id) == SessionStatus::Scheduled; }));
  manager_.reset();

  FakeAgentRpc back(port);
  back.start();
  startManager();
  EXPECT_EQ(used("a", "cpu"), Quantity(2)) << "the reservation survived";
  ASSERT_TRUE(eventually([&] { return status(session.id) == SessionStatus::Running; }));
  EXPECT_EQ(back.created(), std::vector<std::string>{session.id});
  EXPECT_EQ(used("a", "cpu"), Quantity(2)) << "not reserved twice";
}

TEST_F(ManagerCoreTest, ALongPollAnswersWhenTheSessionEndsOrTheWaitRunsOut) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  report("a", nodeState(rpc.url(), {{"cpu", "4"}}));
  const SessionRecord session = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(session.id) == SessionStatus::Running; }));

  std::promise<Outcome<SessionRecord>> timedOut;
  const auto started = std::chrono::steady_clock::now();
  manager_->sessions().wait(kAdmin, session.id, 200ms, [&](Outcome<SessionRecord> r) { timedOut.set_value(std::move(r)); });
  auto early = timedOut.get_future().get();
  EXPECT_GE(std::chrono::steady_clock::now() - started, 190ms);
  EXPECT_EQ(early->status, SessionStatus::Running);

  std::promise<Outcome<SessionRecord>> ended;
  auto future = ended.get_future();
  manager_->sessions().wait(kAdmin, session.id, 10s, [&](Outcome<SessionRecord> r) { ended.set_value(std::move(r)); });
  EXPECT_EQ(future.wait_for(50ms), std::future_status::timeout);
  event("a", 1, session.id, protocol::EventKind::Exited, 0);
  ASSERT_EQ(future.wait_for(2s), std::future_status::ready);
  EXPECT_EQ(future.get()->status, SessionStatus::Terminated);
}

// The HTTP layer's callback reads the pending reason: answering must not hold the
// manager's lock (it did once, and a timed-out wait on a pending session deadlocked).
TEST_F(ManagerCoreTest, ALongPollCallbackMayCallBackIntoTheManager) {
  startManager();
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "1"}}));
  const SessionRecord pending = submit({{"cpu", "2"}});
  std::promise<std::string> answered;
  manager_->sessions().wait(kAdmin, pending.id, 100ms, [&](Outcome<SessionRecord> r) {
    answered.set_value(sessionStatusName(r->status) + std::string(" ") + manager_->pendingReason(pending.id));
  });
  auto future = answered.get_future();
  ASSERT_EQ(future.wait_for(3s), std::future_status::ready);
  EXPECT_EQ(future.get(), "PENDING no agent has cpu 2 free (best: a with 1)");
}

TEST_F(ManagerCoreTest, ShutdownAnswersEveryLongPoll) {
  startManager();
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "1"}}));
  const SessionRecord pending = submit({{"cpu", "2"}});
  std::promise<int> answered;
  manager_->sessions().wait(kAdmin, pending.id, 60s, [&](const Outcome<SessionRecord>& r) {
    answered.set_value(r.ok() ? 200 : httpStatusOf(r.error().kind));
  });
  manager_->shutdown();
  auto future = answered.get_future();
  ASSERT_EQ(future.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(future.get(), 503);
}

TEST_F(ManagerCoreTest, UsersSeeOnlyTheirOwnSessions) {
  startManager();
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "4"}}));
  const Caller alice{"AKALICE", false}, bob{"AKBOB", false};
  const SessionRecord mine = submit({{"cpu", "5"}}, alice);  // more than the agent has: it stays pending
  EXPECT_TRUE(manager_->session(alice, mine.id).ok());
  EXPECT_EQ(manager_->session(bob, mine.id).error().kind, ErrorKind::UnknownSession);
  EXPECT_EQ(manager_->destroySession(bob, mine.id).error().kind, ErrorKind::UnknownSession);
  EXPECT_EQ(manager_->sessions().list(bob, std::nullopt)->size(), 0u);
  EXPECT_EQ(manager_->sessions().list(alice, std::nullopt)->size(), 1u);
  EXPECT_EQ(manager_->sessions().list(kAdmin, std::nullopt)->size(), 1u);
  EXPECT_EQ(manager_->destroySession(alice, mine.id)->status, SessionStatus::Cancelled);
}


TEST_F(ManagerCoreTest, AgentsServingHttpsAreVerifiedWithTheConfiguredAuthority) {
  if (std::system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  const std::string cert = (dir_.path() / "agent.pem").string(), key = (dir_.path() / "agent.key").string();
  const std::string make = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                           "-addext subjectAltName=IP:127.0.0.1 -keyout " + key + " -out " + cert + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(make.c_str()), 0);
  FakeAgentRpc rpc(0, cert, key);
  rpc.start();
  ASSERT_EQ(rpc.url().rfind("https://", 0), 0u);

  startManager(10s, cert);
  report("a", nodeState(rpc.url(), {{"cpu", "4"}}));
  const SessionRecord trusted = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(trusted.id) == SessionStatus::Running; }));
  manager_.reset();

  startManager();  // the system's authorities do not know this self-signed agent
  const SessionRecord untrusted = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(untrusted.id) == SessionStatus::Scheduled; }));
  EXPECT_TRUE(eventually([&] { return metricsText(manager_->figures(), manager_->metrics()).find("bai_manager_agent_call_failures_total 0") == std::string::npos; }))
      << "the start is not sent to an agent it cannot verify";
  EXPECT_EQ(rpc.created(), std::vector<std::string>{trusted.id});
}

// ---- Scheduling: groups, policies, quotas, head of line ---------------------------------

TEST_F(ManagerCoreTest, ANaivePlacementWouldBeRefusedOnTheFragmentedAgentButOursIsNot) {
  FakeAgentRpc fragmented, whole;
  fragmented.start();
  whole.start();
  fragmented.setLargestShares(0.6);  // 4 shares free in total, at most 0.6 on one GPU
  startManager();
  ScalingGroupRecord group;
  group.name = "default";
  group.selector = "dispersed";  // by remaining alone it would pick the fragmented agent
  ASSERT_TRUE(manager_->admin().upsertScalingGroup(group).ok());
  auto shares = [](const std::string& url, const char* capacity) {
    auto state = nodeState(url, {{"cuda.shares", capacity}});
    state.slotTypes["cuda.shares"] = SlotType::Fraction;
    return state;
  };
  report("fragmented", withLargest(shares(fragmented.url(), "4"), "cuda.shares", "0.6"));
  report("whole", shares(whole.url(), "1"));
  const SessionRecord session = submit({{"cuda.shares", "0.8"}});
  ASSERT_TRUE(eventually([&] { return status(session.id) == SessionStatus::Running; }));
  EXPECT_EQ(manager_->session(kAdmin, session.id)->agentId, "whole");
  EXPECT_TRUE(fragmented.refused().empty()) << "never tried where it could not fit";
  const SessionRecord small = submit({{"cuda.shares", "0.5"}});
  ASSERT_TRUE(eventually([&] { return status(small.id) == SessionStatus::Running; }));
  EXPECT_EQ(manager_->session(kAdmin, small.id)->agentId, "fragmented") << "what fits goes there";
}

TEST_F(ManagerCoreTest, EachScalingGroupRunsItsOwnPolicies) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  ScalingGroupRecord group;
  group.name = "gpu";
  group.selector = "dispersed";
  ASSERT_TRUE(manager_->admin().upsertScalingGroup(group).ok());
  report("full", nodeState(rpc.url(), {{"cpu", "8"}}, {}, "gpu"));
  report("empty", nodeState(rpc.url(), {{"cpu", "8"}}, {}, "gpu"));
  const SessionRecord first = submit({{"cpu", "4"}}, kAdmin, "gpu");
  ASSERT_TRUE(eventually([&] { return status(first.id) == SessionStatus::Running; }));
  const SessionRecord spread = submit({{"cpu", "1"}}, kAdmin, "gpu");
  ASSERT_TRUE(eventually([&] { return status(spread.id) == SessionStatus::Running; }));
  EXPECT_NE(manager_->session(kAdmin, spread.id)->agentId, manager_->session(kAdmin, first.id)->agentId) << "dispersed";

  group.selector = "concentrated";
  ASSERT_TRUE(manager_->admin().upsertScalingGroup(group).ok());
  const SessionRecord packed = submit({{"cpu", "1"}}, kAdmin, "gpu");
  ASSERT_TRUE(eventually([&] { return status(packed.id) == SessionStatus::Running; }));
  EXPECT_EQ(manager_->session(kAdmin, packed.id)->agentId, manager_->session(kAdmin, first.id)->agentId)
      << "concentrated: onto the fuller agent";

  group.selector = "no-such-policy";
  ASSERT_TRUE(manager_->admin().upsertScalingGroup(group).ok());
  const SessionRecord stuck = submit({{"cpu", "1"}}, kAdmin, "gpu");
  ASSERT_TRUE(eventually([&] { return manager_->pendingReason(stuck.id).find("no-such-policy") != std::string::npos; }))
      << manager_->pendingReason(stuck.id);
  EXPECT_EQ(status(stuck.id), SessionStatus::Pending);
}

TEST_F(ManagerCoreTest, ACreateSentToAnAgentCarriesItsKeypairsUidAndGidAsTheyAreAtDispatch) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  report("a", nodeState(rpc.url(), {{"cpu", "8"}}));
  auto keypair = manager_->admin().createKeypair(false, "", KeypairIdentity{7000, 8});
  ASSERT_TRUE(keypair.ok()) << keypair.error().detail;
  const Caller user{keypair->accessKey, false};

  const SessionRecord first = submit({{"cpu", "1"}}, user);
  ASSERT_TRUE(eventually([&] { return rpc.ownerOf(first.id).has_value(); })) << manager_->pendingReason(first.id);
  const auto owner = *rpc.ownerOf(first.id);
  EXPECT_EQ(owner.uid, 7000u);
  EXPECT_EQ(owner.gid, 8u);
  EXPECT_EQ(owner.name, keypair->accessKey) << "keypairs have no user name yet: the access key names the owner";
  EXPECT_TRUE(protocol::isOwnerName(owner.name));

  // An admin's change applies to the sessions dispatched after it.
  ASSERT_TRUE(manager_->admin().setKeypairIdentity(keypair->accessKey, KeypairIdentity{7100, 0}).ok());
  const SessionRecord second = submit({{"cpu", "1"}}, user);
  ASSERT_TRUE(eventually([&] { return rpc.ownerOf(second.id).has_value(); }));
  EXPECT_EQ(rpc.ownerOf(second.id)->uid, 7100u);
  EXPECT_EQ(rpc.ownerOf(second.id)->gid, 7100u);

  // A caller with no keypair of this manager (only tests have one) is sent without an
  // owner, which the agent refuses.
  const SessionRecord stray = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(stray.id) == SessionStatus::Running; }));
  EXPECT_FALSE(rpc.ownerOf(stray.id).has_value());
}

TEST_F(ManagerCoreTest, ASessionOverQuotaWaitsWithTheReasonAndBlocksNobody) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  report("a", nodeState(rpc.url(), {{"cpu", "8"}}));
  ResourcePolicyRecord policy;
  policy.name = "small";
  policy.totalResourceSlots.set(SlotName::of("cpu"), Quantity(2));
  policy.maxConcurrentSessions = 2;
  ASSERT_TRUE(manager_->admin().upsertResourcePolicy(policy).ok());
  auto keypair = manager_->admin().createKeypair(false, "small");
  ASSERT_TRUE(keypair.ok());
  const Caller user{keypair->accessKey, false};

  const SessionRecord first = submit({{"cpu", "2"}}, user);
  ASSERT_TRUE(eventually([&] { return status(first.id) == SessionStatus::Running; })) << manager_->pendingReason(first.id);
  const SessionRecord over = submit({{"cpu", "1"}}, user);
  const SessionRecord other = submit({{"cpu", "1"}});  // the admin's, submitted later
  ASSERT_TRUE(eventually([&] { return status(other.id) == SessionStatus::Running; })) << "quota waits block nobody";
  EXPECT_EQ(status(over.id), SessionStatus::Pending);
  const std::string reason = manager_->pendingReason(over.id);
  EXPECT_NE(reason.find("small"), std::string::npos) << reason;
  EXPECT_NE(reason.find("cpu"), std::string::npos) << reason;

  event("a", 1, first.id, protocol::EventKind::Exited, 0);
  ASSERT_TRUE(eventually([&] { return status(over.id) == SessionStatus::Running; })) << "room in the quota again";
}

TEST_F(ManagerCoreTest, ARequestOverTheWholeQuotaIsRefusedAtOnce) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  report("a", nodeState(rpc.url(), {{"cpu", "8"}}));
  ResourcePolicyRecord policy;
  policy.name = "small";
  policy.totalResourceSlots.set(SlotName::of("cpu"), Quantity(2));
  ASSERT_TRUE(manager_->admin().upsertResourcePolicy(policy).ok());
  auto keypair = manager_->admin().createKeypair(false, "small");
  ASSERT_TRUE(keypair.ok());
  const Caller user{keypair->accessKey, false};

  NewSession request;
  request.command = {"true"};
  request.resources = {{"cpu", "3"}};
  auto refused = manager_->createSession(user, request);
  ASSERT_FALSE(refused.ok()) << "it could never be placed";
  EXPECT_EQ(refused.error().kind, ErrorKind::ExceedsQuota);
  EXPECT_EQ(refused.error().kind, ErrorKind::ExceedsQuota);
  EXPECT_NE(refused.error().detail.find("cpu"), std::string::npos) << refused.error().detail;
  request.resources = {{"cpu", "2"}};
  EXPECT_TRUE(manager_->createSession(user, request).ok()) << "the whole quota is allowed";
}

TEST_F(ManagerCoreTest, HowManyMayPassAWaitingSessionIsBounded) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  ScalingGroupRecord group;
  group.name = "default";
  group.holMaxPasses = 1;
  ASSERT_TRUE(manager_->admin().upsertScalingGroup(group).ok());
  report("a", nodeState(rpc.url(), {{"cpu", "8"}}));
  const SessionRecord running = submit({{"cpu", "6"}});
  ASSERT_TRUE(eventually([&] { return status(running.id) == SessionStatus::Running; }));
  const SessionRecord big = submit({{"cpu", "4"}});  // 2 free: waits
  ASSERT_TRUE(eventually([&] { return !manager_->pendingReason(big.id).empty(); }));
  const SessionRecord passes = submit({{"cpu", "1"}});  // may pass it once
  ASSERT_TRUE(eventually([&] { return status(passes.id) == SessionStatus::Running; }));
  const SessionRecord blocked = submit({{"cpu", "1"}});  // would fit, but big has priority now
  ASSERT_TRUE(eventually([&] { return manager_->pendingReason(blocked.id).find(big.id) != std::string::npos; }))
      << manager_->pendingReason(blocked.id);
  EXPECT_EQ(status(blocked.id), SessionStatus::Pending);
  // A session no agent could ever hold does not get priority: it must not stop the queue.
  const SessionRecord impossible = submit({{"cpu", "100"}});
  ASSERT_TRUE(eventually([&] { return !manager_->pendingReason(impossible.id).empty(); }));

  event("a", 1, running.id, protocol::EventKind::Exited, 0);  // 7 free: big first, then the rest
  ASSERT_TRUE(eventually([&] { return status(blocked.id) == SessionStatus::Running; }));
  EXPECT_EQ(status(big.id), SessionStatus::Running);
  EXPECT_LE(manager_->session(kAdmin, big.id)->scheduledAtMillis, manager_->session(kAdmin, blocked.id)->scheduledAtMillis);
  EXPECT_EQ(manager_->pendingReason(impossible.id).find("priority"), std::string::npos);
}

TEST_F(ManagerCoreTest, APolicyThatAnswersWrongIsLoggedCountedAndWorkedAround) {
  if (std::getenv("BAI_POLICY_FIXTURE_DIR") == nullptr) GTEST_SKIP() << "BAI_POLICY_FIXTURE_DIR is not set (run through meson test)";
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  ScalingGroupRecord group;
  group.name = "default";
  group.sequencer = "bad-order";   // answers an order that is no permutation
  group.selector = "bad-select";   // answers an index out of range
  ASSERT_TRUE(manager_->admin().upsertScalingGroup(group).ok());
  report("a", nodeState(rpc.url(), {{"cpu", "4"}}));
  const SessionRecord session = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(session.id) == SessionStatus::Running; })) << "submission order, first candidate";
  const std::string metrics = metricsText(manager_->figures(), manager_->metrics());
  EXPECT_EQ(metrics.find("bai_manager_policy_errors_total 0"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("bai_manager_policy_errors_total"), std::string::npos);
}

TEST_F(ManagerCoreTest, DrfLetsTheSmallerShareGoFirst) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  storeGroup("default", [](ScalingGroupRecord& group) { group.sequencer = "drf"; });
  report("a", nodeState(rpc.url(), {{"cpu", "4"}}));
  const Caller heavy{"AKHEAVY", false}, light{"AKLIGHT", false};
  const SessionRecord held = submit({{"cpu", "3"}}, heavy);
  const SessionRecord filler = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(held.id) == SessionStatus::Running && status(filler.id) == SessionStatus::Running; }));
  // The group is full. heavy asks first, light later; heavy already holds 3/4 of it.
  const SessionRecord heavyNext = submit({{"cpu", "1"}}, heavy);
  const SessionRecord lightNext = submit({{"cpu", "1"}}, light);
  event("a", 1, filler.id, protocol::EventKind::Exited, 0);  // one cpu free: who gets it?
  ASSERT_TRUE(eventually([&] { return status(heavyNext.id) == SessionStatus::Running || status(lightNext.id) == SessionStatus::Running; }));
  EXPECT_EQ(status(lightNext.id), SessionStatus::Running);
  EXPECT_EQ(status(heavyNext.id), SessionStatus::Pending);
}

// A vendor's fraction slot is packed exactly as cuda.shares is: the manager keys on the
// slot's type, never on its name. g1 already shares a device when g2 joins with fewer
// remaining; plain concentrated takes g2, prefer_shared packs onto g1.
TEST_F(ManagerCoreTest, AVendorsFractionSlotIsPlacedExactlyAsCudaSharesIs) {
  defaultSessionSlots_ = {};  // g2 offers no cpu: the sessions ask for the fraction slot alone
  std::map<std::string, std::vector<std::string>> placedOn;  // "slot prefer" -> agents of its two sessions
  for (const std::string slot : {"cuda.shares", "acme.npu"}) {
    for (const bool preferShared : {false, true}) {
      for (const auto& file : std::filesystem::directory_iterator(dir_.path())) std::filesystem::remove(file.path());
      startManager();
      storeGroup("default", [&](ScalingGroupRecord& group) {
        group.optionsJson = preferShared ? R"({"selector": {"prefer_shared": true}})" : "{}";
      });
      auto node = [&](std::map<std::string, std::string> capacity) {
        auto state = nodeState("http://127.0.0.1:1", std::move(capacity));
        state.slotTypes[slot] = SlotType::Fraction;
        return state;
      };
      report("g1", node({{"cpu", "8"}, {slot, "4"}}));
      const SessionRecord first = submit({{slot, "1"}});
      ASSERT_TRUE(eventually([&] { return status(first.id) != SessionStatus::Pending; }));
      report("g2", node({{slot, "2"}}));  // as many idle kinds as g1 now, and less remaining
      const SessionRecord second = submit({{slot, "0.5"}});
      ASSERT_TRUE(eventually([&] { return status(second.id) != SessionStatus::Pending; }));
      placedOn[slot + (preferShared ? " prefer" : "")] = {manager_->session(kAdmin, first.id)->agentId,
                                                          manager_->session(kAdmin, second.id)->agentId};
      EXPECT_EQ(manager_->slotTypes().at(slot), SlotType::Fraction);
      manager_.reset();
    }
  }
  EXPECT_EQ(placedOn["cuda.shares"], (std::vector<std::string>{"g1", "g2"}));
  EXPECT_EQ(placedOn["cuda.shares prefer"], (std::vector<std::string>{"g1", "g1"}));
  EXPECT_EQ(placedOn["acme.npu"], placedOn["cuda.shares"]);
  EXPECT_EQ(placedOn["acme.npu prefer"], placedOn["cuda.shares prefer"]);
}

// A request that names no cpu or mem gets the defaults (the owner's policy's, else the
// manager's), and they count against the quota: no session runs unlimited.
TEST_F(ManagerCoreTest, ASessionNamingNoCpuOrMemGetsDefaultsThatCountAgainstTheQuota) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  report("a", nodeState(rpc.url(), {{"cpu", "8"}, {"mem", "17179869184"}, {"cuda.device", "2"}}));
  ResourcePolicyRecord policy;
  policy.name = "small";
  policy.totalResourceSlots = test_support::slots({{"cpu", "1"}, {"mem", "2147483648"}});
  ASSERT_TRUE(manager_->admin().upsertResourcePolicy(policy).ok());
  auto keypair = manager_->admin().createKeypair(false, "small");
  ASSERT_TRUE(keypair.ok());
  const Caller user{keypair->accessKey, false};

  const SessionRecord first = submit({}, user);
  EXPECT_EQ(first.requested.get("cpu"), Quantity(1)) << "scheduler.default-session-slots";
  EXPECT_EQ(first.requested.get("mem"), Quantity(1LL << 30));
  EXPECT_FALSE(first.requested.contains("cuda.device")) << "accelerator slots get no default";
  ASSERT_TRUE(eventually([&] { return status(first.id) == SessionStatus::Running; })) << manager_->pendingReason(first.id);
  const SessionRecord second = submit({{"mem", "0"}}, user);  // zero names no amount either
  EXPECT_EQ(second.requested.get("mem"), Quantity(1LL << 30));
  ASSERT_TRUE(eventually([&] { return manager_->pendingReason(second.id).find("cpu 1; 1 held") != std::string::npos; }))
      << manager_->pendingReason(second.id);
  EXPECT_EQ(status(second.id), SessionStatus::Pending);

  policy.defaultSessionSlots = test_support::slots({{"mem", "2147483648"}});
  ASSERT_TRUE(manager_->admin().upsertResourcePolicy(policy).ok());
  const SessionRecord third = submit({{"cuda.device", "1"}}, user);
  EXPECT_EQ(third.requested.get("mem"), Quantity(2LL << 30)) << "the policy's default first";
  EXPECT_EQ(third.requested.get("cpu"), Quantity(1)) << "then the manager's";
  EXPECT_EQ(submit({{"cpu", "1"}, {"mem", "4g"}}).requested.get("mem"), Quantity(4LL << 30)) << "a named amount stays";
}

// One keypair's flood of sessions that can never be placed is capped by default.
TEST_F(ManagerCoreTest, APendingQueuePerKeypairIsCappedByDefault) {
  startManager();
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "4"}}));
  const Caller flood{"AKFLOOD", false}, other{"AKOTHER", false};
  const int limit = ManagerSettings{}.maxPendingPerKeypair;
  ASSERT_GT(limit, 0) << "a safe default, not unlimited";
  ASSERT_LE(limit, 1000);
  NewSession request;
  request.command = {"true"};
  request.resources = {{"cpu", "5"}};  // served, never fits: stays pending
  for (int i = 0; i < limit; ++i) ASSERT_TRUE(manager_->createSession(flood, request).ok()) << i;
  auto refused = manager_->createSession(flood, request);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, ErrorKind::TooManyPending);
  EXPECT_NE(refused.error().detail.find("scheduler.max-pending-per-keypair"), std::string::npos) << refused.error().detail;
  EXPECT_TRUE(manager_->createSession(other, request).ok()) << "another keypair is not held back";
}

// Amounts that no agent grants are refused at submission, not accepted and failed on an
// agent: count slots in whole numbers, a fraction slot in its agents' quantum.
TEST_F(ManagerCoreTest, AnAmountNoAgentGrantsIsRefusedAtSubmissionNamingTheRule) {
  startManager();
  auto state = nodeState("http://127.0.0.1:1", {{"cpu", "8"}, {"cuda.shares", "4"}});
  state.slotTypes["cuda.shares"] = SlotType::Fraction;
  state.slotQuanta = {{"cpu", Quantity(1)}, {"cuda.shares", test_support::q("0.01")}};
  report("a", state);
  NewSession request;
  request.command = {"true"};
  request.resources = {{"cpu", "0.5"}};
  auto half = manager_->createSession(kAdmin, request);
  ASSERT_FALSE(half.ok());
  EXPECT_EQ(half.error().kind, ErrorKind::InvalidResource);
  EXPECT_NE(half.error().detail.find("whole numbers"), std::string::npos) << half.error().detail;
  EXPECT_NE(half.error().detail.find("nearest valid amounts: 1)"), std::string::npos) << half.error().detail;
  request.resources = {{"cpu", "2.5"}};
  EXPECT_NE(manager_->createSession(kAdmin, request).error().detail.find("2 or 3"), std::string::npos);
  request.resources = {{"cuda.shares", "0.005"}};
  auto fine = manager_->createSession(kAdmin, request);
  ASSERT_FALSE(fine.ok());
  EXPECT_EQ(fine.error().kind, ErrorKind::InvalidResource);
  EXPECT_NE(fine.error().detail.find("multiples of 0.01"), std::string::npos) << fine.error().detail;
  EXPECT_NE(fine.error().detail.find("nearest valid amounts: 0.01)"), std::string::npos) << fine.error().detail;
  EXPECT_TRUE(submit({{"cuda.shares", "0.25"}, {"cpu", "2"}}).requested.contains("cuda.shares"));

  // An agent that reports no quanta (an older one) is held to its slots' types.
  auto old = nodeState("http://127.0.0.1:1", {{"cpu", "8"}}, {}, "old");
  report("b", old);
  request.scalingGroup = "old";
  request.resources = {{"cpu", "0.5"}};
  EXPECT_EQ(manager_->createSession(kAdmin, request).error().kind, ErrorKind::InvalidResource);
}

// A misspelt group is refused whether or not the request names slots; "default" is a
// real group from the first start; a group naming an uninstalled policy is refused.
TEST_F(ManagerCoreTest, UnknownScalingGroupsAndPoliciesAreRefusedAndDefaultIsARealGroup) {
  startManager();
  auto group = manager_->admin().scalingGroup("default");
  ASSERT_TRUE(group.has_value()) << "made at the first start";
  EXPECT_EQ(group->sequencer, "fifo");
  EXPECT_EQ(group->selector, "concentrated");
  report("a", nodeState("http://127.0.0.1:1", {{"cpu", "4"}}, {}, "unrecorded"));
  NewSession request;
  request.command = {"true"};
  request.scalingGroup = "nosuch";
  auto refused = manager_->createSession(kAdmin, request);
  ASSERT_FALSE(refused.ok()) << "it would pend forever";
  EXPECT_EQ(refused.error().kind, ErrorKind::UnknownScalingGroup);
  EXPECT_NE(refused.error().detail.find("nosuch"), std::string::npos) << refused.error().detail;
  request.scalingGroup = "unrecorded";  // an agent's group without a record of its own
  EXPECT_TRUE(manager_->createSession(kAdmin, request).ok());

  if (std::getenv("BAI_POLICY_DIR") == nullptr) GTEST_SKIP() << "BAI_POLICY_DIR is not set (run through meson test)";
  auto make = [](const char* json) {
    return [json](const ScalingGroupRecord&, const SlotTypeTable&) -> Result<ScalingGroupRecord> {
      return scalingGroupFromJson(nlohmann::json::parse(json));
    };
  };
  auto nope = manager_->admin().createScalingGroup(make(R"({"name": "gpu", "sequencer": "nope"})"));
  ASSERT_FALSE(nope.ok());
  EXPECT_EQ(nope.error().kind, ErrorKind::InvalidRequest);
  EXPECT_NE(nope.error().detail.find("nope"), std::string::npos) << nope.error().detail;
  EXPECT_NE(nope.error().detail.find("fifo"), std::string::npos) << "names what is installed: " << nope.error().detail;
  EXPECT_FALSE(manager_->admin().scalingGroup("gpu").has_value());
  ASSERT_TRUE(manager_->admin().createScalingGroup(make(R"({"name": "gpu", "sequencer": "drf"})")).ok());
  auto patched = manager_->admin().patchScalingGroup("default", make(R"({"name": "default", "selector": "fifo"})"));
  ASSERT_FALSE(patched.ok()) << "fifo is a sequencer";
  EXPECT_EQ(patched.error().kind, ErrorKind::InvalidRequest);
  EXPECT_EQ(manager_->admin().scalingGroup("default")->selector, "concentrated");
}

// A session at the head of the line holds back only the sessions that need a slot it
// waits for: a CPU-only session passes one waiting for GPUs. One that can never fit the
// group's healthy capacity gets no priority at all.
TEST_F(ManagerCoreTest, AHeadOfLineSessionHoldsBackOnlySessionsNeedingWhatItWaitsFor) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  storeGroup("default", [](ScalingGroupRecord& group) { group.holMaxPasses = 0; });
  report("a", nodeState(rpc.url(), {{"cpu", "8"}, {"cuda.device", "3"}}));  // 4 GPUs, one unhealthy: 3 offered
  const SessionRecord holder = submit({{"cuda.device", "1"}});
  ASSERT_TRUE(eventually([&] { return status(holder.id) == SessionStatus::Running; }));
  const SessionRecord never = submit({{"cuda.device", "4"}});
  ASSERT_TRUE(eventually([&] { return !manager_->pendingReason(never.id).empty(); }));
  EXPECT_EQ(manager_->pendingReason(never.id).find("priority"), std::string::npos) << manager_->pendingReason(never.id);
  const SessionRecord head = submit({{"cuda.device", "3"}});
  ASSERT_TRUE(eventually([&] { return manager_->pendingReason(head.id).find("priority") != std::string::npos; }))
      << manager_->pendingReason(head.id);

  const SessionRecord cpuOnly = submit({{"cpu", "2"}});
  ASSERT_TRUE(eventually([&] { return status(cpuOnly.id) == SessionStatus::Running; })) << manager_->pendingReason(cpuOnly.id);
  const SessionRecord gpu = submit({{"cuda.device", "1"}});
  ASSERT_TRUE(eventually([&] { return manager_->pendingReason(gpu.id).find(head.id) != std::string::npos; }))
      << manager_->pendingReason(gpu.id);
  EXPECT_NE(manager_->pendingReason(gpu.id).find("cuda.device"), std::string::npos) << manager_->pendingReason(gpu.id);
  EXPECT_EQ(status(gpu.id), SessionStatus::Pending);

  event("a", 1, holder.id, protocol::EventKind::Exited, 0);
  report("a", nodeState(rpc.url(), {{"cpu", "8"}, {"cuda.device", "3"}}, {cpuOnly.id}), 2);
  ASSERT_TRUE(eventually([&] { return status(head.id) == SessionStatus::Running; })) << manager_->pendingReason(head.id);
  EXPECT_EQ(status(gpu.id), SessionStatus::Pending) << "all three GPUs went to the head of the line";
}

// ---- Container sessions: runtimes, images, pull policy --------------------------------

// `state` running host processes and containers, its engine holding `images`.
protocol::AgentState withContainers(protocol::AgentState state, std::vector<std::string> images = {},
                                    bool engineUp = true) {
  state.runtimes = {{"process", true, ""}, {"container", engineUp, engineUp ? "" : "engine down: connection refused"}};
  for (const auto& name : images) state.images.push_back({name, "sha256:" + name, 1000});
  return state;
}

TEST_F(ManagerCoreTest, TheCreateSentToAnAgentCarriesTheImageAndTheGroupsPullPolicy) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  storeGroup("default", [](ScalingGroupRecord& group) { group.imagePullPolicy = "if-missing"; });
  report("a", withContainers(nodeState(rpc.url(), {{"cpu", "8"}})));
  NewSession request;
  request.image = "bai-test/busybox:1";  // no command: the image's own
  request.resources = {{"cpu", "1"}};
  auto container = manager_->createSession(kAdmin, request);
  ASSERT_TRUE(container.ok()) << container.error().detail;
  EXPECT_EQ(container->image, std::optional<std::string>("bai-test/busybox:1"));
  ASSERT_TRUE(eventually([&] { return rpc.createOf(container->id).has_value(); })) << manager_->pendingReason(container->id);
  const auto create = *rpc.createOf(container->id);
  EXPECT_EQ(create.image, std::optional<std::string>("bai-test/busybox:1"));
  EXPECT_EQ(create.pullPolicy, protocol::PullPolicy::IfMissing);
  EXPECT_TRUE(create.command.empty());

  const SessionRecord process = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return rpc.createOf(process.id).has_value(); }));
  EXPECT_FALSE(rpc.createOf(process.id)->image.has_value()) << "a host process";
  EXPECT_FALSE(process.image.has_value());
}

TEST_F(ManagerCoreTest, AnAgentsFailureOfAnImageSessionKeepsItsReason) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  report("a", withContainers(nodeState(rpc.url(), {{"cpu", "8"}})));
  NewSession request;
  request.image = "bai-test/missing:1";
  request.resources = {{"cpu", "1"}};
  auto session = manager_->createSession(kAdmin, request);
  ASSERT_TRUE(session.ok()) << session.error().detail;
  ASSERT_TRUE(eventually([&] { return status(session->id) == SessionStatus::Running; }));
  const std::string why = "image bai-test/missing:1 not present on agent a; pull policy never";
  protocol::EventBatch batch{"a", {{1, session->id, protocol::EventKind::Failed, std::nullopt, why, 1000}}};
  ASSERT_TRUE(manager_->events("a", batch).ok());
  ASSERT_TRUE(eventually([&] { return status(session->id) == SessionStatus::Error; }));
  EXPECT_EQ(manager_->session(kAdmin, session->id)->statusReason, why);
}

TEST_F(ManagerCoreTest, OnlyAgentsOfferingTheRuntimeAreCandidatesAndASessionWaitsSayingWhy) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  report("a", withContainers(nodeState(rpc.url(), {{"cpu", "2"}})));
  report("p", nodeState(rpc.url(), {{"cpu", "8"}}));  // host processes only, and emptier
  NewSession request;
  request.image = "bai-test/busybox:1";
  request.resources = {{"cpu", "2"}};
  auto first = manager_->createSession(kAdmin, request);
  ASSERT_TRUE(first.ok()) << first.error().detail;
  ASSERT_TRUE(eventually([&] { return status(first->id) == SessionStatus::Running; }));
  EXPECT_EQ(manager_->session(kAdmin, first->id)->agentId, "a") << "p has room but runs no containers";

  // a is full: the next waits for room; then its engine goes down, and the reason says so.
  auto second = manager_->createSession(kAdmin, request);
  ASSERT_TRUE(second.ok()) << second.error().detail;
  ASSERT_TRUE(eventually([&] { return manager_->pendingReason(second->id).find("cpu") != std::string::npos; }))
      << manager_->pendingReason(second->id);
  report("a", withContainers(nodeState(rpc.url(), {{"cpu", "2"}}, {first->id}), {}, false), 2);
  ASSERT_TRUE(eventually([&] {
    return manager_->pendingReason(second->id) ==
           "no agent in scaling group 'default' offers the container runtime (agent a: engine down: connection refused)";
  })) << manager_->pendingReason(second->id);
  EXPECT_EQ(status(second->id), SessionStatus::Pending);
  // Host processes still go to p.
  const SessionRecord process = submit({{"cpu", "1"}});
  ASSERT_TRUE(eventually([&] { return status(process.id) == SessionStatus::Running; }));
}

TEST_F(ManagerCoreTest, AnAgentThatHasTheImageIsPreferredWhenOtherwiseEqualButNeverOverridesThePolicy) {
  FakeAgentRpc rpc;
  rpc.start();
  startManager();
  // Two identical agents; only the second has the image (under its engine's full name).
  report("a1", withContainers(nodeState(rpc.url(), {{"cpu", "8"}})));
  report("b1", withContainers(nodeState(rpc.url(), {{"cpu", "8"}}), {"localhost/bai-test/busybox:1"}));
  NewSession request;
  request.image = "bai-test/busybox:1";
  request.resources = {{"cpu", "1"}};
  auto equal = manager_->createSession(kAdmin, request);
  ASSERT_TRUE(equal.ok()) << equal.error().detail;
  ASSERT_TRUE(eventually([&] { return status(equal->id) == SessionStatus::Running; }));
  EXPECT_EQ(manager_->session(kAdmin, equal->id)->agentId, "b1") << "concentrated alone takes a1, the smaller id";

  // Agents that differ by the policy's measure: concentrated packs onto the fuller one,
  // which lacks the image.
  storeGroup("gpu", [](ScalingGroupRecord&) {});
  report("a2", withContainers(nodeState(rpc.url(), {{"cpu", "8"}}, {}, "gpu")));
  report("b2", withContainers(nodeState(rpc.url(), {{"cpu", "16"}}, {}, "gpu"), {"bai-test/busybox:1"}));
  request.scalingGroup = "gpu";
  auto differ = manager_->createSession(kAdmin, request);
  ASSERT_TRUE(differ.ok()) << differ.error().detail;
  ASSERT_TRUE(eventually([&] { return status(differ->id) == SessionStatus::Running; }));
  EXPECT_EQ(manager_->session(kAdmin, differ->id)->agentId, "a2");

  // A process session is never steered by images.
  const SessionRecord process = submit({{"cpu", "1"}}, kAdmin);
  ASSERT_TRUE(eventually([&] { return status(process.id) == SessionStatus::Running; }));
  EXPECT_EQ(manager_->session(kAdmin, process.id)->agentId, "b1") << "concentrated: the fuller of a1 and b1";
}

}  // namespace
}  // namespace bai::manager
