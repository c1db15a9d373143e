// Interactive streams at the agent: the real bai-agent and bai-session-shim, a session's
// console, execs and service tunnels opened as the manager opens them (a WebSocket with
// the cluster token), and every refusal before the upgrade.
#include "daemon_process.hpp"
#include "http_client.hpp"
#include "stream_frames.hpp"
#include "wait.hpp"
#include "websocket.hpp"

#include <bai/protocol.hpp>

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <random>
#include <thread>

namespace bai::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using stream::FrameType;

const protocol::SessionOwner kTenant{200001, 200001, "tenant-a"};

// A query value, percent-encoded.
std::string queryValue(const std::string& text) {
  char* escaped = curl_easy_escape(nullptr, text.c_str(), static_cast<int>(text.size()));
  std::string out = escaped;
  curl_free(escaped);
  return out;
}

// What a client got from a stream until it ended.
struct Received {
  std::string stdoutText, stderrText;
  std::optional<int> exitCode;
  std::string error;
  bool eof = false;
};

// A client of one stream: frames out, frames in.
class StreamClient {
 public:
  explicit StreamClient(std::shared_ptr<ws::WebSocket> socket) : socket_(std::move(socket)) {}

  bool send(FrameType type, std::string_view payload = {}) { return socket_.send(stream::encodeFrame(type, payload)); }
  bool sendStdin(std::string_view text) { return send(FrameType::Stdin, text); }

  // Reads frames until `done` holds for what was received, or the stream ends.
  const Received& readUntil(const std::function<bool(const Received&)>& done, std::chrono::seconds limit = 20s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done(received_) && std::chrono::steady_clock::now() < deadline) {
      auto message = socket_.receive(200ms);
      if (!message) {
        if (socket_.closed()) break;
        continue;
      }
      auto frame = stream::decodeFrame(*message);
      if (!frame) continue;
      switch (frame->type) {
        case FrameType::Stdout: received_.stdoutText += frame->payload; break;
        case FrameType::Stderr: received_.stderrText += frame->payload; break;
        case FrameType::Exit: received_.exitCode = stream::parseExit(frame->payload); break;
        case FrameType::Error: received_.error = frame->payload; break;
        case FrameType::Eof: received_.eof = true; break;
        default: break;
      }
    }
    return received_;
  }
  const Received& readToEnd(std::chrono::seconds limit = 20s) {
    return readUntil([](const Received&) { return false; }, limit);
  }
  bool outputHas(const std::string& text, std::chrono::seconds limit = 20s) {
    return readUntil([&](const Received& r) { return r.stdoutText.find(text) != std::string::npos; }, limit)
               .stdoutText.find(text) != std::string::npos;
  }
  ws::BlockingWebSocket& socket() { return socket_; }

 private:
  ws::BlockingWebSocket socket_;
  Received received_;
};

class InteractiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "sessions run as their owners' uids: the agent must run as root";
    for (const char* name : {"BAI_AGENT", "BAI_SESSION_SHIM", "BAI_CPU_PLUGIN_DIR", "BAI_MOCK_PLUGIN_DIR", "BAI_MOCK_CONFIG_DIR"}) {
      if (env(name).empty()) GTEST_SKIP() << name << " is not set";
    }
    static int tests = 0;
    dir_ = fs::temp_directory_path() / ("bai-it-" + std::to_string(::getpid()) + "-" + std::to_string(++tests));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream(dir_ / "token") << token_ << "\n";
    ::chmod((dir_ / "token").c_str(), 0600);
    std::ofstream(dir_ / "agent.toml")
        << agentToml("interactive-agent", "http://127.0.0.1:9", dir_ / "token", dir_, 60, "mock-4xa100.toml")
        << "[interactive]\nmax-connections-per-session = " << maxConnections() << "\nmax-frame-bytes = \"256k\"\n"
        << "service-port-range = \"" << kPortBase << "-" << kPortBase + 99 << "\"\n";
    ASSERT_TRUE(startAgent()) << readFile(dir_ / "agent.log");
  }

  bool startAgent() {
    fs::remove(dir_ / "ready");
    agent_ = spawnLogged({env("BAI_AGENT"), "--config", (dir_ / "agent.toml").string(), "--ready-file",
                          (dir_ / "ready").string()},
                         dir_ / "agent.log", dir_ / "agent.log");
    if (!eventually([&] { return fs::exists(dir_ / "ready") || ::waitpid(agent_, nullptr, WNOHANG) == agent_; }) ||
        !fs::exists(dir_ / "ready")) {
      return false;
    }
    address_ = readFile(dir_ / "ready");
    address_.erase(address_.find_last_not_of("\n") + 1);
    client_ = std::make_unique<HttpClient>("http://" + address_, token_);
    return true;
  }

  void TearDown() override {
    if (client_) {
      const auto listed = nlohmann::json::parse(client_->get("/v1/sessions").body, nullptr, false);
      if (listed.is_object()) {
        for (const auto& info : listed["sessions"]) {
          if (info["state"] == "running") client_->del("/v1/sessions/" + info["id"].get<std::string>());
        }
        for (const auto& info : listed["sessions"]) waitForEnd(info["id"]);
      }
    }
    if (agent_ > 0) {
      ::kill(agent_, SIGTERM);
      ::waitpid(agent_, nullptr, 0);
    }
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  void create(const std::string& id, std::vector<std::string> command, bool tty, bool openStdin,
              std::vector<protocol::ServicePort> services = {}, std::map<std::string, std::string> env = {}) {
    protocol::CreateSessionRequest request{id, std::move(command), std::move(env), {{SlotName::of("cpu"), 1}}, kTenant};
    request.tty = tty;
    request.openStdin = openStdin;
    request.servicePorts = std::move(services);
    auto reply = client_->post("/v1/sessions", request.toJson());
    ASSERT_EQ(reply.status, 201) << reply.body;
    ASSERT_TRUE(eventually([&] { return state(id) == protocol::SessionState::Running; })) << client_->get("/v1/sessions/" + id).body;
  }

  protocol::SessionState state(const std::string& id) {
    auto info = protocol::SessionInfo::fromJson(client_->get("/v1/sessions/" + id).body);
    return info ? info->state : protocol::SessionState::Pending;
  }

  protocol::SessionInfo waitForEnd(const std::string& id) {
    protocol::SessionInfo info;
    eventually([&] {
      auto parsed = protocol::SessionInfo::fromJson(client_->get("/v1/sessions/" + id).body);
      if (!parsed) return false;
      info = *parsed;
      return info.state != protocol::SessionState::Running && info.state != protocol::SessionState::Preparing;
    }, 20s);
    return info;
  }

  // Opens a stream as the manager does; the refusal, if any, in `declined`.
  ws::ConnectOutcome open(const std::string& target, bool withToken = true) {
    ws::ConnectRequest request{"ws://" + address_ + target};
    if (withToken) request.headers["Authorization"] = "Bearer " + token_;
    auto outcome = connector_.connect(request);
    EXPECT_TRUE(outcome) << (outcome ? "" : outcome.error().message);
    return outcome ? *outcome : ws::ConnectOutcome{};
  }
  std::unique_ptr<StreamClient> stream(const std::string& target) {
    auto outcome = open(target);
    EXPECT_TRUE(outcome.socket) << (outcome.declined ? outcome.declined->body : "no answer");
    return outcome.socket ? std::make_unique<StreamClient>(outcome.socket) : nullptr;
  }

  virtual int maxConnections() const { return 24; }

  static constexpr int kPortBase = 31200;
  fs::path dir_;
  std::string token_ = "interactive-token-0123456789";
  std::string address_;
  pid_t agent_ = 0;
  std::unique_ptr<HttpClient> client_;
  ws::Connector connector_;
};

TEST_F(InteractiveTest, ATerminalRunsAShellSeesResizesAndInterruptsAndEndsWithItsExitCode) {
  create("tty", {"sh"}, true, true);
  auto console = stream("/v1/sessions/tty/attach?rows=24&cols=80");
  ASSERT_TRUE(console);
  console->sendStdin("echo $((6*7))\n");
  EXPECT_TRUE(console->outputHas("42")) << console->readToEnd(1s).stdoutText;
  console->send(FrameType::Resize, stream::resizePayload({50, 132}));
  console->sendStdin("stty size\n");
  EXPECT_TRUE(console->outputHas("50 132"));
  console->sendStdin("sleep 30; echo slept\n");
  std::this_thread::sleep_for(300ms);
  console->sendStdin("\x03");  // ^C, as a raw terminal sends it
  console->sendStdin("echo after-interrupt\n");
  EXPECT_TRUE(console->outputHas("after-interrupt", 10s));
  EXPECT_EQ(console->readToEnd(1s).stdoutText.find("\nslept"), std::string::npos);  // only the echo of the line
  console->sendStdin("exit 3\n");
  const Received& end = console->readToEnd();
  EXPECT_EQ(end.exitCode, 3) << end.error;
  EXPECT_EQ(waitForEnd("tty").exitCode, 3);
}

TEST_F(InteractiveTest, StdinStreamsMegabytesAndItsEndToTheCommand) {
  create("pipe", {"sha256sum"}, false, true);
  std::string data(8u << 20, '\0');
  std::mt19937_64 random(7);
  for (auto& byte : data) byte = static_cast<char>(random());
  const fs::path local = dir_ / "data";
  std::ofstream(local, std::ios::binary) << data;
  std::string expected(64, '\0');
  FILE* sum = ::popen(("sha256sum " + local.string()).c_str(), "r");
  ASSERT_NE(sum, nullptr);
  ASSERT_EQ(std::fread(expected.data(), 1, 64, sum), 64u);
  ::pclose(sum);

  auto console = stream("/v1/sessions/pipe/attach");
  ASSERT_TRUE(console);
  for (std::size_t offset = 0; offset < data.size(); offset += 64 * 1024) {
    ASSERT_TRUE(console->sendStdin(std::string_view(data).substr(offset, 64 * 1024)));
  }
  console->send(FrameType::Eof);
  const Received& end = console->readToEnd();
  EXPECT_EQ(end.stdoutText.substr(0, 64), expected);
  EXPECT_EQ(end.exitCode, 0) << end.error << end.stderrText;
}

TEST_F(InteractiveTest, AClientThatDropsLeavesTheSessionForTheNextAttach) {
  create("again", {"sh"}, true, true);
  {
    ws::Connector other;
    auto first = other.connect(ws::ConnectRequest{"ws://" + address_ + "/v1/sessions/again/attach",
                                                  {{"Authorization", "Bearer " + token_}}});
    ASSERT_TRUE(first && first->socket) << (first && first->declined ? first->declined->body : "");
    StreamClient console(first->socket);
    console.sendStdin("export MARK=still-here\n");
    EXPECT_TRUE(console.outputHas("$"));
  }  // the connection drops without a close handshake
  EXPECT_EQ(state("again"), protocol::SessionState::Running);
  auto console = stream("/v1/sessions/again/attach");
  ASSERT_TRUE(console);
  console->sendStdin("echo $MARK\n");
  EXPECT_TRUE(console->outputHas("still-here"));
}

TEST_F(InteractiveTest, ExecRunsInTheSessionAsItsOwnerWithItsEnvAndReturnsItsExitCode) {
  create("ex", {"sh", "-c", "echo made > /home/work/file; sleep 60"}, false, false, {}, {{"FOO", "bar"}});
  ASSERT_TRUE(eventually([&] { return fs::exists(dir_ / "state/sessions/ex/work/file"); }));
  const std::string command = queryValue(R"(["sh","-c","echo $FOO; id -u; pwd; cat file; exit 7"])");
  auto exec = stream("/v1/sessions/ex/exec?command=" + command);
  ASSERT_TRUE(exec);
  const Received& end = exec->readToEnd();
  EXPECT_EQ(end.stdoutText, "bar\n200001\n/home/work\nmade\n");
  EXPECT_EQ(end.exitCode, 7) << end.error;
  EXPECT_EQ(state("ex"), protocol::SessionState::Running);  // the session goes on
}

TEST_F(InteractiveTest, AServiceIsReachedThroughTwentyConcurrentTunnels) {
  const std::string busybox = "/bin/busybox";
  if (!fs::exists(busybox)) GTEST_SKIP() << "busybox-static is not installed";
  create("web", {"sh", "-c", "echo hello-from-the-session > /home/work/index.html; exec " + busybox +
                                 " httpd -f -p 127.0.0.1:$BAI_SERVICE_PORT_WEB -h /home/work"},
         false, false, {{"web", "http", 8080}});
  auto info = protocol::SessionInfo::fromJson(client_->get("/v1/sessions/web").body);
  ASSERT_TRUE(info && info->services.size() == 1);
  EXPECT_GE(info->services[0].port, kPortBase);  // a port of the agent's range, not the declared one
  EXPECT_LT(info->services[0].port, kPortBase + 100);

  std::vector<std::thread> clients;
  std::atomic<int> served{0};
  for (int i = 0; i < 20; ++i) {
    clients.emplace_back([&] {
      std::unique_ptr<StreamClient> tunnel;
      // httpd may still be starting: the first connections can be refused (502).
      eventually([&] {
        auto outcome = open("/v1/sessions/web/services/web/connect");
        if (!outcome.socket) return false;
        tunnel = std::make_unique<StreamClient>(outcome.socket);
        return true;
      });
      if (!tunnel) return;
      tunnel->sendStdin("GET /index.html HTTP/1.0\r\n\r\n");
      const Received& reply = tunnel->readUntil([](const Received& r) { return r.eof; });
      if (reply.stdoutText.find("200 OK") != std::string::npos &&
          reply.stdoutText.find("hello-from-the-session") != std::string::npos) {
        ++served;
      }
    });
  }
  for (auto& client : clients) client.join();
  EXPECT_EQ(served.load(), 20);

  auto undeclared = open("/v1/sessions/web/services/jupyter/connect");
  ASSERT_TRUE(undeclared.declined);
  EXPECT_EQ(undeclared.declined->status, 404);
  EXPECT_NE(undeclared.declined->body.find("it has: web"), std::string::npos) << undeclared.declined->body;

  client_->del("/v1/sessions/web");
  waitForEnd("web");
  auto ended = open("/v1/sessions/web/services/web/connect");
  ASSERT_TRUE(ended.declined);
  EXPECT_EQ(ended.declined->status, 409);
}

TEST_F(InteractiveTest, ALongSessionIdPastAUnixSocketsPathLimitStillHasItsConsole) {
  const std::string id(100, 'l');  // the console socket's path is then well over 108 bytes
  create(id, {"sh"}, false, true);
  auto console = stream("/v1/sessions/" + id + "/attach");
  ASSERT_TRUE(console);
  console->sendStdin("echo long-$((1+1))\n");
  EXPECT_TRUE(console->outputHas("long-2"));
}

TEST_F(InteractiveTest, RefusalsComeBeforeTheUpgradeAndNameWhatIsWrong) {
  create("plain", {"sleep", "60"}, false, false);
  auto unauthorised = open("/v1/sessions/plain/attach", false);
  ASSERT_TRUE(unauthorised.declined);
  EXPECT_EQ(unauthorised.declined->status, 401);
  auto notInteractive = open("/v1/sessions/plain/attach");
  ASSERT_TRUE(notInteractive.declined);
  EXPECT_EQ(notInteractive.declined->status, 409);
  EXPECT_NE(notInteractive.declined->body.find("not-interactive"), std::string::npos);
  auto unknown = open("/v1/sessions/nobody/attach");
  ASSERT_TRUE(unknown.declined);
  EXPECT_EQ(unknown.declined->status, 404);
  auto noCommand = open("/v1/sessions/plain/exec?command=%5B%5D");
  ASSERT_TRUE(noCommand.declined);
  EXPECT_EQ(noCommand.declined->status, 400);
  auto badSize = open("/v1/sessions/plain/exec?command=%5B%22true%22%5D&rows=0&cols=80");
  ASSERT_TRUE(badSize.declined);
  EXPECT_EQ(badSize.declined->status, 400);
  HttpReply plainGet = client_->get("/v1/sessions/plain/attach");
  EXPECT_EQ(plainGet.status, 426) << plainGet.body;
}

TEST_F(InteractiveTest, AFrameOverTheLimitClosesThatStreamOnly) {
  create("big", {"cat"}, false, true);
  auto console = stream("/v1/sessions/big/attach");
  ASSERT_TRUE(console);
  console->sendStdin(std::string(300 * 1024, 'x'));  // over max-frame-bytes (256k)
  console->readToEnd(5s);
  EXPECT_TRUE(console->socket().closed());
  // 1009 when the close frame arrives; the agent may reset the connection before the
  // rest of the oversized message is read, and then the client sees it end abnormally.
  const auto code = console->socket().closeInfo().code;
  EXPECT_TRUE(code == ws::kCloseTooBig || code == ws::kCloseAbnormal) << code;
  EXPECT_EQ(state("big"), protocol::SessionState::Running);
  auto again = stream("/v1/sessions/big/attach");
  ASSERT_TRUE(again);
  again->sendStdin("small\n");
  EXPECT_TRUE(again->outputHas("small"));
}

TEST_F(InteractiveTest, AnAgentStoppingWithAnAttachedTerminalClosesItAndStopsPromptly) {
  create("stop", {"sh"}, true, true);
  auto console = stream("/v1/sessions/stop/attach");
  ASSERT_TRUE(console);
  console->sendStdin("echo ready\n");
  ASSERT_TRUE(console->outputHas("ready"));
  const auto start = std::chrono::steady_clock::now();
  ::kill(agent_, SIGTERM);
  ::waitpid(agent_, nullptr, 0);
  agent_ = 0;
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s) << "an open stream held the agent's stop";
  console->readToEnd(5s);
  EXPECT_TRUE(console->socket().closed());
  EXPECT_EQ(console->socket().closeInfo().code, ws::kCloseGoingAway) << console->socket().closeInfo().reason;
  // The session outlived its agent: the next one adopts it, and the teardown ends it.
  ASSERT_TRUE(startAgent()) << readFile(dir_ / "agent.log");
  EXPECT_TRUE(eventually([&] { return state("stop") == protocol::SessionState::Running; }));
}

class FewStreamsTest : public InteractiveTest {
 protected:
  int maxConnections() const override { return 3; }
};

TEST_F(FewStreamsTest, ASessionHasAtMostItsLimitOfStreams) {
  create("many", {"sleep", "60"}, false, false);
  std::vector<std::unique_ptr<StreamClient>> open3;
  const std::string exec = "/v1/sessions/many/exec?command=" + queryValue(R"(["sleep","30"])");
  for (int i = 0; i < 3; ++i) {
    auto stream = this->stream(exec);
    ASSERT_TRUE(stream) << i;
    open3.push_back(std::move(stream));
  }
  auto refused = open(exec);
  ASSERT_TRUE(refused.declined);
  EXPECT_EQ(refused.declined->status, 429);
  EXPECT_NE(refused.declined->body.find("max-connections-per-session"), std::string::npos);
  open3.pop_back();  // one ends: its place is free again
  EXPECT_TRUE(eventually([&] { return open(exec).socket != nullptr; }));
}

}  // namespace
}  // namespace bai::testing
