// The real bai-agent binary with the cpu and mock plugins on a loopback port, driven
// over HTTP, reporting to a fake manager.
#include "../report/fake_manager.hpp"
#include "http_client.hpp"

#include <bai/protocol.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

extern char** environ;

namespace bai::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string readFile(const fs::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

template <class Predicate>
bool eventually(Predicate done, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// One bai-agent process with its own state dir, token and config.
class AgentProcess {
 public:
  AgentProcess(fs::path dir, std::string managerUrl, std::string extraConfig = "", std::string mockConfig = "mock-4xa100.toml")
      : dir_(std::move(dir)) {
    fs::create_directories(dir_);
    token_ = "test-token-0123456789";
    std::ofstream(dir_ / "token") << token_ << "\n";
    ::chmod((dir_ / "token").c_str(), 0600);
    std::ofstream(dir_ / "agent.toml") << "[agent]\n"
                                       << "id = \"test-agent\"\n"
                                       << "rpc-listen-addr = \"127.0.0.1:0\"\n"
                                       << "manager-url = \"" << managerUrl << "\"\n"
                                       << "cluster-token-file = \"" << (dir_ / "token").string() << "\"\n"
                                       << "state-dir = \"" << (dir_ / "state").string() << "\"\n"
                                       << "plugin-path = [\"" << env("BAI_CPU_PLUGIN_DIR") << "\", \""
                                       << env("BAI_MOCK_PLUGIN_DIR") << "\"]\n"
                                       << "heartbeat-interval = 0.05\n"
                                       << "[runtime]\n"
                                       << "shim-path = \"" << env("BAI_SESSION_SHIM") << "\"\n"
                                       << "destroy-grace = 1\n"
                                       << "cgroup-root = \"" << (dir_ / "no-cgroups").string() << "\"\n"
                                       << "[plugins.mock]\n"
                                       << "config_file = \"" << env("BAI_MOCK_CONFIG_DIR") << "/" << mockConfig << "\"\n"
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

  const std::string& base() const { return base_; }
  const std::string& token() const { return token_; }
  std::string log() const { return readFile(dir_ / "agent.log"); }
  const fs::path& dir() const { return dir_; }

 private:
  static pid_t spawn(const std::vector<std::string>& args, const fs::path& log) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    pid_t pid = 0;
    posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    return pid;
  }

  fs::path dir_;
  std::string token_;
  std::string base_;
  pid_t pid_ = 0;
  int exitStatus_ = -1;
};

class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
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
    agent_.reset();
    if (manager_) manager_->stop();
    fs::remove_all(dir_);
  }

  AgentProcess& startAgent(std::string extraConfig = "", std::string mockConfig = "mock-4xa100.toml") {
    agent_ = std::make_unique<AgentProcess>(dir_, manager_->url(), std::move(extraConfig), std::move(mockConfig));
    EXPECT_TRUE(agent_->start()) << agent_->log();
    client_ = std::make_unique<HttpClient>(agent_->base(), agent_->token());
    return *agent_;
  }

  HttpReply create(const std::string& id, std::vector<std::string> command, ResourceSlot slots) {
    protocol::CreateSessionRequest request{id, std::move(command), {}, std::move(slots)};
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
  EXPECT_EQ(create("two", {"true"}, {{slot("cuda.device"), 2}}).status, 201);
  EXPECT_EQ(create("more", {"true"}, {{slot("cuda.device"), 1}}).status, 409);
  client_->del("/v1/sessions/long");
  waitForEnd("long");
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

}  // namespace
}  // namespace bai::testing
