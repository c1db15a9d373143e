// SessionLifecycle alone: a node of fixture plugins, fake processes and limits. Creating,
// ending, destroying and recovering sessions, and the kinds of its refusals.
#include "agent_parts_fixture.hpp"

#include "agent/container_runtime.hpp"
#include "memory_engine.hpp"

#include <algorithm>
#include <fstream>

namespace bai::core::testing {
namespace {

using protocol::EventKind;
using protocol::SessionState;

std::vector<EventKind> journalled(const EventJournal& journal) {
  std::vector<EventKind> kinds;
  for (const auto& event : journal.unacked(100)) kinds.push_back(event.kind);
  return kinds;
}

using SessionLifecycleTest = AgentPartsTest;

TEST_F(SessionLifecycleTest, ASessionRunsWithItsDevicesAndItsExitFreesThem) {
  buildNode({"good"});
  auto lifecycle = makeLifecycle();
  auto created = lifecycle->create(request("s1", "acme.device"));
  ASSERT_TRUE(created.ok()) << created.error().detail;
  EXPECT_TRUE(created->second);
  EXPECT_EQ(created->first.state, SessionState::Running);
  ASSERT_EQ(processes().started.size(), 1u);
  EXPECT_EQ(processes().started[0].env.at("ACME_VISIBLE_DEVICES"), "a0") << "the plugin's environment";
  EXPECT_EQ(processes().started[0].env.at("BAI_SESSION_ID"), "s1");
  EXPECT_EQ(used("acme.device"), Quantity(1));
  EXPECT_EQ(limits_.held, std::set<std::string>{"s1"});
  EXPECT_TRUE(std::filesystem::exists(records_->dirOf("s1") / "record.json"));

  auto retried = lifecycle->create(request("s1", "acme.device"));
  ASSERT_TRUE(retried.ok());
  EXPECT_FALSE(retried->second) << "a retry returns the session as it stands";
  EXPECT_EQ(processes().started.size(), 1u);

  processes().exit("s1", 0);
  EXPECT_EQ(lifecycle->session("s1")->state, SessionState::Exited);
  EXPECT_EQ(used("acme.device"), Quantity(0));
  EXPECT_TRUE(limits_.held.empty());
  EXPECT_EQ(journalled(*journal_), (std::vector<EventKind>{EventKind::Started, EventKind::Exited}));
  EXPECT_EQ(eventsNotified_, 2);
  EXPECT_EQ(lifecycle->sessionsStarted(), 1u);
}

// A lifecycle with both runtimes: processes (fake) and containers over an engine in memory.
class ContainerLifecycleTest : public AgentPartsTest {
 protected:
  std::unique_ptr<SessionLifecycle> makeBothRuntimes(IsolationSettings isolation = {}) {
    SessionLifecycleOptions options = lifecycleOptions();
    options.isolation = std::move(isolation);
    auto processes = std::move(options.makeRuntimes);
    options.makeRuntimes = [this, processes](SessionCallbacks callbacks) {
      auto runtimes = processes(callbacks);
      ContainerSettings settings;
      settings.engineSocket = "/run/test.sock";
      runtimes.push_back(std::make_unique<ContainerRuntime>(
          ContainerRuntimeOptions{settings_.id, settings, sink(), callbacks.onExit, [] {}, {}, callbacks.onStarted},
          std::make_unique<MemoryEngine>(engine_)));
      return runtimes;
    };
    return std::make_unique<SessionLifecycle>(std::move(options), *ledger_, *records_, *journal_);
  }
  protocol::CreateSessionRequest inImage(const std::string& id, const std::string& image) {
    auto r = request(id, "acme.device");
    r.image = image;
    r.command = {};
    return r;
  }
  std::shared_ptr<MemoryEngine::State> engine_ = std::make_shared<MemoryEngine::State>();
};

TEST_F(ContainerLifecycleTest, AContainerSessionRunsInItsImageAndItsExitFreesItsDevices) {
  buildNode({"good"});
  engine_->scriptFor = [](const ContainerSpec&) { return MemoryEngine::Script{{{1, "in a container\n"}}, 0}; };
  auto lifecycle = makeBothRuntimes();
  auto created = lifecycle->create(inImage("c1", "bai-test/busybox:1"));
  ASSERT_TRUE(created.ok()) << created.error().detail;
  ASSERT_TRUE(bai::testing::eventually([&] { return lifecycle->session("c1")->state == SessionState::Exited; }));
  EXPECT_EQ(used("acme.device"), Quantity(0));
  EXPECT_EQ(lifecycle->logs("c1", "stdout", 0, 100, std::nullopt)->text, "in a container\n");
  EXPECT_TRUE(processes().started.empty()) << "no process for a session with an image";
  std::lock_guard<std::mutex> lock(engine_->mutex);
  EXPECT_EQ(engine_->created, 1);
}

TEST_F(ContainerLifecycleTest, ASessionWhoseImageIsPulledIsPreparingThenRunsAndStartedIsJournalledOnce) {
  buildNode({"good"});
  engine_->pullable = {"acme/tool:1"};
  engine_->pullTakes = std::chrono::milliseconds(200);
  engine_->scriptFor = [](const ContainerSpec&) {
    MemoryEngine::Script script;
    script.exitCode = std::nullopt;
    return script;
  };
  auto lifecycle = makeBothRuntimes();
  auto r = inImage("c1", "acme/tool:1");
  r.pullPolicy = protocol::PullPolicy::IfMissing;
  auto created = lifecycle->create(r);
  ASSERT_TRUE(created.ok()) << created.error().detail;
  EXPECT_EQ(created->first.state, SessionState::Preparing) << "answered before the pull ends";
  EXPECT_EQ(used("acme.device"), Quantity(1)) << "its devices are held meanwhile";
  ASSERT_TRUE(bai::testing::eventually([&] { return lifecycle->session("c1")->state == SessionState::Running; }));
  // Journalled right after the state changes (outside the ledger's lock).
  EXPECT_TRUE(bai::testing::eventually(
      [&] { return journalled(*journal_) == std::vector<EventKind>{EventKind::Started}; }));
  ASSERT_TRUE(lifecycle->destroy("c1").ok());
  ASSERT_TRUE(bai::testing::eventually([&] { return lifecycle->session("c1")->state == SessionState::Destroyed; }));
  EXPECT_EQ(used("acme.device"), Quantity(0));
  EXPECT_TRUE(bai::testing::eventually([&] {
    return journalled(*journal_) == std::vector<EventKind>{EventKind::Started, EventKind::Exited};
  })) << "Started once, then its end";
}

TEST_F(ContainerLifecycleTest, AMissingImageEndsTheSessionWithTheReasonInsteadOfARefusal) {
  buildNode({"good"});
  auto lifecycle = makeBothRuntimes();
  auto created = lifecycle->create(inImage("c1", "acme/absent:1"));
  ASSERT_TRUE(created.ok()) << "not a refusal: no other agent would do better";
  EXPECT_EQ(created->first.state, SessionState::Failed);
  EXPECT_EQ(created->first.reason, "image acme/absent:1 not present on agent parts-agent; pull policy never");
  EXPECT_EQ(used("acme.device"), Quantity(0));
  EXPECT_EQ(journalled(*journal_), std::vector<EventKind>{EventKind::Failed});
}

TEST_F(ContainerLifecycleTest, ARuntimeThatIsDownOrMissingIsRefusedBeforeAnythingIsHeld) {
  buildNode({"good"});
  engine_->down = true;
  auto lifecycle = makeBothRuntimes();
  auto down = lifecycle->create(inImage("c1", "bai-test/busybox:1"));
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().kind, AgentErrorKind::RuntimeUnavailable);
  EXPECT_NE(down.error().detail.find("is unreachable"), std::string::npos) << down.error().detail;
  EXPECT_FALSE(lifecycle->session("c1").ok()) << "nothing kept, nothing held";
  EXPECT_TRUE(lifecycle->create(request("p1", "acme.device")).ok()) << "process sessions are not affected";
}

TEST_F(SessionLifecycleTest, ASessionForARuntimeTheAgentLacksIsRefused) {
  buildNode({"good"});
  auto lifecycle = makeLifecycle();
  auto r = request("c1", "acme.device");
  r.image = "bai-test/busybox:1";
  auto refused = lifecycle->create(r);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, AgentErrorKind::RuntimeUnavailable);
  EXPECT_EQ(refused.error().detail, "agent parts-agent has no container runtime (runtime.kinds)");
  EXPECT_EQ(used("acme.device"), Quantity(0));
}

TEST_F(SessionLifecycleTest, RefusalsAreKinds) {
  buildNode({"good"});
  auto lifecycle = makeLifecycle();
  auto unknownSlot = lifecycle->create(request("s0", "nothing.device"));
  ASSERT_FALSE(unknownSlot.ok());
  EXPECT_EQ(unknownSlot.error().kind, AgentErrorKind::UnknownSlot);
  EXPECT_NE(unknownSlot.error().detail.find("parts-agent"), std::string::npos) << unknownSlot.error().detail;

  ASSERT_TRUE(lifecycle->create(request("s1", "acme.device")).ok());
  auto full = lifecycle->create(request("s2", "acme.device"));
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().kind, AgentErrorKind::InsufficientResource);
  EXPECT_FALSE(lifecycle->session("s2").ok()) << "a refused session is not kept";

  EXPECT_EQ(lifecycle->session("nope").error().kind, AgentErrorKind::UnknownSession);
  EXPECT_EQ(lifecycle->destroy("nope").error().kind, AgentErrorKind::UnknownSession);
  EXPECT_EQ(lifecycle->logs("nope", "stdout", 0, 10, std::nullopt).error().kind, AgentErrorKind::UnknownSession);
  EXPECT_EQ(lifecycle->logs("s1", "stdin", 0, 10, std::nullopt).error().kind, AgentErrorKind::InvalidLogStream);
}

TEST_F(SessionLifecycleTest, AStartTheRuntimeRefusesFailsAndFreesItsDevices) {
  buildNode({"good"});
  auto lifecycle = makeLifecycle();
  processes().refuseStart = true;
  auto refused = lifecycle->create(request("s1", "acme.device"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().kind, AgentErrorKind::SessionStartFailed);
  EXPECT_NE(refused.error().detail.find("spawn refused"), std::string::npos) << refused.error().detail;
  EXPECT_EQ(lifecycle->session("s1")->state, SessionState::Failed);
  EXPECT_EQ(used("acme.device"), Quantity(0));
  EXPECT_TRUE(limits_.held.empty());
  EXPECT_EQ(journalled(*journal_), std::vector<EventKind>{EventKind::Failed});
  EXPECT_EQ(lifecycle->sessionsFailed(), 1u);
}

TEST_F(SessionLifecycleTest, ADestroyedSessionEndsAsDestroyedWhenItsProcessExits) {
  buildNode({"good"});
  auto lifecycle = makeLifecycle();
  ASSERT_TRUE(lifecycle->create(request("s1", "acme.device")).ok());
  auto destroying = lifecycle->destroy("s1");
  ASSERT_TRUE(destroying.ok());
  EXPECT_EQ(destroying->state, SessionState::Running) << "it ends when its process does";
  EXPECT_EQ(processes().destroyed, std::vector<std::string>{"s1"});
  processes().exit("s1", 143);
  EXPECT_EQ(lifecycle->session("s1")->state, SessionState::Destroyed);
  EXPECT_EQ(used("acme.device"), Quantity(0));
  ASSERT_TRUE(lifecycle->destroy("s1").ok()) << "destroying twice is not an error";
  EXPECT_EQ(processes().destroyed.size(), 1u);
}

TEST_F(SessionLifecycleTest, ARestartTakesBackWhatRecordedSessionsHold) {
  buildNode({"good"});
  auto lifecycle = makeLifecycle();
  ASSERT_TRUE(lifecycle->create(request("ended", "acme.device")).ok());
  processes().exit("ended", 0);
  ASSERT_TRUE(lifecycle->create(request("running", "acme.device")).ok());
  lifecycle.reset();

  buildNode({"good"});  // the next agent process: a fresh node over the same state dir
  auto restarted = makeLifecycle();
  EXPECT_EQ(used("acme.device"), Quantity(0)) << "nothing is held before recover()";
  restarted->recover();
  EXPECT_EQ(processes().adopted, std::vector<std::string>{"running"});
  EXPECT_EQ(used("acme.device"), Quantity(1));
  EXPECT_EQ(restarted->session("ended")->state, SessionState::Exited);
  EXPECT_EQ(restarted->sessions().size(), 2u);
  EXPECT_NE(logText().find("recovered 1 session(s)"), std::string::npos) << logText();
  processes().exit("running", 0);
  EXPECT_EQ(used("acme.device"), Quantity(0));
}

// Limits that note, when a session's are released, whether its end is journalled yet.
class JournalWatchingLimits final : public LimitsBackend {
 public:
  explicit JournalWatchingLimits(const EventJournal& journal) : journal_(journal) {}
  Result<std::vector<std::filesystem::path>> prepare(const std::string&, const SessionLimits&) override {
    return std::vector<std::filesystem::path>{};
  }
  Result<void> release(const std::string& sessionId) override {
    bool ended = false;
    for (const auto& event : journal_.unacked(100)) {
      ended = ended || (event.sessionId == sessionId && event.kind != EventKind::Started);
    }
    endJournalledAtRelease[sessionId] = ended;
    return {};
  }
  std::string describe() const override { return "journal-watching"; }
  bool enforcing() const override { return false; }
  bool fencesDevices() const override { return false; }

  std::map<std::string, bool> endJournalledAtRelease;

 private:
  const EventJournal& journal_;
};

// An agent killed after a session's record says it ended but before its end reached the
// journal would never report that end (the record is not adopted again, the journal has
// nothing to send): the manager kept the session RUNNING and its devices used for good.
// The end is journalled first; a kill after that reports it twice, which the manager ignores.
TEST_F(SessionLifecycleTest, ASessionsEndIsJournalledBeforeItsResourcesAreFreed) {
  buildNode({"good"});
  JournalWatchingLimits limits(*journal_);
  SessionLifecycle lifecycle(lifecycleOptions({}, &limits), *ledger_, *records_, *journal_);
  ASSERT_TRUE(lifecycle.create(request("exits", "acme.device")).ok());
  processes().exit("exits", 0);
  processes().refuseStart = true;
  ASSERT_FALSE(lifecycle.create(request("never-starts", "acme.device")).ok());

  EXPECT_EQ(limits.endJournalledAtRelease, (std::map<std::string, bool>{{"exits", true}, {"never-starts", true}}));
  EXPECT_EQ(journalled(*journal_), (std::vector<EventKind>{EventKind::Started, EventKind::Exited, EventKind::Failed}));
  EXPECT_EQ(eventsNotified_, 3) << "the reporter hears of each event";
}

// A restart that no longer finds all a running session holds keeps the rest held, and the
// session's end still releases its limits (its cgroups) and what it holds.
TEST_F(SessionLifecycleTest, ARestartMissingPartOfASessionsDevicesKeepsTheRestUntilItEnds) {
  buildNode({"good", "newer-minor"});
  auto lifecycle = makeLifecycle();
  const protocol::CreateSessionRequest both{"both", {"true"}, {}, {{SlotName::of("acme.device"), 1},
                                                                    {SlotName::of("newer.device"), 1}},
                                             owner()};
  ASSERT_TRUE(lifecycle->create(both).ok());
  lifecycle.reset();

  std::filesystem::remove(pluginDir() / "newer-minor.so");
  buildNode({"good"});  // the next agent process no longer offers newer.device
  auto restarted = makeLifecycle();
  restarted->recover();
  EXPECT_EQ(used("acme.device"), Quantity(1)) << "the device still offered stays held while it runs";
  EXPECT_FALSE(restarted->create(request("other", "acme.device")).ok());
  EXPECT_NE(logText().find("slot 'newer.device' is no longer offered"), std::string::npos) << logText();
  processes().exit("both", 0);
  EXPECT_EQ(used("acme.device"), Quantity(0));
  EXPECT_EQ(limits_.held.count("both"), 0u) << "its cgroups are released when it ends";
}

TEST_F(SessionLifecycleTest, ARecordThatCannotBeSavedIsLogged) {
  buildNode({"good"});
  auto lifecycle = makeLifecycle();
  ASSERT_TRUE(lifecycle->create(request("s1", "acme.device")).ok());
  std::filesystem::remove_all(records_->dirOf("s1"));
  std::ofstream(records_->dirOf("s1")) << "not a directory";
  processes().exit("s1", 0);
  EXPECT_EQ(lifecycle->session("s1")->state, SessionState::Exited) << "the session ends all the same";
  EXPECT_NE(logText().find("error agent: session s1: cannot save its record"), std::string::npos) << logText();
}

TEST_F(SessionLifecycleTest, LogsAreReadByRangeOrTail) {
  buildNode({"good"});
  auto lifecycle = makeLifecycle();
  ASSERT_TRUE(lifecycle->create(request("s1", "acme.device")).ok());
  EXPECT_EQ(lifecycle->logs("s1", "stdout", 0, 100, std::nullopt)->text, "") << "no output yet";
  std::ofstream(records_->dirOf("s1") / "stdout.log") << "0123456789";
  auto range = lifecycle->logs("s1", "stdout", 2, 3, std::nullopt);
  EXPECT_EQ(range->text, "234");
  EXPECT_EQ(range->offset, 2u);
  EXPECT_EQ(range->size, 10u);
  auto tail = lifecycle->logs("s1", "stdout", 0, 100, std::uint64_t{4});
  EXPECT_EQ(tail->text, "6789");
  EXPECT_EQ(tail->offset, 6u) << "where the tail starts";
  EXPECT_EQ(lifecycle->logs("s1", "stdout", 0, 100, std::uint64_t{40})->text, "0123456789");
  EXPECT_EQ(lifecycle->logs("s1", "stdout", 20, 100, std::nullopt)->offset, 10u) << "past the end: empty at the end";
}

TEST_F(SessionLifecycleTest, ALogReadIsAtMostOnePage) {
  buildNode({"good"});
  auto lifecycle = makeLifecycle();
  ASSERT_TRUE(lifecycle->create(request("s1", "acme.device")).ok());
  std::ofstream(records_->dirOf("s1") / "stdout.log") << std::string(protocol::kLogPageBytes + 10, 'x');
  auto asked = lifecycle->logs("s1", "stdout", 0, 16u << 20, std::nullopt);
  EXPECT_EQ(asked->text.size(), protocol::kLogPageBytes) << "however much was asked for";
  EXPECT_EQ(asked->size, protocol::kLogPageBytes + 10);
  auto tail = lifecycle->logs("s1", "stdout", 0, 0, std::uint64_t{16u << 20});
  EXPECT_EQ(tail->text.size(), protocol::kLogPageBytes);
  EXPECT_EQ(tail->offset, 10u) << "the last page of a longer tail";
}

// A session's storage folders reach both runtimes as bind mounts, read-only as asked; a
// folder outside the agent's mount roots ends the session with the reason.
class FolderMountLifecycleTest : public ContainerLifecycleTest {
 protected:
  std::unique_ptr<SessionLifecycle> withRoots() {
    std::filesystem::create_directories(folder_);
    IsolationSettings isolation;
    isolation.folderMountRoots = {dir_.path() / "volume"};
    return makeBothRuntimes(std::move(isolation));
  }
  protocol::CreateSessionRequest mounting(protocol::CreateSessionRequest r, const std::filesystem::path& source) {
    r.mounts = {{std::string(32, 'a'), source.string(), "/home/work/data", true}};
    return r;
  }
  std::filesystem::path folder_ = dir_.path() / "volume/vfolders/aa";
};

TEST_F(FolderMountLifecycleTest, AProcessSessionsSandboxBindsTheFolderReadOnly) {
  buildNode({"good"});
  auto lifecycle = withRoots();
  auto created = lifecycle->create(mounting(request("p1", "acme.device"), folder_));
  ASSERT_TRUE(created.ok()) << created.error().detail;
  ASSERT_EQ(processes().started.size(), 1u);
  const Sandbox& sandbox = *processes().started[0].sandbox;
  auto bound = std::find_if(sandbox.mounts.begin(), sandbox.mounts.end(),
                            [](const BindMount& m) { return m.target == "/home/work/data"; });
  ASSERT_NE(bound, sandbox.mounts.end());
  EXPECT_EQ(bound->source, folder_);
  EXPECT_TRUE(bound->readOnly);
}

TEST_F(FolderMountLifecycleTest, AContainerGetsTheFolderAsAReadOnlyBind) {
  buildNode({"good"});
  std::vector<BindMount> binds;  // as the container was created with them
  engine_->scriptFor = [&binds](const ContainerSpec& spec) {
    binds = spec.binds;
    return MemoryEngine::Script{};
  };
  auto lifecycle = withRoots();
  auto created = lifecycle->create(mounting(inImage("c1", "bai-test/busybox:1"), folder_));
  ASSERT_TRUE(created.ok()) << created.error().detail;
  ASSERT_TRUE(bai::testing::eventually([&] { return lifecycle->session("c1")->state == SessionState::Exited; }));
  std::lock_guard<std::mutex> lock(engine_->mutex);
  auto bound = std::find_if(binds.begin(), binds.end(), [](const BindMount& m) { return m.target == "/home/work/data"; });
  ASSERT_NE(bound, binds.end());
  EXPECT_EQ(bound->source, folder_);
  EXPECT_TRUE(bound->readOnly);
}

TEST_F(FolderMountLifecycleTest, AFolderOutsideTheMountRootsFailsTheStartWithTheReasonAndHoldsNothing) {
  buildNode({"good"});
  auto lifecycle = withRoots();
  std::filesystem::create_directories(dir_.path() / "elsewhere");
  auto created = lifecycle->create(mounting(request("p2", "acme.device"), dir_.path() / "elsewhere"));
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().kind, AgentErrorKind::SessionStartFailed);
  auto info = lifecycle->session("p2");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->state, SessionState::Failed);
  EXPECT_NE(info->reason.find("not below any of this agent's [storage] mount-roots"), std::string::npos) << info->reason;
  EXPECT_TRUE(processes().started.empty());
  EXPECT_EQ(used("acme.device"), Quantity(0));
}

}  // namespace
}  // namespace bai::core::testing
