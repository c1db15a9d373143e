// Turns what the plugins' prepare_session returned into what isolates one session: its
// environment, its cgroup limits (with the device fence) and its sandbox (device nodes,
// bind mounts, hidden paths). The agent applies exactly what the plugins say, never the
// slot names: a payload it cannot apply fails the session's start naming plugin and key.
#pragma once

#include "plugin/payloads.hpp"
#include <bai/protocol.hpp>
#include "runtime/cgroup_limits.hpp"
#include "runtime/sandbox_spec.hpp"

#include <bai/result.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace bai::core {

// The agent's side of every session, from its config.
struct IsolationSettings {
  std::uint64_t pidsMax = 4096;
  std::uint64_t defaultMemory = std::uint64_t{1} << 30;  // when no plugin set "memory"
  std::vector<std::filesystem::path> hidden;            // state dir, config, token, key, runtime.hidden-paths
  std::vector<std::filesystem::path> folderMountRoots;  // storage.mount-roots: where folders may be bound from
};

struct PluginPayload {
  std::string plugin;  // its name, for errors
  SessionResources resources;
};

struct Isolation {
  std::map<std::string, std::string> env;  // the plugins' variables, in plugin order
  SessionLimits limits;
  Sandbox sandbox;  // workDir left empty: the lifecycle makes it
  // In a container: the CDI names the plugins gave (the engine injects their nodes and
  // files), and the device nodes and mounts of the plugins that gave none.
  std::vector<std::string> cdiDevices{};
  std::vector<DeviceNode> containerDevices{};
  std::vector<BindMount> containerMounts{};
};

// stat(2), replaceable in tests.
using StatFunction = std::function<int(const std::filesystem::path&, struct stat&)>;
StatFunction kernelStat();

// `fencesDevices`: the limits back end enforces SessionLimits::devices; without it the
// sandbox mounts the host's view nodev instead.
Result<Isolation> assembleIsolation(const std::vector<PluginPayload>& payloads, const IsolationSettings& settings,
                                    bool fencesDevices, const StatFunction& stat = kernelStat());

// The session's working dir: `dir` made (or kept, on a retried create) owned by uid:gid
// with mode 0700, never through a symlink.
Result<void> makeWorkDir(const std::filesystem::path& dir, uid_t uid, gid_t gid);
// Removes it and everything in it; a missing dir is fine.
Result<void> removeWorkDir(const std::filesystem::path& dir);

// The session's /etc/passwd and /etc/group: the host's (from `etc`) plus an entry for its
// owner (home /home/work, shell /bin/sh) where the host has none for that uid or gid, so
// that whoami, getpwuid and the tools that need them work for a uid the node never knew.
// Written into `dir` (root's, mode 0644); returns the read-only mounts over the host's.
Result<std::vector<BindMount>> writeIdentityFiles(const std::filesystem::path& dir, const protocol::SessionOwner& owner,
                                                  const std::filesystem::path& etc = "/etc");

}  // namespace bai::core
