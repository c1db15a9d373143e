#include "fake_manager.hpp"
#include "report/manager_client.hpp"
#include "report_test_util.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <iostream>
#include <thread>

namespace bai::core {
namespace {

using namespace std::chrono_literals;
using test::FakeManager;

constexpr const char* kToken = "cluster-secret-0123456789";

ManagerClient makeClient(const std::string& url, const std::string& token = kToken,
                         std::chrono::milliseconds requestTimeout = 5000ms) {
  auto client = ManagerClient::create({url, "agent-1", token, 2000ms, requestTimeout});
  if (!client) throw std::runtime_error(client.error().message);
  return std::move(*client);
}

class ManagerClientTest : public ::testing::Test {
 protected:
  void SetUp() override { manager.start(); }

  FakeManager manager{kToken};
};

TEST_F(ManagerClientTest, HeartbeatWithFullStateThenDigestOnlyOverOneConnection) {
  auto client = makeClient(manager.url());
  auto first = client.heartbeat({"agent-1", 1, test::sampleState()});
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_FALSE(first->sendFull);
  auto second = client.heartbeat({"agent-1", 1, std::nullopt});
  ASSERT_TRUE(second.ok()) << second.error().message;
  EXPECT_EQ(client.lastHttpStatus(), 200);

  const auto heartbeats = manager.heartbeats();
  ASSERT_EQ(heartbeats.size(), 2u);
  ASSERT_TRUE(heartbeats[0].state.has_value());
  EXPECT_EQ(heartbeats[0].state->region, "local");
  EXPECT_FALSE(heartbeats[1].state.has_value());
  EXPECT_EQ(manager.requests().at(0).path, "/v1/agents/agent-1/heartbeat");
  EXPECT_EQ(manager.connectionsAccepted(), 1u) << "the connection is kept alive";
}

TEST_F(ManagerClientTest, SendFullFromTheManagerIsReturned) {
  manager.sendFullOnce();
  auto client = makeClient(manager.url());
  EXPECT_TRUE(client.heartbeat({"agent-1", 1, std::nullopt})->sendFull);
  EXPECT_FALSE(client.heartbeat({"agent-1", 1, std::nullopt})->sendFull);
}

TEST_F(ManagerClientTest, SendsBearerTokenAndJsonContentType) {
  auto client = makeClient(manager.url() + "/");  // a trailing slash is harmless
  ASSERT_TRUE(client.heartbeat({"agent-1", 1, std::nullopt}).ok());
  const auto request = manager.requests().at(0);
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.path, "/v1/agents/agent-1/heartbeat");
  EXPECT_EQ(request.headers.at("authorization"), std::string("Bearer ") + kToken);
  EXPECT_EQ(request.headers.at("content-type"), "application/json");
}

TEST_F(ManagerClientTest, EscapesTheAgentIdInThePath) {
  auto client = ManagerClient::create({manager.url(), "rack 1/node", kToken, 2000ms, 5000ms});
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client->heartbeat({"rack 1/node", 1, std::nullopt}).ok());
  EXPECT_EQ(manager.requests().at(0).path, "/v1/agents/rack%201%2Fnode/heartbeat");
}

TEST_F(ManagerClientTest, WrongTokenGivesAClearErrorWithoutTheToken) {
  const std::string wrongToken = "wrong-secret-9876543210";
  auto client = makeClient(manager.url(), wrongToken);
  auto reply = client.heartbeat({"agent-1", 1, std::nullopt});
  ASSERT_FALSE(reply.ok());
  const std::string& message = reply.error().message;
  EXPECT_NE(message.find("HTTP 401"), std::string::npos) << message;
  EXPECT_NE(message.find("missing or wrong cluster token"), std::string::npos) << message;
  EXPECT_EQ(message.find(wrongToken), std::string::npos) << message;
  EXPECT_EQ(message.find(kToken), std::string::npos) << message;
  EXPECT_EQ(client.lastHttpStatus(), 401);
}

TEST_F(ManagerClientTest, ServiceUnavailableIsAnErrorWithTheStatus) {
  manager.setHeartbeatStatus(503);
  manager.setEventAckMode(test::EventAckMode::Fail503);
  auto client = makeClient(manager.url());
  auto heartbeat = client.heartbeat({"agent-1", 1, std::nullopt});
  ASSERT_FALSE(heartbeat.ok());
  EXPECT_NE(heartbeat.error().message.find("HTTP 503"), std::string::npos) << heartbeat.error().message;
  EXPECT_NE(heartbeat.error().message.find("Service Unavailable"), std::string::npos) << heartbeat.error().message;
  auto events = client.sendEvents({"agent-1", {test::exitedEvent("s1", 0)}});
  ASSERT_FALSE(events.ok());
  EXPECT_EQ(client.lastHttpStatus(), 503);
}

TEST_F(ManagerClientTest, MalformedReplyIsAnError) {
  manager.setRawHeartbeatReply("{not json");
  auto client = makeClient(manager.url());
  auto reply = client.heartbeat({"agent-1", 1, std::nullopt});
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().message.find("malformed JSON"), std::string::npos) << reply.error().message;

  manager.setRawHeartbeatReply(R"({"protocol":99,"send_full":false})");
  auto newer = client.heartbeat({"agent-1", 1, std::nullopt});
  ASSERT_FALSE(newer.ok());
  EXPECT_NE(newer.error().message.find("protocol version 99"), std::string::npos) << newer.error().message;
}

TEST_F(ManagerClientTest, EventsAreAcknowledged) {
  auto client = makeClient(manager.url());
  protocol::EventBatch batch{"agent-1", {test::exitedEvent("s1", 0), test::exitedEvent("s2", 3)}};
  batch.events[0].seq = 1;
  batch.events[1].seq = 2;
  auto ack = client.sendEvents(batch);
  ASSERT_TRUE(ack.ok()) << ack.error().message;
  EXPECT_EQ(ack->ackedThrough, 2u);
  ASSERT_EQ(manager.events().size(), 2u);
  EXPECT_EQ(manager.events()[1].event.exitCode, 3);
  EXPECT_EQ(manager.requests().at(0).path, "/v1/agents/agent-1/events");
}

TEST_F(ManagerClientTest, UnreachableManagerFailsFast) {
  const std::string url = manager.url();
  manager.stop();  // nothing listens on that port now
  auto client = makeClient(url);
  const auto start = std::chrono::steady_clock::now();
  auto reply = client.heartbeat({"agent-1", 1, std::nullopt});
  ASSERT_FALSE(reply.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms);
  EXPECT_EQ(client.lastHttpStatus(), 0);
  EXPECT_NE(reply.error().message.find(url), std::string::npos) << reply.error().message;
}

TEST_F(ManagerClientTest, SlowManagerTimesOut) {
  manager.setReplyDelay(3000ms);
  auto client = makeClient(manager.url(), kToken, 200ms);
  const auto start = std::chrono::steady_clock::now();
  auto reply = client.heartbeat({"agent-1", 1, std::nullopt});
  const auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(reply.ok());
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 1000ms);
  EXPECT_EQ(client.lastHttpStatus(), 0);
}

TEST_F(ManagerClientTest, CancelEndsACallInFlightAtOnce) {
  manager.setReplyDelay(5000ms);
  auto client = makeClient(manager.url());
  std::thread canceller([&] {
    std::this_thread::sleep_for(50ms);
    client.cancel();
  });
  const auto start = std::chrono::steady_clock::now();
  auto reply = client.heartbeat({"agent-1", 1, std::nullopt});
  const auto took = std::chrono::steady_clock::now() - start;
  canceller.join();
  ASSERT_FALSE(reply.ok());
  EXPECT_NE(reply.error().message.find("cancelled"), std::string::npos) << reply.error().message;
  EXPECT_LT(took, 250ms);
  EXPECT_FALSE(client.heartbeat({"agent-1", 1, std::nullopt}).ok()) << "a cancelled client stays cancelled";
}

TEST_F(ManagerClientTest, ReconnectsAfterTheManagerRestarts) {
  auto client = makeClient(manager.url());
  ASSERT_TRUE(client.heartbeat({"agent-1", 1, std::nullopt}).ok());
  manager.stop();
  EXPECT_FALSE(client.heartbeat({"agent-1", 1, std::nullopt}).ok());
  manager.start();
  auto reply = client.heartbeat({"agent-1", 1, std::nullopt});
  EXPECT_TRUE(reply.ok()) << reply.error().message;
}

TEST(ManagerClient, RefusesBadOptions) {
  EXPECT_FALSE(ManagerClient::create({"ftp://manager", "agent-1", kToken, 2000ms, 5000ms}).ok());
  EXPECT_FALSE(ManagerClient::create({"http://manager", "", kToken, 2000ms, 5000ms}).ok());
  EXPECT_FALSE(ManagerClient::create({"http://manager", "agent-1", "", 2000ms, 5000ms}).ok());
  auto injected = ManagerClient::create({"http://manager", "agent-1", "abc\r\nX-Evil: 1", 2000ms, 5000ms});
  ASSERT_FALSE(injected.ok());
  EXPECT_EQ(injected.error().message.find("abc"), std::string::npos);
}

TEST_F(ManagerClientTest, HeartbeatThroughput) {
  auto client = makeClient(manager.url());
  const protocol::Heartbeat digestOnly{"agent-1", 1, std::nullopt};
  const auto start = std::chrono::steady_clock::now();
  int sent = 0;
  while (std::chrono::steady_clock::now() - start < 1s) {
    ASSERT_TRUE(client.heartbeat(digestOnly).ok());
    ++sent;
  }
  const double seconds = test::millisSince(start, std::chrono::steady_clock::now()) / 1000;
  std::cout << "[figure] digest-only heartbeats to the fake manager, one client, one connection: "
            << static_cast<int>(sent / seconds) << "/s\n";
  EXPECT_EQ(manager.connectionsAccepted(), 1u);
  EXPECT_GT(sent, 100);
}

// ---- cluster token file --------------------------------------------------------------

std::filesystem::path writeTokenFile(const test::TempDir& dir, const std::string& content, mode_t mode) {
  const auto path = dir.path() / "cluster-token";
  std::ofstream(path, std::ios::binary) << content;
  ::chmod(path.c_str(), mode);
  return path;
}

TEST(ClusterToken, PrivateFileIsReadAndTheTrailingNewlineDropped) {
  test::TempDir dir;
  auto token = readClusterToken(writeTokenFile(dir, std::string(kToken) + "\n", 0600));
  ASSERT_TRUE(token.ok()) << token.error().message;
  EXPECT_EQ(*token, kToken);
  EXPECT_EQ(*readClusterToken(writeTokenFile(dir, kToken, 0400)), kToken);
}

TEST(ClusterToken, FileReadableByOthersIsRefusedByItsModeBits) {
  test::TempDir dir;
  for (const mode_t mode : {0644, 0640, 0604, 0660}) {
    auto token = readClusterToken(writeTokenFile(dir, kToken, mode));
    ASSERT_FALSE(token.ok()) << "mode " << std::oct << mode;
    EXPECT_NE(token.error().message.find("chmod 600"), std::string::npos) << token.error().message;
    EXPECT_EQ(token.error().message.find(kToken), std::string::npos);
  }
}

TEST(ClusterToken, MissingFileIsNotFound) {
  test::TempDir dir;
  auto token = readClusterToken(dir.path() / "absent");
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.error().code, ErrorCode::NotFound);
}

TEST(ClusterToken, EmptyFileIsRefused) {
  test::TempDir dir;
  for (const char* content : {"", "\n", "\r\n"}) {
    auto token = readClusterToken(writeTokenFile(dir, content, 0600));
    ASSERT_FALSE(token.ok());
    EXPECT_NE(token.error().message.find("empty"), std::string::npos) << token.error().message;
  }
}

TEST(ClusterToken, TokenWithSpacesOrSeveralLinesIsRefused) {
  test::TempDir dir;
  EXPECT_FALSE(readClusterToken(writeTokenFile(dir, "two words\n", 0600)).ok());
  EXPECT_FALSE(readClusterToken(writeTokenFile(dir, "line1\nline2\n", 0600)).ok());
}

TEST(ClusterToken, DirectoryIsRefused) {
  test::TempDir dir;
  ::chmod(dir.path().c_str(), 0700);
  EXPECT_FALSE(readClusterToken(dir.path()).ok());
}

}  // namespace
}  // namespace bai::core
