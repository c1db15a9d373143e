#include "agent/process_runtime.hpp"

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
  return launcher_->start(run);
}

}  // namespace bai::core
