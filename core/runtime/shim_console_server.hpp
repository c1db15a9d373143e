// The host side of an interactive session in bai-session-shim: serves
// SESSION_DIR/console.sock (runtime/console_protocol.hpp) and relays, in one poll loop
// of the single-threaded shim, between its clients and the command's pty or pipes.
//
// The command's output always goes to the logs; to the attached console client as well,
// or, while none is attached, into a replay buffer of its last bytes that the next
// client gets first. Back-pressure: a client's output buffer holds at most one read of
// the command's output; the command is read no further until it is sent. Client input
// is read no further until the command took the last of it. Execs are started by an
// ExecLauncher (the shim itself, or a sandbox's init inside the namespaces); their
// output goes only to their connection.
#pragma once

#include "bai/result.hpp"
#include "runtime/console_protocol.hpp"
#include "runtime/session_files.hpp"
#include "runtime/shim_stdio.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace bai::core::shim {

// How execs start: forked by the shim, or by a sandbox's init inside the namespaces.
class ExecLauncher {
 public:
  virtual ~ExecLauncher() = default;
  // Starts the exec with `child` as its descriptors 0, 1, 2; the caller closes them after.
  virtual Result<void> start(std::uint32_t id, const ShimExecRequest& request, const ChildEnds& child) = 0;
  // Its client went away: SIGHUP the exec's group.
  virtual void hangUp(std::uint32_t id) = 0;
  // A descriptor that is readable when takeEnded() has news; -1 for none.
  virtual int eventFd() const = 0;
  // Called when eventFd() was readable: the execs that ended, with their wait status.
  virtual std::vector<std::pair<std::uint32_t, int>> takeEnded() = 0;
  // Called for each child the shim reaped other than the command: the exec it was.
  virtual std::optional<std::uint32_t> reaped(pid_t pid, int status) = 0;
};

class ConsoleServer {
 public:
  using Clock = std::chrono::steady_clock;

  // Listens on SESSION_DIR/console.sock (mode 0600) and opens the command's pty or pipes.
  // `stdoutLog`/`stderrLog` receive the command's output (all of it in stdout with a tty).
  static Result<std::unique_ptr<ConsoleServer>> open(const std::filesystem::path& sessionDir,
                                                     const session_files::ShimConsole& console, int stdoutLog,
                                                     int stderrLog, ExecLauncher& launcher);
  ~ConsoleServer();

  // The command's descriptors 0, 1, 2, for the child that becomes the command.
  const ChildEnds& commandEnds() const { return commandChild_; }
  // In the shim once the command's process is forked: the shim keeps only its own ends.
  void closeCommandEnds() { closeChildEnds(commandChild_); }
  // In a forked child that does not exec at once (a sandbox's init): closes the shim's
  // descriptors so that only the shim holds the host ends.
  void releaseInChild();

  // Relays until the shim's child `command` is reaped; returns its raw wait status.
  int relayUntilExit(pid_t command);
  // Once the command ended and its leftovers are dead: drains its output, sends
  // Exit(exitCode) to the attached client, ends the execs' connections with an Error,
  // and removes the socket.
  void finish(int exitCode);

 private:
  struct Link {  // one client connection
    int fd = -1;
    SocketFrameDecoder decoder;
    std::string outgoing;  // framed bytes not yet sent
    bool broken = false;   // a send failed: the peer is gone
  };
  struct Relay {  // a command's streams and the client that sees them
    HostEnds ends;
    std::string pendingInput;  // client input the command has not taken yet
    bool closeInputWhenWritten = false;
    bool forwardsStdin = true;
    std::optional<Link> client;
  };
  struct Exec {
    Relay relay;
    std::optional<int> status;  // the wait status, once it ended
    Clock::time_point endedAt{};
  };
  struct Retiring {  // a link that only flushes its last frames, then closes
    Link link;
    Clock::time_point deadline;
  };
  struct ReplayChunk {
    stream::FrameType type;
    std::string bytes;
  };

  ConsoleServer(std::filesystem::path socketPath, const session_files::ShimConsole& console, int stdoutLog,
                int stderrLog, ExecLauncher& launcher)
      : socketPath_(std::move(socketPath)), console_(console), stdoutLog_(stdoutLog), stderrLog_(stderrLog),
        launcher_(launcher) {}

  void pollOnce(Clock::time_point deadline);
  void acceptClient();
  void readFirstFrame(std::uint64_t key);
  void startConsoleClient(Link link, std::string_view payload);
  void startExec(Link link, std::string_view payload);
  void reapChildren();
  void execEnded(std::uint32_t id, int status);
  void finishEndedExecs();

  // A relay's `exec` is empty for the console; only the console's output goes to the logs.
  bool readOutput(Relay& relay, bool toLogs, bool stderrStream);
  void deliverOutput(Relay& relay, bool toLogs, stream::FrameType type, std::string_view bytes);
  void readClient(Relay& relay, std::optional<std::uint32_t> exec);
  bool takeClientFrames(Relay& relay, std::optional<std::uint32_t> exec);
  Result<void> handleClientFrame(Relay& relay, const stream::Frame& frame);
  void writeInput(Relay& relay);
  void clientGone(std::optional<std::uint32_t> exec);
  bool flush(Link& link);  // false: the peer is gone

  void retire(Link link, stream::FrameType type, std::string_view payload);
  void keepForReplay(stream::FrameType type, std::string_view bytes);
  static void closeLink(Link& link);

  std::filesystem::path socketPath_;
  session_files::ShimConsole console_;
  int stdoutLog_;
  int stderrLog_;
  ExecLauncher& launcher_;
  int listener_ = -1;
  int childSignals_ = -1;  // signalfd of SIGCHLD

  ChildEnds commandChild_;
  Relay command_;
  pid_t commandPid_ = -1;
  std::optional<int> commandStatus_;
  bool ended_ = false;  // the command ended: attach and exec are refused

  std::deque<ReplayChunk> replay_;
  std::size_t replayBytes_ = 0;

  std::uint64_t nextKey_ = 1;
  std::map<std::uint64_t, Link> pending_;  // connections before their first frame
  std::map<std::uint64_t, Retiring> retiring_;
  std::uint32_t nextExecId_ = 1;
  std::map<std::uint32_t, Exec> execs_;
};

}  // namespace bai::core::shim
