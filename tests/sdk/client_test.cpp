// libbai's API client (bai/client.hpp) against a scripted HTTP server: what it sends
// (signed requests, bodies, targets), how it reads answers and errors, and its config.
#include <bai/client.hpp>
#include <bai/request_signing.hpp>

#include "http_server.hpp"
#include "scripted_manager.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

namespace bai::client {
namespace {

using Json = nlohmann::json;

constexpr const char* kAccessKey = "AKBAITEST0000000001";
constexpr const char* kSecretKey = "s3cret-key-for-tests";

// A manager stand-in (scripted_manager.hpp) with these tests' keypair.
struct ScriptedManager : testing::ScriptedManager {
  ScriptedManager() : testing::ScriptedManager(kAccessKey, kSecretKey) {}
};

const char* kSessionDoc = R"({"id":"s1","name":"train","owner":"AKBAITEST0000000001","scaling_group":"default",
  "command":["python","train.py"],"env":{"A":"1"},"resources":{"cpu":"2","mem":"4294967296"},"status":"TERMINATED",
  "status_reason":"exited","agent":"a1","exit_code":3,"created_at_ms":1000,"scheduled_at_ms":1002,
  "started_at_ms":1010,"ended_at_ms":1500})";

class ClientTest : public ::testing::Test {
 protected:
  ScriptedManager manager_;
};

TEST_F(ClientTest, EveryRequestCarriesAValidSignatureOverWhatWasSent) {
  manager_.answer(201, kSessionDoc);
  SessionSpec spec;
  spec.command = {"python", "train.py"};
  spec.resources = {{"cpu", "2"}, {"mem", "4g"}, {"cuda.shares", "0.5"}};
  spec.env = {{"A", "1"}};
  spec.scalingGroup = "gpu";
  ASSERT_TRUE(manager_.client().createSession(spec).ok());

  const http::Request sent = manager_.last();
  EXPECT_EQ(sent.method, "POST");
  EXPECT_EQ(sent.target, "/v1/sessions");
  const Json body = Json::parse(sent.body);
  EXPECT_EQ(body["command"], Json({"python", "train.py"}));
  EXPECT_EQ(body["resources"], Json({{"cpu", "2"}, {"mem", "4g"}, {"cuda.shares", "0.5"}}));
  EXPECT_EQ(body["env"], Json({{"A", "1"}}));
  EXPECT_EQ(body["scaling_group"], "gpu");
  EXPECT_FALSE(body.contains("name")) << "an empty name is left to the manager";

  EXPECT_EQ(sent.header("x-bai-content-sha256"), auth::sha256Hex(sent.body));
  const std::string expected = auth::hmacSha256Hex(
      kSecretKey, auth::stringToSign("POST", sent.target, sent.header("x-bai-date"), sent.header("x-bai-nonce"),
                                     sent.header("x-bai-content-sha256")));
  EXPECT_EQ(sent.header("authorization"),
            std::string("BAI-HMAC-SHA256 Credential=") + kAccessKey + ", Signature=" + expected);
}

TEST_F(ClientTest, ASessionIsReadWithEveryFieldAndItsDocument) {
  manager_.answer(200, kSessionDoc);
  auto session = manager_.client().session("s1");
  ASSERT_TRUE(session.ok()) << session.error().message();
  EXPECT_EQ(session->id, "s1");
  EXPECT_EQ(session->name, "train");
  EXPECT_EQ(session->command, (std::vector<std::string>{"python", "train.py"}));
  EXPECT_EQ(session->resources.at("mem"), "4294967296");
  EXPECT_EQ(session->status, "TERMINATED");
  EXPECT_TRUE(session->isFinal());
  ASSERT_TRUE(session->exitCode.has_value());
  EXPECT_EQ(*session->exitCode, 3);
  EXPECT_EQ(session->startedAtMs, 1010);
  EXPECT_EQ(Json::parse(session->json), Json::parse(kSessionDoc));
  EXPECT_EQ(manager_.last().target, "/v1/sessions/s1");
}

TEST_F(ClientTest, ALongPollAsksForTheWaitInSeconds) {
  manager_.answer(200, kSessionDoc);
  ASSERT_TRUE(manager_.client().session("s 1", std::chrono::milliseconds(1500)).ok());
  EXPECT_EQ(manager_.last().target, "/v1/sessions/s%201?wait=1.500") << "the id is encoded, the wait in seconds";
}

TEST_F(ClientTest, TheServersErrorDocumentIsTheError) {
  manager_.answer(400, R"({"type":"unknown-slot","title":"Unknown resource slot","detail":"no agent offers 'gpu'"})");
  auto created = manager_.client().createSession({"", {"true"}, {}, {{"gpu", "1"}}, ""});
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().status, 400);
  EXPECT_EQ(created.error().type, "unknown-slot");
  EXPECT_EQ(created.error().message(), "Unknown resource slot: no agent offers 'gpu'");
}

TEST_F(ClientTest, AnAnswerThatIsNotAnErrorDocumentStillNamesTheStatus) {
  manager_.answer(502, "bad gateway", "text/plain");
  auto listed = manager_.client().listSessions();
  ASSERT_FALSE(listed.ok());
  EXPECT_EQ(listed.error().status, 502);
  EXPECT_EQ(listed.error().type, "http-502");
  EXPECT_NE(listed.error().message().find("bad gateway"), std::string::npos) << listed.error().message();
}

TEST_F(ClientTest, ASuccessThatIsNotTheDocumentedShapeIsAnInvalidReply) {
  manager_.answer(200, "not json");
  auto notJson = manager_.client().agents();
  ASSERT_FALSE(notJson.ok());
  EXPECT_EQ(notJson.error().type, "invalid-reply");
  manager_.answer(200, R"([{"id":"a1"}])");
  auto missingFields = manager_.client().agents();
  ASSERT_FALSE(missingFields.ok());
  EXPECT_EQ(missingFields.error().type, "invalid-reply");
  manager_.answer(200, R"([{"id":"a1","status":"ALIVE","slots":{"cpu":{"type":"count","capacity":"x","used":"0","largest_allocatable":"0"}}}])");
  EXPECT_FALSE(manager_.client().agents().ok()) << "an amount that is not a number";
}

TEST_F(ClientTest, AgentsAreReadInExactAmounts) {
  manager_.answer(200, R"([{"id":"a1","status":"ALIVE","scaling_group":"default","slots":{
      "cuda.shares":{"type":"count","capacity":"18.333333","used":"0.5","largest_allocatable":"8.5"},
      "mem":{"type":"bytes","capacity":"17179869184","used":"4294967296","largest_allocatable":"12884901888"}},
      "plugins":[{"name":"mock"}],"device_health":{}}])");
  auto agents = manager_.client().agents();
  ASSERT_TRUE(agents.ok()) << agents.error().message();
  ASSERT_EQ(agents->size(), 1u);
  const SlotUsage& shares = agents->front().slots.at("cuda.shares");
  EXPECT_EQ(shares.available(), *Quantity::parse("17.833333"));
  EXPECT_EQ(formatSlotAmount("bytes", agents->front().slots.at("mem").available()), "12g");
  EXPECT_EQ(Json::parse(agents->front().pluginsJson), Json::parse(R"([{"name":"mock"}])"));
}

TEST_F(ClientTest, TheAllocationMapListsWhoHoldsEachDevice) {
  manager_.answer(200, R"({"agent_id":"a1","maps":[{"slot":"cuda.shares","type":"count","kind":"fraction",
      "strategy":"fill","free":"8.5","largest_allocatable":"8.5","devices":[{"id":"0","numa_node":0,"capacity":"9",
      "allocated":"0.5","enabled":true,"sessions":{"s1":"0.5"}}]}]})");
  auto map = manager_.client().allocationMap("a1");
  ASSERT_TRUE(map.ok()) << map.error().message();
  ASSERT_EQ(map->maps.size(), 1u);
  ASSERT_EQ(map->maps[0].devices.size(), 1u);
  EXPECT_EQ(map->maps[0].devices[0].sessions.at("s1"), *Quantity::parse("0.5"));
  EXPECT_EQ(manager_.last().target, "/v1/agents/a1/alloc-map");
}

TEST_F(ClientTest, AdminRecordsSendTheCallersFieldsAsAnObject) {
  manager_.answer(201, R"({"name":"small","total_resource_slots":{"cpu":"2"},"default_for_unspecified":"LIMITED",
      "max_concurrent_sessions":3,"max_pending_session_count":0,"created_at_ms":5})");
  auto policy = manager_.client().createResourcePolicy(R"({"name":"small","total_resource_slots":{"cpu":2}})");
  ASSERT_TRUE(policy.ok()) << policy.error().message();
  EXPECT_EQ(policy->maxConcurrentSessions, 3);
  EXPECT_EQ(policy->totalResourceSlots.at("cpu"), "2");
  EXPECT_EQ(manager_.last().method, "POST");
  EXPECT_EQ(manager_.last().target, "/v1/resource-policies");

  auto notAnObject = manager_.client().updateScalingGroup("gpu", "[1]");
  ASSERT_FALSE(notAnObject.ok());
  EXPECT_EQ(notAnObject.error().type, "invalid-request");
  EXPECT_EQ(manager_.last().method, "POST") << "nothing was sent";
}

TEST_F(ClientTest, KeypairIdsAreSentAsGivenAndReadBack) {
  manager_.answer(201, R"({"access_key":"AKNEW","secret_key":"sk","admin":false,"resource_policy":"","uid":5000,"gid":100})");
  auto created = manager_.client().createKeypair(false, "", KeypairIds{5000, 100});
  ASSERT_TRUE(created.ok()) << created.error().message();
  EXPECT_EQ(created->uid, 5000);
  EXPECT_EQ(created->gid, 100);
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"admin", false}, {"uid", 5000}, {"gid", 100}}));
  ASSERT_TRUE(manager_.client().createKeypair(true, "small").ok());
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"admin", true}, {"resource_policy", "small"}})) << "ids left to the manager";

  manager_.answer(200, R"({"access_key":"AKNEW","admin":false,"active":true,"resource_policy":"","created_at_ms":1,"uid":7000,"gid":7000})");
  auto moved = manager_.client().setKeypairIdentity("AKNEW", KeypairIds{7000, std::nullopt});
  ASSERT_TRUE(moved.ok()) << moved.error().message();
  EXPECT_EQ(moved->uid, 7000);
  EXPECT_EQ(manager_.last().method, "PUT");
  EXPECT_EQ(manager_.last().target, "/v1/keypairs/AKNEW/identity");
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"uid", 7000}}));
  auto read = manager_.client().keypair("AKNEW");
  ASSERT_TRUE(read.ok()) << read.error().message();
  EXPECT_EQ(read->gid, 7000);
  EXPECT_EQ(manager_.last().target, "/v1/keypairs/AKNEW");
}

TEST_F(ClientTest, ARepeatedSlotIsRefusedBeforeSending) {
  auto created = manager_.client().createSession({"", {"true"}, {}, {{"cpu", "1"}, {"cpu", "2"}}, ""});
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.error().detail.find("cpu"), std::string::npos);
  EXPECT_TRUE(manager_.last().method.empty()) << "nothing was sent";
}

TEST(ClientUnreachableTest, NoAnswerIsStatusZeroAndNamesTheEndpoint) {
  Config config;
  config.endpoint = "http://127.0.0.1:1";
  config.accessKey = kAccessKey;
  config.secretKey = kSecretKey;
  auto version = Client(config).listSessions();
  ASSERT_FALSE(version.ok());
  EXPECT_EQ(version.error().status, 0);
  EXPECT_EQ(version.error().type, "unreachable");
  EXPECT_NE(version.error().detail.find("127.0.0.1:1"), std::string::npos) << version.error().detail;
  EXPECT_EQ(version.error().detail.find(kSecretKey), std::string::npos);
}

TEST_F(ClientTest, ALogPageSaysWhereItLiesAndWhereTheNextStarts) {
  manager_.answer(200, "line 3\n", "text/plain",
                  {{"X-Bai-Log-Offset", "14"}, {"X-Bai-Log-Next-Offset", "21"}, {"X-Bai-Log-Size", "40"}});
  auto page = manager_.client().sessionLogPage("s1", {"stderr", 14, 7, std::nullopt});
  ASSERT_TRUE(page.ok()) << page.error().message();
  EXPECT_EQ(page->text, "line 3\n");
  EXPECT_EQ(page->offset, 14u);
  EXPECT_EQ(page->nextOffset, 21u);
  EXPECT_EQ(page->size, 40u);
  EXPECT_FALSE(page->atEnd());
  EXPECT_EQ(manager_.last().target, "/v1/sessions/s1/logs?stream=stderr&offset=14&limit=7");
}

// A manager that reads a whole request and dies before answering, `drops` times; then
// it answers `reply` (a 201 session). Keeps each request's Idempotency-Key.
class DroppingManager {
 public:
  DroppingManager(int drops, std::string reply) : drops_(drops), reply_(std::move(reply)) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(::listen(listener_, 8), 0);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~DroppingManager() {
    ::shutdown(listener_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    ::close(listener_);
  }
  Config config() const {
    Config config;
    config.endpoint = "http://127.0.0.1:" + std::to_string(port_);
    config.accessKey = kAccessKey;
    config.secretKey = kSecretKey;
    config.retryDelay = std::chrono::milliseconds(5);
    return config;
  }
  std::vector<std::string> keys() {
    std::lock_guard<std::mutex> lock(mutex_);
    return keys_;
  }

 private:
  void serve() {
    for (int served = 0;; ++served) {
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) return;
      const std::string request = readRequest(fd);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        keys_.push_back(header(request, "idempotency-key"));
      }
      if (served >= drops_) {
        const std::string answer = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nConnection: close\r\n"
                                   "Content-Length: " + std::to_string(reply_.size()) + "\r\n\r\n" + reply_;
        EXPECT_EQ(::write(fd, answer.data(), answer.size()), static_cast<ssize_t>(answer.size()));
      }
      ::close(fd);
    }
  }
  static std::string readRequest(int fd) {
    std::string data;
    char buffer[4096];
    while (true) {
      const std::size_t end = data.find("\r\n\r\n");
      if (end != std::string::npos) {
        const std::string length = header(data, "content-length");
        if (data.size() >= end + 4 + (length.empty() ? 0 : std::stoul(length))) return data;
      }
      const ssize_t got = ::read(fd, buffer, sizeof buffer);
      if (got <= 0) return data;
      data.append(buffer, static_cast<std::size_t>(got));
    }
  }
  static std::string header(std::string request, const std::string& lowerName) {
    std::transform(request.begin(), request.end(), request.begin(), [](unsigned char c) { return std::tolower(c); });
    const std::size_t at = request.find("\r\n" + lowerName + ": ");
    if (at == std::string::npos) return "";
    const std::size_t start = at + 4 + lowerName.size();
    return request.substr(start, request.find("\r\n", start) - start);
  }

  int drops_;
  std::string reply_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<std::string> keys_;
};

TEST(ClientRetryTest, ASubmissionWhoseAnswerWasLostIsSentAgainWithTheSameKey) {
  DroppingManager manager(2, kSessionDoc);
  const Client client(manager.config());
  auto created = client.createSession({"", {"true"}, {}, {{"cpu", "1"}}, ""});
  ASSERT_TRUE(created.ok()) << created.error().message();
  EXPECT_EQ(created->id, "s1");
  const auto keys = manager.keys();
  ASSERT_EQ(keys.size(), 3u) << "two lost answers, then the answer";
  EXPECT_GE(keys[0].size(), 32u) << "a random key of 128 bits";
  EXPECT_EQ(keys[1], keys[0]);
  EXPECT_EQ(keys[2], keys[0]);

  ASSERT_TRUE(client.createSession({"", {"true"}, {}, {{"cpu", "1"}}, ""}).ok());
  EXPECT_NE(manager.keys().back(), keys[0]) << "a new submission is a new key";
  SessionSpec named{"", {"true"}, {}, {}, "", "my-key"};
  ASSERT_TRUE(client.createSession(named).ok());
  EXPECT_EQ(manager.keys().back(), "my-key");
}

TEST(ClientRetryTest, RetriesAreBounded) {
  DroppingManager manager(1000, kSessionDoc);
  Config config = manager.config();
  config.submitRetries = 2;
  auto created = Client(config).createSession({"", {"true"}, {}, {{"cpu", "1"}}, ""});
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().type, "unreachable");
  EXPECT_EQ(manager.keys().size(), 3u) << "the first try and two retries";
}

TEST_F(ClientTest, AnAnswerIsNeverRetried) {
  manager_.answer(409, R"({"type":"idempotency-key-reused","title":"t","detail":"d"})");
  auto created = manager_.client().createSession({"", {"true"}, {}, {{"cpu", "1"}}, ""});
  ASSERT_FALSE(created.ok());
  EXPECT_EQ(created.error().status, 409);
  EXPECT_EQ(manager_.count(), 1u);
  EXPECT_FALSE(manager_.last().header("idempotency-key").empty());
}

TEST(FormatSlotAmountTest, BytesInTheLargestUnitOthersExact) {
  EXPECT_EQ(formatSlotAmount("bytes", Quantity(4LL << 30)), "4g");
  EXPECT_EQ(formatSlotAmount("bytes", Quantity(1536LL << 20)), "1.5g");
  EXPECT_EQ(formatSlotAmount("bytes", Quantity(9892487168LL)), "9.21g");
  EXPECT_EQ(formatSlotAmount("bytes", Quantity(512)), "512");
  EXPECT_EQ(formatSlotAmount("bytes", Quantity(0)), "0");
  EXPECT_EQ(formatSlotAmount("count", *Quantity::parse("0.5")), "0.5");
  EXPECT_EQ(formatSlotAmount("count", *Quantity::parse("18.333333")), "18.333333");
  EXPECT_EQ(formatSlotAmount("count", Quantity::infinity()), "Infinity");
}

// ---- Config -----------------------------------------------------------------------

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : {"BAI_CONFIG", "BAI_ENDPOINT", "BAI_ACCESS_KEY", "BAI_SECRET_KEY", "BAI_CA_FILE"}) ::unsetenv(name);
    ::setenv("XDG_CONFIG_HOME", dir_.path().c_str(), 1);
  }
  std::filesystem::path write(const std::string& name, const std::string& text, mode_t mode = 0600) {
    const auto file = dir_.path() / name;
    std::ofstream(file) << text;
    ::chmod(file.c_str(), mode);
    return file;
  }
  bai::test::TempDir dir_;
};

TEST_F(ConfigTest, WithoutAFileTheDefaultsAndTheEnvironmentApply) {
  auto config = Config::load();
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->endpoint, "http://127.0.0.1:8081");
  auto missing = config->requireCredentials();
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("BAI_ACCESS_KEY"), std::string::npos) << missing.error().message;

  ::setenv("BAI_ENDPOINT", "https://manager.example:8443/", 1);
  ::setenv("BAI_ACCESS_KEY", "AK", 1);
  ::setenv("BAI_SECRET_KEY", "SK", 1);
  config = Config::load();
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->endpoint, "https://manager.example:8443") << "the trailing slash is dropped";
  EXPECT_TRUE(config->requireCredentials().ok());
}

TEST_F(ConfigTest, TheKeypairFileOfManagerInitIsAConfigFile) {
  std::filesystem::create_directories(dir_.path() / "bai");
  write("bai/config.toml", "# bai keypair\naccess-key = \"AKBAI1\"\nsecret-key = \"abc\"\n");
  auto config = Config::load();
  ASSERT_TRUE(config.ok()) << config.error().message;
  EXPECT_EQ(config->accessKey, "AKBAI1");
  EXPECT_EQ(config->secretKey, "abc");
  ::setenv("BAI_SECRET_KEY", "from-env", 1);
  EXPECT_EQ(Config::load()->secretKey, "from-env") << "the environment overrides the file";
}

TEST_F(ConfigTest, ASecretOthersMayReadIsRefused) {
  const auto file = write("open.toml", "access-key = \"AK\"\nsecret-key = \"abc\"\n", 0644);
  auto config = Config::load(file);
  ASSERT_FALSE(config.ok());
  EXPECT_NE(config.error().message.find("chmod 600"), std::string::npos) << config.error().message;
  EXPECT_EQ(config.error().message.find("abc"), std::string::npos) << "never the secret";
  const auto noSecret = write("endpoint.toml", "endpoint = \"http://10.0.0.1:8081\"\n", 0644);
  EXPECT_TRUE(Config::load(noSecret).ok()) << "a file without a secret may be shared";
}

TEST_F(ConfigTest, BadFilesAreRefusedNamingTheProblem) {
  auto unknown = Config::load(write("unknown.toml", "endpoint = \"http://x\"\nsecret = \"s\"\n"));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("unknown key 'secret'"), std::string::npos) << unknown.error().message;

  auto broken = Config::load(write("broken.toml", "endpoint = \"http://x\"\naccess-key = \n"));
  ASSERT_FALSE(broken.ok());
  EXPECT_NE(broken.error().message.find("broken.toml:2"), std::string::npos) << broken.error().message;

  auto scheme = Config::load(write("scheme.toml", "endpoint = \"127.0.0.1:8081\"\n"));
  ASSERT_FALSE(scheme.ok());
  EXPECT_NE(scheme.error().message.find("http://"), std::string::npos) << scheme.error().message;

  ::setenv("BAI_CONFIG", (dir_.path() / "absent.toml").c_str(), 1);
  auto absent = Config::load();
  ASSERT_FALSE(absent.ok()) << "a file named on purpose must exist";
  EXPECT_NE(absent.error().message.find("absent.toml"), std::string::npos);
}

// ---- The bai CLI's keypair commands, run against the scripted manager -----------------

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* cli = std::getenv("BAI_CLI");
    if (cli == nullptr) GTEST_SKIP() << "BAI_CLI (the built bai) is not set: run through meson test";
    cli_ = cli;
  }

  using Run = testing::CliRun;
  // Runs `bai ARGS` (a shell word list) with the scripted manager's endpoint and keys.
  Run bai(const std::string& args) { return testing::runCli(cli_, manager_.client().config(), args); }

  ScriptedManager manager_;
  std::string cli_;
};

TEST_F(CliTest, KeypairCreateSendsUidAndGid) {
  manager_.answer(201, R"({"access_key":"AKNEW","secret_key":"sk","admin":false,"resource_policy":"","uid":5000,"gid":100})");
  const Run run = bai("admin keypair create --uid 5000 --gid 100");
  ASSERT_EQ(run.exitCode, 0) << run.out;
  EXPECT_EQ(manager_.last().target, "/v1/keypairs");
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"admin", false}, {"uid", 5000}, {"gid", 100}}));
  EXPECT_NE(run.out.find("uid 5000, gid 100"), std::string::npos) << run.out;

  ASSERT_EQ(bai("admin keypair create --gid 100").exitCode, 0);
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"admin", false}, {"gid", 100}})) << "the uid left to the manager";
}

TEST_F(CliTest, SetUidSendsTheIdsToTheIdentityRoute) {
  manager_.answer(200, R"({"access_key":"AKU","admin":false,"active":true,"resource_policy":"","created_at_ms":1,"uid":7000,"gid":8})");
  const Run run = bai("admin keypair set-uid AKU --uid 7000 --gid 8");
  ASSERT_EQ(run.exitCode, 0) << run.out;
  EXPECT_EQ(manager_.last().method, "PUT");
  EXPECT_EQ(manager_.last().target, "/v1/keypairs/AKU/identity");
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"uid", 7000}, {"gid", 8}}));
  EXPECT_NE(run.out.find("7000"), std::string::npos) << run.out;
  ASSERT_EQ(bai("admin keypair set-uid AKU --uid 7000").exitCode, 0);
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"uid", 7000}})) << "the gid left to the manager's policy";
}

TEST_F(CliTest, WhatIsNotAnIntegerIsRefusedBeforeSendingAndTheRestIsTheManagersToJudge) {
  for (const char* args : {"admin keypair set-uid AKU", "admin keypair set-uid AKU --uid abc", "admin keypair create --uid 1.5",
                           "admin keypair create --gid x"}) {
    const Run run = bai(args);
    EXPECT_EQ(run.exitCode, 2) << args << ": " << run.out;
  }
  EXPECT_EQ(manager_.count(), 0u) << "nothing was sent";
  // Out of range is the manager's call: its problem document is the error, exit 1.
  manager_.answer(400, R"({"type":"invalid-request","title":"Invalid request","detail":"uid must be a whole number from 1 to 4294967294, not 0","field":"uid"})");
  const Run zero = bai("admin keypair set-uid AKU --uid 0");
  EXPECT_EQ(zero.exitCode, 1) << zero.out;
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"uid", 0}}));
  EXPECT_NE(zero.out.find("uid must be"), std::string::npos) << zero.out;
}

TEST_F(CliTest, KeypairListAndInfoShowUidAndGid) {
  manager_.answer(200, R"([{"access_key":"AKU","admin":false,"active":true,"resource_policy":"","created_at_ms":1,"uid":200001,"gid":300}])");
  const Run list = bai("admin keypair list");
  ASSERT_EQ(list.exitCode, 0) << list.out;
  EXPECT_NE(list.out.find("UID"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("200001"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("300"), std::string::npos) << list.out;

  manager_.answer(200, R"({"access_key":"AKU","admin":false,"active":true,"resource_policy":"","created_at_ms":1,"uid":200001,"gid":300})");
  const Run info = bai("admin keypair info AKU --json");
  ASSERT_EQ(info.exitCode, 0) << info.out;
  EXPECT_EQ(manager_.last().target, "/v1/keypairs/AKU");
  const Json shown = Json::parse(info.out, nullptr, false);
  EXPECT_EQ(shown.value("uid", 0), 200001) << info.out;
  EXPECT_EQ(shown.value("gid", 0), 300) << info.out;
}

// ---- Images, runtimes, pull policy and allow-list ------------------------------------

TEST_F(ClientTest, AnImageIsSentWithTheSessionAndReadBack) {
  std::string doc = kSessionDoc;
  doc.insert(doc.size() - 1, R"(,"image":"bai-test/busybox:1")");
  manager_.answer(201, doc);
  SessionSpec spec;
  spec.image = "bai-test/busybox:1";
  auto created = manager_.client().createSession(spec);
  ASSERT_TRUE(created.ok()) << created.error().message();
  EXPECT_EQ(created->image, "bai-test/busybox:1");
  EXPECT_EQ(Json::parse(manager_.last().body),
            Json({{"command", Json::array()}, {"resources", Json::object()}, {"image", "bai-test/busybox:1"}}));
  manager_.answer(200, kSessionDoc);
  auto process = manager_.client().createSession({"", {"true"}, {}, {}, ""});
  ASSERT_TRUE(process.ok()) << process.error().message();
  EXPECT_EQ(process->image, "") << "a host process, from a manager that says image null or nothing";
  EXPECT_FALSE(Json::parse(manager_.last().body).contains("image"));
}

TEST_F(ClientTest, ImagesAndRuntimesOfAgentsAreRead) {
  const char* agentImages = R"({"agent":"a1","status":"ALIVE","scaling_group":"default",
      "runtimes":[{"kind":"process","available":true},{"kind":"container","available":false,"reason":"engine down"}],
      "images":[{"name":"localhost/bai-test/busybox:1","id":"sha256:0123456789abcdef0123","size":1200000}]})";
  manager_.answer(200, "[" + std::string(agentImages) + "]");
  auto images = manager_.client().images("a1");
  ASSERT_TRUE(images.ok()) << images.error().message();
  EXPECT_EQ(manager_.last().target, "/v1/images?agent=a1");
  ASSERT_EQ(images->size(), 1u);
  const AgentImages& agent = images->front();
  EXPECT_EQ(agent.agentId, "a1");
  ASSERT_EQ(agent.runtimes.size(), 2u);
  EXPECT_FALSE(agent.runtimes[1].available);
  EXPECT_EQ(agent.runtimes[1].reason, "engine down");
  ASSERT_EQ(agent.images.size(), 1u);
  EXPECT_EQ(agent.images[0].name, "localhost/bai-test/busybox:1");
  EXPECT_EQ(agent.images[0].sizeBytes, 1200000);
  ASSERT_TRUE(manager_.client().images().ok());
  EXPECT_EQ(manager_.last().target, "/v1/images");

  manager_.answer(200, agentImages);
  auto refreshed = manager_.client().refreshAgentImages("a1");
  ASSERT_TRUE(refreshed.ok()) << refreshed.error().message();
  EXPECT_EQ(manager_.last().method, "POST");
  EXPECT_EQ(manager_.last().target, "/v1/agents/a1/images/refresh");
  EXPECT_EQ(refreshed->images.size(), 1u);

  manager_.answer(200, R"([{"id":"a1","status":"ALIVE","slots":{},"runtimes":[{"kind":"container","available":true}],
      "image_count":4},{"id":"old","status":"ALIVE","slots":{}}])");
  auto agents = manager_.client().agents();
  ASSERT_TRUE(agents.ok()) << agents.error().message();
  EXPECT_EQ((*agents)[0].imageCount, 4u);
  ASSERT_EQ((*agents)[0].runtimes.size(), 1u);
  EXPECT_EQ((*agents)[0].runtimes[0].kind, "container");
  ASSERT_EQ((*agents)[1].runtimes.size(), 1u) << "a manager from before runtimes: host processes";
  EXPECT_EQ((*agents)[1].runtimes[0].kind, "process");
}

TEST_F(ClientTest, AScalingGroupsPullPolicyAndAllowListAreRead) {
  manager_.answer(200, R"({"name":"gpu","image_pull_policy":"if-missing","allowed_images":["bai-test/*"]})");
  auto group = manager_.client().scalingGroup("gpu");
  ASSERT_TRUE(group.ok()) << group.error().message();
  EXPECT_EQ(group->imagePullPolicy, "if-missing");
  EXPECT_EQ(group->allowedImages, std::vector<std::string>{"bai-test/*"});
  manager_.answer(200, R"({"name":"old"})");
  EXPECT_EQ(manager_.client().scalingGroup("old")->imagePullPolicy, "never") << "a manager from before pull policies";
}

const char* kGroupDoc = R"({"name":"gpu","image_pull_policy":"always","allowed_images":["bai-test/*","*/pytorch:*"]})";

TEST_F(CliTest, SessionRunTakesAnImageAndLeavesTheCommandOptional) {
  std::string doc = kSessionDoc;
  doc.insert(doc.size() - 1, R"(,"image":"bai-test/busybox:1")");
  manager_.answer(201, doc);
  const Run run = bai("session create --image bai-test/busybox:1 -r cpu=1 --json");
  ASSERT_EQ(run.exitCode, 0) << run.out;
  EXPECT_EQ(Json::parse(manager_.last().body),
            Json({{"command", Json::array()}, {"resources", {{"cpu", "1"}}}, {"image", "bai-test/busybox:1"}}));
  ASSERT_EQ(bai("session create --json --image bai-test/busybox:1 -- sh -c 'id -u'").exitCode, 0);
  EXPECT_EQ(Json::parse(manager_.last().body)["command"], Json({"sh", "-c", "id -u"}));
  EXPECT_EQ(Json::parse(manager_.last().body)["image"], "bai-test/busybox:1");

  const std::size_t sent = manager_.count();
  const Run noCommand = bai("session run -r cpu=1");
  EXPECT_EQ(noCommand.exitCode, 2) << noCommand.out;
  EXPECT_NE(noCommand.out.find("only a session with --image"), std::string::npos) << noCommand.out;
  EXPECT_EQ(manager_.count(), sent) << "nothing was sent";

  manager_.answer(403, R"j({"type":"image-not-allowed","title":"The image is not allowed in the scaling group",
      "detail":"image 'other/thing:1' is not allowed in scaling group 'gpu' (allowed: 'bai-test/*')","field":"image"})j");
  const Run refused = bai("session run --scaling-group gpu --image other/thing:1");
  EXPECT_EQ(refused.exitCode, 125) << refused.out;
  EXPECT_EQ(Json::parse(manager_.last().body)["scaling_group"], "gpu");
  EXPECT_NE(refused.out.find("image-not-allowed"), std::string::npos) << refused.out;
  EXPECT_NE(refused.out.find("allowed: 'bai-test/*'"), std::string::npos) << refused.out;
  EXPECT_EQ(refused.out.find("admin keypair"), std::string::npos) << "not a question of rights: " << refused.out;

  manager_.answer(200, doc);
  const Run info = bai("session info s1");
  ASSERT_EQ(info.exitCode, 0) << info.out;
  EXPECT_NE(info.out.find("bai-test/busybox:1"), std::string::npos) << info.out;
  manager_.answer(200, kSessionDoc);
  EXPECT_NE(bai("session info s1").out.find("host process"), std::string::npos);
}

TEST_F(CliTest, ScalingGroupCommandsSendThePullPolicyAndTheAllowList) {
  manager_.answer(201, kGroupDoc);
  const Run created = bai("admin scaling-group create gpu --pull-policy always --allowed-image 'bai-test/*' "
                          "--allowed-image '*/pytorch:*'");
  ASSERT_EQ(created.exitCode, 0) << created.out;
  EXPECT_EQ(Json::parse(manager_.last().body),
            Json({{"name", "gpu"}, {"image_pull_policy", "always"}, {"allowed_images", {"bai-test/*", "*/pytorch:*"}}}));
  EXPECT_NE(created.out.find("always"), std::string::npos) << created.out;
  EXPECT_NE(created.out.find("bai-test/*,*/pytorch:*"), std::string::npos) << created.out;

  manager_.answer(200, kGroupDoc);
  ASSERT_EQ(bai("admin scaling-group update gpu --allowed-image ''").exitCode, 0);
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"allowed_images", Json::array()}})) << "'' clears the list";
  ASSERT_EQ(bai("admin scaling-group update gpu --pull-policy if-missing").exitCode, 0);
  EXPECT_EQ(Json::parse(manager_.last().body), Json({{"image_pull_policy", "if-missing"}})) << "the list left as it is";

  const std::size_t sent = manager_.count();
  EXPECT_EQ(bai("admin scaling-group update gpu --pull-policy sometimes").exitCode, 2);
  EXPECT_EQ(bai("admin scaling-group update gpu --allowed-image '' --allowed-image 'x/*'").exitCode, 2);
  EXPECT_EQ(manager_.count(), sent) << "nothing was sent";
}

TEST_F(CliTest, ImageListAndAgentImagesPrintOneRowPerImage) {
  const char* agentImages = R"({"agent":"a1","status":"ALIVE","scaling_group":"default",
      "runtimes":[{"kind":"process","available":true},{"kind":"container","available":true}],
      "images":[{"name":"localhost/bai-test/busybox:1","id":"sha256:0123456789abcdef0123","size":1258291}]})";
  manager_.answer(200, "[" + std::string(agentImages) + "]");
  const Run list = bai("admin image list --agent a1");
  ASSERT_EQ(list.exitCode, 0) << list.out;
  EXPECT_EQ(manager_.last().target, "/v1/images?agent=a1");
  for (const char* shown : {"AGENT", "IMAGE", "ID", "SIZE", "a1", "localhost/bai-test/busybox:1", "0123456789ab", "1.2m"}) {
    EXPECT_NE(list.out.find(shown), std::string::npos) << shown << " in " << list.out;
  }
  EXPECT_EQ(list.out.find("0123456789abc"), std::string::npos) << "a short id: 12 digits";
  ASSERT_EQ(bai("admin image list").exitCode, 0);
  EXPECT_EQ(manager_.last().target, "/v1/images");

  manager_.answer(200, agentImages);
  const Run refreshed = bai("admin agent images a1");
  ASSERT_EQ(refreshed.exitCode, 0) << refreshed.out;
  EXPECT_EQ(manager_.last().method, "POST");
  EXPECT_EQ(manager_.last().target, "/v1/agents/a1/images/refresh");
  EXPECT_NE(refreshed.out.find("process, container"), std::string::npos) << refreshed.out;
  EXPECT_NE(refreshed.out.find("busybox"), std::string::npos) << refreshed.out;
  const Run json = bai("admin agent images a1 --json");
  EXPECT_EQ(Json::parse(json.out, nullptr, false)["agent"], "a1") << json.out;
}

// ---- Interactive sessions: flags, service ports, and the commands' argument checks ------

TEST(ServicePortTest, NamePortAndProtocolAsTheManagerReadsThem) {
  auto plain = ServicePort::parse("ssh:22");
  ASSERT_TRUE(plain.ok()) << plain.error().message;
  EXPECT_EQ(*plain, (ServicePort{"ssh", "tcp", 22}));
  auto http = ServicePort::parse("jupyter-lab:http:8888");
  ASSERT_TRUE(http.ok()) << http.error().message;
  EXPECT_EQ(*http, (ServicePort{"jupyter-lab", "http", 8888}));
  const std::pair<const char*, const char*> bad[] = {
      {"jupyter", "NAME:PORT"},          {"a:b:c:1", "NAME:PORT"},         {"Jupyter:8888", "the name"},
      {"9lives:80", "the name"},         {":80", "the name"},              {"web:udp:80", "tcp or http"},
      {"web:0", "1 to 65535"},           {"web:65536", "1 to 65535"},      {"web:80x", "1 to 65535"},
      {"web:", "1 to 65535"},            {"a-very-long-name-of-thirty-three3:1", "the name"}};
  for (const auto& [text, why] : bad) {
    auto parsed = ServicePort::parse(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_NE(parsed.error().message.find(std::string("'") + text + "'"), std::string::npos) << parsed.error().message;
    EXPECT_NE(parsed.error().message.find(why), std::string::npos) << parsed.error().message;
  }
}

TEST_F(ClientTest, InteractiveFlagsAndServicePortsAreSentAndReadBack) {
  std::string doc = kSessionDoc;
  doc.insert(doc.size() - 1, R"(,"stdin":true,"tty":true,"service_ports":[{"name":"jupyter","protocol":"http","port":8888}],)"
                             R"("last_activity_at_ms":1700)");
  manager_.answer(201, doc);
  SessionSpec spec;
  spec.command = {"bash"};
  spec.tty = true;
  spec.servicePorts = {{"jupyter", "http", 8888}, {"ssh", "tcp", 22}};
  auto session = manager_.client().createSession(spec);
  ASSERT_TRUE(session.ok()) << session.error().message();
  const Json body = Json::parse(manager_.last().body);
  EXPECT_EQ(body["stdin"], true) << "a tty implies stdin";
  EXPECT_EQ(body["tty"], true);
  EXPECT_EQ(body["service_ports"], Json::parse(R"([{"name":"jupyter","protocol":"http","port":8888},
                                                   {"name":"ssh","protocol":"tcp","port":22}])"));
  EXPECT_TRUE(session->openStdin);
  EXPECT_TRUE(session->tty);
  ASSERT_EQ(session->servicePorts.size(), 1u);
  EXPECT_EQ(session->servicePorts[0], (ServicePort{"jupyter", "http", 8888}));
  EXPECT_EQ(session->lastActivityAtMs, 1700);

  manager_.answer(201, kSessionDoc);
  SessionSpec plainSpec;
  plainSpec.command = {"true"};
  ASSERT_TRUE(manager_.client().createSession(plainSpec).ok());
  const Json plain = Json::parse(manager_.last().body);
  EXPECT_FALSE(plain.contains("stdin") || plain.contains("tty") || plain.contains("service_ports"))
      << "a session that is not interactive sends what older managers know: " << plain.dump();
  auto read = manager_.client().session("s1");
  ASSERT_TRUE(read.ok());
  EXPECT_FALSE(read->openStdin || read->tty);
  EXPECT_TRUE(read->servicePorts.empty());
  EXPECT_EQ(read->lastActivityAtMs, 0) << "no traffic yet";
}

TEST_F(CliTest, CreateTakesInteractiveTtyAndPortsAndImageHasNoShortOption) {
  manager_.answer(201, kSessionDoc);
  Run run = bai("session create --json -it --port jupyter:http:8888 --port ssh:22 -- bash");
  ASSERT_EQ(run.exitCode, 0) << run.out;
  Json body = Json::parse(manager_.last().body);
  EXPECT_EQ(body["stdin"], true);
  EXPECT_EQ(body["tty"], true);
  EXPECT_EQ(body["command"], Json({"bash"}));
  EXPECT_EQ(body["service_ports"], Json::parse(R"([{"name":"jupyter","protocol":"http","port":8888},
                                                   {"name":"ssh","protocol":"tcp","port":22}])"));

  run = bai("session create --json --interactive --image bai-test/busybox:1 -- cat");
  ASSERT_EQ(run.exitCode, 0) << run.out;
  body = Json::parse(manager_.last().body);
  EXPECT_EQ(body["stdin"], true);
  EXPECT_FALSE(body.contains("tty"));
  EXPECT_EQ(body["image"], "bai-test/busybox:1");
  EXPECT_EQ(body["command"], Json({"cat"}));
}

TEST_F(CliTest, ABadPortIsRefusedNamingItBeforeAnythingIsSent) {
  const std::pair<const char*, const char*> bad[] = {
      {"--port jupyter -- true", "'jupyter'"},
      {"--port web:udp:80 -- true", "tcp or http"},
      {"--port web:80 --port web:81 -- true", "service 'web' is declared twice"}};
  for (const auto& [args, why] : bad) {
    const Run run = bai(std::string("session run ") + args);
    EXPECT_EQ(run.exitCode, 2) << args << ": " << run.out;
    EXPECT_NE(run.out.find("--port"), std::string::npos) << run.out;
    EXPECT_NE(run.out.find(why), std::string::npos) << run.out;
  }
  EXPECT_EQ(manager_.count(), 0u) << "nothing was sent";
}

TEST_F(CliTest, InfoShowsTheConsoleAndTheServices) {
  std::string doc = kSessionDoc;
  doc.insert(doc.size() - 1, R"(,"stdin":true,"tty":true,"service_ports":[{"name":"jupyter","protocol":"http","port":8888}])");
  manager_.answer(200, doc);
  const Run run = bai("session info s1");
  ASSERT_EQ(run.exitCode, 0) << run.out;
  EXPECT_NE(run.out.find("tty (bai session attach)"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("jupyter http:8888"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("last activity"), std::string::npos) << run.out;
}

TEST_F(CliTest, InteractiveCommandsCheckTheirArgumentsBeforeConnecting) {
  for (const char* args : {"session exec s1", "session exec", "session app s1", "session attach",
                           "session app s1 web --bind nowhere", "session app s1 web --bind 127.0.0.1:99999"}) {
    const Run run = bai(args);
    EXPECT_EQ(run.exitCode, 2) << args << ": " << run.out;
  }
  EXPECT_NE(bai("session app s1 web --bind nowhere").out.find("--bind 'nowhere'"), std::string::npos);
  EXPECT_EQ(manager_.count(), 0u) << "nothing was sent";
}

TEST_F(CliTest, AttachOrAppToAnEndedSessionSaysSoWithoutConnecting) {
  manager_.answer(200, kSessionDoc);  // TERMINATED, exit code 3
  const Run attach = bai("session attach s1");
  EXPECT_EQ(attach.exitCode, 3) << "the session's own code: " << attach.out;
  EXPECT_NE(attach.out.find("session s1 has ended (TERMINATED)"), std::string::npos) << attach.out;
  const Run app = bai("session app s1 jupyter");
  EXPECT_EQ(app.exitCode, 1) << app.out;
  EXPECT_NE(app.out.find("has ended"), std::string::npos) << app.out;
  EXPECT_EQ(manager_.last().target, "/v1/sessions/s1") << "only the session was read";

  manager_.answer(404, R"({"type":"no-such-session","title":"No such session","detail":"no session 'zz'"})");
  const Run unknown = bai("session attach zz");
  EXPECT_EQ(unknown.exitCode, 1) << unknown.out;
  EXPECT_NE(unknown.out.find("no-such-session"), std::string::npos) << unknown.out;
}

}  // namespace
}  // namespace bai::client
