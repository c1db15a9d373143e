// WebSockets end to end on loopback: http::Server upgrades, ws::Connector connects.
#include "http_client.hpp"
#include "http_server.hpp"
#include "websocket.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>

namespace bai {
namespace {

using namespace std::chrono_literals;

// A server whose /echo sends every message back (after the previous echo was written:
// the relay rule), /hold accepts and never reads, and anything else is refused with 403.
class WebSocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<http::Server>(http::ServerOptions{}, [this](const http::Request& request) {
      if (request.path == "/echo") return http::Response::acceptUpgrade(echo(), options_);
      if (request.path == "/hold") {
        return http::Response::acceptUpgrade(
            [this](std::shared_ptr<ws::WebSocket> socket) {
              held_.set_value(socket);
              socket->start([](std::string) {}, [](const ws::CloseInfo&) {});
            },
            options_);
      }
      return http::Response{403, "application/json", R"({"type":"forbidden","detail":"not yours"})", {}};
    });
    ASSERT_TRUE(server_->start());
  }

  http::Response::OnUpgrade echo() {
    return [this](std::shared_ptr<ws::WebSocket> socket) {
      std::weak_ptr<ws::WebSocket> weak = socket;
      socket->start(
          [this, weak](std::string message) {
            {
              const std::lock_guard lock(mutex_);
              received_.push_back(message);
            }
            auto socket = weak.lock();
            if (!socket) return;
            socket->send(std::move(message), [weak](bool) {
              if (auto socket = weak.lock()) socket->readNext();
            });
          },
          [this, socket](const ws::CloseInfo& info) { serverClosed_.set_value(info); });
    };
  }

  std::string url(const std::string& path) const { return "ws://127.0.0.1:" + std::to_string(server_->port()) + path; }

  ws::ConnectOutcome connect(const std::string& path, ws::Options options = {}) {
    auto outcome = connector_.connect(ws::ConnectRequest{url(path), {}, options});
    EXPECT_TRUE(outcome) << (outcome ? "" : outcome.error().message);
    return outcome ? *outcome : ws::ConnectOutcome{};
  }

  std::vector<std::string> received() {
    const std::lock_guard lock(mutex_);
    return received_;
  }

  std::mutex mutex_;
  std::vector<std::string> received_;  // by /echo
  ws::Options options_{};
  std::promise<std::shared_ptr<ws::WebSocket>> held_;
  std::promise<ws::CloseInfo> serverClosed_;
  ws::Connector connector_;
  std::unique_ptr<http::Server> server_;
};

TEST_F(WebSocketTest, MessagesComeBackByteExactInOrder) {
  auto outcome = connect("/echo");
  ASSERT_TRUE(outcome.socket);
  ws::BlockingWebSocket socket(outcome.socket);
  std::string binary(70000, '\0');
  for (std::size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<char>(i * 7);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(socket.send(std::to_string(i)));
  ASSERT_TRUE(socket.send(binary));
  for (int i = 0; i < 50; ++i) EXPECT_EQ(socket.receive(5s), std::to_string(i));
  EXPECT_EQ(socket.receive(5s), binary);
}

TEST_F(WebSocketTest, ARefusedUpgradeGivesTheServersStatusAndBody) {
  auto outcome = connector_.connect(ws::ConnectRequest{url("/nope")});
  ASSERT_TRUE(outcome);
  EXPECT_FALSE(outcome->socket);
  ASSERT_TRUE(outcome->declined);
  EXPECT_EQ(outcome->declined->status, 403);
  EXPECT_NE(outcome->declined->body.find("not yours"), std::string::npos) << outcome->declined->body;
}

TEST_F(WebSocketTest, APlainRequestToAnUpgradePathIs426) {
  http::Server plain(http::ServerOptions{},
                     [](const http::Request&) { return http::Response::acceptUpgrade([](std::shared_ptr<ws::WebSocket>) {}); });
  ASSERT_TRUE(plain.start());
  http::ClientRequest plainGet;
  plainGet.url = "http://127.0.0.1:" + std::to_string(plain.port()) + "/x";
  auto reply = http::send(plainGet);
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 426);
  EXPECT_NE(reply->body.find("upgrade-required"), std::string::npos);
}

TEST_F(WebSocketTest, AMessageOverTheLimitClosesWith1009AndTheServerSaysWhy) {
  options_.maxMessageBytes = 1000;
  auto outcome = connect("/echo");
  ASSERT_TRUE(outcome.socket);
  ws::BlockingWebSocket socket(outcome.socket);
  ASSERT_TRUE(socket.send(std::string(999, 'a')));
  EXPECT_EQ(socket.receive(5s)->size(), 999u);
  socket.send(std::string(1001, 'b'));
  EXPECT_EQ(socket.receive(5s), std::nullopt);
  EXPECT_TRUE(socket.closed());
  EXPECT_EQ(socket.closeInfo().code, ws::kCloseTooBig);
  auto serverSide = serverClosed_.get_future();
  ASSERT_EQ(serverSide.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(serverSide.get().code, ws::kCloseTooBig);
}

TEST_F(WebSocketTest, APeerThatDoesNotReadStallsTheSenderInsteadOfBuffering) {
  auto outcome = connect("/hold");
  ASSERT_TRUE(outcome.socket);
  auto held = held_.get_future().get();
  // The server read one message and asks for no more: the client's writes back up in the
  // kernel's buffers, then in its queue, and their callbacks stop coming.
  std::atomic<int> written{0};
  const std::string chunk(256 * 1024, 'x');
  for (int i = 0; i < 64; ++i) outcome.socket->send(chunk, [&](bool ok) { written += ok ? 1 : 0; });
  std::this_thread::sleep_for(500ms);
  EXPECT_LT(written.load(), 64);
  EXPECT_GT(outcome.socket->queuedBytes(), 0u);
  held->close(ws::kCloseNormal, "bye");
}

TEST_F(WebSocketTest, ACloseCarriesItsCodeAndReasonToThePeer) {
  auto outcome = connect("/hold");
  ASSERT_TRUE(outcome.socket);
  ws::BlockingWebSocket socket(outcome.socket);
  auto held = held_.get_future().get();
  held->close(ws::kClosePolicy, "too many connections");
  EXPECT_EQ(socket.receive(5s), std::nullopt);
  EXPECT_EQ(socket.closeInfo().code, ws::kClosePolicy);
  EXPECT_EQ(socket.closeInfo().reason, "too many connections");
}

TEST_F(WebSocketTest, QueuedMessagesAreWrittenBeforeTheClose) {
  auto outcome = connect("/echo");
  ASSERT_TRUE(outcome.socket);
  ws::BlockingWebSocket socket(outcome.socket);
  auto server = serverClosed_.get_future();
  outcome.socket->send("first");
  outcome.socket->send("last words");
  outcome.socket->close(ws::kCloseNormal, "done");
  ASSERT_EQ(server.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(server.get().reason, "done");
  EXPECT_EQ(received(), (std::vector<std::string>{"first", "last words"}));
}

TEST_F(WebSocketTest, TheConnectorsEndClosesItsSockets) {
  auto connector = std::make_unique<ws::Connector>();
  auto outcome = connector->connect(ws::ConnectRequest{url("/echo")});
  ASSERT_TRUE(outcome && outcome->socket);
  ws::BlockingWebSocket socket(outcome->socket);
  connector.reset();
  EXPECT_EQ(socket.receive(5s), std::nullopt);
  EXPECT_TRUE(socket.closed());
}

TEST_F(WebSocketTest, AnUnreachableServerIsAnErrorNamingTheUrl) {
  http::Server closed(http::ServerOptions{}, [](const http::Request&) { return http::Response{}; });
  ASSERT_TRUE(closed.start());
  const std::string where = "ws://127.0.0.1:" + std::to_string(closed.port()) + "/x";
  closed.stop();
  auto outcome = connector_.connect(ws::ConnectRequest{where});
  ASSERT_FALSE(outcome);
  EXPECT_NE(outcome.error().message.find(where), std::string::npos) << outcome.error().message;
  EXPECT_FALSE(connector_.connect(ws::ConnectRequest{"ftp://x/y"}));
}

TEST(WebSocketLifetime, AnUpgradedSocketMayOutliveItsServer) {
  std::promise<std::shared_ptr<ws::WebSocket>> accepted;
  auto server = std::make_unique<http::Server>(http::ServerOptions{}, [&](const http::Request&) {
    return http::Response::acceptUpgrade([&](std::shared_ptr<ws::WebSocket> socket) { accepted.set_value(socket); });
  });
  ASSERT_TRUE(server->start());
  ws::Connector connector;
  auto outcome = connector.connect(ws::ConnectRequest{"ws://127.0.0.1:" + std::to_string(server->port()) + "/x"});
  ASSERT_TRUE(outcome && outcome->socket);
  auto held = accepted.get_future().get();
  server.reset();  // stopped and gone, its connection's socket still held (an agent's bridge)
  held->close(ws::kCloseGoingAway, "late");
  held.reset();  // must not touch a destroyed io_context
  SUCCEED();
}

TEST(UpgradeRequest, NeedsBothHeaders) {
  EXPECT_TRUE(ws::isUpgradeRequest({{"upgrade", "WebSocket"}, {"connection", "keep-alive, Upgrade"}}));
  EXPECT_FALSE(ws::isUpgradeRequest({{"upgrade", "websocket"}}));
  EXPECT_FALSE(ws::isUpgradeRequest({{"upgrade", "h2c"}, {"connection", "upgrade"}}));
}

}  // namespace
}  // namespace bai
