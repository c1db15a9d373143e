// libbai-client's interactive streams against a WebSocket server that checks requests
// with the manager's own verifier: signed upgrades, the targets of attach, exec and
// service connections, frames both ways, refusals, and `bai session exec` end to end.
#include <bai/client.hpp>
#include <bai/request_signing.hpp>

#include "auth/request_verifier.hpp"
#include "http_server.hpp"
#include "stream_frames.hpp"
#include "websocket.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <future>
#include <mutex>
#include <thread>

namespace bai::client {
namespace {

using Json = nlohmann::json;
using namespace std::chrono_literals;

constexpr const char* kAccessKey = "AKBAISTREAM00000001";
constexpr const char* kSecretKey = "s3cret-key-for-stream-tests";

// What the server's WebSocket does with each frame a client sends.
using Behaviour = std::function<void(ws::WebSocket& socket, const stream::Frame& frame)>;

// Echoes Stdin as Stdout, answers a Resize with its size, and an Eof with Exit 7.
void echoConsole(ws::WebSocket& socket, const stream::Frame& frame) {
  switch (frame.type) {
    case stream::FrameType::Stdin:
      socket.send(stream::encodeFrame(stream::FrameType::Stdout, frame.payload));
      break;
    case stream::FrameType::Resize: {
      const auto size = stream::parseResize(frame.payload);
      socket.send(stream::encodeFrame(stream::FrameType::Stdout,
                                      size ? std::to_string(size->rows) + "x" + std::to_string(size->cols) : "bad size"));
      break;
    }
    case stream::FrameType::Eof:
      socket.send(stream::encodeFrame(stream::FrameType::Exit, stream::exitPayload(7)));
      socket.close(ws::kCloseNormal, "");
      break;
    default:
      socket.close(ws::kCloseProtocolError, "unexpected frame");
  }
}

// A manager stand-in for streams: verifies every request as the manager does, answers
// plain GETs with `document`, a refusal when one is set, and otherwise accepts the
// upgrade and runs `behaviour` on each frame (`greeting` is sent first).
class StreamManager {
 public:
  StreamManager()
      : verifier_([](const std::string& key) -> std::optional<manager::KeyInfo> {
          if (key != kAccessKey) return std::nullopt;
          return manager::KeyInfo{kSecretKey, false, true};
        }),
        server_({"127.0.0.1", 0, 2, 1 << 20, "", ""}, [this](const http::Request& request) { return handle(request); }) {
    EXPECT_TRUE(server_.start().ok());
  }
  ~StreamManager() { server_.stop(); }

  Client client(const std::string& secret = kSecretKey) const {
    Config config;
    config.endpoint = "http://127.0.0.1:" + std::to_string(server_.port());
    config.accessKey = kAccessKey;
    config.secretKey = secret;
    return Client(config);
  }
  void refuse(int status, Json problem) {
    std::lock_guard<std::mutex> lock(mutex_);
    refusal_ = http::Response{status, "application/json", problem.dump(), {}};
  }
  void behave(Behaviour behaviour, std::vector<std::string> greeting = {}) {
    std::lock_guard<std::mutex> lock(mutex_);
    behaviour_ = std::move(behaviour);
    greeting_ = std::move(greeting);
  }
  std::vector<std::string> targets() {
    std::lock_guard<std::mutex> lock(mutex_);
    return targets_;
  }
  // The sizes of the messages the server received, in order.
  std::vector<std::size_t> messageSizes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return messageSizes_;
  }
  // What a plain GET of the session answers.
  void setDocument(std::string document) {
    std::lock_guard<std::mutex> lock(mutex_);
    document_ = std::move(document);
  }
  // What creating a session answers (by default the same document).
  void setCreated(std::string document) {
    std::lock_guard<std::mutex> lock(mutex_);
    created_ = std::move(document);
  }

 private:
  http::Response handle(const http::Request& request) {
    auto caller = verifier_.verify(request.method, request.target, request.headers, request.body);
    std::lock_guard<std::mutex> lock(mutex_);
    targets_.push_back(request.target);
    if (!caller) {
      return {401, "application/json", Json{{"type", caller.error().type}, {"title", "Unauthorized"}, {"detail", caller.error().detail}}.dump(), {}};
    }
    if (request.path.size() > 5 && request.path.substr(request.path.size() - 5) == "/logs") {
      return {200, "text/plain", "the " + request.query.at("stream") + " log\n", {}};
    }
    if (request.method == "POST") return {201, "application/json", created_.empty() ? document_ : created_, {}};
    if (!ws::isUpgradeRequest(request.headers)) return {200, "application/json", document_, {}};
    if (refusal_) return *refusal_;
    return http::Response::acceptUpgrade([this, behaviour = behaviour_, greeting = greeting_](std::shared_ptr<ws::WebSocket> socket) {
      std::weak_ptr<ws::WebSocket> weak = socket;
      for (const std::string& message : greeting) socket->send(message);
      socket->start(
          [this, weak, behaviour](std::string message) {
            auto open = weak.lock();
            if (!open) return;
            {
              std::lock_guard<std::mutex> lock(mutex_);
              messageSizes_.push_back(message.size());
            }
            if (auto frame = stream::decodeFrame(message)) behaviour(*open, *frame);
            open->readNext();
          },
          [](const ws::CloseInfo&) {});
    });
  }

  manager::RequestVerifier verifier_;
  std::mutex mutex_;
  std::string document_ = R"({"id":"s1","status":"RUNNING","stdin":true})";
  std::string created_;
  std::optional<http::Response> refusal_;
  Behaviour behaviour_ = echoConsole;
  std::vector<std::string> greeting_;
  std::vector<std::string> targets_;
  std::vector<std::size_t> messageSizes_;
  http::Server server_;
};

class SessionStreamTest : public ::testing::Test {
 protected:
  StreamManager manager_;
};

TEST_F(SessionStreamTest, AnAttachIsAnUpgradeSignedAsTheManagerVerifiesAndCarriesFramesBothWays) {
  auto stream = manager_.client().attachSession("s1", {24, 80});
  ASSERT_TRUE(stream.ok()) << stream.error().message();
  EXPECT_EQ(manager_.targets().back(), "/v1/sessions/s1/attach?rows=24&cols=80");

  ASSERT_TRUE(stream->sendStdin("echo $((6*7))\r"));
  StreamEvent event = stream->receive(5000ms);
  EXPECT_EQ(event.kind, StreamEvent::Kind::Stdout);
  EXPECT_EQ(event.data, "echo $((6*7))\r");
  ASSERT_TRUE(stream->resize({50, 132}));
  event = stream->receive(5000ms);
  EXPECT_EQ(event.data, "50x132");
  ASSERT_TRUE(stream->closeStdin());
  event = stream->receive(5000ms);
  EXPECT_EQ(event.kind, StreamEvent::Kind::Exit);
  EXPECT_EQ(event.exitCode, 7);
  EXPECT_EQ(stream->receive(5000ms).kind, StreamEvent::Kind::Closed) << "nothing follows the exit code";

  // A second upgrade is signed afresh: the verifier refuses a replayed nonce.
  auto again = manager_.client().attachSession("s1");
  ASSERT_TRUE(again.ok()) << again.error().message();
  EXPECT_EQ(manager_.targets().back(), "/v1/sessions/s1/attach") << "no size: none asked for";
}

TEST_F(SessionStreamTest, ABadSignatureIsRefusedAsAnyCallIs) {
  auto stream = manager_.client("not-the-secret").attachSession("s1");
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.error().status, 401);
  EXPECT_EQ(stream.error().type, "bad-signature");
}

TEST_F(SessionStreamTest, ExecCarriesItsCommandAsUrlEncodedJsonAndItsFlags) {
  const std::vector<std::string> command = {"sh", "-c", "echo a&b=c d; exit 3"};
  auto stream = manager_.client().execInSession("s1", {command, true, false, {24, 80}});
  ASSERT_TRUE(stream.ok()) << stream.error().message();
  const std::string target = manager_.targets().back();
  ASSERT_EQ(target.rfind("/v1/sessions/s1/exec?", 0), 0u) << target;
  const auto query = http::parseQuery(target.substr(target.find('?') + 1));
  EXPECT_EQ(Json::parse(query.at("command")), Json(command));
  EXPECT_EQ(query.at("tty"), "1");
  EXPECT_EQ(query.at("stdin"), "1") << "a tty implies stdin";
  EXPECT_EQ(query.at("rows"), "24");
  EXPECT_EQ(query.at("cols"), "80");

  ASSERT_TRUE(manager_.client().execInSession("s1", {{"true"}, false, false, {24, 80}}).ok());
  EXPECT_EQ(manager_.targets().back(), "/v1/sessions/s1/exec?command=%5B%22true%22%5D")
      << "no tty, no stdin, and no size without a tty";

  auto empty = manager_.client().execInSession("s1", {});
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().type, "invalid-request");
}

TEST_F(SessionStreamTest, AServiceConnectionHalfClosesAndLargeInputGoesInBoundedFrames) {
  manager_.behave([](ws::WebSocket& socket, const stream::Frame& frame) {
    if (frame.type == stream::FrameType::Eof) {
      socket.send(stream::encodeFrame(stream::FrameType::Eof, ""));
      socket.close(ws::kCloseNormal, "");
    }
  });
  auto stream = manager_.client().connectService("s1", "jupyter");
  ASSERT_TRUE(stream.ok()) << stream.error().message();
  EXPECT_EQ(manager_.targets().back(), "/v1/sessions/s1/services/jupyter/connect");
  const std::string bytes(200 * 1024 + 5, 'x');
  ASSERT_TRUE(stream->sendStdin(bytes));
  ASSERT_TRUE(stream->closeStdin());
  EXPECT_EQ(stream->receive(5000ms).kind, StreamEvent::Kind::Eof);
  EXPECT_EQ(stream->receive(5000ms).kind, StreamEvent::Kind::Closed);
  const auto sizes = manager_.messageSizes();
  ASSERT_EQ(sizes.size(), 5u) << "four Stdin frames and the Eof";
  std::size_t total = 0;
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    EXPECT_LE(sizes[i], 64u * 1024 + 1);
    total += sizes[i] - 1;
  }
  EXPECT_EQ(total, bytes.size());
}

TEST_F(SessionStreamTest, ARefusedUpgradeIsTheManagersErrorAndNoAnswerIsUnreachable) {
  manager_.refuse(404, {{"type", "no-such-service"}, {"title", "No such service"}, {"detail", "session s1 declares jupyter, not 'web'"}});
  auto stream = manager_.client().connectService("s1", "web");
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.error().status, 404);
  EXPECT_EQ(stream.error().type, "no-such-service");
  EXPECT_EQ(stream.error().detail, "session s1 declares jupyter, not 'web'");

  Config nowhere;
  nowhere.endpoint = "http://127.0.0.1:1";
  nowhere.accessKey = kAccessKey;
  nowhere.secretKey = kSecretKey;
  auto unreachable = Client(nowhere).attachSession("s1");
  ASSERT_FALSE(unreachable.ok());
  EXPECT_EQ(unreachable.error().status, 0);
  EXPECT_EQ(unreachable.error().type, "unreachable");
}

TEST_F(SessionStreamTest, AFrameTheClientDoesNotKnowEndsTheStreamWithAnError) {
  manager_.behave(echoConsole, {std::string("\x09") + "from the future"});
  auto stream = manager_.client().attachSession("s1");
  ASSERT_TRUE(stream.ok()) << stream.error().message();
  const StreamEvent event = stream->receive(5000ms);
  EXPECT_EQ(event.kind, StreamEvent::Kind::Error);
  EXPECT_NE(event.data.find("frame type 9"), std::string::npos) << event.data;
  EXPECT_EQ(stream->receive(5000ms).kind, StreamEvent::Kind::Closed);
  EXPECT_FALSE(stream->sendStdin("late")) << "the stream is closed";
}

// ---- `bai` over the stream ---------------------------------------------------------------

struct CliRun {
  int exitCode = -1;
  std::string out;
};

// Runs `bai ARGS` (a shell word list) against `manager`, with `input` (printf's format) on its stdin.
CliRun bai(const StreamManager& manager, const std::string& args, const std::string& input = "") {
  const char* cli = std::getenv("BAI_CLI");
  const std::string command = "printf '" + input + "' | BAI_CONFIG= BAI_ENDPOINT='" + manager.client().config().endpoint +
                              "' BAI_ACCESS_KEY=" + kAccessKey + " BAI_SECRET_KEY=" + kSecretKey + " '" + cli + "' " + args +
                              " 2>&1";
  CliRun run;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return run;
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) run.out.append(buffer, n);
  const int status = ::pclose(pipe);
  run.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return run;
}

TEST_F(SessionStreamTest, ExecAndRunForwardStdinWithItsEndAndExitWithTheCommandsCode) {
  if (std::getenv("BAI_CLI") == nullptr) GTEST_SKIP() << "BAI_CLI (the built bai) is not set: run through meson test";
  const CliRun run = bai(manager_, "session exec -i s1 -- cat", "hi\\n");
  EXPECT_EQ(run.exitCode, 7) << "the exec's own code: " << run.out;
  EXPECT_EQ(run.out, "hi\n") << "the bytes of stdin, echoed, and nothing else";

  const CliRun created = bai(manager_, "session run -i -- cat", "hello\\n");
  EXPECT_EQ(created.exitCode, 7) << "the session's own code: " << created.out;
  EXPECT_EQ(created.out, "hello\n");
  const auto targets = manager_.targets();
  ASSERT_GE(targets.size(), 2u);
  EXPECT_EQ(targets[targets.size() - 2], "/v1/sessions") << "created, then attached";
  EXPECT_EQ(targets.back(), "/v1/sessions/s1/attach") << "no size: stdin is not a terminal";

  manager_.refuse(409, {{"type", "session-not-running"}, {"title", "The session is not running"}, {"detail", "session s1 is TERMINATED"}});
  const CliRun refused = bai(manager_, "session exec s1 -- true");
  EXPECT_EQ(refused.exitCode, 1) << refused.out;
  EXPECT_NE(refused.out.find("session s1 is TERMINATED [session-not-running, HTTP 409]"), std::string::npos) << refused.out;
}

TEST_F(SessionStreamTest, ASessionThatEndedBeforeTheAttachHasItsLogsPrintedAndItsCode) {
  if (std::getenv("BAI_CLI") == nullptr) GTEST_SKIP() << "BAI_CLI (the built bai) is not set: run through meson test";
  manager_.setCreated(R"({"id":"s1","status":"RUNNING","stdin":true})");
  manager_.setDocument(R"({"id":"s1","status":"TERMINATED","exit_code":4,"stdin":true})");
  manager_.refuse(409, {{"type", "session-not-running"}, {"title", "The session is not running"}, {"detail", "session s1 is TERMINATED"}});
  const CliRun run = bai(manager_, "session run -i -- sh -c 'echo early; exit 4'");
  EXPECT_EQ(run.exitCode, 4) << run.out;
  EXPECT_NE(run.out.find("the stdout log\n"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("the stderr log\n"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("session-not-running"), std::string::npos) << "not an error: the session just ended first: " << run.out;
}

// Echoes a service's bytes and passes its half-close back.
void echoService(ws::WebSocket& socket, const stream::Frame& frame) {
  if (frame.type == stream::FrameType::Stdin) socket.send(stream::encodeFrame(stream::FrameType::Stdout, frame.payload));
  if (frame.type == stream::FrameType::Eof) {
    socket.send(stream::encodeFrame(stream::FrameType::Eof, ""));
    socket.close(ws::kCloseNormal, "");
  }
}

TEST_F(SessionStreamTest, AppTunnelsConcurrentConnectionsUntilTheSessionEnds) {
  const char* cli = std::getenv("BAI_CLI");
  if (cli == nullptr) GTEST_SKIP() << "BAI_CLI (the built bai) is not set: run through meson test";
  manager_.behave(echoService);
  const std::string command = "BAI_CONFIG= BAI_ENDPOINT='" + manager_.client().config().endpoint + "' BAI_ACCESS_KEY=" +
                              kAccessKey + " BAI_SECRET_KEY=" + kSecretKey + " '" + cli + "' session app s1 web 2>&1";
  FILE* app = ::popen(command.c_str(), "r");
  ASSERT_NE(app, nullptr);
  char line[256] = {};
  ASSERT_NE(std::fgets(line, sizeof line, app), nullptr);
  const std::string url(line);
  ASSERT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << "the first line is where it listens: " << url;
  const int port = std::stoi(url.substr(std::strlen("http://127.0.0.1:")));

  std::vector<std::future<bool>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::async(std::launch::async, [i, port] {
      const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_port = htons(static_cast<std::uint16_t>(port));
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return false;
      const std::string sent = "GET /" + std::to_string(i) + " HTTP/1.0\r\n\r\n" + std::string(100000 + i, 'a' + i % 26);
      std::thread writer([&] {
        for (std::size_t at = 0; at < sent.size();) {
          const ssize_t n = ::send(fd, sent.data() + at, sent.size() - at, MSG_NOSIGNAL);
          if (n <= 0) break;
          at += static_cast<std::size_t>(n);
        }
        ::shutdown(fd, SHUT_WR);
      });
      std::string received;
      char buffer[65536];
      for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) received.append(buffer, static_cast<std::size_t>(n));
      writer.join();
      ::close(fd);
      return received == sent;
    }));
  }
  for (auto& client : clients) EXPECT_TRUE(client.get()) << "each connection's bytes came back through its own stream";
  std::size_t connects = 0;
  for (const std::string& target : manager_.targets()) connects += target == "/v1/sessions/s1/services/web/connect";
  EXPECT_EQ(connects, 21u);  // the probe before listening (a refused service is said at once), then one each

  manager_.setDocument(R"({"id":"s1","status":"TERMINATED","exit_code":0})");
  std::string rest;
  for (std::size_t n; (n = std::fread(line, 1, sizeof line, app)) > 0;) rest.append(line, n);
  const int status = ::pclose(app);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 1) << rest;
  EXPECT_NE(rest.find("session s1 ended (TERMINATED); closed " + url.substr(0, url.size() - 1)), std::string::npos) << rest;
}

// Reads the terminal's output until it holds `expected` (at most 5 s); all of it read so far.
std::string readUntil(int controller, const std::string& expected, std::string& seen) {
  const auto deadline = std::chrono::steady_clock::now() + 5s;
  while (seen.find(expected) == std::string::npos && std::chrono::steady_clock::now() < deadline) {
    pollfd fd{controller, POLLIN, 0};
    if (::poll(&fd, 1, 100) <= 0) continue;
    char buffer[4096];
    const ssize_t n = ::read(controller, buffer, sizeof buffer);
    if (n <= 0) break;
    seen.append(buffer, static_cast<std::size_t>(n));
  }
  return seen;
}

TEST_F(SessionStreamTest, AttachOnATerminalIsRawFollowsTheWindowAndDetachesWithCtrlPCtrlQ) {
  const char* cli = std::getenv("BAI_CLI");
  if (cli == nullptr) GTEST_SKIP() << "BAI_CLI (the built bai) is not set: run through meson test";
  manager_.setDocument(R"({"id":"s1","status":"RUNNING","stdin":true,"tty":true})");
  manager_.behave(echoConsole, {stream::encodeFrame(stream::FrameType::Stdout, "$ ")});
  const std::string endpoint = manager_.client().config().endpoint;
  winsize size{};
  size.ws_row = 24;
  size.ws_col = 80;
  int controller = -1;
  const pid_t child = ::forkpty(&controller, nullptr, nullptr, &size);
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::setenv("BAI_CONFIG", "", 1);
    ::setenv("BAI_ENDPOINT", endpoint.c_str(), 1);
    ::setenv("BAI_ACCESS_KEY", kAccessKey, 1);
    ::setenv("BAI_SECRET_KEY", kSecretKey, 1);
    ::execl(cli, "bai", "session", "attach", "s1", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  std::string seen;
  readUntil(controller, "$ ", seen);
  ASSERT_NE(seen.find("$ "), std::string::npos) << "the session's prompt: " << seen;
  termios mode{};
  ASSERT_EQ(::tcgetattr(controller, &mode), 0);
  EXPECT_EQ(mode.c_lflag & (ICANON | ECHO | ISIG), 0u) << "the terminal is raw while attached";
  EXPECT_NE(manager_.targets().back().find("/attach?rows=24&cols=80"), std::string::npos) << manager_.targets().back();

  // Ctrl-C is a byte for the session (echoed back by it), not a signal for bai.
  ASSERT_EQ(::write(controller, "echo hi\r\x03", 9), 9);
  readUntil(controller, "echo hi\r\x03", seen);
  EXPECT_NE(seen.find("echo hi\r\x03"), std::string::npos) << seen;
  size.ws_row = 50;
  size.ws_col = 132;
  ASSERT_EQ(::ioctl(controller, TIOCSWINSZ, &size), 0);  // the kernel sends bai SIGWINCH
  readUntil(controller, "50x132", seen);
  EXPECT_NE(seen.find("50x132"), std::string::npos) << "the new size went to the session: " << seen;

  ASSERT_EQ(::write(controller, "\x10\x11", 2), 2);
  readUntil(controller, "bai session attach s1", seen);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << seen;
  EXPECT_NE(seen.find("detached; session s1 keeps running"), std::string::npos) << seen;
  ASSERT_EQ(::tcgetattr(controller, &mode), 0);
  EXPECT_NE(mode.c_lflag & ICANON, 0u) << "the terminal was restored";
  ::close(controller);
}

}  // namespace
}  // namespace bai::client
