// The bai CLI's interactive parts over in-memory streams: the console forwarder (input,
// output, exit codes, detach keys, signals, back-pressure), the service tunnel's byte
// pipe with half-closes, and its listener with many connections and refusals.
#include "console_forwarder.hpp"
#include "service_tunnel.hpp"
#include "terminal.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <condition_variable>
#include <csignal>
#include <deque>
#include <future>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

namespace bai::cli {
namespace {

using Kind = client::StreamEvent::Kind;
using namespace std::chrono_literals;

// A FrameStream in memory: receive() answers what the test pushes (or, with echo,
// what was sent), and every send is recorded. Sends may be held to test back-pressure.
class MemoryStream : public FrameStream {
 public:
  void push(client::StreamEvent event) {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(std::move(event));
    changed_.notify_all();
  }
  client::StreamEvent receive() override {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return !events_.empty() || closed_; });
    if (events_.empty()) return client::StreamEvent{Kind::Closed, "closed here", 0, 1000};
    client::StreamEvent event = std::move(events_.front());
    events_.pop_front();
    return event;
  }
  bool sendStdin(std::string_view bytes) override {
    std::unique_lock<std::mutex> lock(mutex_);
    ++sends_;
    changed_.notify_all();
    changed_.wait(lock, [this] { return !holdSends_ || closed_; });
    if (closed_) return false;
    stdin_.append(bytes);
    if (echo) events_.push_back({Kind::Stdout, std::string(bytes)});
    changed_.notify_all();
    return true;
  }
  bool closeStdin() override {
    std::function<void()> then;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (closed_) return false;
      ++eofs_;
      if (echo) {
        events_.push_back({Kind::Eof});
        events_.push_back({Kind::Closed, "", 0, 1000});
      }
      changed_.notify_all();
      then = onEof;
    }
    if (then) then();
    return true;
  }
  bool resize(client::TerminalSize size) override {
    std::lock_guard<std::mutex> lock(mutex_);
    sizes_.push_back(size);
    changed_.notify_all();
    return true;
  }
  void close() override {
    std::lock_guard<std::mutex> lock(mutex_);
    closed_ = true;
    changed_.notify_all();
  }

  void holdSends(bool hold) {
    std::lock_guard<std::mutex> lock(mutex_);
    holdSends_ = hold;
    changed_.notify_all();
  }
  // Waits (at most 5 s) until `ready` holds, under the stream's lock.
  template <class Ready>
  bool waitFor(Ready ready) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, 5s, [&] { return ready(*this); });
  }
  std::string stdinBytes() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stdin_;
  }
  int eofs() {
    std::lock_guard<std::mutex> lock(mutex_);
    return eofs_;
  }

  bool echo = false;             // every Stdin comes back as Stdout; Eof as Eof, then Closed
  std::function<void()> onEof;   // runs after closeStdin, outside the lock
  // Read under the lock, in waitFor.
  int sends_ = 0;
  int eofs_ = 0;
  std::vector<client::TerminalSize> sizes_;
  bool closed_ = false;

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<client::StreamEvent> events_;
  std::string stdin_;
  bool holdSends_ = false;
};

struct Pipe {
  int read = -1, write = -1;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe2(fds, O_CLOEXEC), 0);
    read = fds[0];
    write = fds[1];
  }
  ~Pipe() {
    closeRead();
    closeWrite();
  }
  void closeWrite() {
    if (write >= 0) ::close(write);
    write = -1;
  }
  void closeRead() {
    if (read >= 0) ::close(read);
    read = -1;
  }
  // What was written, once the write end is closed.
  std::string drain() {
    closeWrite();
    std::string out;
    char buffer[4096];
    for (ssize_t n; (n = ::read(read, buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    return out;
  }
};

// A console over pipes: input, output, errors and signals.
struct Console {
  Pipe input, output, errors, signals;
  ConsoleOptions options(bool detachKeys) {
    ConsoleOptions o;
    o.input = input.read;
    o.output = output.write;
    o.errors = errors.write;
    o.detachKeys = detachKeys;
    o.signalFd = signals.read;
    o.drainSignals = [this] {
      std::vector<int> out;
      unsigned char byte;
      pollfd fd{signals.read, POLLIN, 0};
      while (::poll(&fd, 1, 0) > 0 && ::read(signals.read, &byte, 1) == 1) out.push_back(byte);
      return out;
    };
    o.windowSize = [] { return std::optional<client::TerminalSize>(client::TerminalSize{40, 100}); };
    return o;
  }
  void raise(int signal) {
    const unsigned char byte = static_cast<unsigned char>(signal);
    ASSERT_EQ(::write(signals.write, &byte, 1), 1);
  }
};

// ---- Detach keys ---------------------------------------------------------------------

TEST(DetachKeysTest, TheSequenceDetachesAndIsNeverSent) {
  DetachKeys keys;
  EXPECT_EQ(keys.feed("ls\r\x10"), "ls\r") << "a Ctrl-P is held until the next byte";
  EXPECT_FALSE(keys.detached());
  EXPECT_EQ(keys.feed("\x11" "after"), "") << "nothing after the sequence is sent";
  EXPECT_TRUE(keys.detached());
  EXPECT_EQ(keys.feed("more"), "");
}

TEST(DetachKeysTest, ACtrlPNotFollowedByCtrlQIsSentOn) {
  DetachKeys keys;
  EXPECT_EQ(keys.feed("\x10x"), "\x10x");
  EXPECT_EQ(keys.feed("\x10\x10\x11"), "\x10") << "the first of two Ctrl-P is data, the second starts the sequence";
  EXPECT_TRUE(keys.detached());
  DetachKeys held;
  EXPECT_EQ(held.feed("a\x10"), "a");
  EXPECT_EQ(held.flush(), "\x10") << "the held Ctrl-P is sent when the input ends";
  EXPECT_FALSE(held.detached());
}

// ---- The terminal ----------------------------------------------------------------------

// A pseudo-terminal pair, its terminal side standing for the user's.
struct PseudoTerminal {
  int controller = -1, terminal = -1;
  PseudoTerminal() {
    controller = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    EXPECT_GE(controller, 0);
    EXPECT_EQ(::grantpt(controller), 0);
    EXPECT_EQ(::unlockpt(controller), 0);
    terminal = ::open(::ptsname(controller), O_RDWR | O_NOCTTY | O_CLOEXEC);
    EXPECT_GE(terminal, 0);
  }
  ~PseudoTerminal() {
    ::close(terminal);
    ::close(controller);
  }
  tcflag_t localModes() const {
    termios mode{};
    EXPECT_EQ(::tcgetattr(terminal, &mode), 0);
    return mode.c_lflag;
  }
};

TEST(TerminalTest, RawModeLastsAsLongAsItsGuard) {
  PseudoTerminal pty;
  const tcflag_t cooked = pty.localModes();
  ASSERT_NE(cooked & (ICANON | ECHO | ISIG), 0u);
  {
    RawTerminal raw(pty.terminal);
    ASSERT_TRUE(raw.active());
    EXPECT_EQ(pty.localModes() & (ICANON | ECHO | ISIG), 0u) << "no line editing, no echo, Ctrl-C a byte";
  }
  EXPECT_EQ(pty.localModes(), cooked);
  Pipe notATerminal;
  EXPECT_FALSE(RawTerminal(notATerminal.read).active());
}

TEST(TerminalTest, TheWindowSizeIsReadFromTheTerminal) {
  PseudoTerminal pty;
  winsize size{};
  size.ws_row = 33;
  size.ws_col = 121;
  ASSERT_EQ(::ioctl(pty.controller, TIOCSWINSZ, &size), 0);
  const auto read = terminalSize(pty.terminal);
  ASSERT_TRUE(read.has_value());
  EXPECT_EQ(read->rows, 33);
  EXPECT_EQ(read->cols, 121);
  Pipe notATerminal;
  EXPECT_FALSE(terminalSize(notATerminal.read).has_value());
}

TEST(TerminalTest, ASecondTerminationSignalRestoresTheTerminalAndEndsAtOnce) {
  PseudoTerminal pty;
  const tcflag_t cooked = pty.localModes();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    SignalPipe& signals = SignalPipe::install({SIGTERM});
    RawTerminal raw(pty.terminal);
    ::raise(SIGTERM);  // the first is a byte on the pipe, for the forwarder to act on
    if (signals.drain() != std::vector<int>{SIGTERM}) ::_exit(10);
    ::raise(SIGTERM);  // read: still only a request
    ::raise(SIGTERM);  // a second before the first was read: the process ends now
    ::_exit(11);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 128 + SIGTERM);
  EXPECT_EQ(pty.localModes(), cooked) << "the terminal is usable again";
}

// ---- The console forwarder -------------------------------------------------------------

TEST(ConsoleForwarderTest, InputThenEofGoOutAndOutputComesInUntilTheExitCode) {
  Console console;
  MemoryStream stream;
  stream.push({Kind::Stdout, "out-1 "});
  stream.push({Kind::Stderr, "err-1"});
  stream.onEof = [&stream] {
    stream.push({Kind::Stdout, "out-2"});
    stream.push({Kind::Exit, "", 3});
  };
  ASSERT_EQ(::write(console.input.write, "hello\n", 6), 6);
  console.input.closeWrite();

  const ConsoleOutcome outcome = forwardConsole(stream, console.options(false));
  EXPECT_EQ(outcome.kind, ConsoleOutcome::Kind::Exited);
  EXPECT_EQ(outcome.exitCode, 3);
  EXPECT_EQ(stream.stdinBytes(), "hello\n");
  EXPECT_EQ(stream.eofs(), 1);
  EXPECT_EQ(console.output.drain(), "out-1 out-2");
  EXPECT_EQ(console.errors.drain(), "err-1");
}

TEST(ConsoleForwarderTest, TheDetachKeysLeaveWithoutSendingThemOrAnEof) {
  Console console;
  MemoryStream stream;
  ASSERT_EQ(::write(console.input.write, "ab\x10\x11" "cd", 6), 6);
  const ConsoleOutcome outcome = forwardConsole(stream, console.options(true));
  EXPECT_EQ(outcome.kind, ConsoleOutcome::Kind::Detached);
  EXPECT_EQ(stream.stdinBytes(), "ab");
  EXPECT_EQ(stream.eofs(), 0) << "a detach leaves the session's stdin open";
}

TEST(ConsoleForwarderTest, WithoutDetachKeysCtrlPCtrlQAreData) {
  Console console;
  MemoryStream stream;
  stream.onEof = [&stream] { stream.push({Kind::Exit, "", 0}); };
  ASSERT_EQ(::write(console.input.write, "ab\x10\x11" "cd", 6), 6);
  console.input.closeWrite();
  const ConsoleOutcome outcome = forwardConsole(stream, console.options(false));
  EXPECT_EQ(outcome.kind, ConsoleOutcome::Kind::Exited);
  EXPECT_EQ(stream.stdinBytes(), "ab\x10\x11" "cd");
}

TEST(ConsoleForwarderTest, AWindowChangeSendsTheSizeAndATerminationSignalInterrupts) {
  Console console;
  MemoryStream stream;
  auto outcome = std::async(std::launch::async, [&] { return forwardConsole(stream, console.options(true)); });
  console.raise(SIGWINCH);
  ASSERT_TRUE(stream.waitFor([](MemoryStream& s) { return !s.sizes_.empty(); }));
  console.raise(SIGTERM);
  ASSERT_EQ(outcome.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(outcome.get().kind, ConsoleOutcome::Kind::Interrupted);
  ASSERT_TRUE(stream.waitFor([](MemoryStream& s) { return s.sizes_.size() == 1; }));
  EXPECT_EQ(stream.sizes_[0].rows, 40);
  EXPECT_EQ(stream.sizes_[0].cols, 100);
}

TEST(ConsoleForwarderTest, AnErrorFrameFailsAndACloseWithoutExitIsALostConnection) {
  {
    Console console;
    MemoryStream stream;
    stream.push({Kind::Stdout, "partial"});
    stream.push({Kind::Error, "another client attached"});
    const ConsoleOutcome outcome = forwardConsole(stream, console.options(false));
    EXPECT_EQ(outcome.kind, ConsoleOutcome::Kind::Failed);
    EXPECT_EQ(outcome.message, "another client attached");
    EXPECT_EQ(console.output.drain(), "partial");
  }
  Console console;
  MemoryStream stream;
  stream.push({Kind::Closed, "manager stopping", 0, 1001});
  const ConsoleOutcome outcome = forwardConsole(stream, console.options(false));
  EXPECT_EQ(outcome.kind, ConsoleOutcome::Kind::Lost);
  EXPECT_NE(outcome.message.find("1001: manager stopping"), std::string::npos) << outcome.message;
}

TEST(ConsoleForwarderTest, InputIsReadOnlyAsFastAsTheStreamTakesIt) {
  Console console;
  MemoryStream stream;
  stream.holdSends(true);
  std::string sent(256 * 1024, '\0');
  std::mt19937 random(7);
  for (char& c : sent) c = static_cast<char>(random());
  std::thread writer([&] {
    EXPECT_TRUE(writeAll(console.input.write, sent));
    console.input.closeWrite();
  });
  stream.onEof = [&stream] { stream.push({Kind::Exit, "", 0}); };
  auto outcome = std::async(std::launch::async, [&] { return forwardConsole(stream, console.options(false)); });

  ASSERT_TRUE(stream.waitFor([](MemoryStream& s) { return s.sends_ == 1; }));
  std::this_thread::sleep_for(100ms);  // time for a pump that did not wait to read on
  int queued = 0;
  ASSERT_EQ(::ioctl(console.input.read, FIONREAD, &queued), 0);
  EXPECT_TRUE(stream.waitFor([](MemoryStream& s) { return s.sends_ == 1; })) << "one send at a time";
  EXPECT_EQ(queued, ::fcntl(console.input.read, F_GETPIPE_SZ)) << "the input pipe stays full while the stream holds the first chunk";

  stream.holdSends(false);
  ASSERT_EQ(outcome.wait_for(10s), std::future_status::ready);
  EXPECT_EQ(outcome.get().kind, ConsoleOutcome::Kind::Exited);
  writer.join();
  EXPECT_TRUE(stream.stdinBytes() == sent) << "every byte, in order";
}

// ---- The service tunnel ----------------------------------------------------------------

TEST(BindAddressTest, HostAndPortOrANamedMistake) {
  auto v4 = parseBindAddress("127.0.0.1:8080");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 8080);
  auto v6 = parseBindAddress("[::1]:0");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  for (const char* bad : {"8080", ":8080", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:http", "::1:80"}) {
    auto parsed = parseBindAddress(bad);
    ASSERT_FALSE(parsed.ok()) << bad;
    EXPECT_NE(parsed.error().message.find(std::string("'") + bad + "'"), std::string::npos) << parsed.error().message;
  }
}

std::string readAll(int fd) {
  std::string out;
  char buffer[65536];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
  return out;
}

TEST(ServiceTunnelTest, EachSideHalfClosesOnItsOwn) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  const int user = pair[0], tunnel = pair[1];
  MemoryStream service;
  auto piped = std::async(std::launch::async, [&] { return pipeConnection(tunnel, service); });

  // The service answers and is done sending: the user reads its bytes, then end of file ...
  service.push({Kind::Stdout, "220 ready\r\n"});
  service.push({Kind::Eof});
  EXPECT_EQ(readAll(user), "220 ready\r\n");
  // ... and may still send, until it half-closes in turn.
  ASSERT_TRUE(writeAll(user, "QUIT\r\n"));
  ::shutdown(user, SHUT_WR);
  ASSERT_TRUE(service.waitFor([](MemoryStream& s) { return s.eofs_ == 1; }));
  EXPECT_EQ(service.stdinBytes(), "QUIT\r\n");
  EXPECT_EQ(service.eofs(), 1) << "the user's half-close became Eof";
  EXPECT_EQ(piped.wait_for(100ms), std::future_status::timeout) << "the stream is open until the service closes it";

  service.push({Kind::Closed, "", 0, 1000});
  ASSERT_EQ(piped.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(piped.get(), "");
  ::close(user);
  ::close(tunnel);
}

TEST(ServiceTunnelTest, AServiceErrorEndsTheConnectionAndIsSaid) {
  int pair[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  MemoryStream service;
  service.push({Kind::Error, "connection refused by 127.0.0.1:8888"});
  EXPECT_EQ(pipeConnection(pair[1], service), "connection refused by 127.0.0.1:8888");
  EXPECT_EQ(readAll(pair[0]), "") << "the user's connection is shut down";
  ::close(pair[0]);
  ::close(pair[1]);
}

int connectTo(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return fd;
}

// Serves `listener` on its own thread until stop() or a refusal ends it.
struct Serving {
  Serving(TunnelListener& listener, TunnelListener::Opener open) {
    EXPECT_EQ(::pipe2(stopPipe, O_CLOEXEC), 0);
    end = std::async(std::launch::async, [&listener, open, this] { return listener.serve(open, stopPipe[0], log); });
  }
  ~Serving() {
    stop();
    if (end.valid()) end.wait();
    ::close(stopPipe[0]);
    ::close(stopPipe[1]);
  }
  void stop() {
    if (!stopped) {
      EXPECT_EQ(::write(stopPipe[1], "x", 1), 1);
    }
    stopped = true;
  }
  int stopPipe[2];
  bool stopped = false;
  std::ostringstream log;  // read after serve() returned
  std::future<TunnelEnd> end;
};

TunnelListener::Opener echoOpener(std::atomic<int>& opened) {
  return [&opened]() -> client::ClientResult<std::unique_ptr<FrameStream>> {
    ++opened;
    auto stream = std::make_unique<MemoryStream>();
    stream->echo = true;
    return std::unique_ptr<FrameStream>(std::move(stream));
  };
}

TEST(TunnelListenerTest, TwentyConcurrentConnectionsEachGetTheirOwnStream) {
  auto listener = TunnelListener::open({"127.0.0.1", 0});
  ASSERT_TRUE(listener.ok()) << listener.error().message;
  EXPECT_EQ((*listener)->url(), "http://127.0.0.1:" + std::to_string((*listener)->port()));
  std::atomic<int> opened{0};
  Serving serving(**listener, echoOpener(opened));

  std::vector<std::future<bool>> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(std::async(std::launch::async, [i, port = (*listener)->port()] {
      std::string sent(300 * 1024 + i, '\0');
      std::mt19937 random(static_cast<unsigned>(i));
      for (char& c : sent) c = static_cast<char>(random());
      const int fd = connectTo(port);
      std::thread writer([&] {
        writeAll(fd, sent);
        ::shutdown(fd, SHUT_WR);
      });
      const std::string received = readAll(fd);
      writer.join();
      ::close(fd);
      return received == sent;
    }));
  }
  for (auto& client : clients) EXPECT_TRUE(client.get()) << "the bytes came back, in order, to the one that sent them";
  EXPECT_EQ(opened.load(), 20);
  serving.stop();
  ASSERT_EQ(serving.end.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(serving.end.get().kind, TunnelEnd::Kind::Stopped);
}

TEST(TunnelListenerTest, StoppingClosesTheOpenConnections) {
  auto listener = TunnelListener::open({"127.0.0.1", 0});
  ASSERT_TRUE(listener.ok());
  std::atomic<int> opened{0};
  Serving serving(**listener, echoOpener(opened));
  const int fd = connectTo((*listener)->port());
  ASSERT_TRUE(writeAll(fd, "ping"));
  char buffer[4];
  ASSERT_EQ(::recv(fd, buffer, 4, MSG_WAITALL), 4);
  serving.stop();
  ASSERT_EQ(serving.end.wait_for(5s), std::future_status::ready) << "an open connection does not hold the tunnel";
  EXPECT_EQ(readAll(fd), "");
  ::close(fd);
}

TEST(TunnelListenerTest, ARefusalForGoodEndsTheTunnelAndOthersOnlyTheirConnection) {
  auto listener = TunnelListener::open({"127.0.0.1", 0});
  ASSERT_TRUE(listener.ok());
  std::atomic<int> calls{0};
  const TunnelListener::Opener open = [&calls]() -> client::ClientResult<std::unique_ptr<FrameStream>> {
    const int call = ++calls;
    if (call == 1) return Failure{client::ApiError{429, "too-many-connections", "Too many connections", "at most 32 per session"}};
    if (call == 2) {
      auto stream = std::make_unique<MemoryStream>();
      stream->echo = true;
      return std::unique_ptr<FrameStream>(std::move(stream));
    }
    return Failure{client::ApiError{404, "no-such-service", "No such service", "session s1 declares jupyter, not 'web'"}};
  };
  Serving serving(**listener, open);

  const int first = connectTo((*listener)->port());
  EXPECT_EQ(readAll(first), "") << "the refused connection is closed";
  ::close(first);
  const int second = connectTo((*listener)->port());
  ASSERT_TRUE(writeAll(second, "still served"));
  ::shutdown(second, SHUT_WR);
  EXPECT_EQ(readAll(second), "still served");
  ::close(second);
  EXPECT_EQ(serving.end.wait_for(200ms), std::future_status::timeout) << "a full session is no reason to stop";

  const int third = connectTo((*listener)->port());
  ASSERT_EQ(serving.end.wait_for(5s), std::future_status::ready);
  const TunnelEnd end = serving.end.get();
  EXPECT_EQ(end.kind, TunnelEnd::Kind::Refused);
  EXPECT_EQ(end.refusal.type, "no-such-service");
  EXPECT_NE(serving.log.str().find("too-many-connections"), std::string::npos) << serving.log.str();
  EXPECT_NE(serving.log.str().find("declares jupyter"), std::string::npos) << serving.log.str();
  ::close(third);
}

}  // namespace
}  // namespace bai::cli
