#include "runtime/shim_console_server.hpp"

#include "runtime/atomic_file.hpp"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <functional>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

namespace bai::core::shim {
namespace {

using stream::FrameType;

constexpr std::size_t kReadBytes = 64 * 1024;
// Connections that have not sent their first frame yet; the oldest goes beyond this.
constexpr std::size_t kMaxPendingConnections = 32;
// How long a closing connection may take its last frames (an Error, an Exit).
constexpr auto kRetireTimeout = std::chrono::seconds(2);
// After an exec or the command ended, output still in flight through a pty (the kernel
// pushes it asynchronously) is awaited this long when another process holds the slave.
constexpr auto kOutputGrace = std::chrono::milliseconds(100);
// How long a slow console client may hold up the session's end with unsent output.
constexpr auto kFinishTimeout = std::chrono::seconds(5);

void closeIfOpen(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

void writeLog(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t written = ::write(fd, bytes.data(), bytes.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // a full disk loses log bytes, never the session
    bytes.remove_prefix(static_cast<std::size_t>(written));
  }
}

Result<int> listenOn(const std::filesystem::path& socketPath) {
  const std::string path = socketPath.string();
  auto address = UnixSocketAddress::of(socketPath);
  if (!address) return Failure{address.error()};
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return fail(ErrorCode::Internal, describeErrno("socket", errno));
  ::unlink(address->path());  // a previous shim's, in a reused session dir
  // Created 0600 from the start: the socket is the session's stdin.
  mode_t previous = ::umask(0177);
  int bound = ::bind(fd, address->get(), address->size());
  int error = errno;
  ::umask(previous);
  if (bound != 0 || ::listen(fd, 16) != 0) {
    if (bound == 0) error = errno;
    ::close(fd);
    return fail(ErrorCode::Internal, describeErrno("listening on " + path, error));
  }
  return fd;
}

Result<int> openChildSignals() {
  sigset_t child;
  sigemptyset(&child);
  sigaddset(&child, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &child, nullptr);  // children restore their mask before exec
  int fd = ::signalfd(-1, &child, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return fail(ErrorCode::Internal, describeErrno("signalfd", errno));
  return fd;
}

int exitCodeOf(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

}  // namespace

Result<std::unique_ptr<ConsoleServer>> ConsoleServer::open(const std::filesystem::path& sessionDir,
                                                           const std::optional<session_files::ShimConsole>& console,
                                                           int stdoutLog, int stderrLog, ExecLauncher& launcher) {
  ::signal(SIGPIPE, SIG_IGN);  // a command that closed its stdin is an error value, not a signal
  std::unique_ptr<ConsoleServer> server(
      new ConsoleServer(sessionDir / kConsoleSocketName, console, stdoutLog, stderrLog, launcher));
  if (console) {
    Result<CommandStdio> stdio =
        console->tty ? openTerminal({console->rows, console->cols}) : openPipes(/*openStdin=*/true);
    if (!stdio.ok()) return Failure{stdio.error()};
    server->command_.ends = stdio->host;
    server->commandChild_ = stdio->child;
  }
  Result<int> listener = listenOn(server->socketPath_);
  if (!listener.ok()) return Failure{listener.error()};
  server->listener_ = *listener;
  Result<int> signals = openChildSignals();
  if (!signals.ok()) return Failure{signals.error()};
  server->childSignals_ = *signals;
  return server;
}

ConsoleServer::~ConsoleServer() {
  closeIfOpen(listener_);
  closeIfOpen(childSignals_);
  closeHostEnds(command_.ends);
  closeChildEnds(commandChild_);
  if (command_.client) closeLink(*command_.client);
  for (auto& [key, link] : pending_) closeLink(link);
  for (auto& [key, retiring] : retiring_) closeLink(retiring.link);
  for (auto& [id, exec] : execs_) {
    closeHostEnds(exec.relay.ends);
    if (exec.relay.client) closeLink(*exec.relay.client);
  }
}

void ConsoleServer::releaseInChild() {
  closeIfOpen(listener_);
  closeIfOpen(childSignals_);
  closeHostEnds(command_.ends);
}

void ConsoleServer::closeLink(Link& link) { closeIfOpen(link.fd); }

ConsoleServer::Relay* ConsoleServer::relayOf(std::optional<std::uint32_t> exec) {
  if (!exec) return &command_;
  auto found = execs_.find(*exec);
  return found == execs_.end() ? nullptr : &found->second.relay;
}

int ConsoleServer::relayUntilExit(pid_t command) {
  commandPid_ = command;
  while (!commandStatus_) pollOnce(Clock::time_point::max());
  return *commandStatus_;
}

void ConsoleServer::finish(int exitCode) {
  ended_ = true;
  const Clock::time_point giveUp = Clock::now() + kFinishTimeout;
  const Clock::time_point endedAt = Clock::now();
  // The output first, at the client's pace; past the timeout, to the logs alone.
  for (;;) {
    if (command_.client && Clock::now() >= giveUp) {
      closeLink(*command_.client);
      command_.client.reset();
    }
    if (command_.client && !command_.client->outgoing.empty()) {
      pollOnce(giveUp);
      continue;
    }
    const bool more = readOutput(command_, true, false) | readOutput(command_, true, true);
    if (more) continue;
    const bool closed = command_.ends.output < 0 && command_.ends.errors < 0;
    if (closed || Clock::now() - endedAt >= kOutputGrace) break;
    pollOnce(endedAt + kOutputGrace);
  }
  if (command_.client) retire(std::move(*command_.client), FrameType::Exit, stream::exitPayload(exitCode));
  command_.client.reset();
  for (auto& [id, exec] : execs_) {
    if (!exec.relay.client) continue;
    if (exec.status) {
      retire(std::move(*exec.relay.client), FrameType::Exit, stream::exitPayload(exitCodeOf(*exec.status)));
    } else {
      retire(std::move(*exec.relay.client), FrameType::Error, "the session has ended");
    }
    exec.relay.client.reset();
    closeHostEnds(exec.relay.ends);
  }
  execs_.clear();
  ::unlink(socketPath_.c_str());
  closeIfOpen(listener_);
  for (auto& [key, link] : pending_) retire(std::move(link), FrameType::Error, "the session has ended");
  pending_.clear();
  while (!retiring_.empty()) pollOnce(Clock::time_point::max());
  closeHostEnds(command_.ends);
}

// One round of poll: every descriptor that may make progress, then each handler.
void ConsoleServer::pollOnce(Clock::time_point deadline) {
  for (auto it = retiring_.begin(); it != retiring_.end();) {
    if (Clock::now() < it->second.deadline) {
      ++it;
      continue;
    }
    closeLink(it->second.link);  // it would not take its last frames in time
    it = retiring_.erase(it);
  }
  std::vector<pollfd> fds;
  std::vector<std::function<void(short)>> handlers;
  auto watch = [&](int fd, short events, std::function<void(short)> handler) {
    if (fd < 0 || events == 0) return;
    fds.push_back(pollfd{fd, events, 0});
    handlers.push_back(std::move(handler));
  };
  watch(listener_, POLLIN, [this](short) { acceptClient(); });
  watch(childSignals_, POLLIN, [this](short) { reapChildren(); });
  watch(launcher_.eventFd(), POLLIN, [this](short) {
    for (auto [id, status] : launcher_.takeEnded()) execEnded(id, status);
  });
  for (auto& [key, link] : pending_) {
    watch(link.fd, POLLIN, [this, key = key](short) { readFirstFrame(key); });
  }
  for (auto& [key, retiring] : retiring_) {
    deadline = std::min(deadline, retiring.deadline);
    watch(retiring.link.fd, POLLOUT, [this, key = key](short) {
      auto found = retiring_.find(key);
      if (found != retiring_.end() && (!flush(found->second.link) || found->second.link.outgoing.empty())) {
        closeLink(found->second.link);
        retiring_.erase(found);
      }
    });
  }
  auto watchRelay = [&](Relay& relay, std::optional<std::uint32_t> exec) {
    const bool toLogs = !exec.has_value();
    const bool outputWanted = !relay.client ? toLogs : relay.client->outgoing.empty();
    if (outputWanted) {
      watch(relay.ends.output, POLLIN, [this, exec, toLogs](short) {
        Relay* target = relayOf(exec);
        if (target != nullptr) readOutput(*target, toLogs, false);
      });
      watch(relay.ends.errors, POLLIN, [this, exec, toLogs](short) {
        Relay* target = relayOf(exec);
        if (target != nullptr) readOutput(*target, toLogs, true);
      });
    }
    if (!relay.pendingInput.empty()) {
      watch(relay.ends.input, POLLOUT, [this, exec](short) {
        Relay* target = relayOf(exec);
        if (target == nullptr) return;
        writeInput(*target);
        // Frames already read from the client wait for the command to take its input.
        if (target->pendingInput.empty() && target->client) takeClientFrames(*target, exec);
      });
    }
    if (relay.client) {
      // Not read while the command has not taken its last input: back-pressure. A
      // client that left is then noticed once that input is taken, or on output.
      short events = relay.pendingInput.empty() ? POLLIN : 0;
      if (!relay.client->outgoing.empty() && !relay.client->broken) events |= POLLOUT;
      watch(relay.client->fd, events, [this, exec](short revents) {
        Relay* target = relayOf(exec);
        if (target == nullptr || !target->client) return;
        if (revents & POLLOUT && !target->client->broken && !flush(*target->client)) target->client->broken = true;
        if (revents & (POLLIN | POLLHUP | POLLERR)) readClient(*target, exec);
      });
    }
  };
  watchRelay(command_, std::nullopt);
  for (auto& [id, exec] : execs_) {
    watchRelay(exec.relay, id);
    const Clock::time_point graceEnds = exec.endedAt + kOutputGrace;
    if (exec.status && Clock::now() < graceEnds) deadline = std::min(deadline, graceEnds);
  }

  int timeout = -1;
  if (deadline != Clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    timeout = static_cast<int>(std::clamp<long long>(left + 1, 0, 60'000));
  }
  int ready = ::poll(fds.data(), fds.size(), timeout);
  if (ready < 0) return;  // EINTR: the next round
  for (std::size_t i = 0; i < fds.size(); ++i) {
    if (fds[i].revents != 0) handlers[i](fds[i].revents);
  }
  finishEndedExecs();
}

void ConsoleServer::acceptClient() {
  for (;;) {
    int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;  // EAGAIN, or a connection that went away meanwhile
    if (pending_.size() >= kMaxPendingConnections) {
      closeLink(pending_.begin()->second);
      pending_.erase(pending_.begin());
    }
    pending_.emplace(nextKey_++, Link{fd, {}, {}});
  }
}

void ConsoleServer::readFirstFrame(std::uint64_t key) {
  auto found = pending_.find(key);
  if (found == pending_.end()) return;
  char buffer[kReadBytes];
  ssize_t got = ::recv(found->second.fd, buffer, sizeof buffer, 0);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got <= 0) {
    closeLink(found->second);
    pending_.erase(found);
    return;
  }
  found->second.decoder.append(std::string_view(buffer, static_cast<std::size_t>(got)));
  Result<std::optional<stream::Frame>> frame = found->second.decoder.next();
  if (frame.ok() && !frame->has_value()) return;
  Link link = std::move(found->second);
  pending_.erase(found);
  if (!frame.ok()) return retire(std::move(link), FrameType::Error, frame.error().message);
  if (ended_) return retire(std::move(link), FrameType::Error, "the session has ended");
  const stream::Frame& first = **frame;
  if (first.type == FrameType::Attach) return startConsoleClient(std::move(link), first.payload);
  if (first.type == FrameType::Exec) return startExec(std::move(link), first.payload);
  retire(std::move(link), FrameType::Error, "the first frame on the console socket must be Attach or Exec");
}

void ConsoleServer::startConsoleClient(Link link, std::string_view payload) {
  if (!console_) {
    return retire(std::move(link), FrameType::Error, "the session has no console: it was started without stdin or a tty");
  }
  if (!payload.empty()) {
    std::optional<stream::TerminalSize> size = stream::parseResize(payload);
    if (!size) return retire(std::move(link), FrameType::Error, "Attach carries nothing or a terminal size");
    if (command_.ends.tty) resizeTerminal(command_.ends.input, *size);
  }
  if (command_.client) retire(std::move(*command_.client), FrameType::Error, "another client attached");
  for (const ReplayChunk& chunk : replay_) {
    for (std::size_t offset = 0; offset < chunk.bytes.size(); offset += kReadBytes) {  // frames as output makes them
      link.outgoing += encodeSocketFrame(chunk.type, std::string_view(chunk.bytes).substr(offset, kReadBytes));
    }
  }
  replay_.clear();
  replayBytes_ = 0;
  command_.client = std::move(link);
  // Frames that came with the Attach are the client's first input.
  readClient(command_, std::nullopt);
}

void ConsoleServer::startExec(Link link, std::string_view payload) {
  Result<ShimExecRequest> request = parseExecRequest(payload);
  if (!request.ok()) return retire(std::move(link), FrameType::Error, request.error().message);
  if (execs_.size() >= kMaxExecsPerSession) {
    return retire(std::move(link), FrameType::Error,
                  "too many execs: at most " + std::to_string(kMaxExecsPerSession) + " run at once in a session");
  }
  Result<CommandStdio> stdio = request->tty ? openTerminal(request->size.value_or(stream::TerminalSize{24, 80}))
                                            : openPipes(request->openStdin);
  if (!stdio.ok()) return retire(std::move(link), FrameType::Error, stdio.error().message);
  const std::uint32_t id = nextExecId_++;
  Result<void> started = launcher_.start(id, *request, stdio->child);
  closeChildEnds(stdio->child);
  if (!started.ok()) {
    closeHostEnds(stdio->host);
    return retire(std::move(link), FrameType::Error, started.error().message);
  }
  Exec& exec = execs_[id];
  exec.relay.ends = stdio->host;
  exec.relay.forwardsStdin = request->openStdin;
  exec.relay.client = std::move(link);
  readClient(exec.relay, id);
}

void ConsoleServer::reapChildren() {
  signalfd_siginfo info;
  while (::read(childSignals_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
  }
  for (;;) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    if (pid == commandPid_) {
      commandStatus_ = status;
    } else if (std::optional<std::uint32_t> exec = launcher_.reaped(pid, status)) {
      execEnded(*exec, status);
    }
  }
}

void ConsoleServer::execEnded(std::uint32_t id, int status) {
  auto found = execs_.find(id);
  if (found == execs_.end()) return;  // its client left before it ended
  found->second.status = status;
  found->second.endedAt = Clock::now();
}

// An ended exec's output is drained (end of file, or nothing more within the grace
// time) before its Exit is sent.
void ConsoleServer::finishEndedExecs() {
  for (auto it = execs_.begin(); it != execs_.end();) {
    Exec& exec = it->second;
    if (!exec.status || !exec.relay.client || !exec.relay.client->outgoing.empty()) {
      ++it;
      continue;
    }
    const bool more = readOutput(exec.relay, false, false) | readOutput(exec.relay, false, true);
    const bool closed = exec.relay.ends.output < 0 && exec.relay.ends.errors < 0;
    if (more || (!closed && Clock::now() - exec.endedAt < kOutputGrace)) {
      ++it;
      continue;
    }
    retire(std::move(*exec.relay.client), FrameType::Exit, stream::exitPayload(exitCodeOf(*exec.status)));
    closeHostEnds(exec.relay.ends);
    it = execs_.erase(it);
  }
}

// One read of a stream; whether it delivered bytes. End of file (a pipe) or EIO (a pty
// whose every slave is closed) closes the stream.
bool ConsoleServer::readOutput(Relay& relay, bool toLogs, bool stderrStream) {
  int& fd = stderrStream ? relay.ends.errors : relay.ends.output;
  if (fd < 0) return false;
  char buffer[kReadBytes];
  ssize_t got = ::read(fd, buffer, sizeof buffer);
  if (got > 0) {
    deliverOutput(relay, toLogs, stderrStream ? FrameType::Stderr : FrameType::Stdout,
                  std::string_view(buffer, static_cast<std::size_t>(got)));
    return true;
  }
  if (got == 0 || (errno != EAGAIN && errno != EINTR)) closeIfOpen(fd);
  return false;
}

void ConsoleServer::deliverOutput(Relay& relay, bool toLogs, FrameType type, std::string_view bytes) {
  if (toLogs) writeLog(type == FrameType::Stderr ? stderrLog_ : stdoutLog_, bytes);
  if (relay.client && !relay.client->broken) {
    relay.client->outgoing += encodeSocketFrame(type, bytes);
    if (flush(*relay.client)) return;
    relay.client->broken = true;  // its input is still read to its end, then it is dropped
  }
  // While the console has no client that takes output, the next one gets it.
  if (toLogs) keepForReplay(type, bytes);
}

void ConsoleServer::keepForReplay(FrameType type, std::string_view bytes) {
  if (console_->replayBytes == 0) return;
  if (bytes.size() > console_->replayBytes) bytes = bytes.substr(bytes.size() - console_->replayBytes);
  if (!replay_.empty() && replay_.back().type == type) {
    replay_.back().bytes.append(bytes);
  } else {
    replay_.push_back(ReplayChunk{type, std::string(bytes)});
  }
  replayBytes_ += bytes.size();
  while (replayBytes_ > console_->replayBytes) {
    ReplayChunk& oldest = replay_.front();
    const std::size_t excess = replayBytes_ - console_->replayBytes;
    if (oldest.bytes.size() <= excess) {
      replayBytes_ -= oldest.bytes.size();
      replay_.pop_front();
    } else {
      oldest.bytes.erase(0, excess);
      replayBytes_ -= excess;
    }
  }
}

// One read of the client's socket at most, so that a fast client cannot hold the loop.
void ConsoleServer::readClient(Relay& relay, std::optional<std::uint32_t> exec) {
  if (!takeClientFrames(relay, exec)) return;
  char buffer[kReadBytes];
  ssize_t got = ::recv(relay.client->fd, buffer, sizeof buffer, 0);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got <= 0) return clientGone(exec);
  relay.client->decoder.append(std::string_view(buffer, static_cast<std::size_t>(got)));
  takeClientFrames(relay, exec);
}

// Handles the frames decoded so far; false when the client is gone or the command has
// not yet taken the input (the rest waits).
bool ConsoleServer::takeClientFrames(Relay& relay, std::optional<std::uint32_t> exec) {
  for (;;) {
    if (!relay.pendingInput.empty()) return false;
    Result<std::optional<stream::Frame>> frame = relay.client->decoder.next();
    Result<void> handled = frame.ok() && frame->has_value() ? handleClientFrame(relay, **frame) : Result<void>();
    if (frame.ok() && !frame->has_value()) return true;
    if (!frame.ok() || !handled.ok()) {
      retire(std::move(*relay.client), FrameType::Error, frame.ok() ? handled.error().message : frame.error().message);
      relay.client.reset();
      clientGone(exec);
      return false;
    }
  }
}

Result<void> ConsoleServer::handleClientFrame(Relay& relay, const stream::Frame& frame) {
  switch (frame.type) {
    case FrameType::Stdin:
      if (relay.forwardsStdin && relay.ends.input >= 0 && !relay.closeInputWhenWritten) {
        relay.pendingInput += frame.payload;
        writeInput(relay);
      }
      return {};
    case FrameType::Resize: {
      std::optional<stream::TerminalSize> size = stream::parseResize(frame.payload);
      if (!size) {
        return fail(ErrorCode::InvalidArgument, "a Resize frame carries rows and columns, 2 bytes each, not 0");
      }
      if (relay.ends.tty && relay.ends.input >= 0) resizeTerminal(relay.ends.input, *size);
      return {};
    }
    case FrameType::Eof:
      if (!relay.forwardsStdin || relay.ends.input < 0 || relay.closeInputWhenWritten) return {};
      if (relay.ends.tty) {
        // As the line discipline would take a typed ^D: end of input for the reader.
        relay.pendingInput.push_back(endOfFileCharacter(relay.ends.input));
      } else {
        relay.closeInputWhenWritten = true;
      }
      writeInput(relay);
      return {};
    default:
      return fail(ErrorCode::InvalidArgument, "unexpected frame of type " +
                                                  std::to_string(static_cast<int>(frame.type)) + " from the client");
  }
}

void ConsoleServer::writeInput(Relay& relay) {
  while (!relay.pendingInput.empty() && relay.ends.input >= 0) {
    ssize_t written = ::write(relay.ends.input, relay.pendingInput.data(), relay.pendingInput.size());
    if (written < 0 && errno == EINTR) continue;
    if (written < 0 && errno == EAGAIN) return;
    if (written < 0) {  // the command closed its stdin: what it did not take is lost, as with a pipe
      relay.pendingInput.clear();
      if (!relay.ends.tty) closeIfOpen(relay.ends.input);
      break;
    }
    relay.pendingInput.erase(0, static_cast<std::size_t>(written));
  }
  if (relay.pendingInput.empty() && relay.closeInputWhenWritten && !relay.ends.tty) closeIfOpen(relay.ends.input);
}

void ConsoleServer::clientGone(std::optional<std::uint32_t> exec) {
  if (!exec) {
    if (command_.client) closeLink(*command_.client);
    command_.client.reset();
    return;
  }
  auto found = execs_.find(*exec);
  if (found == execs_.end()) return;
  Relay& relay = found->second.relay;
  if (relay.client) closeLink(*relay.client);
  // Hang it up: the pty's master or the pipes close, and its group gets SIGHUP.
  closeHostEnds(relay.ends);
  if (!found->second.status) launcher_.hangUp(*exec);
  execs_.erase(found);
}

bool ConsoleServer::flush(Link& link) {
  while (!link.outgoing.empty()) {
    ssize_t sent = ::send(link.fd, link.outgoing.data(), link.outgoing.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0 && errno == EAGAIN) return true;
    if (sent < 0) {
      link.outgoing.clear();
      return false;
    }
    link.outgoing.erase(0, static_cast<std::size_t>(sent));
  }
  return true;
}

void ConsoleServer::retire(Link link, FrameType type, std::string_view payload) {
  link.outgoing += encodeSocketFrame(type, payload);
  if (!flush(link) || link.outgoing.empty()) {
    // Half-close first: the peer reads the last frame, then end of file.
    ::shutdown(link.fd, SHUT_WR);
    closeLink(link);
    return;
  }
  retiring_.emplace(nextKey_++, Retiring{std::move(link), Clock::now() + kRetireTimeout});
}

}  // namespace bai::core::shim
