// The real bai-agent binary with the cpu and mock plugins on a loopback port, driven
// over HTTP, reporting to a fake manager.
#include "../report/fake_manager.hpp"
#include "daemon_process.hpp"
#include "http_client.hpp"
#include "wait.hpp"

#include <bai/protocol.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

namespace bai::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;

// One bai-agent process with its own state dir, token and config.
class AgentProcess {
 public:
  AgentProcess(fs::path dir, std::string managerUrl, std::string extraConfig = "", std::string mockConfig = "mock-4xa100.toml")
      : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    token_ = "test-token-0123456789";
    std::ofstream(dir_ / "token") << token_ << "\n";
    ::chmod((dir_ / "token").c_str(), 0600);
    std::ofstream(dir_ / "agent.toml") << agentToml("test-agent", managerUrl, dir_ / "token", dir_, 0.05, mockConfig)
                                       << extraConfig;
  }
  ~AgentProcess() { stop(SIGKILL); }

  // Starts the agent and waits for its ready file; false (with its log) when it does not come up.
  bool start(std::vector<std::string> extraArgs = {}) {
    fs::remove(dir_ / "ready");
    std::vector<std::string> args = {env("BAI_AGENT"), "--config", (dir_ / "agent.toml").string(), "--ready-file",
                                     (dir_ / "ready").string()};
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    exitStatus_ = -1;
    pid_ = spawn(args, dir_ / "agent.log");
    if (!eventually([&] { return fs::exists(dir_ / "ready") || !alive(); })) return false;
    if (!fs::exists(dir_ / "ready")) return false;
    std::string address = readFile(dir_ / "ready");
    address.erase(address.find_last_not_of("\n") + 1);
    base_ = "http://" + address;
    return true;
  }

  // Runs the agent to completion (for start-up failures): its exit code.
  int run(std::vector<std::string> args) {
    args.insert(args.begin(), env("BAI_AGENT"));
    pid_ = spawn(args, dir_ / "agent.log");
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

  void stop(int signal = SIGTERM) {
    if (pid_ <= 0) return;
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    exitStatus_ = status;
    pid_ = 0;
  }
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      exitStatus_ = status;
      pid_ = 0;
      return false;
    }
    return true;
  }

  pid_t pid() const { return pid_; }
  const std::string& base() const { return base_; }
  const std::string& token() const { return token_; }
  std::string log() const { return readFile(dir_ / "agent.log"); }
  const fs::path& dir() const { return dir_; }

 private:
  static pid_t spawn(const std::vector<std::string>& args, const fs::path& log) { return spawnLogged(args, log, log); }

  fs::path dir_;
  std::string token_;
  std::string base_;
  pid_t pid_ = 0;
  int exitStatus_ = -1;
};

// Sessions run as their owner: a uid of the agent's default range.
const protocol::SessionOwner kTenant{200001, 200001, "tenant-a"};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "sessions run as their owners' uids: the agent must run as root";
    for (const char* name : {"BAI_AGENT", "BAI_SESSION_SHIM", "BAI_CPU_PLUGIN_DIR", "BAI_MOCK_PLUGIN_DIR", "BAI_MOCK_CONFIG_DIR"}) {
      if (env(name).empty()) GTEST_SKIP() << name << " is not set (built without the agent or a plugin)";
    }
    dir_ = fs::temp_directory_path() / ("bai-agent-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    manager_ = std::make_unique<test::FakeManager>("test-token-0123456789");
    manager_->start();
  }
  void TearDown() override {
    // Sessions outlive a killed agent by design: end them first, so none is left behind.
    if (agent_ && client_ && agent_->alive()) {
      const json listed = json::parse(client_->get("/v1/sessions").body, nullptr, false);
      if (listed.is_object()) {
        for (const auto& info : listed["sessions"]) {
          if (info["state"] == "running") {
            client_->del("/v1/sessions/" + info["id"].get<std::string>());
            waitForEnd(info["id"]);
          }
        }
      }
    }
    agent_.reset();
    if (manager_) manager_->stop();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  AgentProcess& startAgent(std::string extraConfig = "", std::string mockConfig = "mock-4xa100.toml") {
    agent_ = std::make_unique<AgentProcess>(dir_, manager_->url(), std::move(extraConfig), std::move(mockConfig));
    EXPECT_TRUE(agent_->start()) << agent_->log();
    client_ = std::make_unique<HttpClient>(agent_->base(), agent_->token());
    return *agent_;
  }

  HttpReply create(const std::string& id, std::vector<std::string> command, ResourceSlot slots) {
    protocol::CreateSessionRequest request{id, std::move(command), {}, std::move(slots), kTenant};
    return client_->post("/v1/sessions", request.toJson());
  }

  protocol::SessionInfo waitForEnd(const std::string& id) {
    protocol::SessionInfo info;
    eventually([&] {
      auto reply = client_->get("/v1/sessions/" + id);
      auto parsed = protocol::SessionInfo::fromJson(reply.body);
      if (!parsed) return false;
      info = *parsed;
      return info.state != protocol::SessionState::Running && info.state != protocol::SessionState::Preparing;
    });
    return info;
  }

  fs::path dir_;
  std::unique_ptr<test::FakeManager> manager_;

  std::optional<protocol::AgentState> lastFullState() const {
    std::optional<protocol::AgentState> last;
    for (const auto& h : manager_->heartbeats()) {
      if (h.state) last = h.state;
    }
    return last;
  }
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<HttpClient> client_;
};

SlotName slot(const char* name) { return SlotName::of(name); }

TEST_F(AgentTest, EveryCallNeedsTheClusterToken) {
  startAgent();
  HttpClient anonymous(agent_->base());
  auto reply = anonymous.get("/v1/health");
  EXPECT_EQ(reply.status, 401);
  EXPECT_EQ(protocol::ApiError::fromJson(reply.body)->type, "unauthorized");
  HttpClient wrong(agent_->base(), "test-token-0123456780");
  EXPECT_EQ(wrong.get("/v1/sessions").status, 401);
  auto health = client_->get("/v1/health");
  ASSERT_EQ(health.status, 200) << health.body;
  EXPECT_NE(health.body.find("\"key\":\"cuda\""), std::string::npos) << health.body;
  EXPECT_NE(health.body.find("\"key\":\"cpu\""), std::string::npos) << health.body;
  EXPECT_EQ(agent_->log().find(agent_->token()), std::string::npos) << "the token never reaches the log";
}

TEST_F(AgentTest, RunsASessionWithItsDevicesAndReportsTheExitCode) {
  startAgent();
  auto reply = create("s1", {"sh", "-c", "echo gpus=$BAI_MOCK_CUDA_DEVICES; echo oops >&2; exit 3"},
                      {{slot("cpu"), 1}, {slot("mem"), std::int64_t{64} << 20}, {slot("cuda.device"), 2}});
  ASSERT_EQ(reply.status, 201) << reply.body;
  auto created = protocol::SessionInfo::fromJson(reply.body);
  ASSERT_TRUE(created.ok());
  EXPECT_EQ(created->allocation.at("cuda.device").size(), 2u);
  const auto info = waitForEnd("s1");
  EXPECT_EQ(info.state, protocol::SessionState::Exited);
  EXPECT_EQ(info.exitCode, 3);
  const std::string out = client_->get("/v1/sessions/s1/logs?stream=stdout").body;
  EXPECT_EQ(out.rfind("gpus=GPU-", 0), 0u) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), ','), 1) << "two GPUs by UUID: " << out;
  EXPECT_EQ(client_->get("/v1/sessions/s1/logs?stream=stderr").body, "oops\n");
  // Everything is free again, and the manager got started and exited with the code.
  auto map = json::parse(client_->get("/v1/alloc-map").body);
  for (const auto& m : map["maps"]) {
    for (const auto& d : m["devices"]) EXPECT_TRUE(d["sessions"].empty()) << m["slot"];
  }
  EXPECT_TRUE(eventually([&] {
    for (const auto& received : manager_->events()) {
      const auto& e = received.event;
      if (e.sessionId == "s1" && e.kind == protocol::EventKind::Exited) return e.exitCode == 3;
    }
    return false;
  })) << agent_->log();
}

TEST_F(AgentTest, SessionsWithoutGpusSeeNone) {
  startAgent();
  ASSERT_EQ(create("cpu-only", {"sh", "-c", "echo \"[$BAI_MOCK_CUDA_DEVICES]\""}, {{slot("cpu"), 1}}).status, 201);
  waitForEnd("cpu-only");
  EXPECT_EQ(client_->get("/v1/sessions/cpu-only/logs").body, "[]\n");
}

TEST_F(AgentTest, CreateIsIdempotentBySessionId) {
  startAgent();
  auto first = create("same", {"sleep", "5"}, {{slot("cuda.device"), 1}});
  ASSERT_EQ(first.status, 201) << first.body;
  auto second = create("same", {"sleep", "5"}, {{slot("cuda.device"), 1}});
  EXPECT_EQ(second.status, 200) << second.body;
  EXPECT_EQ(protocol::SessionInfo::fromJson(second.body)->allocation,
            protocol::SessionInfo::fromJson(first.body)->allocation);
  auto map = json::parse(client_->get("/v1/alloc-map").body);
  int held = 0;
  for (const auto& m : map["maps"]) {
    if (m["slot"] == "cuda.device") {
      for (const auto& d : m["devices"]) held += d["allocated"] == "1";
    }
  }
  EXPECT_EQ(held, 1) << "the retried call allocated nothing more";
}

TEST_F(AgentTest, BadRequestsAreRefusedAndChangeNothing) {
  startAgent();
  const std::string before = client_->get("/v1/alloc-map").body;
  auto check = [&](HttpReply reply, int status, const std::string& type) {
    EXPECT_EQ(reply.status, status) << reply.body;
    auto error = protocol::ApiError::fromJson(reply.body);
    ASSERT_TRUE(error.ok()) << reply.body;
    EXPECT_EQ(error->type, type) << reply.body;
    EXPECT_FALSE(error->detail.empty());
  };
  check(client_->post("/v1/sessions", "{not json"), 400, "invalid-request");
  check(client_->post("/v1/sessions", R"({"protocol":1,"session_id":"x","command":["true"],"slots":{"cpu":"-1"}})"), 400,
        "invalid-request");
  check(client_->post("/v1/sessions", R"({"protocol":1,"session_id":"x","command":["true"],"slots":{"cpu":"lots"}})"), 400,
        "invalid-request");
  check(create("x", {"true"}, {{slot("tpu.device"), 1}}), 400, "unknown-slot");
  check(create("x", {"true"}, {{slot("cuda.device"), 5}}), 409, "insufficient-resource");
  check(create("x", {"true"}, {{slot("cpu"), Quantity::parse("0.5").value()}}), 400, "invalid-resource-argument");
  check(client_->get("/v1/sessions/nope"), 404, "unknown-session");
  check(client_->del("/v1/sessions/nope"), 404, "unknown-session");
  check(client_->post("/v1/sessions", std::string(2 << 20, ' ')), 413, "body-too-large");
  check(client_->get("/v1/nothing"), 404, "not-found");
  EXPECT_EQ(client_->get("/v1/alloc-map").body, before);
}

// Issue 17: 150,000 nested objects under `slots` (a 900 KB body, under the 1 MiB limit)
// crashed the agent in a recursive dump(). Depth is bounded at parse; the agent serves on.
TEST_F(AgentTest, DeeplyNestedJsonIsRefusedAndTheAgentServesOn) {
  startAgent();
  std::string deep;
  for (int i = 0; i < 150'000; ++i) deep += R"({"a":)";
  deep += "1" + std::string(150'000, '}');
  const std::string body = R"({"protocol":1,"session_id":"deep","command":["true"],"slots":)" + deep + "}";
  ASSERT_LT(body.size(), 1u << 20);
  auto reply = client_->post("/v1/sessions", body);
  EXPECT_EQ(reply.status, 400) << reply.body.substr(0, 300);
  EXPECT_NE(reply.body.find("nested deeper than 64 levels"), std::string::npos) << reply.body.substr(0, 300);
  EXPECT_EQ(client_->get("/v1/health").status, 200) << agent_->log();
  EXPECT_TRUE(agent_->alive());
}

// Issue 17: an amount past 2^64 went through a double; it is refused, naming the field.
TEST_F(AgentTest, AnAmountNoDoubleHoldsIsRefused) {
  startAgent();
  auto reply = client_->post(
      "/v1/sessions", R"({"protocol":1,"session_id":"big","command":["true"],"slots":{"cpu":18446744073709551616}})");
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_NE(reply.body.find("slots.cpu"), std::string::npos) << reply.body;
  EXPECT_NE(reply.body.find("18446744073709551616"), std::string::npos) << reply.body;
}

// An id names a directory under the state dir: "." and ".." would put a record at its root.
TEST_F(AgentTest, SessionIdsThatAreNotNamesAreRefused) {
  startAgent();
  for (const char* id : {".", "..", "a.b"}) {
    auto reply = create(id, {"true"}, {{slot("cpu"), 1}});
    EXPECT_EQ(reply.status, 400) << id << ": " << reply.body;
    EXPECT_NE(reply.body.find("session_id"), std::string::npos) << reply.body;
  }
  for (const fs::path& dir : {dir_ / "state", dir_ / "state" / "sessions"}) {
    EXPECT_FALSE(fs::exists(dir / "record.json")) << dir;
    EXPECT_FALSE(fs::exists(dir / "stdout.log")) << dir;
  }
  EXPECT_EQ(json::parse(client_->get("/v1/sessions").body)["sessions"].size(), 0u);
}

TEST_F(AgentTest, ExclusiveSlotsAreRefusedTogether) {
  startAgent("", "mock-2gpu-mig.toml");
  auto types = json::parse(client_->get("/v1/alloc-map").body);
  std::string mig;
  for (const auto& m : types["maps"]) {
    if (m["slot"].get<std::string>().find("-mig") != std::string::npos) mig = m["slot"];
  }
  ASSERT_FALSE(mig.empty()) << types.dump();
  auto reply = create("x", {"true"}, {{slot("cuda.device"), 1}, {SlotName::of(mig), 1}});
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_EQ(protocol::ApiError::fromJson(reply.body)->type, "invalid-resource-combination");
}

TEST_F(AgentTest, DestroyEndsTheSessionAndItsChildren) {
  startAgent();
  ASSERT_EQ(create("long", {"sh", "-c", "sleep 100 & sleep 100; wait"}, {{slot("cpu"), 1}}).status, 201);
  auto destroyed = client_->del("/v1/sessions/long");
  EXPECT_EQ(destroyed.status, 202) << destroyed.body;
  const auto info = waitForEnd("long");
  EXPECT_EQ(info.state, protocol::SessionState::Destroyed);
  EXPECT_EQ(client_->del("/v1/sessions/long").status, 202) << "destroying twice is not an error";
}

TEST_F(AgentTest, HeartbeatsCarryTheNodeToTheManager) {
  startAgent("[resource]\nreserved-cpu = 1\n");
  ASSERT_TRUE(eventually([&] { return lastFullState().has_value(); })) << agent_->log();
  const protocol::AgentState state = *lastFullState();
  EXPECT_EQ(state.available.get("cuda.device"), Quantity(4));
  EXPECT_GT(state.available.get("mem"), Quantity());
  EXPECT_EQ(state.slotTypes.at("mem"), SlotType::Bytes);
  EXPECT_EQ(state.largestAllocatable.get("cuda.device"), Quantity(4));
  const Quantity cores = state.available.get("cpu");
  EXPECT_EQ(state.largestAllocatable.get("cpu"), cores) << "the reserved core is not offered";
  bool cpuPlugin = false, mockPlugin = false;
  for (const auto& p : state.plugins) {
    cpuPlugin |= p.name == "cpu";
    mockPlugin |= p.name == "mock" && p.key == "cuda";
  }
  EXPECT_TRUE(cpuPlugin && mockPlugin);
  EXPECT_EQ(state.rpcAddress, agent_->base()) << "the bound (ephemeral) port, as a URL the manager can call";
}

TEST_F(AgentTest, ARestartKeepsAllocationsAndReportsWhatEndedMeanwhile) {
  startAgent();
  ASSERT_EQ(create("short", {"sh", "-c", "sleep 0.5; exit 7"}, {{slot("cuda.device"), 1}}).status, 201);
  ASSERT_EQ(create("long", {"sleep", "30"}, {{slot("cuda.device"), 2}}).status, 201);
  agent_->stop(SIGKILL);
  std::this_thread::sleep_for(800ms);  // "short" ends while the agent is down
  ASSERT_TRUE(agent_->start()) << agent_->log();
  client_ = std::make_unique<HttpClient>(agent_->base(), agent_->token());
  const auto ended = waitForEnd("short");
  EXPECT_EQ(ended.state, protocol::SessionState::Exited);
  EXPECT_EQ(ended.exitCode, 7);
  EXPECT_EQ(protocol::SessionInfo::fromJson(client_->get("/v1/sessions/long").body)->state,
            protocol::SessionState::Running);
  // "long" still holds its 2 GPUs: 2 are free, not 1 and not 4.
  EXPECT_EQ(create("two", {"sleep", "30"}, {{slot("cuda.device"), 2}}).status, 201);
  EXPECT_EQ(create("more", {"true"}, {{slot("cuda.device"), 1}}).status, 409);
  for (const char* id : {"long", "two"}) {
    client_->del(std::string("/v1/sessions/") + id);
    waitForEnd(id);
  }
}

// A device masked while a session holds it stays the session's across a restart, and so do
// its other devices; the masked one leaves service when the session ends.
TEST_F(AgentTest, AMaskedDeviceStaysWithItsSessionAcrossARestart) {
  startAgent();
  ASSERT_EQ(create("holder", {"sleep", "30"}, {{slot("cuda.device"), 2}}).status, 201);
  const auto held = protocol::SessionInfo::fromJson(client_->get("/v1/sessions/holder").body)->allocation["cuda.device"];
  ASSERT_EQ(held.size(), 2u);
  const std::string masked = held.begin()->first, kept = held.rbegin()->first;
  agent_->stop(SIGKILL);
  agent_ = std::make_unique<AgentProcess>(dir_, manager_->url(), "device_mask = [\"" + masked + "\"]\n");
  ASSERT_TRUE(agent_->start()) << agent_->log();
  client_ = std::make_unique<HttpClient>(agent_->base(), agent_->token());

  auto device = [&](const std::string& id) {
    const json maps = json::parse(client_->get("/v1/alloc-map").body)["maps"];
    for (const auto& m : maps) {
      if (m["slot"] != "cuda.device") continue;
      for (const auto& d : m["devices"]) {
        if (d["id"] == id) return d;
      }
    }
    return json();
  };
  EXPECT_EQ(device(kept)["allocated"], "1") << "its device still offered stays held";
  EXPECT_EQ(device(masked)["allocated"], "1") << "the masked one stays allocated while it runs";
  EXPECT_EQ(device(masked)["enabled"], false);
  EXPECT_EQ(create("two", {"sleep", "30"}, {{slot("cuda.device"), 2}}).status, 201) << "3 offered, 1 held";
  EXPECT_EQ(create("more", {"true"}, {{slot("cuda.device"), 1}}).status, 409);

  client_->del("/v1/sessions/holder");
  EXPECT_EQ(waitForEnd("holder").state, protocol::SessionState::Destroyed);
  EXPECT_EQ(device(masked)["allocated"], "0");
  EXPECT_TRUE(eventually([&] {
    auto state = lastFullState();
    return state && state->available.get("cuda.device") == Quantity(3);
  })) << "the masked device left service";
  EXPECT_EQ(create("last", {"sleep", "30"}, {{slot("cuda.device"), 1}}).status, 201);
}

TEST_F(AgentTest, StartUpErrorsAreClear) {
  fs::create_directories(dir_);
  AgentProcess agent(dir_, manager_->url());
  std::ofstream(dir_ / "bad.toml") << "[agent]\nrpc-listen-adr = \"x\"\n";
  EXPECT_EQ(agent.run({"--config", (dir_ / "bad.toml").string()}), 2);
  EXPECT_NE(agent.log().find("bad.toml:2: unknown key 'agent.rpc-listen-adr' (did you mean 'agent.rpc-listen-addr'?)"),
            std::string::npos)
      << agent.log();

  ::chmod((dir_ / "token").c_str(), 0644);
  EXPECT_EQ(agent.run({"--config", (dir_ / "agent.toml").string()}), 2);
  ::chmod((dir_ / "token").c_str(), 0600);

  std::ofstream(dir_ / "agent.toml", std::ios::app) << "[resource]\nreserved-cpu = 100000\n";
  EXPECT_EQ(agent.run({"--config", (dir_ / "agent.toml").string()}), 1);
  EXPECT_NE(agent.log().find("resource.reserved-cpu (100000) exceeds what this node has for 'cpu'"), std::string::npos)
      << agent.log();

  EXPECT_EQ(agent.run({"--print-config-reference"}), 0);
  EXPECT_NE(agent.log().find("| `agent.rpc-listen-addr` | string | `\"127.0.0.1:6001\"` |"), std::string::npos);
}

TEST_F(AgentTest, LogsByOffsetAndTail) {
  startAgent();
  ASSERT_EQ(create("logs", {"sh", "-c", "printf 0123456789"}, {{slot("cpu"), 1}}).status, 201);
  waitForEnd("logs");
  EXPECT_EQ(client_->get("/v1/sessions/logs/logs?offset=3&limit=4").body, "3456");
  EXPECT_EQ(client_->get("/v1/sessions/logs/logs?tail=3").body, "789");
  EXPECT_EQ(client_->get("/v1/sessions/logs/logs?offset=-1").status, 400);
  EXPECT_EQ(client_->get("/v1/sessions/logs/logs?stream=stdin").status, 400);
}

TEST_F(AgentTest, MetricsInPrometheusText) {
  startAgent();
  ASSERT_EQ(create("m", {"sleep", "5"}, {{slot("cuda.device"), 1}}).status, 201);
  ASSERT_TRUE(eventually([&] { return !manager_->heartbeats().empty(); }));
  const std::string metrics = client_->get("/metrics").body;
  for (const char* line : {"bai_agent_slot_capacity{slot=\"cuda.device\"} 4", "bai_agent_slot_used{slot=\"cuda.device\"} 1",
                           "bai_agent_sessions{state=\"running\"} 1", "bai_agent_session_allocation{session=\"m\",slot=\"cuda.device\"} 1",
                           "bai_agent_limits_enforced 0", "bai_agent_manager_connected 1", "# TYPE bai_agent_heartbeats_total counter"}) {
    EXPECT_NE(metrics.find(line), std::string::npos) << line << "\n" << metrics;
  }
  client_->del("/v1/sessions/m");
  waitForEnd("m");
}

// Several clients create and destroy at once; at the end every device is free again.
TEST_F(AgentTest, ConcurrentCreatesAndDestroysLeaveTheMapsClean) {
  startAgent();
  std::atomic<int> created{0}, refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(agent_->base(), agent_->token());
      std::mt19937 rng(static_cast<unsigned>(t));
      for (int i = 0; i < 25; ++i) {
        const std::string id = "c" + std::to_string(t) + "-" + std::to_string(i);
        ResourceSlot slots{{slot("cpu"), static_cast<std::int64_t>(rng() % 2)},
                           {slot("cuda.device"), static_cast<std::int64_t>(rng() % 3)}};
        protocol::CreateSessionRequest request{id, {"sleep", rng() % 2 ? "0.05" : "5"}, {}, slots, kTenant};
        const auto reply = client.post("/v1/sessions", request.toJson());
        if (reply.status == 201) ++created;
        else if (reply.status == 409) ++refused;
        else ADD_FAILURE() << reply.status << " " << reply.body;
        if (rng() % 2) client.del("/v1/sessions/" + id);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_GT(created.load(), 20);
  const json listed = json::parse(client_->get("/v1/sessions").body);
  for (const auto& info : listed["sessions"]) {
    const std::string id = info["id"];
    if (info["state"] == "running") client_->del("/v1/sessions/" + id);
  }
  ASSERT_TRUE(eventually([&] {
    const json now = json::parse(client_->get("/v1/sessions").body);
    for (const auto& info : now["sessions"]) {
      if (info["state"] == "running" || info["state"] == "preparing") return false;
    }
    return true;
  })) << client_->get("/v1/sessions").body;
  const json maps = json::parse(client_->get("/v1/alloc-map").body);
  for (const auto& m : maps["maps"]) {
    for (const auto& d : m["devices"]) EXPECT_EQ(d["allocated"], "0") << m["slot"] << " " << d["id"];
  }
}

long residentKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double percentile(std::vector<double> values, double p) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[static_cast<std::size_t>(p * static_cast<double>(values.size() - 1))];
}

// The issue's figures, printed and recorded in the XML; bounds are loose so a busy
// machine does not fail them. Session dirs on tmpfs where there is one (see the note).
TEST_F(AgentTest, Figures) {
  if (fs::is_directory("/dev/shm")) {
    dir_ = fs::path("/dev/shm") / dir_.filename();
    fs::remove_all(dir_);
  }
  using Clock = std::chrono::steady_clock;
  const auto spawned = Clock::now();
  startAgent();
  ASSERT_TRUE(eventually([&] { return !manager_->requests().empty(); }));
  const double firstHeartbeatMs =
      std::chrono::duration<double, std::milli>(manager_->requests().front().receivedAt - spawned).count();
  std::this_thread::sleep_for(200ms);
  const long idleKiB = residentKiB(agent_->pid());

  std::vector<double> createMs, runningMs;
  for (int i = 0; i < 40; ++i) {
    const std::string id = "lat" + std::to_string(i);
    const auto start = Clock::now();
    ASSERT_EQ(create(id, {"sleep", "5"}, {}).status, 201);
    createMs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    const fs::path pidFile = dir_ / "state" / "sessions" / id / "command.pid";
    while (!fs::exists(pidFile) && Clock::now() - start < 5s) std::this_thread::sleep_for(100us);  // fine-grained poll
    runningMs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    client_->del("/v1/sessions/" + id);
    waitForEnd(id);
  }

  const int count = 200;
  const auto batch = Clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      HttpClient client(agent_->base(), agent_->token());
      for (int i = t; i < count; i += 2) {
        protocol::CreateSessionRequest request{"rate" + std::to_string(i), {"true"}, {}, {}, kTenant};
        EXPECT_EQ(client.post("/v1/sessions", request.toJson()).status, 201);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  ASSERT_TRUE(eventually([&] {
    int ended = 0;
    const json now = json::parse(client_->get("/v1/sessions").body);
    for (const auto& info : now["sessions"]) {
      ended += info["id"].get<std::string>().rfind("rate", 0) == 0 && info["state"] == "exited";
    }
    return ended == count;
  }, 60s));
  const double perSecond = count / std::chrono::duration<double>(Clock::now() - batch).count();

  std::printf("figure: start -> first heartbeat %.1f ms; idle RSS %ld KiB; create-session p50 %.2f ms p99 %.2f ms; "
              "create -> command running p50 %.2f ms; %.0f sessions started and reaped per second (state on %s)\n",
              firstHeartbeatMs, idleKiB, percentile(createMs, 0.5), percentile(createMs, 0.99), percentile(runningMs, 0.5),
              perSecond, dir_.parent_path().c_str());
  RecordProperty("first_heartbeat_ms", std::to_string(firstHeartbeatMs));
  RecordProperty("idle_rss_kib", std::to_string(idleKiB));
  RecordProperty("create_to_running_p50_ms", std::to_string(percentile(runningMs, 0.5)));
  RecordProperty("sessions_per_second", std::to_string(perSecond));
  EXPECT_LT(firstHeartbeatMs, 2000);
  EXPECT_LT(idleKiB, 64 * 1024);
  EXPECT_GT(perSecond, 20);
}

// A device that turns unhealthy gets no new sessions; once it recovers it does again.
TEST_F(AgentTest, UnhealthyDevicesAreFencedUntilTheyRecover) {
  startAgent("faults = { devices = [ { device = \"1\", unhealthy_after = \"0.3\", recover_after = \"1.2\", "
             "reason = \"XID 79\" } ] }\n");
  ASSERT_TRUE(eventually([&] {
    return client_->get("/v1/health").body.find("\"unhealthy\"") != std::string::npos;
  }, 5s)) << client_->get("/v1/health").body;
  auto refused = create("all4", {"true"}, {{slot("cuda.device"), 4}});
  EXPECT_EQ(refused.status, 409) << refused.body;
  ASSERT_TRUE(eventually([&] {
    for (const auto& h : manager_->heartbeats()) {
      if (!h.state) continue;
      for (const auto& d : h.state->deviceHealth) {
        if (d.deviceId == "1" && d.health == "unhealthy" && d.reason == "XID 79") return true;
      }
    }
    return false;
  })) << "the manager hears of it";
  EXPECT_TRUE(eventually([&] {
    for (const auto& h : manager_->heartbeats()) {
      if (h.state && h.state->available.get("cuda.device") == Quantity(3)) return true;
    }
    return false;
  })) << "an unhealthy device is no capacity";
  ASSERT_TRUE(eventually([&] { return create("all4-later", {"true"}, {{slot("cuda.device"), 4}}).status == 201; }, 5s));
  EXPECT_NE(agent_->log().find("takes new sessions again"), std::string::npos) << agent_->log();
  waitForEnd("all4-later");
}

// The RPC over HTTPS with a self-signed pair made here.
TEST_F(AgentTest, ServesTheRpcOverTls) {
  if (std::system("openssl version > /dev/null 2>&1") != 0) GTEST_SKIP() << "no openssl command";
  fs::create_directories(dir_);
  const std::string cert = (dir_ / "cert.pem").string(), key = (dir_ / "key.pem").string();
  ASSERT_EQ(std::system(("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -keyout " + key +
                         " -out " + cert + " > /dev/null 2>&1").c_str()),
            0);
  agent_ = std::make_unique<AgentProcess>(dir_, manager_->url());
  // The [agent] table is first: put the TLS keys into it.
  std::string config = readFile(dir_ / "agent.toml");
  config.replace(config.find("heartbeat-interval"), 0, "tls-cert-file = \"" + cert + "\"\ntls-key-file = \"" + key + "\"\n");
  std::ofstream(dir_ / "agent.toml") << config;
  ASSERT_TRUE(agent_->start()) << agent_->log();
  std::string base = agent_->base();
  base.replace(0, 4, "https");
  HttpClient tls(base, agent_->token());
  EXPECT_EQ(tls.request("GET", "/v1/health", "", true).status, 200);
  HttpClient plain(agent_->base(), agent_->token());
  EXPECT_NE(plain.get("/v1/health").status, 200);
  EXPECT_NE(agent_->log().find("serving RPC on https://"), std::string::npos) << agent_->log();
}

// SIGHUP: the real agent re-reads its file. Rewrites [agent] in place, keeping the rest.
void rewriteAgentTable(const fs::path& file, const std::string& extraAgentKeys) {
  std::string text = readFile(file);
  const std::string marker = "heartbeat-interval = 0.05\n";
  const auto at = text.find(marker);
  ASSERT_NE(at, std::string::npos);
  text = text.substr(0, at + marker.size()) + extraAgentKeys + text.substr(at + marker.size());
  std::ofstream(file) << text;
}

TEST_F(AgentTest, SighupAppliesThePluginListsAndTheLogLevelAndRefusesABrokenConfig) {
  startAgent();
  const fs::path file = agent_->dir() / "agent.toml";
  const std::string original = readFile(file);
  auto offersGpus = [&] {
    auto state = lastFullState();
    return state && state->slotTypes.count("cuda.device") != 0;
  };
  ASSERT_TRUE(eventually(offersGpus)) << agent_->log();
  ASSERT_EQ(create("holder", {"sleep", "30"}, {{slot("cuda.device"), 1}}).status, 201);

  // The mock plugin is no longer allowed: no new GPU sessions, the running one keeps its GPU.
  rewriteAgentTable(file, "allow-plugins = [\"cpu\"]\nlog-level = \"debug\"\n");
  const std::size_t heartbeatsBefore = manager_->heartbeats().size();
  ASSERT_EQ(kill(agent_->pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return agent_->log().find("configuration reloaded") != std::string::npos; })) << agent_->log();
  EXPECT_NE(agent_->log().find("plugin mock is no longer allowed"), std::string::npos) << agent_->log();
  const json health = json::parse(client_->get("/v1/health").body);
  EXPECT_EQ(health["draining_plugins"], json::array({"mock"})) << health.dump();
  EXPECT_EQ(create("refused", {"sleep", "30"}, {{slot("cuda.device"), 1}}).status, 409);
  ASSERT_TRUE(eventually([&] {
    auto state = lastFullState();
    return manager_->heartbeats().size() > heartbeatsBefore && state && state->largestAllocatable.get("cuda.device").isZero();
  })) << "the next heartbeat carries the change";

  // Once the session ends the plugin is unloaded and its slots leave the report.
  client_->del("/v1/sessions/holder");
  waitForEnd("holder");
  ASSERT_TRUE(eventually([&] { return !offersGpus(); })) << agent_->log();
  EXPECT_NE(agent_->log().find("plugin mock unloaded"), std::string::npos) << agent_->log();

  // A file that no longer parses is refused; the agent keeps running as it was.
  std::ofstream(file) << "[agent\n";
  ASSERT_EQ(kill(agent_->pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually([&] { return agent_->log().find("reload refused, running settings kept") != std::string::npos; }))
      << agent_->log();
  EXPECT_TRUE(agent_->alive());
  EXPECT_EQ(client_->get("/v1/health").status, 200);

  // Back to every plugin, plus a key that needs a restart.
  std::ofstream(file) << original;
  rewriteAgentTable(file, "region = \"moved\"\n");
  ASSERT_EQ(kill(agent_->pid(), SIGHUP), 0);
  ASSERT_TRUE(eventually(offersGpus)) << agent_->log();
  EXPECT_NE(agent_->log().find("agent.region changed; restart to apply"), std::string::npos) << agent_->log();
  EXPECT_EQ(lastFullState()->region, "local");
  EXPECT_EQ(create("again", {"true"}, {{slot("cuda.device"), 1}}).status, 201);
  // The level is info again: this reload's summary is logged.
  EXPECT_TRUE(eventually([&] { return agent_->log().find("info agent: configuration reloaded") != std::string::npos; }))
      << agent_->log();
}

}  // namespace
}  // namespace bai::testing
