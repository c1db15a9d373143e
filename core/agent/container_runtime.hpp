// Sessions in containers of the images users pick, through a Docker-API engine (Docker, or
// Podman's compatible service). Each session is a container named bai-<session id> and
// labelled with the session and this agent, created with the owner's uid:gid, the
// plugins' devices, mounts and limits, no capabilities and no new privileges. Its output
// goes to the session's stdout.log and stderr.log as the process runtime's does; one
// thread per session follows it and reports the exit (with the OOM killer's verdict).
// After an agent restart the containers are found again by name and label.
#pragma once

#include "agent/container_console.hpp"
#include "agent/container_settings.hpp"
#include "agent/session_runtime.hpp"
#include "log.hpp"
#include "runtime/container_engine.hpp"
#include "runtime/kernel_oom_log.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace bai::core {

struct ContainerRuntimeOptions {
  std::string agentId;  // its label on every container, and named in errors
  ContainerSettings settings;
  LogSink log;
  SessionExitCallback onExit;
  std::function<void()> changed;  // availability or images changed
  // The kernel's word on OOM kills, for an engine that does not report them; may be null.
  std::shared_ptr<KernelOomLog> oomLog{};
  SessionStartedCallback onStarted{};  // a session that waited for its image runs
};

// Labels every container of bai carries.
inline constexpr const char* kSessionLabel = "ai.bai.session";
inline constexpr const char* kAgentLabel = "ai.bai.agent";

// The container a session runs in, from what the lifecycle decided (pure; tested alone).
ContainerSpec containerSpecFor(const LaunchSpec& spec, const ContainerSettings& settings, const std::string& agentId);
std::string containerNameOf(const std::string& sessionId);

class ContainerRuntime final : public SessionRuntime {
 public:
  // Reads the engine's state once before returning: an engine that is down makes the
  // runtime unavailable (logged, reported) until a later check finds it up.
  ContainerRuntime(ContainerRuntimeOptions options, std::unique_ptr<ContainerEngine> engine);
  // Stops following the containers; they keep running for the next agent to adopt.
  ~ContainerRuntime() override;
  ContainerRuntime(const ContainerRuntime&) = delete;
  ContainerRuntime& operator=(const ContainerRuntime&) = delete;

  const char* kind() const override { return protocol::kContainerRuntime; }
  protocol::RuntimeReport report() const override;
  bool fencesDevices() const override { return true; }  // the engine's device cgroup
  // Errors: NotFound for an image that is missing and may not be pulled, InvalidArgument
  // when the engine refuses the container or its command; Internal when the engine fails.
  // An image to pull first answers kStillPreparing: the pull runs on a thread of its own,
  // and onStarted or onExit follows.
  Result<std::int64_t> start(const LaunchSpec& spec) override;
  Result<void> destroy(const std::string& sessionId, std::chrono::milliseconds grace) override;
  Result<void> adopt(const std::string& sessionId, const std::filesystem::path& sessionDir) override;
  Result<void> release(const std::string& sessionId) override;
  void sweep(const std::set<std::string>& active) override;
  std::vector<protocol::ImageSummary> images() const override;
  void refresh() override { check(); }
  Result<std::unique_ptr<SessionStream>> attach(const std::string& sessionId, const std::filesystem::path& sessionDir,
                                                std::optional<stream::TerminalSize> size) override;
  // Through the engine's exec, as the container's user, with its env and the request's.
  Result<std::unique_ptr<SessionStream>> exec(const std::string& sessionId, const std::filesystem::path& sessionDir,
                                              const ExecRequest& request) override;
  // At the container's address on its network, at the service's own port.
  Result<ServiceEndpoint> serviceEndpoint(const std::string& sessionId, const std::vector<protocol::ServicePort>& declared,
                                          const std::string& name) override;
  bool allocatesServicePorts() const override { return false; }

 private:
  struct Watch;
  using Clock = std::chrono::steady_clock;

  // Reads availability and images; reports a change.
  void check();
  void checkLoop();
  void killLoop();
  // Whether the image must be pulled first; NotFound when it is missing under `never`.
  Result<bool> needsPull(const LaunchSpec& spec);
  Result<void> pullImage(const LaunchSpec& spec);
  // Creates, attaches to and starts its container; `watch` then follows it.
  Result<void> launch(const LaunchSpec& spec, const std::shared_ptr<Watch>& watch);
  // A session whose image is pulled first: pull, then launch and follow, or report why not.
  void pullThenRun(const LaunchSpec& spec, std::shared_ptr<Watch> watch);
  // Follows one session until its end is reported (or the runtime stops).
  void follow(const std::string& sessionId, std::shared_ptr<Watch> watch);
  // Appends its output from the engine's logs, skipping what the files already have.
  void catchUpOutput(const std::string& name, Watch& watch, bool untilEnd);
  ExitStatus exitOf(const ContainerState& state, std::optional<std::int64_t> memoryBytes);
  void deliver(const std::string& sessionId, const ExitStatus& status);
  void startFollowing(const std::string& sessionId, std::shared_ptr<Watch> watch);
  bool pause(std::chrono::milliseconds duration);  // false when the runtime stops meanwhile
  std::shared_ptr<ContainerConsole> consoleOf(const std::string& sessionId);
  void joinFinished();

  const ContainerRuntimeOptions options_;
  const std::unique_ptr<ContainerEngine> engine_;

  mutable std::mutex stateMutex_;  // availability and images
  protocol::RuntimeReport report_;
  std::vector<protocol::ImageSummary> images_;

  std::mutex mutex_;  // the watches and the pending kills
  std::condition_variable wake_;
  std::map<std::string, std::shared_ptr<Watch>> watches_;
  std::vector<std::thread> finished_;  // threads of delivered sessions, joined later
  std::multimap<Clock::time_point, std::string> kills_;  // SIGKILL due after a destroy's grace
  std::atomic<bool> stopping_{false};

  std::thread checker_;
  std::thread killer_;
};

// The agent's container runtime over the engine at settings.engineSocket.
std::unique_ptr<SessionRuntime> makeContainerRuntime(ContainerRuntimeOptions options);

}  // namespace bai::core
