// An interactive session's console: bai-session-shim run on its own with "console" in
// spec.json, driven through ShimConsoleConnection (the agent's client) or a raw socket.
// Each test runs the real shim binary; sandboxed ones need root, as sandbox_test does.
#include "runtime_test_support.hpp"

#include "runtime/console_protocol.hpp"
#include "runtime/session_files.hpp"
#include "runtime/shim_console.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <fcntl.h>
#include <random>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

extern char** environ;

namespace bai::test {
namespace {

using nlohmann::json;
using stream::Frame;
using stream::FrameType;
namespace files = core::session_files;
using namespace std::chrono_literals;

constexpr uid_t kSessionUid = 65534;
constexpr gid_t kSessionGid = 65534;

// Reads a connection's frames on a thread of its own, so that a test can wait for output
// with a deadline while it writes.
class FrameReader {
 public:
  explicit FrameReader(core::ShimConsoleConnection& connection)
      : connection_(connection), thread_([this] { run(); }) {}
  ~FrameReader() {
    connection_.shutdown();
    thread_.join();
  }
  FrameReader(const FrameReader&) = delete;
  FrameReader& operator=(const FrameReader&) = delete;

  // Whether the output (stdout and stderr frames, in order) came to contain `text`.
  bool waitForOutput(const std::string& text, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, timeout, [&] { return output_.find(text) != std::string::npos; });
  }
  // The frame that ended the stream (Exit or Error), once the shim closed it.
  std::optional<Frame> waitForEnd(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    if (!changed_.wait_for(lock, timeout, [&] { return closed_; })) return std::nullopt;
    return last_;
  }
  std::string output() {
    std::lock_guard lock(mutex_);
    return output_;
  }
  std::string stdoutOnly() {
    std::lock_guard lock(mutex_);
    return stdout_;
  }
  std::string readError() {
    std::lock_guard lock(mutex_);
    return readError_;
  }

 private:
  void run() {
    for (;;) {
      Result<std::optional<Frame>> frame = connection_.read();
      std::lock_guard lock(mutex_);
      if (!frame.ok() || !frame->has_value()) {
        if (!frame.ok()) readError_ = frame.error().message;
        closed_ = true;
        changed_.notify_all();
        return;
      }
      const Frame& got = **frame;
      if (got.type == FrameType::Stdout || got.type == FrameType::Stderr) output_ += got.payload;
      if (got.type == FrameType::Stdout) stdout_ += got.payload;
      last_ = got;
      changed_.notify_all();
    }
  }

  core::ShimConsoleConnection& connection_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::string output_;
  std::string stdout_;
  std::optional<Frame> last_;
  std::string readError_;
  bool closed_ = false;
  std::thread thread_;
};

Frame stdinFrame(std::string text) { return Frame{FrameType::Stdin, std::move(text)}; }

std::string sha256Of(const std::filesystem::path& file) {
  std::string command = "sha256sum " + file.string();
  FILE* pipe = ::popen(command.c_str(), "r");
  char hex[65] = {};
  if (pipe == nullptr || std::fread(hex, 1, 64, pipe) != 64) hex[0] = '\0';
  if (pipe != nullptr) ::pclose(pipe);
  return hex;
}

class ShimConsoleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    session_ = temp_.path() / "session";
    work_ = temp_.path() / "work";
    std::filesystem::create_directory(session_);
    std::filesystem::create_directory(work_);
    // The session's user reaches its work dir; only the shim reaches the session dir.
    ASSERT_EQ(::chmod(temp_.path().c_str(), 0755), 0);
    if (::geteuid() == 0) {
      ASSERT_EQ(::chown(work_.c_str(), kSessionUid, kSessionGid), 0);
    }
  }
  void TearDown() override {
    if (shim_ > 0) {
      ::kill(shim_, SIGKILL);
      ::waitpid(shim_, nullptr, 0);
    }
  }

  const std::filesystem::path& session() const { return session_; }

  json consoleSpec(std::vector<std::string> command, bool tty) const {
    return {{"command", std::move(command)},
            {"env", {{"PATH", kSessionPath}, {"SESSION_MARK", "from-the-session"}}},
            {"stdout", "stdout.log"},
            {"stderr", "stderr.log"},
            {"cwd", work_.string()},
            {"console", {{"tty", tty}, {"rows", 24}, {"cols", 80}}}};
  }
  json sandboxedSpec(std::vector<std::string> command, bool tty) const {
    json spec = consoleSpec(std::move(command), tty);
    spec.erase("cwd");
    spec["run_as"] = {{"uid", kSessionUid}, {"gid", kSessionGid}};
    spec["sandbox"] = {{"work_dir", work_.string()}};
    return spec;
  }

  // Starts the shim on `spec` and waits for its socket.
  void start(const json& spec) {
    ASSERT_TRUE(core::writeFileAtomically(session_ / "spec.json", spec.dump()).ok());
    std::string program = shimPath().string();
    std::string sessionArg = session_.string();
    std::vector<char*> argv{program.data(), sessionArg.data(), nullptr};
    int logFd = ::open((session_ / "shim.log").c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, logFd, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions, logFd, STDERR_FILENO);
    posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
    ASSERT_EQ(::posix_spawn(&shim_, program.c_str(), &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    ::close(logFd);
    ASSERT_TRUE(waitUntil([&] { return std::filesystem::exists(session_ / "command.pid"); }))
        << readText(session_ / "shim.log");
  }

  // Waits for the shim to end; exit.json.
  json waitForShim() {
    int status = 0;
    EXPECT_EQ(::waitpid(shim_, &status, 0), shim_);
    shim_ = -1;
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << readText(session_ / "shim.log");
    return json::parse(readText(session_ / "exit.json"));
  }
  bool shimRunning() const { return shim_ > 0 && ::waitpid(shim_, nullptr, WNOHANG) == 0; }

  std::unique_ptr<core::ShimConsoleConnection> attach(std::optional<stream::TerminalSize> size = std::nullopt) {
    Result<std::unique_ptr<core::ShimConsoleConnection>> connection = core::ShimConsoleConnection::attach(session_, size);
    EXPECT_TRUE(connection.ok()) << connection.error().message;
    return connection.ok() ? std::move(connection).value() : nullptr;
  }
  std::unique_ptr<core::ShimConsoleConnection> exec(core::ShimExecRequest request) {
    Result<std::unique_ptr<core::ShimConsoleConnection>> connection = core::ShimConsoleConnection::exec(session_, request);
    EXPECT_TRUE(connection.ok()) << connection.error().message;
    return connection.ok() ? std::move(connection).value() : nullptr;
  }
  static void send(core::ShimConsoleConnection& connection, const Frame& frame) {
    Result<void> sent = connection.write(frame);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
  }

  std::string stdoutLog() const { return readText(session_ / "stdout.log"); }

 private:
  TempDir temp_{"/var/tmp"};  // a sandbox's /tmp is private
  std::filesystem::path session_;
  std::filesystem::path work_;
  pid_t shim_ = -1;
};

void expectExit(FrameReader& reader, int code) {
  std::optional<Frame> end = reader.waitForEnd();
  ASSERT_TRUE(end.has_value()) << "no end of stream; output: " << reader.output();
  EXPECT_EQ(end->type, FrameType::Exit) << end->payload;
  EXPECT_EQ(stream::parseExit(end->payload), code) << end->payload;
}

TEST_F(ShimConsoleTest, ATtyShellAnswersOverTheConsoleAndItsExitCodeComesBack) {
  start(consoleSpec({"sh"}, true));
  auto console = attach();
  ASSERT_TRUE(console);
  FrameReader reader(*console);
  send(*console, stdinFrame("echo $((6*7))\n"));
  EXPECT_TRUE(reader.waitForOutput("42\r\n")) << reader.output();  // the typed line shows $((6*7))
  send(*console, stdinFrame("exit 3\n"));
  expectExit(reader, 3);
  json exit = waitForShim();
  EXPECT_EQ(exit["exit_code"], 3);
  EXPECT_NE(stdoutLog().find("42\r\n"), std::string::npos) << "the log has the tty's output too: " << stdoutLog();
  EXPECT_FALSE(std::filesystem::exists(session() / core::kConsoleSocketName)) << "the socket goes with the shim";
}

TEST_F(ShimConsoleTest, ATerminalResizeIsSeenByStty) {
  start(consoleSpec({"sh"}, true));
  auto console = attach(stream::TerminalSize{30, 90});
  ASSERT_TRUE(console);
  FrameReader reader(*console);
  send(*console, stdinFrame("stty size\n"));
  EXPECT_TRUE(reader.waitForOutput("30 90")) << reader.output();
  send(*console, Frame{FrameType::Resize, stream::resizePayload({41, 101})});
  send(*console, stdinFrame("stty size\n"));
  EXPECT_TRUE(reader.waitForOutput("41 101")) << reader.output();
  send(*console, stdinFrame("exit\n"));
  expectExit(reader, 0);
}

TEST_F(ShimConsoleTest, CtrlCInterruptsASleepInATtyShell) {
  start(consoleSpec({"sh"}, true));
  auto console = attach();
  ASSERT_TRUE(console);
  FrameReader reader(*console);
  send(*console, stdinFrame("echo started; sleep 30\n"));
  ASSERT_TRUE(reader.waitForOutput("started\r\n")) << reader.output();
  std::this_thread::sleep_for(200ms);  // the sleep is then the foreground job
  auto interrupted = std::chrono::steady_clock::now();
  send(*console, stdinFrame("\x03"));
  send(*console, stdinFrame("echo status=$?\n"));
  EXPECT_TRUE(reader.waitForOutput("status=130")) << reader.output();
  EXPECT_LT(std::chrono::steady_clock::now() - interrupted, 5s);
  send(*console, stdinFrame("exit 0\n"));
  expectExit(reader, 0);
}

TEST_F(ShimConsoleTest, StdinThroughPipesWithEofReachesTheCommandWhole) {
  TempDir data{"/var/tmp"};
  std::string bytes(3 << 20, '\0');
  std::mt19937 random(20);
  for (char& byte : bytes) byte = static_cast<char>(random());
  ASSERT_TRUE(core::writeFileAtomically(data.path() / "input", bytes).ok());

  start(consoleSpec({"sha256sum"}, false));
  auto console = attach();
  ASSERT_TRUE(console);
  FrameReader reader(*console);
  constexpr std::size_t kChunk = 100'000;
  for (std::size_t offset = 0; offset < bytes.size(); offset += kChunk) {
    send(*console, stdinFrame(bytes.substr(offset, kChunk)));
  }
  send(*console, Frame{FrameType::Eof, ""});
  expectExit(reader, 0);
  const std::string expected = sha256Of(data.path() / "input");
  ASSERT_EQ(expected.size(), 64u);
  EXPECT_EQ(reader.stdoutOnly(), expected + "  -\n");
  waitForShim();
  EXPECT_EQ(stdoutLog(), expected + "  -\n");
}

TEST_F(ShimConsoleTest, StderrComesAsItsOwnFramesWithPipes) {
  start(consoleSpec({"sh", "-c", "read line; echo out-$line; echo err-$line >&2"}, false));
  auto console = attach();
  ASSERT_TRUE(console);
  FrameReader reader(*console);
  send(*console, stdinFrame("x\n"));
  expectExit(reader, 0);
  EXPECT_EQ(reader.stdoutOnly(), "out-x\n");
  EXPECT_NE(reader.output().find("err-x\n"), std::string::npos) << reader.output();
  waitForShim();
  EXPECT_EQ(readText(session() / "stderr.log"), "err-x\n");
}

TEST_F(ShimConsoleTest, OutputBeforeTheFirstAttachIsReplayedToIt) {
  start(consoleSpec({"sh", "-c", "echo early-bird; exec cat"}, false));
  ASSERT_TRUE(waitUntil([&] { return stdoutLog() == "early-bird\n"; })) << stdoutLog();
  auto console = attach();
  ASSERT_TRUE(console);
  FrameReader reader(*console);
  EXPECT_TRUE(reader.waitForOutput("early-bird\n")) << reader.output();
  send(*console, stdinFrame("late\n"));
  EXPECT_TRUE(reader.waitForOutput("early-bird\nlate\n")) << reader.output();
  send(*console, Frame{FrameType::Eof, ""});
  expectExit(reader, 0);
}

TEST_F(ShimConsoleTest, ReplayKeepsOnlyTheLastReplayBytes) {
  json spec = consoleSpec({"sh", "-c", "echo 0123456789abcdef; exec cat"}, false);
  spec["console"]["replay_bytes"] = 7;
  start(spec);
  ASSERT_TRUE(waitUntil([&] { return !stdoutLog().empty(); }));
  auto console = attach();
  ASSERT_TRUE(console);
  FrameReader reader(*console);
  send(*console, Frame{FrameType::Eof, ""});
  expectExit(reader, 0);
  EXPECT_EQ(reader.output(), "abcdef\n");
}

TEST_F(ShimConsoleTest, ASecondAttachTakesOverAndTheFirstIsToldWhy) {
  start(consoleSpec({"sh"}, true));
  auto first = attach();
  ASSERT_TRUE(first);
  FrameReader firstReader(*first);
  auto second = attach();
  ASSERT_TRUE(second);
  FrameReader secondReader(*second);
  std::optional<Frame> end = firstReader.waitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->type, FrameType::Error);
  EXPECT_EQ(end->payload, "another client attached");
  send(*second, stdinFrame("echo taken-$((2+3))\n"));
  EXPECT_TRUE(secondReader.waitForOutput("taken-5")) << secondReader.output();
  send(*second, stdinFrame("exit 4\n"));
  expectExit(secondReader, 4);
}

TEST_F(ShimConsoleTest, AClientThatDropsLeavesTheSessionRunningForTheNextAttach) {
  start(consoleSpec({"sh"}, true));
  {
    auto first = attach();
    ASSERT_TRUE(first);
    FrameReader reader(*first);
    send(*first, stdinFrame("echo one-$((0+1))\n"));
    ASSERT_TRUE(reader.waitForOutput("one-1")) << reader.output();
    send(*first, stdinFrame("sleep 0.3; echo while-away-$((1+1))\n"));
  }  // dropped without a word
  std::this_thread::sleep_for(600ms);
  EXPECT_TRUE(shimRunning());
  EXPECT_FALSE(std::filesystem::exists(session() / "exit.json"));
  auto second = attach();
  ASSERT_TRUE(second);
  FrameReader reader(*second);
  EXPECT_TRUE(reader.waitForOutput("while-away-2")) << "replayed: " << reader.output();
  send(*second, stdinFrame("exit 0\n"));
  expectExit(reader, 0);
}

TEST_F(ShimConsoleTest, AnExecSeesTheSessionsEnvCwdAndUserAndReturnsItsExitCode) {
  json spec = consoleSpec({"sleep", "30"}, false);
  if (::geteuid() == 0) spec["run_as"] = {{"uid", kSessionUid}, {"gid", kSessionGid}};
  start(spec);
  core::ShimExecRequest request;
  request.command = {"sh", "-c", "echo $SESSION_MARK $ADDED; pwd; id -u; echo oops >&2; exit 7"};
  request.env = {{"ADDED", "by-the-exec"}};
  auto connection = exec(request);
  ASSERT_TRUE(connection);
  FrameReader reader(*connection);
  expectExit(reader, 7);
  const std::string uid = std::to_string(::geteuid() == 0 ? kSessionUid : ::getuid());
  const std::string expected =
      "from-the-session by-the-exec\n" + std::filesystem::canonical(session() / ".." / "work").string() + "\n" + uid + "\n";
  EXPECT_EQ(reader.stdoutOnly(), expected);
  EXPECT_NE(reader.output().find("oops\n"), std::string::npos) << "stderr comes too: " << reader.output();
  EXPECT_EQ(stdoutLog(), "") << "an exec's output goes only to its connection";
  EXPECT_TRUE(shimRunning());
}

TEST_F(ShimConsoleTest, AnExecWithATtyAndStdin) {
  start(consoleSpec({"sleep", "30"}, false));
  core::ShimExecRequest request;
  request.command = {"sh"};
  request.tty = true;
  request.openStdin = true;
  request.size = stream::TerminalSize{12, 34};
  auto connection = exec(request);
  ASSERT_TRUE(connection);
  FrameReader reader(*connection);
  send(*connection, stdinFrame("stty size; exit 5\n"));
  expectExit(reader, 5);
  EXPECT_NE(reader.output().find("12 34"), std::string::npos) << reader.output();
}

TEST_F(ShimConsoleTest, ClosingAnExecsConnectionHangsItUp) {
  start(consoleSpec({"sleep", "30"}, false));
  core::ShimExecRequest request;
  request.command = {"sh", "-c", "echo pid=$$; exec sleep 60"};
  request.tty = true;
  pid_t pid = 0;
  {
    auto connection = exec(request);
    ASSERT_TRUE(connection);
    FrameReader reader(*connection);
    ASSERT_TRUE(reader.waitForOutput("\n")) << reader.output();
    pid = std::atoi(reader.output().substr(reader.output().find('=') + 1).c_str());
    ASSERT_GT(pid, 0);
    ASSERT_EQ(::kill(pid, 0), 0);
  }
  EXPECT_TRUE(waitUntil([&] {
    Result<core::ProcessStat> stat = core::readProcessStat(pid);
    return !stat.ok() || stat->state == 'Z';
  })) << "the exec still runs after its client left";
  EXPECT_TRUE(shimRunning());
}

TEST_F(ShimConsoleTest, ExecsBeyondTheLimitAreRefused) {
  start(consoleSpec({"sleep", "30"}, false));
  core::ShimExecRequest request;
  request.command = {"sh", "-c", "echo up; exec sleep 30"};
  std::vector<std::unique_ptr<core::ShimConsoleConnection>> running;
  std::vector<std::unique_ptr<FrameReader>> readers;
  for (std::size_t i = 0; i < core::kMaxExecsPerSession; ++i) {
    running.push_back(exec(request));
    ASSERT_TRUE(running.back());
    readers.push_back(std::make_unique<FrameReader>(*running.back()));
  }
  for (auto& reader : readers) ASSERT_TRUE(reader->waitForOutput("up\n"));
  auto refused = exec(request);
  ASSERT_TRUE(refused);
  FrameReader reader(*refused);
  std::optional<Frame> end = reader.waitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->type, FrameType::Error);
  EXPECT_NE(end->payload.find("too many execs: at most 16"), std::string::npos) << end->payload;
}

TEST_F(ShimConsoleTest, AnExecThatCannotRunExits127WithTheReason) {
  start(consoleSpec({"sleep", "30"}, false));
  core::ShimExecRequest request;
  request.command = {"bai-no-such-command"};
  auto connection = exec(request);
  ASSERT_TRUE(connection);
  FrameReader reader(*connection);
  expectExit(reader, 127);
  EXPECT_NE(reader.output().find("bai-no-such-command"), std::string::npos) << reader.output();
}

TEST_F(ShimConsoleTest, TheSessionsEndEndsItsExecsAndRefusesNewOnes) {
  start(consoleSpec({"sh", "-c", "read line; exit 2"}, false));
  core::ShimExecRequest request;
  request.command = {"sh", "-c", "echo up; exec sleep 60"};
  auto running = exec(request);
  ASSERT_TRUE(running);
  FrameReader execReader(*running);
  ASSERT_TRUE(execReader.waitForOutput("up\n"));
  auto console = attach();
  ASSERT_TRUE(console);
  FrameReader consoleReader(*console);
  send(*console, stdinFrame("bye\n"));
  expectExit(consoleReader, 2);
  std::optional<Frame> end = execReader.waitForEnd();
  ASSERT_TRUE(end.has_value());
  EXPECT_EQ(end->type, FrameType::Error);
  EXPECT_EQ(end->payload, "the session has ended");
  EXPECT_EQ(waitForShim()["exit_code"], 2);
  Result<std::unique_ptr<core::ShimConsoleConnection>> late = core::ShimConsoleConnection::exec(session(), request);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, ErrorCode::NotFound);
  EXPECT_NE(late.error().message.find("has no console"), std::string::npos) << late.error().message;
}

TEST_F(ShimConsoleTest, ABadExecRequestIsRefusedWithTheReason) {
  start(consoleSpec({"sleep", "30"}, false));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", (session() / core::kConsoleSocketName).c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  std::string frame = core::encodeSocketFrame(FrameType::Exec, R"({"command": []})");
  ASSERT_EQ(::write(fd, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
  std::string reply;
  char buffer[4096];
  for (ssize_t got; (got = ::read(fd, buffer, sizeof buffer)) > 0;) reply.append(buffer, static_cast<std::size_t>(got));
  ::close(fd);
  core::SocketFrameDecoder decoder;
  decoder.append(reply);
  Result<std::optional<Frame>> error = decoder.next();
  ASSERT_TRUE(error.ok() && error->has_value());
  EXPECT_EQ((*error)->type, FrameType::Error);
  EXPECT_NE((*error)->payload.find("'command' must be a non-empty array"), std::string::npos) << (*error)->payload;
}

TEST_F(ShimConsoleTest, AFrameOverOneMebibyteIsRefusedAndTheSessionGoesOn) {
  start(consoleSpec({"sh"}, true));
  auto console = attach();
  ASSERT_TRUE(console);
  Result<void> tooLarge = console->write(stdinFrame(std::string(core::kMaxConsoleFrameBytes, 'x')));
  ASSERT_FALSE(tooLarge.ok());
  EXPECT_EQ(tooLarge.error().code, ErrorCode::OutOfRange);

  // Past the client's own check: a raw length prefix over the limit.
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", (session() / core::kConsoleSocketName).c_str());
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  std::string bytes = core::encodeSocketFrame(FrameType::Attach, "") + stream::lengthPrefix((1 << 20) + 1);
  ASSERT_EQ(::write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  std::string reply;
  char buffer[4096];
  for (ssize_t got; (got = ::read(fd, buffer, sizeof buffer)) > 0;) reply.append(buffer, static_cast<std::size_t>(got));
  ::close(fd);
  EXPECT_NE(reply.find("1048577 bytes is over the limit of 1048576"), std::string::npos) << reply;

  auto again = attach();
  ASSERT_TRUE(again);
  FrameReader reader(*again);
  send(*again, stdinFrame("echo still-$((1+2))\n"));
  EXPECT_TRUE(reader.waitForOutput("still-3")) << reader.output();
  send(*again, stdinFrame("exit\n"));
  expectExit(reader, 0);
}

TEST_F(ShimConsoleTest, ASessionWithoutConsoleHasNoSocket) {
  json spec = consoleSpec({"sleep", "30"}, false);
  spec.erase("console");
  start(spec);
  Result<std::unique_ptr<core::ShimConsoleConnection>> refused = core::ShimConsoleConnection::attach(session(), {});
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, ErrorCode::NotFound);
}

TEST_F(ShimConsoleTest, TheSocketIsPrivateToItsOwner) {
  start(consoleSpec({"sleep", "30"}, false));
  struct stat info {};
  ASSERT_EQ(::stat((session() / core::kConsoleSocketName).c_str(), &info), 0);
  EXPECT_TRUE(S_ISSOCK(info.st_mode));
  EXPECT_EQ(info.st_mode & 0777, 0600u);
  EXPECT_EQ(info.st_uid, ::geteuid());
}

class SandboxedConsoleTest : public ShimConsoleTest {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "the sandbox needs root (namespaces, mounts, setuid)";
    ShimConsoleTest::SetUp();
  }
};

TEST_F(SandboxedConsoleTest, ATtyShellRunsInTheSandbox) {
  start(sandboxedSpec({"sh"}, true));
  auto console = attach();
  ASSERT_TRUE(console);
  FrameReader reader(*console);
  send(*console, stdinFrame("echo pid=$$ uid=$(id -u) $((6*7)); stty size\n"));
  EXPECT_TRUE(reader.waitForOutput("pid=2 uid=65534 42\r\n24 80")) << reader.output();
  send(*console, stdinFrame("exit 6\n"));
  expectExit(reader, 6);
  EXPECT_EQ(waitForShim()["exit_code"], 6);
}

TEST_F(SandboxedConsoleTest, AnExecRunsInsideTheSessionsNamespacesAsItsUser) {
  start(sandboxedSpec({"sleep", "30"}, false));
  core::ShimExecRequest request;
  request.command = {"sh", "-c",
                     "tr '\\0' ' ' < /proc/1/cmdline; echo; ls -d /proc/[0-9]* | wc -l; pwd; id -u; "
                     "echo $SESSION_MARK $ADDED; exit 9"};
  request.env = {{"ADDED", "extra"}};
  auto connection = exec(request);
  ASSERT_TRUE(connection);
  FrameReader reader(*connection);
  expectExit(reader, 9);
  std::istringstream lines(reader.output());
  std::string init, processes, cwd, uid, env;
  std::getline(lines, init);
  std::getline(lines, processes);
  std::getline(lines, cwd);
  std::getline(lines, uid);
  std::getline(lines, env);
  EXPECT_NE(init.find("bai-session-shim"), std::string::npos) << "pid 1 is the session's init: " << reader.output();
  // init, the session's sleep, the exec's sh and its ls (or wc): the session's processes only.
  EXPECT_LE(std::atoi(processes.c_str()), 5) << reader.output();
  EXPECT_EQ(cwd, "/home/work");
  EXPECT_EQ(uid, "65534");
  EXPECT_EQ(env, "from-the-session extra");
}

TEST_F(SandboxedConsoleTest, AnExecWithATtyInTheSandboxIsHungUpWhenItsClientLeaves) {
  start(sandboxedSpec({"sleep", "30"}, false));
  core::ShimExecRequest request;
  request.command = {"sh"};
  request.tty = true;
  request.openStdin = true;
  {
    auto connection = exec(request);
    ASSERT_TRUE(connection);
    FrameReader reader(*connection);
    send(*connection, stdinFrame("echo in-$((4+4)); stty size; sleep 60\n"));
    ASSERT_TRUE(reader.waitForOutput("in-8\r\n24 80")) << reader.output();
  }
  // The hung-up exec's sleep ends; the session's own is left (and its init, which
  // still starts execs).
  core::ShimExecRequest probe;
  probe.command = {"sh", "-c", "cat /proc/[0-9]*/comm | grep -c '^sleep$'"};
  std::string sleeps;
  EXPECT_TRUE(waitUntil([&] {
    auto connection = exec(probe);
    if (!connection) return true;
    FrameReader reader(*connection);
    reader.waitForEnd();
    sleeps = reader.output();
    return sleeps == "1\n";
  })) << "sleeps running: " << sleeps;
}

// spec.json's "console", in the format tests of session_files.
TEST(ShimConsoleSpecFormat, SurvivesRenderAndParse) {
  files::ShimSpec spec;
  spec.command = {"sh"};
  spec.stdoutPath = "o";
  spec.stderrPath = "e";
  spec.console = files::ShimConsole{true, 50, 132, 4096};
  Result<files::ShimSpec> parsed = files::parseShimSpec(files::renderShimSpec(spec));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  ASSERT_TRUE(parsed->console.has_value());
  EXPECT_TRUE(parsed->console->tty);
  EXPECT_EQ(parsed->console->rows, 50);
  EXPECT_EQ(parsed->console->cols, 132);
  EXPECT_EQ(parsed->console->replayBytes, 4096u);
  spec.console.reset();
  Result<files::ShimSpec> none = files::parseShimSpec(files::renderShimSpec(spec));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->console.has_value());
}

TEST(ShimConsoleSpecFormat, DefaultsFillWhatIsLeftOut) {
  Result<files::ShimSpec> parsed = files::parseShimSpec(
      R"({"command": ["sh"], "env": {}, "stdout": "o", "stderr": "e", "console": {}})");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_FALSE(parsed->console->tty);
  EXPECT_EQ(parsed->console->rows, 24);
  EXPECT_EQ(parsed->console->cols, 80);
  EXPECT_EQ(parsed->console->replayBytes, 64u * 1024);
}

struct BadConsole {
  const char* console;
  const char* reason;
};

class ShimConsoleSpecErrorTest : public ::testing::TestWithParam<BadConsole> {};

TEST_P(ShimConsoleSpecErrorTest, NamesTheField) {
  Result<files::ShimSpec> parsed = files::parseShimSpec(
      std::string(R"({"command": ["sh"], "env": {}, "stdout": "o", "stderr": "e", "console": )") +
      GetParam().console + "}");
  ASSERT_FALSE(parsed.ok());
  EXPECT_EQ(parsed.error().message, GetParam().reason);
}

INSTANTIATE_TEST_SUITE_P(
    Fields, ShimConsoleSpecErrorTest,
    ::testing::Values(BadConsole{"true", "spec.json: 'console' must be an object"},
                      BadConsole{R"({"tty": 1})", "spec.json: 'console.tty' must be a boolean"},
                      BadConsole{R"({"rows": 0})", "spec.json: 'console.rows' must be an integer from 1 to 65535"},
                      BadConsole{R"({"cols": 65536})", "spec.json: 'console.cols' must be an integer from 1 to 65535"},
                      BadConsole{R"({"cols": "80"})", "spec.json: 'console.cols' must be an integer from 1 to 65535"},
                      BadConsole{R"({"replay_bytes": -1})",
                                 "spec.json: 'console.replay_bytes' must be an integer from 0 to 16777216"},
                      BadConsole{R"({"replay_bytes": 16777217})",
                                 "spec.json: 'console.replay_bytes' must be an integer from 0 to 16777216"}));

TEST(ShimExecRequestFormat, SurvivesRenderAndParse) {
  core::ShimExecRequest request;
  request.command = {"bash", "-l"};
  request.env = {{"TERM", "xterm"}};
  request.tty = true;
  request.openStdin = true;
  request.size = stream::TerminalSize{40, 120};
  Result<core::ShimExecRequest> parsed = core::parseExecRequest(core::renderExecRequest(request));
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->command, request.command);
  EXPECT_EQ(parsed->env, request.env);
  EXPECT_TRUE(parsed->tty);
  EXPECT_TRUE(parsed->openStdin);
  ASSERT_TRUE(parsed->size.has_value());
  EXPECT_EQ(parsed->size->rows, 40);
  EXPECT_EQ(parsed->size->cols, 120);
}

TEST(ShimExecRequestFormat, RefusalsNameTheField) {
  const std::pair<const char*, const char*> cases[] = {
      {"[]", "exec request: not a JSON object"},
      {R"({})", "exec request: 'command' must be a non-empty array of strings whose first is not empty"},
      {R"({"command": [""]})", "exec request: 'command' must be a non-empty array of strings whose first is not empty"},
      {R"({"command": ["sh", 1]})", "exec request: 'command' must be a non-empty array of strings whose first is not empty"},
      {R"({"command": ["sh"], "env": {"A=B": "c"}})",
       "exec request: 'env' must be an object of strings whose names are not empty and hold no '='"},
      {R"({"command": ["sh"], "tty": "yes"})", "exec request: 'tty' must be a boolean"},
      {R"({"command": ["sh"], "stdin": 1})", "exec request: 'stdin' must be a boolean"},
      {R"({"command": ["sh"], "rows": 10})", "exec request: 'rows' must be given with 'cols', both from 1 to 65535"},
      {R"({"command": ["sh"], "rows": 0, "cols": 10})",
       "exec request: 'rows' must be given with 'cols', both from 1 to 65535"},
  };
  for (const auto& [text, reason] : cases) {
    Result<core::ShimExecRequest> parsed = core::parseExecRequest(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.error().message, reason) << text;
  }
  EXPECT_FALSE(core::parseExecRequest("{").ok());
}

TEST(SocketFrameDecoder, SplitsFramesWhateverTheReadBoundaries) {
  const std::string bytes = core::encodeSocketFrame(FrameType::Stdout, "hello") +
                            core::encodeSocketFrame(FrameType::Eof, "") +
                            core::encodeSocketFrame(FrameType::Exit, "3");
  core::SocketFrameDecoder decoder;
  std::vector<Frame> frames;
  for (char byte : bytes) {
    decoder.append(std::string_view(&byte, 1));
    for (;;) {
      Result<std::optional<Frame>> frame = decoder.next();
      ASSERT_TRUE(frame.ok());
      if (!frame->has_value()) break;
      frames.push_back(**frame);
    }
  }
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].type, FrameType::Stdout);
  EXPECT_EQ(frames[0].payload, "hello");
  EXPECT_EQ(frames[1].type, FrameType::Eof);
  EXPECT_EQ(frames[2].payload, "3");
}

TEST(SocketFrameDecoder, RefusesEmptyUnknownAndOversizedFrames) {
  for (const std::string& bytes : {stream::lengthPrefix(0), stream::lengthPrefix(1) + "\x7f",
                                   stream::lengthPrefix(core::kMaxConsoleFrameBytes + 1)}) {
    core::SocketFrameDecoder decoder;
    decoder.append(bytes);
    EXPECT_FALSE(decoder.next().ok());
  }
}

}  // namespace
}  // namespace bai::test
