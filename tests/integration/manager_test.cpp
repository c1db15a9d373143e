// The real bai-manager with real bai-agents (cpu and mock plugins) on loopback ports:
// registration, placement by generic slots, the signed API over the wire, lost agents,
// and a manager killed in the middle of placing sessions.
#include "child_process.hpp"
#include "daemon_process.hpp"
#include "http_client.hpp"
#include "signed_client.hpp"
#include "temp_dir.hpp"
#include "wait.hpp"

#include <bai/protocol.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bai::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using json = nlohmann::json;

bool isFinal(const std::string& status) { return status == "TERMINATED" || status == "CANCELLED" || status == "ERROR"; }

struct AgentHandle {
  std::string id;
  fs::path dir;
  std::string rpcBase;  // from its ready file
  ChildProcess process;
  std::string log() const { return readFile(dir / "agent.log"); }
};

class ManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string missing = missingClusterVariable(); !missing.empty()) {
      GTEST_SKIP() << missing << " is not set (built without the manager, the agent or a plugin)";
    }
    temp_ = std::make_unique<test::TempDir>();
    dir_ = temp_->path();
    marker_ = dir_.string();
    token_ = "cluster-token-" + std::to_string(::getpid()) + "-5f0c2a9e71d4b38c";
    writeSecret(dir_ / "cluster-token", token_);
  }

  void TearDown() override {
    if (!temp_) return;  // skipped
    killMarkedProcesses(marker_, [&] {
      for (auto& agent : agents_) agent->process.alive();
      manager_.alive();
    });
    for (auto& agent : agents_) agent->process.stop(SIGKILL);
    manager_.stop(SIGKILL);
    if (HasFailure()) {
      std::cerr << "---- manager log\n" << readFile(dir_ / "manager.log") << "\n";
      for (auto& agent : agents_) std::cerr << "---- agent " << agent->id << " log\n" << agent->log() << "\n";
    }
    agents_.clear();
    temp_.reset();
  }

  // `bai-manager init`: its exit code; stdout and stderr go to init.out and init.err.
  int runInit(const fs::path& keypairFile) {
    ChildProcess init;
    if (!init.spawn({env("BAI_MANAGER"), "init", "--db", dbUrl(), "--admin-keypair-out", keypairFile.string()},
                    dir_ / "init.out", dir_ / "init.err", marker_)) {
      return -1000;
    }
    return init.wait();
  }

  std::string dbUrl() const { return "sqlite://" + (dir_ / "manager.db").string(); }

  // Starts the manager (after init, done here once) and waits until it serves.
  bool startManager(const std::string& listen = "127.0.0.1:0", double heartbeatTimeout = 10,
                    bool ownTokenFile = true) {
    if (!fs::exists(dir_ / "admin.keypair")) {
      if (runInit(dir_ / "admin.keypair") != 0) {
        ADD_FAILURE() << "init failed: " << readFile(dir_ / "init.err");
        return false;
      }
    }
    auto keypair = readKeypairFile(dir_ / "admin.keypair");
    if (!keypair) {
      ADD_FAILURE() << "no keypair in " << readFile(dir_ / "admin.keypair");
      return false;
    }
    std::ofstream(dir_ / "manager.toml") << "[agents]\nheartbeat-timeout = " << heartbeatTimeout << "\nrpc-timeout = 5\n"
                                         << "[scheduler]\nperiod = 0.2\n" << schedulerToml_;
    fs::remove(dir_ / "manager.ready");
    std::vector<std::string> args = {env("BAI_MANAGER"), "--config", (dir_ / "manager.toml").string(), "--listen", listen,
                                     "--db", dbUrl(), "--ready-file", (dir_ / "manager.ready").string()};
    if (ownTokenFile) {
      args.push_back("--cluster-token-file");
      args.push_back((dir_ / "cluster-token").string());
    }
    if (!manager_.spawn(args, dir_ / "manager.log", dir_ / "manager.log", marker_, dir_)) return false;
    if (!eventually([&] { return fs::exists(dir_ / "manager.ready") || !manager_.alive(); }) ||
        !fs::exists(dir_ / "manager.ready")) {
      ADD_FAILURE() << "the manager did not come up:\n" << readFile(dir_ / "manager.log");
      return false;
    }
    std::string address = readFile(dir_ / "manager.ready");
    address.erase(address.find_last_not_of("\n") + 1);
    managerUrl_ = "http://" + address;
    admin_ = std::make_unique<SignedClient>(managerUrl_, *keypair);
    admin_->setTimeout(10s);  // a manager that stops answering fails the test, not the suite's timeout
    return true;
  }

  // Starts an agent reporting to the manager; waits for its RPC, not its registration.
  // `agentKeys` go into its [agent] table, `mockKeys` into [plugins.mock].
  AgentHandle& startAgent(const std::string& id, const std::string& mockConfig, const std::string& agentKeys = "",
                          const std::string& mockKeys = "", double heartbeatInterval = 0.2) {
    auto agent = std::make_unique<AgentHandle>();
    agent->id = id;
    agent->dir = dir_ / id;
    fs::create_directories(agent->dir);
    std::string toml = agentToml(id, managerUrl_, dir_ / "cluster-token", agent->dir, heartbeatInterval, mockConfig);
    toml.insert(toml.find("[agent]\n") + 8, agentKeys);
    std::ofstream(agent->dir / "agent.toml") << toml << mockKeys;
    agents_.push_back(std::move(agent));
    AgentHandle& handle = *agents_.back();
    EXPECT_TRUE(launchAgent(handle)) << handle.log();
    return handle;
  }

  // (Re)starts an agent process with its config and state dir.
  bool launchAgent(AgentHandle& agent) {
    fs::remove(agent.dir / "ready");
    if (!agent.process.spawn({env("BAI_AGENT"), "--config", (agent.dir / "agent.toml").string(), "--ready-file",
                              (agent.dir / "ready").string()},
                             agent.dir / "agent.log", agent.dir / "agent.log", marker_)) {
      return false;
    }
    if (!eventually([&] { return fs::exists(agent.dir / "ready") || !agent.process.alive(); }) ||
        !fs::exists(agent.dir / "ready")) {
      return false;
    }
    std::string address = readFile(agent.dir / "ready");
    address.erase(address.find_last_not_of("\n") + 1);
    agent.rpcBase = "http://" + address;
    return true;
  }

  json agentInfo(const std::string& id) {
    auto reply = admin_->get("/v1/agents/" + id);
    return reply.status == 200 ? reply.json : json();
  }

  bool waitAgentStatus(const std::string& id, const std::string& status, std::chrono::milliseconds limit = 10s) {
    return eventually([&] {
      json info = agentInfo(id);
      return info.is_object() && info.value("status", "") == status;
    }, limit);
  }

  std::string used(const std::string& agentId, const std::string& slot) {
    json info = agentInfo(agentId);
    if (!info.is_object() || !info["slots"].contains(slot)) return "?";
    return info["slots"][slot].value("used", "?");
  }

  // The body of a session request; the marker goes into its env so teardown finds it.
  json sessionBody(const std::string& name, std::vector<std::string> command, json resources) {
    return json{{"name", name},
                {"command", std::move(command)},
                {"env", {{kMarkerVariable, marker_}}},
                {"resources", std::move(resources)}};
  }

  ApiReply submit(SignedClient& client, const std::string& name, std::vector<std::string> command, json resources) {
    return client.post("/v1/sessions", sessionBody(name, std::move(command), std::move(resources)));
  }

  // Created (201) or a failed assertion; the new session's id.
  std::string mustSubmit(const std::string& name, std::vector<std::string> command, json resources) {
    auto reply = submit(*admin_, name, std::move(command), std::move(resources));
    EXPECT_EQ(reply.status, 201) << reply.body;
    return reply.status == 201 ? reply.json.value("id", "") : "";
  }

  json session(const std::string& id, SignedClient* client = nullptr) {
    auto reply = (client != nullptr ? *client : *admin_).get("/v1/sessions/" + id);
    return reply.status == 200 && reply.json.is_object() ? reply.json : json::object();
  }

  std::string status(const std::string& id) {
    json info = session(id);
    return info.is_object() ? info.value("status", "") : "";
  }

  bool waitStatus(const std::string& id, const std::string& wanted, std::chrono::milliseconds limit = 10s) {
    return eventually([&] { return status(id) == wanted; }, limit);
  }

  // Long-polls until the session is over; its last JSON either way.
  json waitFinal(const std::string& id, int seconds = 20) {
    admin_->setTimeout(std::chrono::seconds(seconds + 10));
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    json last = json::object();
    while (std::chrono::steady_clock::now() < end) {
      auto reply = admin_->get("/v1/sessions/" + id + "?wait=" + std::to_string(seconds));
      if (reply.status == 200 && reply.json.is_object()) {
        last = reply.json;
        if (isFinal(last.value("status", ""))) break;
      } else {
        std::this_thread::sleep_for(50ms);
      }
    }
    admin_->setTimeout(10s);
    return last;
  }

  // The agent's own list of sessions, over its RPC.
  json agentSessions(const AgentHandle& agent) {
    HttpClient client(agent.rpcBase, token_);
    return json::parse(client.get("/v1/sessions").body, nullptr, false);
  }

  std::string agentSessionState(const AgentHandle& agent, const std::string& id) {
    HttpClient client(agent.rpcBase, token_);
    json info = json::parse(client.get("/v1/sessions/" + id).body, nullptr, false);
    return info.is_object() ? info.value("state", "") : "";
  }

  // More of the manager's [scheduler] table. Sessions of these tests ask for what they
  // need: no cpu and mem defaults, or a 2-core machine would run two at a time.
  std::string schedulerToml_ = "default-session-slots = []\n";
  std::unique_ptr<test::TempDir> temp_;
  fs::path dir_;
  std::string marker_;
  std::string token_;
  ChildProcess manager_;
  std::string managerUrl_;
  std::unique_ptr<SignedClient> admin_;
  std::vector<std::unique_ptr<AgentHandle>> agents_;
};

TEST_F(ManagerTest, InitWritesASecretKeypairOnceAndSecretsStayOutOfLogs) {
  const fs::path keypairFile = dir_ / "admin.keypair";
  ASSERT_EQ(runInit(keypairFile), 0) << readFile(dir_ / "init.err");
  struct stat info {};
  ASSERT_EQ(::stat(keypairFile.c_str(), &info), 0);
  EXPECT_TRUE(S_ISREG(info.st_mode));
  EXPECT_EQ(info.st_mode & 07777, 0600u) << "mode bits, checked explicitly (root reads anything)";
  const std::string written = readFile(keypairFile);
  const auto keypair = readKeypairFile(keypairFile);
  ASSERT_TRUE(keypair.has_value()) << written;
  EXPECT_GE(keypair->secretKey.size(), 32u);
  EXPECT_EQ(readFile(dir_ / "init.out").find(keypair->secretKey), std::string::npos) << "init prints no secret";

  // Again with the file present: schema kept, file untouched, still 0600.
  EXPECT_EQ(runInit(keypairFile), 0) << readFile(dir_ / "init.err");
  EXPECT_EQ(readFile(keypairFile), written);
  ASSERT_EQ(::stat(keypairFile.c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  EXPECT_NE(readFile(dir_ / "init.err").find("exists"), std::string::npos) << readFile(dir_ / "init.err");

  // The daemon makes its own cluster token (in its start directory) when none is configured.
  ASSERT_TRUE(startManager("127.0.0.1:0", 10, /*ownTokenFile=*/false));
  const fs::path tokenFile = dir_ / "bai-cluster-token";
  ASSERT_EQ(::stat(tokenFile.c_str(), &info), 0) << readFile(dir_ / "manager.log");
  EXPECT_EQ(info.st_mode & 07777, 0600u);
  std::string token = readFile(tokenFile);
  token.erase(token.find_last_not_of("\n") + 1);
  ASSERT_FALSE(token.empty());
  std::ofstream(dir_ / "cluster-token", std::ios::trunc) << token << "\n";  // agents use the manager's token
  token_ = token;

  // Exercise the paths that handle secrets: signed calls, a new keypair, a bad
  // signature, an agent's bearer token, a heartbeat with a wrong one.
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();
  EXPECT_EQ(admin_->get("/v1/sessions").status, 200);
  auto created = admin_->post("/v1/keypairs", json{{"admin", false}});
  ASSERT_EQ(created.status, 201) << created.body;
  const std::string userSecret = created.json.value("secret_key", "");
  ASSERT_FALSE(userSecret.empty());
  Tampering wrongSecret;
  wrongSecret.signWith = ApiKeypair{"x", userSecret};
  EXPECT_EQ(admin_->request("GET", "/v1/sessions", "", wrongSecret).status, 401);
  EXPECT_EQ(admin_->send("POST", "/v1/agents/agent-1/heartbeat", "{}", {{"Authorization", "Bearer " + token + "x"}}).status, 401);
  EXPECT_EQ(admin_->send("GET", "/metrics", "", {{"Authorization", "Bearer " + token}}).status, 401);
  const std::string id = mustSubmit("hello", {"true"}, json::object());
  EXPECT_EQ(waitFinal(id).value("status", ""), "TERMINATED");

  // A clean stop, then nothing secret in anything the daemons printed.
  EXPECT_EQ(manager_.stop(SIGTERM), 0) << readFile(dir_ / "manager.log");
  const std::string managerLog = readFile(dir_ / "manager.log");
  EXPECT_NE(managerLog.find("serving the API"), std::string::npos) << managerLog;
  for (const std::string& secret : {keypair->secretKey, userSecret, token}) {
    EXPECT_EQ(managerLog.find(secret), std::string::npos) << "a secret in the manager's output:\n" << managerLog;
    EXPECT_EQ(agent.log().find(secret), std::string::npos) << "a secret in the agent's output";
    EXPECT_EQ(readFile(dir_ / "init.out").find(secret), std::string::npos);
    EXPECT_EQ(readFile(dir_ / "init.err").find(secret), std::string::npos);
  }
}

// Each tenant's sessions run as its keypair's own uid; an identity no agent accepts waits,
// with the agents' reasons, and runs once an admin gives the keypair an acceptable uid.
TEST_F(ManagerTest, SessionsRunAsTheirKeypairsUidAndAnIdentityNoAgentAcceptsWaits) {
  ASSERT_TRUE(startManager());
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();
  std::string accessKey;
  auto tenant = [&](json body) {
    auto created = admin_->post("/v1/keypairs", body);
    EXPECT_EQ(created.status, 201) << created.body;
    accessKey = created.json.value("access_key", "");
    return std::make_pair(created.json.value("uid", 0), std::make_unique<SignedClient>(
                                                            managerUrl_, ApiKeypair{accessKey, created.json.value("secret_key", "")}));
  };
  auto [uidA, a] = tenant(json{{"admin", false}});
  auto [uidB, b] = tenant(json{{"admin", false}});
  EXPECT_GE(uidA, 200000);
  EXPECT_NE(uidA, uidB) << "each keypair its own uid";
  for (const auto& [uid, client] : {std::pair{uidA, a.get()}, std::pair{uidB, b.get()}}) {
    auto reply = submit(*client, "whoami", {"sh", "-c", "id -u; id -g"}, json::object());
    ASSERT_EQ(reply.status, 201) << reply.body;
    const std::string id = reply.json.value("id", "");
    ASSERT_TRUE(eventually([&] { return session(id, client).value("status", "") == "TERMINATED"; })) << session(id, client);
    EXPECT_EQ(client->get("/v1/sessions/" + id + "/logs?stream=stdout").body,
              std::to_string(uid) + "\n" + std::to_string(uid) + "\n");
  }

  auto [uidC, c] = tenant(json{{"admin", false}, {"uid", 1000}});
  EXPECT_EQ(uidC, 1000);
  auto reply = submit(*c, "system-uid", {"true"}, json::object());
  ASSERT_EQ(reply.status, 201) << reply.body;
  const std::string waiting = reply.json.value("id", "");
  ASSERT_TRUE(eventually([&] {
    return session(waiting, c.get()).value("status_reason", "").find("uid 1000 is outside") != std::string::npos;
  })) << session(waiting, c.get());
  EXPECT_EQ(session(waiting, c.get()).value("status", ""), "PENDING");

  auto moved = admin_->request("PUT", "/v1/keypairs/" + accessKey + "/identity", json{{"uid", 200500}, {"gid", 200500}}.dump());
  ASSERT_EQ(moved.status, 200) << moved.body;
  ASSERT_TRUE(eventually([&] { return session(waiting, c.get()).value("status", "") == "TERMINATED"; }))
      << session(waiting, c.get());
}

TEST_F(ManagerTest, SessionsLandWhereTheirSlotIsServedAndReportBack) {
  ASSERT_TRUE(startManager());
  AgentHandle& gpu = startAgent("gpu-agent", "mock-4xa100.toml");
  AgentHandle& acme = startAgent("acme-agent", "mock-acme.toml");
  AgentHandle& shares = startAgent("shares-agent", "mock-fractional.toml");
  for (AgentHandle* agent : {&gpu, &acme, &shares}) ASSERT_TRUE(waitAgentStatus(agent->id, "ALIVE")) << agent->log();

  auto slots = admin_->get("/v1/resource-slots");
  ASSERT_EQ(slots.status, 200) << slots.body;
  EXPECT_EQ(slots.json.value("acme.device", ""), "count") << slots.body;
  EXPECT_EQ(slots.json.value("cuda.device", ""), "count") << slots.body;
  // A share slot mapped by a fraction map is reported as a fraction: placement packs it.
  EXPECT_EQ(slots.json.value("cuda.shares", ""), "fraction") << slots.body;
  EXPECT_EQ(slots.json.value("mem", ""), "bytes") << slots.body;
  json acmeInfo = agentInfo("acme-agent");
  ASSERT_TRUE(acmeInfo.is_object());
  EXPECT_EQ(acmeInfo["slots"]["acme.device"].value("capacity", ""), "2") << acmeInfo.dump();
  EXPECT_EQ(acmeInfo["slots"]["acme.device"].value("type", ""), "count") << acmeInfo.dump();
  EXPECT_FALSE(agentInfo("gpu-agent")["slots"].contains("acme.device"));
  auto listed = admin_->get("/v1/agents");
  ASSERT_EQ(listed.status, 200);
  EXPECT_EQ(listed.json.size(), 3u) << listed.body;

  const std::string id = mustSubmit("acme-job", {"sh", "-c", "echo acme=$BAI_MOCK_ACME_DEVICES; echo to-stderr >&2; exit 7"},
                                    {{"acme.device", 1}});
  json done = waitFinal(id);
  EXPECT_EQ(done.value("status", ""), "TERMINATED") << done.dump();
  EXPECT_EQ(done.value("agent", ""), "acme-agent") << done.dump();
  EXPECT_EQ(done["exit_code"], 7) << done.dump();
  EXPECT_GT(done.value("started_at_ms", 0), 0) << done.dump();
  EXPECT_GE(done.value("ended_at_ms", 0), done.value("started_at_ms", 0)) << done.dump();

  auto out = admin_->get("/v1/sessions/" + id + "/logs?stream=stdout");
  ASSERT_EQ(out.status, 200) << out.body;
  EXPECT_EQ(out.body.rfind("acme=ACME-NPU-000", 0), 0u) << out.body;
  auto err = admin_->get("/v1/sessions/" + id + "/logs?stream=stderr");
  EXPECT_EQ(err.body, "to-stderr\n");
  EXPECT_EQ(admin_->get("/v1/sessions/" + id + "/logs?stream=stderr&tail=7").body, "stderr\n");

  // Fractional shares land on the one agent that has them.
  const std::string shared = mustSubmit("shares-job", {"true"}, {{"cuda.shares", "0.5"}});
  json sharedDone = waitFinal(shared);
  EXPECT_EQ(sharedDone.value("agent", ""), "shares-agent") << sharedDone.dump();
  EXPECT_EQ(sharedDone.value("status", ""), "TERMINATED") << sharedDone.dump();
  EXPECT_EQ(sharedDone["exit_code"], 0) << sharedDone.dump();
  EXPECT_EQ(sharedDone["resources"].value("cuda.shares", ""), "0.5") << sharedDone.dump();

  auto running = admin_->get("/v1/sessions?status=TERMINATED");
  ASSERT_EQ(running.status, 200);
  EXPECT_EQ(running.json.size(), 2u) << running.body;
  EXPECT_EQ(admin_->get("/v1/sessions?status=RUNNING").json.size(), 0u);
  for (AgentHandle* agent : {&gpu, &acme, &shares}) {
    json info = agentInfo(agent->id);
    ASSERT_TRUE(info.is_object());
    for (const auto& [slot, figures] : info["slots"].items()) {
      EXPECT_EQ(figures.value("used", ""), "0") << agent->id << " " << slot;
    }
  }
}

// 40 concurrent reads of a 16 MiB log once took the manager from 27 MB to 331 MB: a read
// now answers one page (1 MiB) at most, and says where the next one starts.
TEST_F(ManagerTest, ALogReadAnswersAtMostOnePageAndSaysWhereTheNextStarts) {
  ASSERT_TRUE(startManager());
  AgentHandle& agent = startAgent("log-agent", "mock-acme.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();
  const std::string id = mustSubmit("big-log", {"sh", "-c", "head -c 3145728 /dev/zero | tr '\\0' x"}, {{"acme.device", 1}});
  ASSERT_EQ(waitFinal(id).value("status", ""), "TERMINATED");
  const std::string logs = "/v1/sessions/" + id + "/logs";

  auto first = admin_->get(logs + "?limit=16777216");
  ASSERT_EQ(first.status, 200) << first.body.substr(0, 200);
  EXPECT_EQ(first.body.size(), 1u << 20) << "one page, however much was asked for";
  EXPECT_EQ(first.headers["x-bai-log-offset"], "0");
  EXPECT_EQ(first.headers["x-bai-log-next-offset"], "1048576");
  EXPECT_EQ(first.headers["x-bai-log-size"], "3145728");
  auto second = admin_->get(logs + "?offset=1048576");
  EXPECT_EQ(second.body.size(), 1u << 20);
  EXPECT_EQ(second.headers["x-bai-log-next-offset"], "2097152");
  auto tail = admin_->get(logs + "?tail=2097152");
  EXPECT_EQ(tail.body.size(), 1u << 20) << "a long tail is its last page";
  EXPECT_EQ(tail.headers["x-bai-log-offset"], "2097152") << "where to page back from";
  EXPECT_EQ(tail.headers["x-bai-log-next-offset"], "3145728");

  auto bad = admin_->get(logs + "?limit=-1");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.detail().find("limit"), std::string::npos) << bad.body;
}

TEST_F(ManagerTest, BadSessionRequestsAreRefusedWithReasons) {
  ASSERT_TRUE(startManager());
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();

  auto check = [&](const ApiReply& reply, int status, const std::string& type, const std::string& mentions) {
    EXPECT_EQ(reply.status, status) << reply.body;
    if (!type.empty()) {
      EXPECT_EQ(reply.errorType(), type) << reply.body;
    }
    EXPECT_TRUE(reply.json.is_object() && reply.json.contains("title")) << reply.body;
    EXPECT_NE(reply.detail().find(mentions), std::string::npos) << "'" << mentions << "' in " << reply.body;
  };
  check(submit(*admin_, "x", {"true"}, {{"tpu.device", 1}}), 400, "unknown-slot", "tpu.device");
  auto otherGroup = sessionBody("x", {"true"}, {{"cuda.device", 1}});
  otherGroup["scaling_group"] = "no-gpus-here";
  check(admin_->post("/v1/sessions", otherGroup), 404, "unknown-scaling-group", "no-gpus-here");
  ASSERT_EQ(admin_->post("/v1/scaling-groups", json{{"name", "no-gpus-here"}}).status, 201);
  check(admin_->post("/v1/sessions", otherGroup), 400, "slot-not-served", "cuda.device");
  check(admin_->post("/v1/sessions", std::string("{not json")), 400, "invalid-request", "JSON");
  check(submit(*admin_, "x", {}, json::object()), 400, "invalid-request", "command");
  check(submit(*admin_, "x", {""}, json::object()), 400, "invalid-request", "command");
  check(submit(*admin_, "x", {"true"}, {{"cpu", "-1"}}), 400, "", "cpu");
  check(submit(*admin_, "x", {"true"}, {{"cuda.device", -2}}), 400, "", "cuda.device");
  check(submit(*admin_, "x", {"true"}, {{"mem", "4x"}}), 400, "", "mem");
  check(submit(*admin_, "x", {"true"}, {{"mem", "1.5"}}), 400, "", "mem");
  check(submit(*admin_, "x", {"true"}, {{"cuda.device", true}}), 400, "invalid-request", "cuda.device");
  auto extra = sessionBody("x", {"true"}, json::object());
  extra["gpus"] = 1;
  check(admin_->post("/v1/sessions", extra), 400, "invalid-request", "gpus");
  EXPECT_EQ(admin_->get("/v1/sessions").json.size(), 0u) << "nothing was created";

  auto accepted = submit(*admin_, "four-gigs", {"true"}, {{"mem", "4g"}});
  ASSERT_EQ(accepted.status, 201) << accepted.body;
  EXPECT_EQ(accepted.json["resources"].value("mem", ""), "4294967296") << accepted.body;
  const std::string id = accepted.json.value("id", "");
  EXPECT_EQ(session(id)["resources"].value("mem", ""), "4294967296");
  EXPECT_EQ(admin_->del("/v1/sessions/" + id).status, 200);
  EXPECT_TRUE(isFinal(waitFinal(id).value("status", ""))) << session(id).dump() << "\non the agent: "
                                                          << agentSessionState(agent, id);

  check(admin_->get("/v1/sessions/no-such-session"), 404, "unknown-session", "no-such-session");
  check(admin_->del("/v1/sessions/no-such-session"), 404, "unknown-session", "no-such-session");
  check(admin_->get("/v1/sessions/no-such-session/logs"), 404, "unknown-session", "no-such-session");
  check(admin_->get("/v1/sessions/" + id + "?wait=soon"), 400, "invalid-request", "wait");
  check(admin_->get("/v1/sessions?status=SLEEPING"), 400, "invalid-request", "SLEEPING");
  check(admin_->get("/v1/agents/no-such-agent"), 404, "unknown-agent", "no-such-agent");
}

TEST_F(ManagerTest, EveryRequestIsSignedAndChecked) {
  ASSERT_TRUE(startManager());
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();

  auto health = admin_->unsignedRequest("GET", "/healthz");
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(health.json.value("status", ""), "ok");

  auto refused = [](const ApiReply& reply, const std::string& type) {
    EXPECT_EQ(reply.status, 401) << reply.body;
    EXPECT_EQ(reply.errorType(), type) << reply.body;
  };
  refused(admin_->unsignedRequest("GET", "/v1/sessions"), "missing-credentials");
  refused(admin_->unsignedRequest("GET", "/metrics"), "missing-credentials");

  Tampering badSignature;
  badSignature.headers["Authorization"] = "BAI-HMAC-SHA256 Credential=" + admin_->keypair().accessKey +
                                          ", Signature=" + std::string(64, '0');
  refused(admin_->request("GET", "/v1/sessions", "", badSignature), "bad-signature");
  Tampering wrongSecret;
  wrongSecret.signWith = ApiKeypair{admin_->keypair().accessKey, admin_->keypair().secretKey + "x"};
  refused(admin_->request("GET", "/v1/sessions", "", wrongSecret), "bad-signature");
  SignedClient stranger(managerUrl_, ApiKeypair{"AKNOBODY0000000000000", "secret"});
  refused(stranger.get("/v1/sessions"), "unknown-access-key");

  const std::string body = sessionBody("signed", {"true"}, json::object()).dump();
  Tampering changedBody;
  changedBody.sendBody = sessionBody("signed", {"sh", "-c", "echo evil"}, json::object()).dump();
  refused(admin_->request("POST", "/v1/sessions", body, changedBody), "bad-body-hash");
  changedBody.rehashBody = true;
  refused(admin_->request("POST", "/v1/sessions", body, changedBody), "bad-signature");
  Tampering changedQuery;
  changedQuery.sendTarget = "/v1/sessions?status=PENDING";
  refused(admin_->request("GET", "/v1/sessions?status=RUNNING", "", changedQuery), "bad-signature");
  Tampering changedMethod;
  changedMethod.sendMethod = "DELETE";
  refused(admin_->request("GET", "/v1/sessions/abc", "", changedMethod), "bad-signature");
  for (auto offset : {-6min, 6min}) {
    Tampering skewed;
    skewed.clockOffset = std::chrono::duration_cast<std::chrono::seconds>(offset);
    refused(admin_->request("GET", "/v1/sessions", "", skewed), "clock-skew");
  }
  Tampering slightlySkewed;
  slightlySkewed.clockOffset = -4min;
  EXPECT_EQ(admin_->request("GET", "/v1/sessions", "", slightlySkewed).status, 200) << "within the 5 minute window";
  EXPECT_EQ(admin_->get("/v1/sessions").json.size(), 0u) << "no refused request created anything";

  // An exact replay is refused, and so is a new request reusing a nonce.
  auto first = admin_->post("/v1/sessions", json::parse(body));
  ASSERT_EQ(first.status, 201) << first.body;
  refused(admin_->resendLast(), "replayed-nonce");
  EXPECT_EQ(admin_->get("/v1/sessions").json.size(), 1u) << "the replay created nothing";
  Tampering fixedNonce;
  fixedNonce.nonce = "0123456789abcdef0123456789abcdef";
  EXPECT_EQ(admin_->request("GET", "/v1/resource-slots", "", fixedNonce).status, 200);
  refused(admin_->request("GET", "/v1/sessions", "", fixedNonce), "replayed-nonce");
  const std::string adminSession = first.json.value("id", "");

  // A user keypair sees its own sessions only and none of the admin routes.
  auto created = admin_->post("/v1/keypairs", json{{"admin", false}});
  ASSERT_EQ(created.status, 201) << created.body;
  SignedClient user(managerUrl_, ApiKeypair{created.json.value("access_key", ""), created.json.value("secret_key", "")});
  auto mine = user.get("/v1/sessions");
  ASSERT_EQ(mine.status, 200) << mine.body;
  EXPECT_EQ(mine.json.size(), 0u) << mine.body;
  EXPECT_EQ(user.get("/v1/sessions/" + adminSession).status, 404);
  EXPECT_EQ(user.get("/v1/sessions/" + adminSession + "/logs").status, 404);
  EXPECT_EQ(user.del("/v1/sessions/" + adminSession).status, 404);
  EXPECT_EQ(user.get("/v1/sessions/" + adminSession + "?wait=1").status, 404);
  for (const char* path : {"/v1/agents", "/v1/agents/agent-1", "/v1/keypairs", "/metrics"}) {
    auto reply = user.get(path);
    EXPECT_EQ(reply.status, 403) << path << " " << reply.body;
    EXPECT_EQ(reply.errorType(), "forbidden") << path;
  }
  EXPECT_EQ(user.post("/v1/keypairs", json{{"admin", true}}).status, 403);
  EXPECT_EQ(user.get("/v1/resource-slots").status, 200);
  auto userSession = submit(user, "users-own", {"true"}, json::object());
  ASSERT_EQ(userSession.status, 201) << userSession.body;
  EXPECT_EQ(userSession.json.value("owner", ""), user.keypair().accessKey);
  EXPECT_EQ(user.get("/v1/sessions").json.size(), 1u);
  EXPECT_EQ(user.get("/v1/sessions/" + userSession.json.value("id", "")).status, 200);
  EXPECT_EQ(admin_->get("/v1/sessions").json.size(), 2u) << "admins see every session";
  auto keys = admin_->get("/v1/keypairs");
  ASSERT_EQ(keys.status, 200);
  EXPECT_EQ(keys.json.size(), 2u) << keys.body;
  EXPECT_EQ(keys.body.find("secret"), std::string::npos) << "secrets are shown once, at creation";

  // The agents' side: the cluster bearer token, nothing else.
  auto wrongToken = admin_->send("POST", "/v1/agents/agent-1/heartbeat", "{}", {{"Authorization", "Bearer not-the-token"}});
  EXPECT_EQ(wrongToken.status, 401) << wrongToken.body;
  EXPECT_EQ(wrongToken.errorType(), "bad-cluster-token");
  auto signedHeartbeat = admin_->request("POST", "/v1/agents/agent-1/heartbeat", "{}");
  EXPECT_NE(signedHeartbeat.status, 200) << "a user signature is no agent credential: " << signedHeartbeat.body;
  auto rightToken = admin_->send("POST", "/v1/agents/agent-1/heartbeat", "{}", {{"Authorization", "Bearer " + token_}});
  EXPECT_EQ(rightToken.status, 400) << "past the token check, refused for its body: " << rightToken.body;
  auto metrics = admin_->get("/metrics");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("bai_manager_agents{state=\"ALIVE\"} 1"), std::string::npos) << metrics.body;
  EXPECT_EQ(waitAgentStatus(agent.id, "ALIVE", 1s), true) << "the refused heartbeat changed nothing";
  for (const std::string& id : {adminSession, userSession.json.value("id", "")}) waitFinal(id);
}

TEST_F(ManagerTest, SessionsWaitForDevicesAndFreeThemWhenDone) {
  ASSERT_TRUE(startManager());
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();

  std::vector<std::string> running;
  for (int i = 0; i < 4; ++i) running.push_back(mustSubmit("fill-" + std::to_string(i), {"sleep", "60"}, {{"cuda.device", 1}}));
  for (const auto& id : running) ASSERT_TRUE(waitStatus(id, "RUNNING")) << session(id).dump();
  EXPECT_EQ(used("agent-1", "cuda.device"), "4");

  const std::string fifth = mustSubmit("fifth", {"sleep", "60"}, {{"cuda.device", 1}});
  const std::string sixth = mustSubmit("sixth", {"sleep", "60"}, {{"cuda.device", 1}});
  ASSERT_TRUE(eventually([&] { return session(fifth).value("status_reason", "").find("cuda.device") != std::string::npos; }))
      << session(fifth).dump();
  EXPECT_EQ(status(fifth), "PENDING");
  EXPECT_EQ(status(sixth), "PENDING");
  EXPECT_EQ(used("agent-1", "cuda.device"), "4");

  // A pending session is cancelled at once; a running one is stopped on its agent.
  auto cancelled = admin_->del("/v1/sessions/" + sixth);
  ASSERT_EQ(cancelled.status, 200) << cancelled.body;
  EXPECT_EQ(cancelled.json.value("status", ""), "CANCELLED") << cancelled.body;
  EXPECT_EQ(status(sixth), "CANCELLED");
  auto destroyed = admin_->del("/v1/sessions/" + running[0]);
  ASSERT_EQ(destroyed.status, 200) << destroyed.body;
  EXPECT_EQ(destroyed.json.value("status", ""), "TERMINATING") << destroyed.body;
  json ended = waitFinal(running[0]);
  EXPECT_EQ(ended.value("status", ""), "TERMINATED") << ended.dump();
  EXPECT_FALSE(ended["exit_code"].is_null()) << ended.dump();
  EXPECT_NE(ended["exit_code"], 0) << "killed, not finished: " << ended.dump();
  EXPECT_EQ(agentSessionState(agent, running[0]), "destroyed");

  // Its device goes to the session that waited.
  ASSERT_TRUE(waitStatus(fifth, "RUNNING")) << session(fifth).dump();
  EXPECT_EQ(session(fifth).value("status_reason", ""), "");
  EXPECT_EQ(status(sixth), "CANCELLED") << "a cancelled session is never placed";
  EXPECT_EQ(used("agent-1", "cuda.device"), "4");

  // Destroyed at once, wherever placement has got to (pending, queued for its agent,
  // being started, running): every one ends, and nothing stays reserved.
  std::vector<std::string> hasty;
  for (int i = 0; i < 10; ++i) {
    hasty.push_back(mustSubmit("hasty-" + std::to_string(i), {"sleep", "60"}, json::object()));
    EXPECT_EQ(admin_->del("/v1/sessions/" + hasty.back()).status, 200);
  }
  EXPECT_TRUE(eventually([&] {
    return std::all_of(hasty.begin(), hasty.end(), [&](const auto& id) { return isFinal(status(id)); });
  }));
  for (const auto& id : hasty) {
    const std::string ended = status(id);
    EXPECT_TRUE(ended == "CANCELLED" || ended == "TERMINATED") << session(id).dump();
  }

  running.erase(running.begin());
  running.push_back(fifth);
  for (const auto& id : running) EXPECT_EQ(admin_->del("/v1/sessions/" + id).status, 200);
  for (const auto& id : running) EXPECT_EQ(waitFinal(id).value("status", ""), "TERMINATED") << id;
  EXPECT_TRUE(eventually([&] { return used("agent-1", "cuda.device") == "0"; })) << agentInfo("agent-1").dump();
  json info = agentInfo("agent-1");
  ASSERT_TRUE(info.is_object());
  for (const auto& [slot, figures] : info["slots"].items()) EXPECT_EQ(figures.value("used", ""), "0") << slot;
  auto map = admin_->get("/v1/agents/agent-1/alloc-map");
  ASSERT_EQ(map.status, 200) << map.body;
  for (const auto& m : map.json["maps"]) {
    for (const auto& d : m["devices"]) EXPECT_EQ(d.value("allocated", ""), "0") << m["slot"] << " " << d["id"];
  }
  EXPECT_EQ(admin_->get("/v1/sessions?status=RUNNING").json.size(), 0u);
}

// A plugin whose health call hangs is withdrawn: the agent's admin view says so, its
// devices leave the agent's capacity, and requests for them say why they cannot run.
TEST_F(ManagerTest, AWithdrawnPluginIsShownAndRequestsForItsSlotsSayWhy) {
  ASSERT_TRUE(startManager());
  AgentHandle& hung = startAgent("agent-1", "mock-4xa100.toml", "plugin-call-timeout = 0.3\n",
                                 "faults = { delay_ms = { health = 3000 } }\n");
  ASSERT_TRUE(waitAgentStatus(hung.id, "ALIVE")) << hung.log();
  auto withdrawn = [&] {
    for (const auto& plugin : agentInfo("agent-1").value("plugins", json::array())) {
      if (plugin.value("name", "") == "mock" && plugin.contains("withdrawn")) return plugin["withdrawn"].get<std::string>();
    }
    return std::string();
  };
  ASSERT_TRUE(eventually([&] { return !withdrawn().empty(); })) << agentInfo("agent-1").dump();
  EXPECT_EQ(withdrawn(), "health did not return within 300 ms");
  EXPECT_EQ(agentInfo("agent-1")["slots"]["cuda.device"].value("capacity", ""), "0") << agentInfo("agent-1").dump();
  const std::string why = "plugin mock withdrawn on agent agent-1: health did not return within 300 ms";
  auto refused = submit(*admin_, "needs-a-gpu", {"true"}, {{"cuda.device", 1}});
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_NE(refused.body.find(why), std::string::npos) << refused.body;
  const std::string cpuOnly = mustSubmit("cpu-only", {"true"}, {{"cpu", 1}});
  EXPECT_EQ(waitFinal(cpuOnly).value("status", ""), "TERMINATED") << "the rest of the agent serves on";

  // Another agent offers GPUs, all busy: a request waits, and says why agent-1 cannot help.
  AgentHandle& busy = startAgent("agent-2", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(busy.id, "ALIVE")) << busy.log();
  const std::string holder = mustSubmit("holds-all", {"sleep", "60"}, {{"cuda.device", 4}});
  ASSERT_TRUE(waitStatus(holder, "RUNNING")) << session(holder).dump();
  const std::string waiting = mustSubmit("waits", {"true"}, {{"cuda.device", 1}});
  ASSERT_TRUE(eventually([&] { return !session(waiting).value("status_reason", "").empty(); })) << session(waiting).dump();
  EXPECT_NE(session(waiting).value("status_reason", "").find("cuda.device: " + why), std::string::npos)
      << session(waiting).dump();
  EXPECT_EQ(status(waiting), "PENDING");
}

TEST_F(ManagerTest, ALostAgentIsFreedAndCountedAgainWhenItReturns) {
  ASSERT_TRUE(startManager("127.0.0.1:0", /*heartbeatTimeout=*/1.5));
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();
  const std::string keeps = mustSubmit("keeps-running", {"sleep", "60"}, {{"cuda.device", 2}});
  const std::string doomed = mustSubmit("destroyed-meanwhile", {"sleep", "60"}, {{"cuda.device", 1}});
  ASSERT_TRUE(waitStatus(keeps, "RUNNING")) << session(keeps).dump();
  ASSERT_TRUE(waitStatus(doomed, "RUNNING")) << session(doomed).dump();
  EXPECT_EQ(used("agent-1", "cuda.device"), "3");

  agent.process.signal(SIGSTOP);
  ASSERT_TRUE(waitAgentStatus(agent.id, "LOST", 10s)) << agentInfo("agent-1").dump();
  EXPECT_EQ(used("agent-1", "cuda.device"), "0") << "a lost agent's reservations are not counted";
  EXPECT_EQ(status(keeps), "RUNNING") << "its sessions keep their status: " << session(keeps).dump();
  EXPECT_NE(session(keeps).value("status_reason", "").find("lost"), std::string::npos) << session(keeps).dump();
  // Nothing serves cuda.device now, so a new request is refused rather than queued.
  auto refused = submit(*admin_, "nowhere", {"true"}, {{"cuda.device", 1}});
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.errorType(), "slot-not-served") << refused.body;
  auto destroyed = admin_->del("/v1/sessions/" + doomed);
  ASSERT_EQ(destroyed.status, 200) << destroyed.body;
  EXPECT_EQ(destroyed.json.value("status", ""), "TERMINATING");

  agent.process.signal(SIGCONT);
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agentInfo("agent-1").dump();
  json ended = waitFinal(doomed);
  EXPECT_EQ(ended.value("status", ""), "TERMINATED") << "destroyed on the agent once it was back: " << ended.dump();
  EXPECT_EQ(agentSessionState(agent, doomed), "destroyed");
  EXPECT_TRUE(eventually([&] { return used("agent-1", "cuda.device") == "2"; }))
      << "the session that ran on is counted again: " << agentInfo("agent-1").dump();
  EXPECT_EQ(status(keeps), "RUNNING");
  EXPECT_EQ(session(keeps).value("status_reason", ""), "");
  EXPECT_EQ(agentSessionState(agent, keeps), "running");

  // The same after a restart of the agent (same id and state dir) instead of a pause.
  agent.process.stop(SIGKILL);
  ASSERT_TRUE(waitAgentStatus(agent.id, "LOST", 10s)) << agentInfo("agent-1").dump();
  EXPECT_EQ(used("agent-1", "cuda.device"), "0");
  ASSERT_TRUE(launchAgent(agent)) << agent.log();
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agentInfo("agent-1").dump();
  EXPECT_TRUE(eventually([&] { return used("agent-1", "cuda.device") == "2"; })) << agentInfo("agent-1").dump();
  EXPECT_EQ(status(keeps), "RUNNING");
  EXPECT_EQ(agentSessionState(agent, keeps), "running");

  EXPECT_EQ(admin_->del("/v1/sessions/" + keeps).status, 200);
  EXPECT_EQ(waitFinal(keeps).value("status", ""), "TERMINATED");
  EXPECT_TRUE(eventually([&] { return used("agent-1", "cuda.device") == "0"; })) << agentInfo("agent-1").dump();
}

// Calls to a hung agent (SIGSTOP: it accepts connections and never answers) wait in
// that agent's own lane of the dispatcher, never on an API thread: while clients fetch
// its session's logs, /healthz, the agent list and other agents' heartbeats stay fast.
TEST_F(ManagerTest, AHungAgentDelaysNobodyElse) {
  ASSERT_TRUE(startManager());
  AgentHandle& hung = startAgent("agent-hung", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(hung.id, "ALIVE")) << hung.log();
  const std::string id = mustSubmit("talks", {"sleep", "60"}, {{"cuda.device", 1}});
  ASSERT_TRUE(waitStatus(id, "RUNNING")) << session(id).dump();
  AgentHandle& healthy = startAgent("agent-healthy", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(healthy.id, "ALIVE")) << healthy.log();
  hung.process.signal(SIGSTOP);

  std::atomic<bool> stop{false};
  std::atomic<int> logCalls{0};
  std::vector<std::thread> readers;
  auto keypair = readKeypairFile(dir_ / "admin.keypair");
  ASSERT_TRUE(keypair.has_value());
  for (int i = 0; i < 8; ++i) {
    readers.emplace_back([&, i] {
      SignedClient client(managerUrl_, *keypair);
      client.setTimeout(30s);
      while (!stop) {
        client.get("/v1/sessions/" + id + "/logs?stream=stdout&n=" + std::to_string(i));
        ++logCalls;
      }
    });
  }
  std::this_thread::sleep_for(300ms);  // the readers' calls now wait on the hung agent

  std::map<std::string, std::vector<double>> millis;  // what -> latencies
  auto timed = [&](const std::string& what, auto call) {
    const auto start = std::chrono::steady_clock::now();
    const int status = call();
    millis[what].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    EXPECT_EQ(status, 200) << what;
  };
  const protocol::Heartbeat beat{"agent-other", 1, std::nullopt};
  for (int round = 0; round < 100; ++round) {
    timed("/healthz", [&] { return admin_->unsignedRequest("GET", "/healthz").status; });
    timed("GET /v1/agents", [&] { return admin_->get("/v1/agents").status; });
    timed("heartbeat", [&] {
      return admin_->send("POST", "/v1/agents/agent-other/heartbeat", beat.toJson(), {{"Authorization", "Bearer " + token_}}).status;
    });
    std::this_thread::sleep_for(10ms);
  }
  stop = true;
  hung.process.signal(SIGCONT);  // lets the waiting log calls finish
  for (auto& reader : readers) reader.join();
  EXPECT_GT(logCalls.load(), 0);
  for (auto& [what, samples] : millis) {
    std::sort(samples.begin(), samples.end());
    const double p99 = samples[samples.size() * 99 / 100];
    std::cout << "while a hung agent's logs are fetched, " << what << ": p50 " << samples[samples.size() / 2] << " ms, p99 "
              << p99 << " ms\n";
    EXPECT_LE(p99, 50.0) << what << ": p99 " << p99 << " ms, max " << samples.back() << " ms";
  }
  EXPECT_EQ(agentInfo(healthy.id).value("status", ""), "ALIVE") << "its heartbeats were not held up";
}

TEST_F(ManagerTest, AManagerKilledWhilePlacingFinishesEverySessionOnce) {
  const int port = freeLoopbackPort();
  ASSERT_NE(port, 0);
  const std::string listen = "127.0.0.1:" + std::to_string(port);
  ASSERT_TRUE(startManager(listen));
  // Each session leaves one line per run in its own file: two lines would be a double start.
  const std::string runs = mockWritableMount(dir_ / "runs");
  AgentHandle& a = startAgent("agent-a", "mock-4xa100.toml", "", runs);
  AgentHandle& b = startAgent("agent-b", "mock-4xa100.toml", "", runs);
  for (AgentHandle* agent : {&a, &b}) ASSERT_TRUE(waitAgentStatus(agent->id, "ALIVE")) << agent->log();

  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    const std::string file = (dir_ / "runs" / std::to_string(i)).string();
    ids.push_back(mustSubmit("burst-" + std::to_string(i), {"sh", "-c", "echo ran >> " + file + "; sleep 0.2"},
                             {{"cuda.device", 1}}));
  }
  manager_.stop(SIGKILL);
  ASSERT_TRUE(startManager(listen));  // same port and database: the agents find it again

  // It was killed mid-placement: the new run found sessions still to finish.
  const std::string log = readFile(dir_ / "manager.log");
  const auto recovered = log.rfind("2 agents, ");
  ASSERT_NE(recovered, std::string::npos) << log;
  EXPECT_GT(std::stoi(log.substr(recovered + 10)), 0) << "active sessions when the manager was killed";

  std::map<std::string, json> final;
  ASSERT_TRUE(eventually([&] {
    for (const auto& entry : admin_->get("/v1/sessions").json) {
      if (entry.is_object() && isFinal(entry.value("status", ""))) final[entry.value("id", "")] = entry;
    }
    return final.size() == ids.size();
  }, 30s)) << [&] {
    std::string open;
    for (const auto& entry : admin_->get("/v1/sessions").json) {
      if (!isFinal(entry.value("status", ""))) open += " " + entry.value("name", "") + ":" + entry.value("status", "");
    }
    return std::to_string(final.size()) + " of 20 sessions ended; still open:" + open;
  }();
  for (const auto& id : ids) {
    json& done = final[id];
    EXPECT_EQ(done.value("status", ""), "TERMINATED") << done.dump();
    EXPECT_EQ(done["exit_code"], 0) << done.dump();
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(readFile(dir_ / "runs" / std::to_string(i)), "ran\n") << "session " << i << " ran once";
  }
  std::map<std::string, int> seen;
  for (AgentHandle* agent : {&a, &b}) {
    json listed = agentSessions(*agent);
    ASSERT_TRUE(listed.is_object()) << listed.dump();
    for (const auto& info : listed["sessions"]) ++seen[info.value("id", "")];
  }
  for (const auto& id : ids) EXPECT_EQ(seen[id], 1) << "session " << id << " on the agents";
  for (AgentHandle* agent : {&a, &b}) {
    EXPECT_TRUE(eventually([&] { return used(agent->id, "cuda.device") == "0"; })) << agentInfo(agent->id).dump();
    auto map = admin_->get("/v1/agents/" + agent->id + "/alloc-map");
    ASSERT_EQ(map.status, 200) << map.body;
    for (const auto& m : map.json["maps"]) {
      for (const auto& d : m["devices"]) EXPECT_EQ(d.value("allocated", ""), "0") << agent->id << " " << m["slot"];
    }
  }
  EXPECT_EQ(admin_->get("/v1/sessions").json.size(), 20u);
}

// 150,000 nested objects: a 900 KB document, under the 1 MiB body limit.
std::string deeplyNested() {
  std::string deep;
  for (int i = 0; i < 150'000; ++i) deep += R"({"a":)";
  return deep + "1" + std::string(150'000, '}');
}

// Issue 17: a deeply nested body crashed the manager in a recursive dump() on the agent
// register path (a plugin's extra_info) and on scaling-group options. Depth is bounded
// at parse: 400, and the manager serves on.
TEST_F(ManagerTest, DeeplyNestedJsonIsRefusedAndTheManagerServesOn) {
  ASSERT_TRUE(startManager());
  const std::string deep = deeplyNested();
  auto servesOn = [&] {
    EXPECT_TRUE(manager_.alive());
    EXPECT_EQ(admin_->unsignedRequest("GET", "/healthz").status, 200);
  };

  protocol::AgentState state;
  state.rpcAddress = "http://127.0.0.1:1";
  state.plugins.push_back({"mock", "1", "mock", R"("DEEP")"});
  std::string registration = protocol::Heartbeat{"deep-agent", 1, state}.toJson();
  const std::size_t at = registration.find(R"("DEEP")");
  ASSERT_NE(at, std::string::npos) << registration;
  registration.replace(at, 6, deep);
  ASSERT_LT(registration.size(), 1u << 20);
  auto reply = admin_->send("POST", "/v1/agents/deep-agent/register", registration, {{"Authorization", "Bearer " + token_}});
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_NE(reply.detail().find("nested deeper than 64 levels"), std::string::npos) << reply.body;
  servesOn();

  reply = admin_->post("/v1/scaling-groups", R"({"name":"deep","options":)" + deep + "}");
  EXPECT_EQ(reply.status, 400) << reply.body;
  EXPECT_NE(reply.detail().find("nested deeper than 64 levels"), std::string::npos) << reply.body;
  servesOn();
  EXPECT_EQ(admin_->get("/v1/scaling-groups/deep").status, 404) << "nothing was stored";
}

// Issue 17: the JSON amount 18446744073709551616 went through a double and was stored as
// 18446744073709552000. A number a double cannot hold is refused, naming the field; the
// same amount as a string is exact.
TEST_F(ManagerTest, AmountsAreExactOrRefused) {
  ASSERT_TRUE(startManager());
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();

  std::string body = sessionBody("big", {"true"}, json::object()).dump();
  const std::size_t resources = body.find(R"("resources":{})");
  ASSERT_NE(resources, std::string::npos) << body;
  body.replace(resources, 14, R"("resources":{"cpu":18446744073709551616})");
  auto number = admin_->post("/v1/sessions", body);
  EXPECT_EQ(number.status, 400) << number.body;
  EXPECT_NE(number.detail().find("resources.cpu"), std::string::npos) << number.body;
  EXPECT_EQ(number.body.find("18446744073709552000"), std::string::npos) << number.body;

  auto text = submit(*admin_, "big", {"true"}, {{"cpu", "18446744073709551616"}});
  EXPECT_EQ(text.body.find("18446744073709552000"), std::string::npos) << text.body;
  if (text.status == 201) {
    const std::string id = text.json.value("id", "");
    EXPECT_EQ(session(id)["resources"].value("cpu", ""), "18446744073709551616") << session(id).dump();
    admin_->del("/v1/sessions/" + id);
  } else {
    EXPECT_EQ(text.status, 400) << text.body;
  }
  for (const auto& listed : admin_->get("/v1/sessions").json) {
    EXPECT_NE(listed["resources"].value("cpu", ""), "18446744073709552000") << listed.dump();
  }
}

// Quota bypass: a session that names no cpu or mem ran unlimited. Now it gets the
// defaults, which count against its keypair's policy and travel to the agent.
TEST_F(ManagerTest, ASessionNamingNoCpuOrMemGetsTheDefaultsAndTheQuotaCountsThem) {
  schedulerToml_ = "default-session-slots = [\"cpu=1\", \"mem=64m\"]\n";
  ASSERT_TRUE(startManager());
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();
  auto policy = admin_->post("/v1/resource-policies",
                             json{{"name", "small"}, {"total_resource_slots", {{"cpu", 1}, {"mem", "2g"}}}});
  ASSERT_EQ(policy.status, 201) << policy.body;
  auto created = admin_->post("/v1/keypairs", json{{"admin", false}, {"resource_policy", "small"}});
  ASSERT_EQ(created.status, 201) << created.body;
  SignedClient user(managerUrl_, ApiKeypair{created.json.value("access_key", ""), created.json.value("secret_key", "")});

  auto first = submit(user, "no-r", {"sleep", "60"}, json::object());
  ASSERT_EQ(first.status, 201) << first.body;
  EXPECT_EQ(first.json["resources"].value("cpu", ""), "1") << first.body;
  EXPECT_EQ(first.json["resources"].value("mem", ""), "67108864") << first.body;
  const std::string id = first.json.value("id", "");
  ASSERT_TRUE(waitStatus(id, "RUNNING")) << session(id).dump();
  HttpClient rpc(agent.rpcBase, token_);
  json onAgent = json::parse(rpc.get("/v1/sessions/" + id).body, nullptr, false);
  ASSERT_TRUE(onAgent.is_object()) << onAgent.dump();
  EXPECT_TRUE(onAgent["allocation"].contains("cpu")) << "the agent holds a cpu for it: " << onAgent.dump();

  auto second = submit(user, "no-r-again", {"sleep", "60"}, json::object());
  ASSERT_EQ(second.status, 201) << second.body;
  const std::string waiting = second.json.value("id", "");
  ASSERT_TRUE(eventually([&] { return session(waiting).value("status_reason", "").find("small") != std::string::npos; }))
      << session(waiting).dump();
  EXPECT_EQ(status(waiting), "PENDING") << "the policy's one cpu is taken";
  EXPECT_EQ(user.del("/v1/sessions/" + id).status, 200);
  EXPECT_TRUE(waitStatus(waiting, "RUNNING")) << session(waiting).dump();
  EXPECT_EQ(user.del("/v1/sessions/" + waiting).status, 200);
}

// Requests that could only fail on an agent are refused at submission with the rule.
TEST_F(ManagerTest, AmountsNoAgentGrantsAreRefusedAtSubmission) {
  ASSERT_TRUE(startManager());
  AgentHandle& agent = startAgent("shares-agent", "mock-fractional.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();
  auto half = submit(*admin_, "half", {"true"}, {{"cpu", "0.5"}});
  EXPECT_EQ(half.status, 400) << half.body;
  EXPECT_EQ(half.errorType(), "invalid-resource") << half.body;
  EXPECT_NE(half.detail().find("whole numbers"), std::string::npos) << half.body;
  auto tiny = submit(*admin_, "tiny", {"true"}, {{"cuda.shares", "0.005"}});
  EXPECT_EQ(tiny.status, 400) << tiny.body;
  EXPECT_NE(tiny.detail().find("multiples of 0.01"), std::string::npos) << tiny.body;
  EXPECT_NE(tiny.detail().find("nearest valid amounts: 0.01"), std::string::npos) << tiny.body;
  EXPECT_EQ(admin_->get("/v1/sessions").json.size(), 0u) << "nothing was queued";
  const std::string fine = mustSubmit("fine", {"true"}, {{"cuda.shares", "0.25"}});
  EXPECT_EQ(waitFinal(fine).value("status", ""), "TERMINATED") << session(fine).dump();
}

// A misspelt group was queued forever; an unknown policy was accepted; "default" was
// not a group one could look at.
TEST_F(ManagerTest, ScalingGroupsAndPoliciesMustExist) {
  ASSERT_TRUE(startManager());
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml");
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();
  auto misspelt = sessionBody("x", {"true"}, json::object());
  misspelt["scaling_group"] = "nosuch";
  auto refused = admin_->post("/v1/sessions", misspelt);
  EXPECT_EQ(refused.status, 404) << refused.body;
  EXPECT_EQ(refused.errorType(), "unknown-scaling-group") << refused.body;
  EXPECT_NE(refused.detail().find("nosuch"), std::string::npos) << refused.body;

  auto nope = admin_->post("/v1/scaling-groups", json{{"name", "gpu"}, {"sequencer", "nope"}});
  EXPECT_EQ(nope.status, 400) << nope.body;
  EXPECT_NE(nope.detail().find("nope"), std::string::npos) << nope.body;
  EXPECT_EQ(admin_->get("/v1/scaling-groups/gpu").status, 404) << "nothing was stored";

  auto info = admin_->get("/v1/scaling-groups/default");
  ASSERT_EQ(info.status, 200) << info.body;
  EXPECT_EQ(info.json.value("sequencer", ""), "fifo") << info.body;
  auto patched = admin_->request("PATCH", "/v1/scaling-groups/default", json{{"selector", "dispersed"}}.dump());
  EXPECT_EQ(patched.status, 200) << patched.body;
  EXPECT_EQ(admin_->get("/v1/scaling-groups/default").json.value("selector", ""), "dispersed");
  EXPECT_EQ(admin_->request("PATCH", "/v1/scaling-groups/default", json{{"selector", "nope"}}.dump()).status, 400);
}

// Freed devices waited for the agent's next heartbeat before the next session could
// have them: once a heartbeat showed them taken, they idled until the following one. Now
// the agent's changed state follows each end event at once.
TEST_F(ManagerTest, FreedDevicesTakeTheNextSessionWithoutWaitingForAHeartbeat) {
  constexpr double kInterval = 2;  // seconds between the agent's heartbeats
  ASSERT_TRUE(startManager("127.0.0.1:0", /*heartbeatTimeout=*/30));
  AgentHandle& agent = startAgent("agent-1", "mock-4xa100.toml", "", "", kInterval);
  ASSERT_TRUE(waitAgentStatus(agent.id, "ALIVE")) << agent.log();
  constexpr int kSessions = 40;  // two at a time: each asks for 2 of the 4 GPUs
  constexpr double kSeconds = 0.2;
  std::vector<std::string> ids;
  for (int i = 0; i < kSessions; ++i) {
    ids.push_back(mustSubmit("short-" + std::to_string(i), {"sleep", "0.2"}, {{"cuda.device", 2}}));
  }
  std::map<std::string, json> done;
  ASSERT_TRUE(eventually([&] {
    for (const auto& entry : admin_->get("/v1/sessions").json) {
      if (entry.is_object() && isFinal(entry.value("status", ""))) done[entry.value("id", "")] = entry;
    }
    return done.size() == ids.size();
  }, 120s, 50ms)) << done.size() << " of " << kSessions << " ended";
  std::int64_t first = INT64_MAX, last = 0, running = 0;
  for (const auto& [id, entry] : done) {
    EXPECT_EQ(entry.value("status", ""), "TERMINATED") << entry.dump();
    first = std::min(first, entry.value("created_at_ms", std::int64_t{0}));
    last = std::max(last, entry.value("ended_at_ms", std::int64_t{0}));
    running += entry.value("ended_at_ms", std::int64_t{0}) - entry.value("started_at_ms", std::int64_t{0});
  }
  const double total = static_cast<double>(last - first) / 1000.0;
  std::cout << "[figure] " << kSessions << " sessions of " << kSeconds << " s, 2 at a time, heartbeat interval "
            << kInterval << " s: " << total << " s in all (ideal " << kSessions / 2 * kSeconds << " s), "
            << static_cast<double>(running) / 1000.0 / total << " running on average\n";
  EXPECT_LT(total, 7.0) << "freed devices idled until a heartbeat";
}

}  // namespace
}  // namespace bai::testing
