// Test support for the integration tests that run the real daemons: spawning a child
// with its output appended to log files, and the agent.toml they give a real bai-agent.
#pragma once

#include "wait.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/types.h>

#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace bai::testing {

// Spawns args[0] with args, stdout appended to `out` and stderr to `err` (the same
// descriptor when they are the same file), in `cwd` when given; envp defaults to
// this process's environment. The pid, or 0 when it could not be spawned.
inline pid_t spawnLogged(const std::vector<std::string>& args, const std::filesystem::path& out,
                         const std::filesystem::path& err, char* const* envp = environ,
                         const std::filesystem::path& cwd = {}) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (err == out) {
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
  } else {
    posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  pid_t pid = 0;
  if (posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp) != 0) pid = 0;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// The agent.toml of a real bai-agent with the cpu and mock plugins (their dirs, the
// shim and the mock configs from BAI_* variables), its state under `dir`, no cgroups.
inline std::string agentToml(const std::string& id, const std::string& managerUrl, const std::filesystem::path& tokenFile,
                             const std::filesystem::path& dir, double heartbeatInterval, const std::string& mockConfig) {
  std::ostringstream toml;
  toml << "[agent]\n"
       << "id = \"" << id << "\"\n"
       << "rpc-listen-addr = \"127.0.0.1:0\"\n"
       << "manager-url = \"" << managerUrl << "\"\n"
       << "cluster-token-file = \"" << tokenFile.string() << "\"\n"
       << "state-dir = \"" << (dir / "state").string() << "\"\n"
       << "plugin-path = [\"" << env("BAI_CPU_PLUGIN_DIR") << "\", \"" << env("BAI_MOCK_PLUGIN_DIR") << "\"]\n"
       << "heartbeat-interval = " << heartbeatInterval << "\n"
       << "[runtime]\n"
       << "shim-path = \"" << env("BAI_SESSION_SHIM") << "\"\n"
       << "destroy-grace = 1\n"
       << "cgroup-root = \"" << (dir / "no-cgroups").string() << "\"\n"
       << "[plugins.mock]\n"
       << "config_file = \"" << env("BAI_MOCK_CONFIG_DIR") << "/" << mockConfig << "\"\n";
  return toml.str();
}

// A [plugins.mock] key that binds `dir` (made writable by any session's uid) into every
// session at the same path: sessions see the host read-only, so a test that wants to see
// what its sessions write gives them this dir through the plugins' `mounts`.
inline std::string mockWritableMount(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::filesystem::permissions(dir, std::filesystem::perms::all);
  return "session_extra = { mounts = [ { source = \"" + dir.string() + "\", target = \"" + dir.string() + "\" } ] }\n";
}

}  // namespace bai::testing
