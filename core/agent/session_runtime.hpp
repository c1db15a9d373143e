// How a session's command runs, behind one interface: as a sandboxed host process
// (ProcessRuntime, bai-session-shim) or in a container of an image (ContainerRuntime, a
// Docker-API engine). The lifecycle decides what the session gets (owner, env, the
// plugins' isolation) and hands it over as a LaunchSpec; start, stop, exit, logs, recovery
// after a restart and cleanup go through the runtime, and nothing above it knows which runs.
#pragma once

#include "agent/session_isolation.hpp"
#include "agent/session_stream.hpp"
#include "runtime/session_runner.hpp"

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace bai::core {

// Everything a runtime needs to run one session.
struct LaunchSpec {
  std::string sessionId;
  std::filesystem::path sessionDir;  // the record's dir: its stdout.log and stderr.log are the session's logs
  std::vector<std::string> command;  // empty: the image's default (containers only)
  std::map<std::string, std::string> env;  // the request's, the plugins', then the agent's
  protocol::SessionOwner owner;
  Isolation isolation;  // limits, device nodes, mounts, CDI devices; sandbox.workDir made by the lifecycle
  std::optional<std::string> image{};
  protocol::PullPolicy pullPolicy = protocol::PullPolicy::Never;
  bool openStdin = false;  // interactive: its stdin stays open for attach
  bool tty = false;        // on a pseudo-terminal
  std::size_t replayBytes = 64 * 1024;  // output kept for the next attach while none is attached
};

// Where the agent reaches one of a session's services.
struct ServiceEndpoint {
  std::string host;
  std::uint16_t port = 0;
};

// Called exactly once per started or adopted session when it ended, on the runtime's own
// thread; never after the runtime is destroyed. ExitStatus::error set means the session
// failed (its command never ran, it ran out of memory, its container was lost).
using SessionExitCallback = std::function<void(const std::string& sessionId, const ExitStatus& status)>;
// Called once when a session whose start() answered kStillPreparing runs (its image was
// pulled and its container started), on the runtime's own thread.
using SessionStartedCallback = std::function<void(const std::string& sessionId, std::int64_t pid)>;

struct SessionCallbacks {
  SessionExitCallback onExit;
  SessionStartedCallback onStarted;
};

// What start() answers instead of a pid when the session is still being prepared (an
// image is being pulled): it stays PREPARING until onStarted, or ends through onExit.
inline constexpr std::int64_t kStillPreparing = -1;

class SessionRuntime {
 public:
  virtual ~SessionRuntime() = default;

  virtual const char* kind() const = 0;  // protocol::kProcessRuntime or kContainerRuntime
  // Whether it can start sessions now and, when not, why.
  virtual protocol::RuntimeReport report() const = 0;
  // Whether the session's device list is enforced (a cgroup fence, the engine's device
  // cgroup); without it the process sandbox mounts the host's view nodev.
  virtual bool fencesDevices() const = 0;

  // Returns the pid of what runs the session (0 when the runtime has none to tell), or
  // kStillPreparing; a command that cannot run may instead be reported as an exit.
  virtual Result<std::int64_t> start(const LaunchSpec& spec) = 0;
  // SIGTERM now, SIGKILL after `grace` unless it ended; returns at once.
  virtual Result<void> destroy(const std::string& sessionId, std::chrono::milliseconds grace) = 0;
  // After an agent restart: watches again a session an earlier agent process started,
  // reporting its exit if it ended meanwhile.
  virtual Result<void> adopt(const std::string& sessionId, const std::filesystem::path& sessionDir) = 0;
  // Once the session's end is journalled (or its start failed): frees what the runtime
  // still holds for it (its cgroups, its container). An unknown session is fine.
  virtual Result<void> release(const std::string& sessionId) = 0;
  // After recovery: removes what this runtime runs or keeps for sessions outside `active`.
  virtual void sweep(const std::set<std::string>& active) { (void)active; }
  // The images its engine has; empty for a runtime without images.
  virtual std::vector<protocol::ImageSummary> images() const { return {}; }
  // Reads its engine's state again (availability, images) now.
  virtual void refresh() {}

  // A running interactive session's console (its stdin, output and exit), or another
  // command in a running session. NotFound when the session has no console here.
  virtual Result<std::unique_ptr<SessionStream>> attach(const std::string& sessionId,
                                                        const std::filesystem::path& sessionDir,
                                                        std::optional<stream::TerminalSize> size) = 0;
  virtual Result<std::unique_ptr<SessionStream>> exec(const std::string& sessionId, const std::filesystem::path& sessionDir,
                                                      const ExecRequest& request) = 0;
  // Where its service `name` listens: among `declared` (the session's own, with the
  // ports its runtime gave them) or, in a container, its image's label. NotFound naming
  // the services it has.
  virtual Result<ServiceEndpoint> serviceEndpoint(const std::string& sessionId,
                                                  const std::vector<protocol::ServicePort>& declared,
                                                  const std::string& name) = 0;
  // Whether its services listen on ports the agent hands out (a process shares the
  // node's network) rather than on the ports they declare (a container's own).
  virtual bool allocatesServicePorts() const = 0;
};

// `name` among `services`, or NotFound naming those there are.
Result<protocol::ServicePort> findService(const std::vector<protocol::ServicePort>& services, const std::string& sessionId,
                                          const std::string& name);

// Builds the agent's runtimes, each with the lifecycle's callbacks.
using RuntimeFactory = std::function<std::vector<std::unique_ptr<SessionRuntime>>(SessionCallbacks)>;

}  // namespace bai::core
