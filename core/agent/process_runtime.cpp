#include "agent/process_runtime.hpp"

#include "runtime/shim_console.hpp"

#include <thread>

namespace bai::core {

Result<std::int64_t> ProcessRuntime::start(const LaunchSpec& spec) {
  if (spec.command.empty()) return fail(ErrorCode::InvalidArgument, "a process session needs a command");
  Sandbox sandbox = spec.isolation.sandbox;
  auto identityFiles = writeIdentityFiles(spec.sessionDir, spec.owner);
  if (!identityFiles) return fail(ErrorCode::Internal, "the session's /etc/passwd: " + identityFiles.error().message);
  sandbox.mounts.insert(sandbox.mounts.begin(), identityFiles->begin(), identityFiles->end());
  auto cgroupProcs = limits_.prepare(spec.sessionId, spec.isolation.limits);
  if (!cgroupProcs) return fail(ErrorCode::Internal, "limits: " + cgroupProcs.error().message);
  std::map<std::string, std::string> env = spec.env;
  if (env.count("PATH") == 0) env["PATH"] = "/usr/local/bin:/usr/bin:/bin";
  RunSpec run{spec.sessionId, spec.sessionDir, spec.command, std::move(env), spec.isolation.limits.cpus,
              std::move(*cgroupProcs)};
  run.runAs = std::pair{static_cast<uid_t>(spec.owner.uid), static_cast<gid_t>(spec.owner.gid)};
  run.sandbox = std::move(sandbox);
  if (spec.openStdin) {
    run.console = session_files::ShimConsole{};
    run.console->tty = spec.tty;
    run.console->replayBytes = spec.replayBytes;
  }
  return launcher_->start(run);
}

namespace {

// The shim's console socket as a session stream.
class ShimStream final : public SessionStream {
 public:
  explicit ShimStream(std::unique_ptr<ShimConsoleConnection> connection) : connection_(std::move(connection)) {}

  std::optional<stream::Frame> read() override {
    if (failed_) return std::nullopt;
    auto frame = connection_->read();
    if (frame) return *frame;
    failed_ = true;  // said once, then the stream ends
    return stream::Frame{stream::FrameType::Error, "the session's console: " + frame.error().message};
  }
  Result<void> write(const stream::Frame& frame) override { return connection_->write(frame); }
  void close() override { connection_->shutdown(); }

 private:
  std::unique_ptr<ShimConsoleConnection> connection_;
  bool failed_ = false;
};

// The shim makes its socket just after it starts, so a session that has only begun to
// run may not have it yet: tried again for a moment before it counts as missing.
Result<std::unique_ptr<SessionStream>> shimStream(
    const std::function<Result<std::unique_ptr<ShimConsoleConnection>>()>& connect) {
  constexpr auto kPatience = std::chrono::seconds(2);
  const auto deadline = std::chrono::steady_clock::now() + kPatience;
  for (;;) {
    auto connection = connect();
    if (connection) return std::unique_ptr<SessionStream>(std::make_unique<ShimStream>(std::move(*connection)));
    if (connection.error().code != ErrorCode::NotFound || std::chrono::steady_clock::now() >= deadline) {
      return Failure{connection.error()};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

Result<std::unique_ptr<SessionStream>> ProcessRuntime::attach(const std::string&, const std::filesystem::path& sessionDir,
                                                              std::optional<stream::TerminalSize> size) {
  return shimStream([&] { return ShimConsoleConnection::attach(sessionDir, size); });
}

Result<std::unique_ptr<SessionStream>> ProcessRuntime::exec(const std::string&, const std::filesystem::path& sessionDir,
                                                            const ExecRequest& request) {
  return shimStream([&] { return ShimConsoleConnection::exec(sessionDir, request); });
}

Result<ServiceEndpoint> ProcessRuntime::serviceEndpoint(const std::string& sessionId,
                                                        const std::vector<protocol::ServicePort>& declared,
                                                        const std::string& name) {
  auto service = findService(declared, sessionId, name);
  if (!service) return Failure{service.error()};
  return ServiceEndpoint{"127.0.0.1", service->port};
}

}  // namespace bai::core
