// Sessions as host processes: bai-session-shim with its sandbox (namespaces, a read-only
// host view, its own /dev and work dir, the owner's uid) inside the session's cgroups,
// which the limits back end makes and removes.
#pragma once

#include "agent/session_runtime.hpp"
#include "runtime/cgroup_limits.hpp"
#include "runtime/session_runner.hpp"

namespace bai::core {

// What the runner does, replaceable in tests.
class ProcessLauncher {
 public:
  virtual ~ProcessLauncher() = default;
  virtual Result<std::int64_t> start(const RunSpec& spec) = 0;
  virtual Result<void> destroy(const std::string& sessionId, std::chrono::milliseconds grace) = 0;
  virtual Result<void> adopt(const std::string& sessionId, const std::filesystem::path& sessionDir) = 0;
};

// The daemon's launcher: the shims, watched by SessionRunner.
class ShimLauncher final : public ProcessLauncher {
 public:
  ShimLauncher(std::filesystem::path shimPath, LogSink log, SessionRunner::ExitCallback onExit)
      : runner_(std::move(shimPath), std::move(log), std::move(onExit)) {}
  Result<std::int64_t> start(const RunSpec& spec) override { return runner_.start(spec); }
  Result<void> destroy(const std::string& sessionId, std::chrono::milliseconds grace) override {
    return runner_.destroy(sessionId, grace);
  }
  Result<void> adopt(const std::string& sessionId, const std::filesystem::path& sessionDir) override {
    return runner_.adopt(sessionId, sessionDir);
  }

 private:
  SessionRunner runner_;
};

class ProcessRuntime final : public SessionRuntime {
 public:
  // `limits` must outlive the runtime.
  ProcessRuntime(std::unique_ptr<ProcessLauncher> launcher, LimitsBackend& limits)
      : launcher_(std::move(launcher)), limits_(limits) {}

  const char* kind() const override { return protocol::kProcessRuntime; }
  protocol::RuntimeReport report() const override { return {protocol::kProcessRuntime, true, ""}; }
  bool fencesDevices() const override { return limits_.fencesDevices(); }
  // Makes the session's cgroups, its /etc/passwd and /etc/group, and starts the shim.
  Result<std::int64_t> start(const LaunchSpec& spec) override;
  Result<void> destroy(const std::string& sessionId, std::chrono::milliseconds grace) override {
    return launcher_->destroy(sessionId, grace);
  }
  Result<void> adopt(const std::string& sessionId, const std::filesystem::path& sessionDir) override {
    return launcher_->adopt(sessionId, sessionDir);
  }
  // Kills what is left in the session's cgroups and removes them.
  Result<void> release(const std::string& sessionId) override { return limits_.release(sessionId); }
  // Through the shim's console socket in the session's dir.
  Result<std::unique_ptr<SessionStream>> attach(const std::string& sessionId, const std::filesystem::path& sessionDir,
                                                std::optional<stream::TerminalSize> size) override;
  Result<std::unique_ptr<SessionStream>> exec(const std::string& sessionId, const std::filesystem::path& sessionDir,
                                              const ExecRequest& request) override;
  // On the node's loopback, at the port the agent gave the service.
  Result<ServiceEndpoint> serviceEndpoint(const std::string& sessionId, const std::vector<protocol::ServicePort>& declared,
                                          const std::string& name) override;
  bool allocatesServicePorts() const override { return true; }

 private:
  std::unique_ptr<ProcessLauncher> launcher_;
  LimitsBackend& limits_;
};

}  // namespace bai::core
