// The agent's parts of interactive streams that need no daemon: the bounded frame queue,
// a container's console (replay, take-over, the end), the service port pool and the
// per-session limit of streams.
#include "agent/container_console.hpp"
#include "agent/service_ports.hpp"
#include "agent/session_runtime.hpp"
#include "agent/stream_bridge.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>

namespace bai::core {
namespace {

using namespace std::chrono_literals;
using stream::FrameType;

TEST(FrameQueue, APushWaitsWhileTheQueueIsFullAndPopDrainsAfterClose) {
  FrameQueue queue(10);
  ASSERT_TRUE(queue.push({FrameType::Stdout, "0123456789"}));
  std::atomic<bool> pushed{false};
  std::thread producer([&] {
    queue.push({FrameType::Stdout, "more"});
    pushed = true;
  });
  std::this_thread::sleep_for(100ms);
  EXPECT_FALSE(pushed) << "a full queue must hold its producer back";
  EXPECT_EQ(queue.pop()->payload, "0123456789");
  producer.join();
  EXPECT_TRUE(pushed);
  queue.close();
  EXPECT_EQ(queue.pop()->payload, "more");
  EXPECT_EQ(queue.pop(), std::nullopt);
  EXPECT_FALSE(queue.push({FrameType::Stdout, "late"}));
}

TEST(ContainerConsole, OutputBeforeTheFirstAttachIsReplayedWithinItsBound) {
  auto console = std::make_shared<ContainerConsole>(8, nullptr);
  console->output(1, "dropped-");
  console->output(1, "kept");
  console->output(2, "err");
  auto client = console->attach(std::nullopt);
  ASSERT_TRUE(client) << client.error().message;
  auto first = (*client)->read();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->payload, "kept");
  auto second = (*client)->read();
  EXPECT_EQ(second->type, FrameType::Stderr);
  console->output(1, "live");
  EXPECT_EQ((*client)->read()->payload, "live");
}

TEST(ContainerConsole, ANewerAttachTakesOverAndTheEndReachesTheAttachedClient) {
  auto console = std::make_shared<ContainerConsole>(1024, nullptr);
  auto older = console->attach(std::nullopt);
  auto newer = console->attach(std::nullopt);
  ASSERT_TRUE(older && newer);
  auto told = (*older)->read();
  ASSERT_TRUE(told);
  EXPECT_EQ(told->type, FrameType::Error);
  EXPECT_NE(told->payload.find("another client attached"), std::string::npos);
  EXPECT_EQ((*older)->read(), std::nullopt);
  console->output(1, "bye");
  console->ended(3, "");
  EXPECT_EQ((*newer)->read()->payload, "bye");
  auto exit = (*newer)->read();
  ASSERT_TRUE(exit);
  EXPECT_EQ(exit->type, FrameType::Exit);
  EXPECT_EQ(stream::parseExit(exit->payload), 3);
  EXPECT_EQ((*newer)->read(), std::nullopt);
  EXPECT_FALSE(console->attach(std::nullopt)) << "an ended session has no console";
}

TEST(ContainerConsole, ResizesGoToTheEngineAndBadOnesAreRefused) {
  std::vector<std::pair<int, int>> sizes;
  auto console = std::make_shared<ContainerConsole>(
      1024, [&](stream::TerminalSize size) -> Result<void> {
        sizes.emplace_back(size.rows, size.cols);
        return {};
      });
  auto client = console->attach(stream::TerminalSize{30, 100});
  ASSERT_TRUE(client);
  EXPECT_TRUE((*client)->write({FrameType::Resize, stream::resizePayload({40, 120})}));
  EXPECT_FALSE((*client)->write({FrameType::Resize, "xx"}));
  EXPECT_EQ(sizes, (std::vector<std::pair<int, int>>{{30, 100}, {40, 120}}));
  EXPECT_FALSE((*client)->write({FrameType::Stdin, "x"})) << "no stdin attached yet";
}

TEST(ServicePortPool, HandsOutFreePortsOnceAndSaysWhenTheRangeIsSpent) {
  // A port of the range that something else listens on is skipped.
  const int busy = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(0);
  ASSERT_EQ(::bind(busy, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  socklen_t length = sizeof address;
  ::getsockname(busy, reinterpret_cast<sockaddr*>(&address), &length);
  const auto busyPort = ntohs(address.sin_port);
  ::listen(busy, 1);
  const auto first = static_cast<std::uint16_t>(busyPort > 65000 ? busyPort - 2 : busyPort);
  ServicePortPool pool(first, static_cast<std::uint16_t>(first + 2));
  auto two = pool.take(2);
  ASSERT_TRUE(two) << two.error().message;
  EXPECT_EQ(std::count(two->begin(), two->end(), busyPort), 0);
  EXPECT_NE((*two)[0], (*two)[1]);
  auto none = pool.take(1);
  ASSERT_FALSE(none);
  EXPECT_NE(none.error().message.find("service-port-range " + std::to_string(first)), std::string::npos);
  pool.giveBack({(*two)[0]});
  auto again = pool.take(1);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->front(), (*two)[0]);
  ::close(busy);
}

TEST(Services, AnUnknownNameIsNotFoundNamingThoseThereAre) {
  const std::vector<protocol::ServicePort> services = {{"jupyter", "http", 8888}, {"ssh", "tcp", 22}};
  EXPECT_EQ(findService(services, "s1", "ssh")->port, 22);
  auto missing = findService(services, "s1", "tensorboard");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
  EXPECT_NE(missing.error().message.find("it has: jupyter, ssh"), std::string::npos) << missing.error().message;
  EXPECT_NE(findService({}, "s1", "x").error().message.find("declares none"), std::string::npos);
}

TEST(StreamBridges, ASessionGetsAtMostItsLimitAndAPlaceComesBackWhenDropped) {
  StreamBridges bridges(2);
  auto a = bridges.reserve("s1");
  auto b = bridges.reserve("s1");
  ASSERT_TRUE(a && b);
  auto c = bridges.reserve("s1");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().code, ErrorCode::OutOfRange);
  EXPECT_TRUE(bridges.reserve("s2")) << "the limit is per session";
  EXPECT_EQ(bridges.open("s1"), 2u);
  { auto dropped = std::move(*a); }
  EXPECT_EQ(bridges.open("s1"), 1u);
  EXPECT_TRUE(bridges.reserve("s1"));
}

}  // namespace
}  // namespace bai::core
