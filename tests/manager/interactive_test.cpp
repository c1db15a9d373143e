// Terminals, execs and service tunnels through a real Manager and its HTTP API: signed
// WebSocket upgrades from a client, relayed to a fake agent whose RPC (a real HTTP
// server) accepts the agent's side of each stream and hands it to the test.
#include "http_client.hpp"
#include "http_server.hpp"
#include "manager.hpp"
#include "manager_api.hpp"
#include "manager_test_support.hpp"
#include "stream_frames.hpp"
#include "websocket.hpp"

#include "../support/temp_dir.hpp"
#include "../support/wait.hpp"

#include <bai/request_signing.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <future>
#include <mutex>
#include <random>

namespace bai::manager {
namespace {

using namespace std::chrono_literals;
using bai::testing::eventually;
using Json = nlohmann::json;
using stream::FrameType;

constexpr std::size_t kFrameLimit = 64u << 10;  // the manager's interactive.max-frame-bytes here

// An agent's RPC: starts every session it is asked to, and accepts every stream upgrade
// (except to the service "nope", which it refuses as a real agent would), handing the
// agent's side of each to the test.
class FakeAgent {
 public:
  FakeAgent() : server_({"127.0.0.1", 0, 2, 1 << 20, "", ""}, [this](const http::Request& r) { return handle(r); }) {
    EXPECT_TRUE(server_.start().ok());
  }
  ~FakeAgent() {
    {
      // A server's sockets go before it stops.
      std::lock_guard<std::mutex> lock(mutex_);
      streams_.clear();
    }
    server_.stop();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server_.port()); }

  // The next stream the agent accepted; null when none came within `limit`.
  std::shared_ptr<ws::WebSocket> nextStream(std::chrono::milliseconds limit = 5s) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (!arrived_.wait_for(lock, limit, [this] { return !streams_.empty(); })) return nullptr;
    auto socket = streams_.front();
    streams_.pop_front();
    return socket;
  }
  std::vector<std::string> upgradeTargets() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return targets_;
  }
  std::optional<protocol::CreateSessionRequest> createOf(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = creates_.find(id);
    return it == creates_.end() ? std::nullopt : std::optional(it->second);
  }
  static std::string noSuchService() {
    return protocol::ApiError{"no-such-service", "No such service", "session declares: jupyter"}.toJson();
  }

 private:
  http::Response handle(const http::Request& request) {
    if (request.header("authorization") != "Bearer token") return {401, "application/json", "{}", {}};
    if (request.method == "POST" && request.path == "/v1/sessions") {
      auto create = protocol::CreateSessionRequest::fromJson(request.body);
      EXPECT_TRUE(create.ok()) << request.body;
      protocol::SessionInfo info;
      info.id = create->sessionId;
      info.state = protocol::SessionState::Running;
      info.startedAtMillis = 1;
      std::lock_guard<std::mutex> lock(mutex_);
      creates_[create->sessionId] = *create;
      return {201, "application/json", info.toJson(), {}};
    }
    if (request.method == "GET" && ws::isUpgradeRequest(request.headers)) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        targets_.push_back(request.target);
      }
      if (request.path.find("/services/nope/") != std::string::npos) {
        return {404, "application/json", noSuchService(), {}};
      }
      ws::Options options;
      options.maxMessageBytes = 8u << 20;  // the manager's limit is what is tested
      return http::Response::acceptUpgrade(
          [this](std::shared_ptr<ws::WebSocket> socket) {
            std::lock_guard<std::mutex> lock(mutex_);
            streams_.push_back(std::move(socket));
            arrived_.notify_all();
          },
          options);
    }
    return {404, "application/json", protocol::ApiError{"not-found", "No", request.path}.toJson(), {}};
  }

  http::Server server_;
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::deque<std::shared_ptr<ws::WebSocket>> streams_;
  std::vector<std::string> targets_;
  std::map<std::string, protocol::CreateSessionRequest> creates_;
};

std::string randomBytes(std::size_t size, unsigned seed) {
  std::mt19937 random(seed);
  std::string out(size, '\0');
  for (char& c : out) c = static_cast<char>(random() & 0xff);
  return out;
}

class InteractiveTest : public ::testing::Test {
 protected:
  void SetUp() override { startManager(); }
  void TearDown() override {
    if (manager_) manager_->shutdown();
    if (api_) api_->stop();
  }

  void startManager(int maxConnections = 3) {
    ManagerSettings settings;
    for (const char* variable : {"BAI_POLICY_DIR", "BAI_POLICY_FIXTURE_DIR"}) {
      if (const char* dir = std::getenv(variable)) settings.policyPath.push_back(dir);
    }
    settings.schedulerPeriod = 50ms;
    settings.agentRpcTimeout = 2s;
    settings.dispatchThreads = 2;
    settings.interactive.maxConnectionsPerSession = maxConnections;
    settings.interactive.maxFrameBytes = frameLimit_;
    settings.interactive.idleTimeout = 10s;
    auto store = openStore("sqlite://" + (dir_.path() / "m.db").string());
    ASSERT_TRUE(store.ok()) << store.error().message;
    auto manager = Manager::start(settings, std::move(*store), "token", LogSink());
    ASSERT_TRUE(manager.ok()) << manager.error().message;
    manager_ = std::move(*manager);
    for (auto* key : {&admin_, &owner_, &other_}) {
      auto created = manager_->admin().createKeypair(key == &admin_);
      ASSERT_TRUE(created.ok());
      *key = {created->accessKey, created->secretKey};
    }
    http::ServerOptions options;
    options.threads = apiThreads_;
    api_ = std::make_unique<http::Server>(options, managerApi(*manager_, "token"));
    ASSERT_TRUE(api_->start().ok());
    report(agent_.url());
  }

  // The agent's report: 8 cpu at `rpcUrl`, running `running`.
  void report(const std::string& rpcUrl, std::vector<std::string> running = {}) {
    auto state = test_support::nodeState(rpcUrl, {{"cpu", "8"}, {"mem", "8589934592"}}, std::move(running));
    auto reply = manager_->heartbeat("a1", {"a1", ++digest_, state});
    ASSERT_TRUE(reply.ok()) << reply.error().detail;
  }

  using Reply = test_support::SignedReply;
  Reply call(const std::string& method, const std::string& target, const std::string& body = "",
             const auth::SigningKey* key = nullptr) {
    return test_support::signedCall(api_->port(), key ? *key : owner_, method, target, body);
  }

  // A session of the owner, RUNNING on the fake agent.
  std::string runningSession(const std::string& fields = R"("stdin": true, "tty": true)") {
    auto created = call("POST", "/v1/sessions", R"({"command": ["sh"], "resources": {"cpu": 1}, )" + fields + "}");
    EXPECT_EQ(created.status, 201) << created.body.dump();
    const std::string id = created.body.value("id", "");
    EXPECT_TRUE(eventually([&] { return call("GET", "/v1/sessions/" + id).body.value("status", "") == "RUNNING"; }))
        << call("GET", "/v1/sessions/" + id).body.dump();
    return id;
  }

  std::map<std::string, std::string> signedHeaders(const std::string& target, const auth::SigningKey& key) {
    return auth::signRequest(key, "GET", target, "", std::chrono::system_clock::now());
  }
  Result<ws::ConnectOutcome> connectWith(const std::string& target, std::map<std::string, std::string> headers) {
    ws::ConnectRequest request;
    request.url = "ws://127.0.0.1:" + std::to_string(api_->port()) + target;
    request.headers = std::move(headers);
    request.options.maxMessageBytes = 8u << 20;
    return connector_.connect(std::move(request));
  }
  Result<ws::ConnectOutcome> connect(const std::string& target, const auth::SigningKey* key = nullptr) {
    return connectWith(target, signedHeaders(target, key ? *key : owner_));
  }
  // The client's side, opened as `key`; fails the test when refused.
  std::unique_ptr<ws::BlockingWebSocket> open(const std::string& target, const auth::SigningKey* key = nullptr) {
    auto outcome = connect(target, key);
    EXPECT_TRUE(outcome.ok()) << outcome.error().message;
    if (!outcome.ok()) return nullptr;
    EXPECT_TRUE(outcome->socket) << (outcome->declined ? outcome->declined->body : "");
    if (!outcome->socket) return nullptr;
    return std::make_unique<ws::BlockingWebSocket>(outcome->socket);
  }
  // The status and problem document of a refused upgrade (0 when it was accepted).
  Reply refusal(const std::string& target, const auth::SigningKey* key = nullptr) {
    auto outcome = connect(target, key);
    if (!outcome.ok()) return {-1, outcome.error().message};
    if (!outcome->declined) return {0, {}};
    return {outcome->declined->status, Json::parse(outcome->declined->body, nullptr, false)};
  }

  test::TempDir dir_;
  FakeAgent agent_;
  int apiThreads_ = 2;
  std::size_t frameLimit_ = kFrameLimit;
  std::unique_ptr<Manager> manager_;
  std::unique_ptr<http::Server> api_;
  auth::SigningKey admin_, owner_, other_;
  std::uint64_t digest_ = 0;
  ws::Connector connector_;
};

TEST_F(InteractiveTest, FramesAreRelayedBothWaysByteExactAndTheQueryReachesTheAgentUnchanged) {
  const std::string id = runningSession();
  const std::string query = "command=%5B%22sh%22%2C%22-c%22%2C%22env%22%5D&tty=1&stdin=1&rows=24&cols=80";
  const auto before = nowMillis();
  auto client = open("/v1/sessions/" + id + "/exec?" + query);
  ASSERT_TRUE(client);
  auto agentSide = agent_.nextStream();
  ASSERT_TRUE(agentSide);
  ws::BlockingWebSocket agent(agentSide);
  ASSERT_EQ(agent_.upgradeTargets().size(), 1u);
  EXPECT_EQ(agent_.upgradeTargets()[0], "/v1/sessions/" + id + "/exec?" + query);

  std::string everyByte;
  for (int b = 0; b < 256; ++b) everyByte.push_back(static_cast<char>(b));
  const std::vector<std::string> up = {stream::encodeFrame(FrameType::Stdin, everyByte),
                                       stream::encodeFrame(FrameType::Resize, stream::resizePayload({50, 132})),
                                       stream::encodeFrame(FrameType::Stdin, randomBytes(kFrameLimit - 1, 1)),
                                       stream::encodeFrame(FrameType::Eof, "")};
  for (const auto& message : up) ASSERT_TRUE(client->send(message));
  for (const auto& message : up) {
    auto received = agent.receive(5000ms);
    ASSERT_TRUE(received);
    EXPECT_EQ(*received, message);
  }
  const std::vector<std::string> down = {stream::encodeFrame(FrameType::Stdout, randomBytes(40000, 2)),
                                         stream::encodeFrame(FrameType::Stderr, everyByte),
                                         stream::encodeFrame(FrameType::Exit, stream::exitPayload(3))};
  for (const auto& message : down) ASSERT_TRUE(agent.send(message));
  for (const auto& message : down) {
    auto received = client->receive(5000ms);
    ASSERT_TRUE(received);
    EXPECT_EQ(*received, message);
  }
  http::ClientRequest scrape;
  scrape.method = "GET";
  scrape.url = "http://127.0.0.1:" + std::to_string(api_->port()) + "/metrics";
  scrape.headers = auth::signRequest(admin_, "GET", "/metrics", "", std::chrono::system_clock::now());
  auto metrics = http::send(scrape);
  ASSERT_TRUE(metrics.ok());
  EXPECT_NE(metrics->body.find("\nbai_manager_interactive_streams 1\n"), std::string::npos) << metrics->body;

  agent.close(ws::kCloseNormal, "exited");
  EXPECT_FALSE(client->receive(5000ms));
  EXPECT_TRUE(client->closed());
  EXPECT_EQ(client->closeInfo().code, ws::kCloseNormal);

  const auto view = call("GET", "/v1/sessions/" + id).body;
  ASSERT_TRUE(view["last_activity_at_ms"].is_number_integer()) << view.dump();
  EXPECT_GE(view["last_activity_at_ms"].get<std::int64_t>(), before);
  EXPECT_TRUE(eventually([&] { return manager_->interactive().connections(id) == 0; }));
}

TEST_F(InteractiveTest, AClientThatDoesNotReadStallsTheAgentWhileTheManagerHoldsAtMostAMessageEachWay) {
  const std::string id = runningSession();
  auto outcome = connect("/v1/sessions/" + id + "/attach");
  ASSERT_TRUE(outcome.ok() && outcome->socket);
  std::shared_ptr<ws::WebSocket> client = outcome->socket;
  std::mutex mutex;
  std::vector<std::string> received;
  std::atomic<bool> reading{false};  // until set, this client reads one message, then stops
  ws::WebSocket* reader = client.get();
  client->start(
      [&](std::string message) {
        std::lock_guard<std::mutex> lock(mutex);
        received.push_back(std::move(message));
        if (reading) reader->readNext();
      },
      [](const ws::CloseInfo&) {});
  auto agent = agent_.nextStream();
  ASSERT_TRUE(agent);
  agent->start([](std::string) {}, [](const ws::CloseInfo&) {});

  // 64 MiB, far more than the kernel's buffers on both legs hold.
  constexpr int kMessages = 2048;
  constexpr std::size_t kPayload = 32u << 10;
  std::atomic<int> written{0};
  auto message = [&](int i) { return stream::encodeFrame(FrameType::Stdout, std::to_string(i) + ":" + randomBytes(kPayload, i)); };
  for (int i = 0; i < kMessages; ++i) agent->send(message(i), [&](bool ok) { written += ok ? 1 : 0; });

  // The agent's writes stall: they stop advancing long before all are written.
  int last = -1;
  ASSERT_TRUE(eventually(
      [&] {
        const int now = written.load();
        const bool still = now == last;
        last = now;
        return still && now > 0;
      },
      10s, 300ms));
  EXPECT_LT(written.load(), kMessages / 2) << "the relay read on while its client read nothing";
  EXPECT_LE(manager_->interactive().queuedBytes(), 2 * kFrameLimit) << "the manager buffers one message each way at most";

  // Reading again, the client gets every message, in order, intact.
  reading = true;
  client->readNext();
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard<std::mutex> lock(mutex);
        return received.size() == static_cast<std::size_t>(kMessages);
      },
      30s));
  for (int i = 0; i < kMessages; ++i) ASSERT_EQ(received[static_cast<std::size_t>(i)], message(i)) << "message " << i;
  EXPECT_EQ(written.load(), kMessages);
  client->close(ws::kCloseNormal, "");
}

TEST_F(InteractiveTest, AnUnsignedBadlySignedOrReplayedUpgradeIsRefusedWith401AndTheAgentIsNeverAsked) {
  const std::string id = runningSession();
  const std::string target = "/v1/sessions/" + id + "/attach";
  auto unsignedUpgrade = connectWith(target, {});
  ASSERT_TRUE(unsignedUpgrade.ok() && unsignedUpgrade->declined);
  EXPECT_EQ(unsignedUpgrade->declined->status, 401);

  auth::SigningKey forged = owner_;
  forged.secretKey = std::string(forged.secretKey.size(), 'x');
  auto badSignature = connect(target, &forged);
  ASSERT_TRUE(badSignature.ok() && badSignature->declined);
  EXPECT_EQ(badSignature->declined->status, 401);

  auto otherTarget = connectWith(target, signedHeaders("/v1/sessions/" + id + "/exec", owner_));
  ASSERT_TRUE(otherTarget.ok() && otherTarget->declined) << "a signature covers the path";
  EXPECT_EQ(otherTarget->declined->status, 401);
  EXPECT_TRUE(agent_.upgradeTargets().empty());

  const auto headers = signedHeaders(target, owner_);
  auto first = connectWith(target, headers);
  ASSERT_TRUE(first.ok() && first->socket);
  auto replayed = connectWith(target, headers);
  ASSERT_TRUE(replayed.ok() && replayed->declined);
  EXPECT_EQ(replayed->declined->status, 401);
  EXPECT_NE(replayed->declined->body.find("nonce"), std::string::npos) << replayed->declined->body;
  EXPECT_EQ(agent_.upgradeTargets().size(), 1u);
  first->socket->close(ws::kCloseNormal, "");
}

TEST_F(InteractiveTest, AnotherUsersSessionIsRefusedAsTheApiRefusesItAndAnAdminIsRelayed) {
  const std::string id = runningSession();
  const auto asOther = refusal("/v1/sessions/" + id + "/attach", &other_);
  const auto lookup = call("GET", "/v1/sessions/" + id, "", &other_);
  EXPECT_EQ(asOther.status, 404) << asOther.body.dump();
  EXPECT_EQ(asOther.status, lookup.status);
  EXPECT_EQ(asOther.body["type"], lookup.body["type"]);
  EXPECT_EQ(refusal("/v1/sessions/" + id + "/services/jupyter/connect", &other_).status, 404);
  EXPECT_TRUE(agent_.upgradeTargets().empty());

  auto admin = open("/v1/sessions/" + id + "/attach", &admin_);
  ASSERT_TRUE(admin);
  auto agent = agent_.nextStream();
  ASSERT_TRUE(agent);
  ws::BlockingWebSocket agentSide(agent);
  ASSERT_TRUE(admin->send(stream::encodeFrame(FrameType::Stdin, "ls\n")));
  EXPECT_EQ(agentSide.receive(5000ms), stream::encodeFrame(FrameType::Stdin, "ls\n"));
}

TEST_F(InteractiveTest, ASessionNotRunningIs409AndAttachWithoutStdinIs409NotInteractive) {
  auto pending = call("POST", "/v1/sessions", R"({"command": ["sh"], "stdin": true, "resources": {"cpu": 100}})");
  ASSERT_EQ(pending.status, 201) << pending.body.dump();
  const std::string pendingId = pending.body["id"];
  auto notRunning = refusal("/v1/sessions/" + pendingId + "/attach");
  EXPECT_EQ(notRunning.status, 409) << notRunning.body.dump();
  EXPECT_EQ(notRunning.body["type"], "session-not-running");
  EXPECT_NE(notRunning.body.value("detail", "").find("PENDING"), std::string::npos) << notRunning.body.dump();

  const std::string batch = runningSession(R"("name": "batch")");
  auto notInteractive = refusal("/v1/sessions/" + batch + "/attach");
  EXPECT_EQ(notInteractive.status, 409) << notInteractive.body.dump();
  EXPECT_EQ(notInteractive.body["type"], "not-interactive");
  EXPECT_TRUE(agent_.upgradeTargets().empty());
  EXPECT_TRUE(open("/v1/sessions/" + batch + "/exec?command=%5B%22ls%22%5D")) << "exec needs no stdin of the session";

  ASSERT_EQ(call("DELETE", "/v1/sessions/" + batch).status, 200);
  auto stopping = refusal("/v1/sessions/" + batch + "/exec?command=%5B%22ls%22%5D");
  EXPECT_EQ(stopping.status, 409) << stopping.body.dump();
  EXPECT_EQ(stopping.body["type"], "session-not-running");

  EXPECT_EQ(refusal("/v1/sessions/nosuch/attach").status, 404);
  // A plain GET, signed, on a stream's path: it is a WebSocket or nothing.
  EXPECT_EQ(call("GET", "/v1/sessions/" + pendingId + "/attach").status, 426);
}

TEST_F(InteractiveTest, ConnectionsBeyondTheLimitAreRefusedWith429UntilOneCloses) {
  const std::string id = runningSession();
  const std::string other = runningSession();
  std::vector<std::unique_ptr<ws::BlockingWebSocket>> open3, agentSides;
  for (int i = 0; i < 3; ++i) {
    open3.push_back(open("/v1/sessions/" + id + "/attach"));
    ASSERT_TRUE(open3.back());
    auto agent = agent_.nextStream();
    ASSERT_TRUE(agent);
    agentSides.push_back(std::make_unique<ws::BlockingWebSocket>(agent));
  }
  auto refused = refusal("/v1/sessions/" + id + "/services/jupyter/connect");
  EXPECT_EQ(refused.status, 429) << refused.body.dump();
  EXPECT_EQ(refused.body["type"], "too-many-connections");
  EXPECT_NE(refused.body.value("detail", "").find("interactive.max-connections-per-session"), std::string::npos);
  EXPECT_TRUE(open("/v1/sessions/" + other + "/attach")) << "the limit is per session";

  open3.front()->close();
  ASSERT_TRUE(eventually([&] { return manager_->interactive().connections(id) == 2; }));
  EXPECT_TRUE(open("/v1/sessions/" + id + "/attach"));
}

// The smallest limit: a message over it fits a TCP segment, so its refusal is read as a
// close frame rather than lost to a reset of a connection with unread data.
class InteractiveSmallFrameTest : public InteractiveTest {
 protected:
  InteractiveSmallFrameTest() { frameLimit_ = 1024; }
};

TEST_F(InteractiveSmallFrameTest, AFrameOverTheLimitClosesItsStreamWith1009AndOtherStreamsGoOn) {
  const std::string id = runningSession();
  const std::string neighbour = runningSession();
  auto big = open("/v1/sessions/" + id + "/attach");
  ASSERT_TRUE(big);
  auto bigAgent = agent_.nextStream();
  ASSERT_TRUE(bigAgent);
  ws::BlockingWebSocket bigAgentSide(bigAgent);
  auto calm = open("/v1/sessions/" + neighbour + "/attach");
  ASSERT_TRUE(calm);
  auto calmAgent = agent_.nextStream();
  ASSERT_TRUE(calmAgent);
  ws::BlockingWebSocket calmAgentSide(calmAgent);

  big->send(stream::encodeFrame(FrameType::Stdin, std::string(frameLimit_, 'x')));
  EXPECT_FALSE(big->receive(5000ms));
  EXPECT_EQ(big->closeInfo().code, ws::kCloseTooBig);
  EXPECT_FALSE(bigAgentSide.receive(5000ms)) << "nothing of it reached the agent";
  EXPECT_EQ(bigAgentSide.closeInfo().code, ws::kCloseTooBig);

  for (int i = 0; i < 10; ++i) {
    const std::string up = stream::encodeFrame(FrameType::Stdin, "line " + std::to_string(i) + "\n");
    ASSERT_TRUE(calm->send(up));
    EXPECT_EQ(calmAgentSide.receive(5000ms), up);
    const std::string down = stream::encodeFrame(FrameType::Stdout, randomBytes(frameLimit_ - 1, static_cast<unsigned>(i)));
    ASSERT_TRUE(calmAgentSide.send(down));
    EXPECT_EQ(calm->receive(5000ms), down);
  }
  EXPECT_FALSE(calm->closed());
}

TEST_F(InteractiveTest, TheAgentsRefusalReachesTheClientAsTheAgentGaveIt) {
  const std::string id = runningSession(R"("service_ports": [{"name": "jupyter", "port": 8888}])");
  auto outcome = connect("/v1/sessions/" + id + "/services/nope/connect");
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  ASSERT_TRUE(outcome->declined);
  EXPECT_EQ(outcome->declined->status, 404);
  EXPECT_EQ(outcome->declined->body, FakeAgent::noSuchService());
  EXPECT_EQ(agent_.upgradeTargets().back(), "/v1/sessions/" + id + "/services/nope/connect");
  EXPECT_TRUE(eventually([&] { return manager_->interactive().connections(id) == 0; })) << "a refused stream holds nothing";
  EXPECT_TRUE(open("/v1/sessions/" + id + "/services/jupyter/connect"));
}

TEST_F(InteractiveTest, EitherSideClosingClosesTheOtherWithItsCode) {
  const std::string id = runningSession();
  auto client = open("/v1/sessions/" + id + "/attach");
  ASSERT_TRUE(client);
  auto agent = agent_.nextStream();
  ASSERT_TRUE(agent);
  ws::BlockingWebSocket agentSide(agent);
  agentSide.close(ws::kCloseInternalError, "the shim is gone");
  EXPECT_FALSE(client->receive(5000ms));
  EXPECT_EQ(client->closeInfo().code, ws::kCloseInternalError);
  EXPECT_EQ(client->closeInfo().reason, "the shim is gone");

  auto second = open("/v1/sessions/" + id + "/attach");
  ASSERT_TRUE(second);
  auto secondAgent = agent_.nextStream();
  ASSERT_TRUE(secondAgent);
  ws::BlockingWebSocket secondAgentSide(secondAgent);
  second->close(ws::kCloseNormal, "detached");
  EXPECT_FALSE(secondAgentSide.receive(5000ms));
  EXPECT_EQ(secondAgentSide.closeInfo().code, ws::kCloseNormal);
  EXPECT_TRUE(eventually([&] { return manager_->interactive().connections(id) == 0; }));
}

TEST(StreamRelay, PassesOnEveryCloseCodeThatMayBeSentAndAConnectionLostAsGoingAway) {
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999}) {
    EXPECT_EQ(closeCodeToPassOn(code), code);
  }
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 2999, 5000}) {
    EXPECT_EQ(closeCodeToPassOn(code), ws::kCloseGoingAway) << code;
  }
}

// A listener that completes TCP handshakes and never answers: a hung agent.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof(address);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&address), size), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    EXPECT_EQ(::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size), 0);
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

class InteractiveOneApiThreadTest : public InteractiveTest {
 protected:
  InteractiveOneApiThreadTest() { apiThreads_ = 1; }
};

TEST_F(InteractiveOneApiThreadTest, AnAgentThatNeverAnswersHoldsNoApiThread) {
  const std::string id = runningSession();
  SilentListener hung;
  report(hung.url(), {id});

  std::promise<Result<ws::ConnectOutcome>> opened;
  std::thread opener([&] { opened.set_value(connect("/v1/sessions/" + id + "/attach")); });
  ASSERT_TRUE(eventually([&] { return manager_->interactive().connections(id) == 1; })) << "the open is waiting on the agent";
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(call("GET", "/v1/sessions/" + id).status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 500ms) << "the one API thread was free";
  opener.join();
  auto outcome = opened.get_future().get();
  ASSERT_TRUE(outcome.ok()) << outcome.error().message;
  ASSERT_TRUE(outcome->declined);
  EXPECT_EQ(outcome->declined->status, 502) << outcome->declined->body;
  EXPECT_EQ(manager_->interactive().connections(id), 0);
}

// ---- Create-session: stdin, tty, service ports ------------------------------------------

TEST_F(InteractiveTest, CreateSessionCarriesStdinTtyAndServicePortsToTheAgentAndShowsThem) {
  const std::string id =
      runningSession(R"("tty": true, "service_ports": [{"name": "jupyter", "protocol": "http", "port": 8888}, {"name": "ssh", "port": 22}])");
  const auto view = call("GET", "/v1/sessions/" + id).body;
  EXPECT_EQ(view["stdin"], true) << "a terminal implies stdin";
  EXPECT_EQ(view["tty"], true);
  EXPECT_EQ(view["service_ports"], Json::parse(R"([{"name": "jupyter", "protocol": "http", "port": 8888},
                                                   {"name": "ssh", "protocol": "tcp", "port": 22}])"));
  EXPECT_TRUE(view["last_activity_at_ms"].is_null()) << "no traffic yet";
  auto create = agent_.createOf(id);
  ASSERT_TRUE(create);
  EXPECT_TRUE(create->openStdin);
  EXPECT_TRUE(create->tty);
  EXPECT_EQ(create->servicePorts, (std::vector<protocol::ServicePort>{{"jupyter", "http", 8888}, {"ssh", "tcp", 22}}));

  const std::string plain = runningSession(R"("name": "plain")");
  const auto plainView = call("GET", "/v1/sessions/" + plain).body;
  EXPECT_EQ(plainView["stdin"], false);
  EXPECT_EQ(plainView["tty"], false);
  EXPECT_EQ(plainView["service_ports"], Json::array());
  EXPECT_FALSE(agent_.createOf(plain)->openStdin);
}

TEST_F(InteractiveTest, CreateSessionRefusesBadInteractiveFieldsNamingTheField) {
  std::string seventeen;
  for (int i = 0; i < 17; ++i) seventeen += std::string(i ? "," : "") + R"({"name": "s)" + std::to_string(i) + R"(", "port": 80})";
  for (const auto& [fields, field, detail] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {R"("stdin": 1)", "stdin", "stdin must be true or false"},
           {R"("tty": "yes")", "tty", "tty must be true or false"},
           {R"("service_ports": {"jupyter": 8888})", "service_ports", "array"},
           {R"("service_ports": ["jupyter:8888"])", "service_ports", "service_ports[0] must be {"},
           {R"("service_ports": [{"name": "web", "port": 0}])", "service_ports", "service_ports[0]: service port 'web:tcp:0'"},
           {R"("service_ports": [{"name": "web", "port": 70000}])", "service_ports", "1 to 65535"},
           {R"("service_ports": [{"name": "web", "port": 80.5}])", "service_ports", "service_ports[0] must be {"},
           {R"("service_ports": [{"name": "Web_UI", "port": 80}])", "service_ports", "the name must be"},
           {R"("service_ports": [{"name": "web", "protocol": "udp", "port": 80}])", "service_ports", "tcp or http"},
           {R"("service_ports": [{"name": "web", "port": 80, "host": "x"}])", "service_ports", "service_ports[0] must be {"},
           {R"("service_ports": [{"port": 80}])", "service_ports", "service_ports[0] must be {"},
           {R"("service_ports": [{"name": "web", "port": 80}, {"name": "web", "port": 81}])", "service_ports",
            "'web' is declared twice"},
           {R"("service_ports": [)" + seventeen + "]", "service_ports", "at most 16"},
       }) {
    auto refused = call("POST", "/v1/sessions", R"({"command": ["sh"], )" + fields + "}");
    EXPECT_EQ(refused.status, 400) << fields << " " << refused.body.dump();
    EXPECT_EQ(refused.body.value("type", ""), "invalid-request") << fields;
    EXPECT_EQ(refused.body.value("field", ""), field) << fields << " " << refused.body.dump();
    EXPECT_NE(refused.body.value("detail", "").find(detail), std::string::npos) << fields << " " << refused.body.dump();
  }
  EXPECT_EQ(call("GET", "/v1/sessions").body.size(), 0u) << "nothing was queued";
}

}  // namespace
}  // namespace bai::manager
