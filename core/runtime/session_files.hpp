// The files of a session dir, written and read by the agent's SessionRunner and by
// bai-session-shim. Their formats are defined here once:
//   spec.json    agent → shim  what to run (ShimSpec)
//   shim.json    agent         {"pid", "start_time"}: recognises the shim after an agent restart
//   command.pid  shim → agent  "PID PGID\n" of the command, written right after fork
//   exit.json    shim → agent  {"exit_code", "signal"?, "ended_at_ms", "error"?}
//   shim.log     the shim's own stdout/stderr (why a spec was unusable)
//   console.sock shim ↔ agent  a session's execs and, if interactive, its console, while
//                its shim runs (runtime/console_protocol.hpp, runtime/shim_console.hpp)
// Every record is replaced atomically (temp file + rename).
#pragma once

#include "bai/result.hpp"
#include "runtime/sandbox_spec.hpp"

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <utility>
#include <vector>

namespace bai::core::session_files {

inline constexpr const char* kSpec = "spec.json";
inline constexpr const char* kShimIdentity = "shim.json";
inline constexpr const char* kCommandIds = "command.pid";
inline constexpr const char* kExit = "exit.json";
inline constexpr const char* kShimLog = "shim.log";

// An interactive session's console (spec.json "console": {"tty", "rows", "cols",
// "replay_bytes"}): the shim keeps the command's stdin open and serves it, its output
// and its execs on SESSION_DIR/console.sock (runtime/shim_console.hpp).
struct ShimConsole {
  bool tty = false;  // a pseudo-terminal of rows x cols; else pipes
  std::uint16_t rows = 24;
  std::uint16_t cols = 80;
  std::size_t replayBytes = 64 * 1024;  // output kept for the next attach while none is attached
};

struct ShimSpec {
  std::vector<std::string> command;          // argv; argv[0] is looked up in env's PATH
  std::map<std::string, std::string> env;    // the command's complete environment
  std::optional<std::filesystem::path> cwd;  // entered after dropping privileges
  std::vector<int> cpus;                     // CPU affinity; empty keeps the shim's
  std::vector<std::filesystem::path> cgroupProcs;  // cgroup.procs files the command joins
  std::optional<std::pair<uid_t, gid_t>> runAs;    // only honoured when the shim runs as root
  std::filesystem::path stdoutPath;
  std::filesystem::path stderrPath;
  // With a sandbox the command runs in new PID, mount, IPC and UTS namespaces under a
  // small init, sees the host read-only, its work dir at kSessionHome, private /proc,
  // /tmp, /dev/shm and a /dev of the allowed nodes only, with no_new_privs and no
  // capabilities. Needs the shim to run as root and `run_as`. `cwd` is then a path in
  // the sandbox (default kSessionHome). In spec.json: "sandbox": {"work_dir", "devices":
  // [{"path", "type": "c"|"b", "major", "minor", "access"}], "mounts": [{"source",
  // "target", "read_only"}], "hidden": [paths], "host_nodev"}; paths absolute, no "..",
  // at most 256 entries per list.
  std::optional<Sandbox> sandbox{};
  std::optional<ShimConsole> console{};  // absent: stdin is /dev/null (execs are served either way)
};

std::string renderShimSpec(const ShimSpec& spec);
// Rejects anything the shim could not run, with a reason naming the offending field.
Result<ShimSpec> parseShimSpec(std::string_view text);

struct CommandIds {
  pid_t pid = 0;
  pid_t pgid = 0;
};
std::string renderCommandIds(const CommandIds& ids);
Result<CommandIds> parseCommandIds(std::string_view text);

struct RecordedExit {
  int exitCode = 0;            // 128 + signal when the command was killed by a signal
  std::optional<int> signal;
  std::int64_t endedAtMillis = 0;
  std::string error;           // why the command never ran (exec or setup failure); else empty
};
std::string renderRecordedExit(const RecordedExit& exit);
Result<RecordedExit> parseRecordedExit(std::string_view text);

struct ShimIdentity {
  pid_t pid = 0;
  std::uint64_t startTime = 0;  // field 22 of /proc/PID/stat, in clock ticks since boot
};
std::string renderShimIdentity(const ShimIdentity& identity);
Result<ShimIdentity> parseShimIdentity(std::string_view text);

}  // namespace bai::core::session_files
