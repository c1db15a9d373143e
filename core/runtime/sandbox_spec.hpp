// What isolates one session, as data: the device nodes it may open, the bind mounts it
// gets, the paths it must not see. The agent builds it from the plugins' prepare_session
// payloads; bai-session-shim builds the sandbox from it (spec.json) and the limits back
// ends turn the device list into the cgroup's fence. Plain data, no system calls.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bai::core {

// A device node a session may open. `major`/`minor` are the node's numbers ('c' or 'b'),
// checked against the node on the host before the session starts.
struct DeviceNode {
  std::filesystem::path path;   // absolute; where the session sees it (the host's node is bound there)
  char type = 'c';              // 'c' character, 'b' block
  std::uint32_t major = 0;
  std::uint32_t minor = 0;
  std::string access = "rw";    // a subset of "rwm", as cgroup v1's devices.allow writes it
};

// Whether `access` is a device access as DeviceNode and DeviceRule carry it: a non-empty
// set of the letters r, w and m, none repeated.
bool isDeviceAccess(std::string_view access);

// A cgroup device rule; `major`/`minor` empty mean every number ('*').
struct DeviceRule {
  char type = 'c';
  std::optional<std::uint32_t> major;
  std::optional<std::uint32_t> minor;
  std::string access = "rw";
};

// The nodes every session gets, whatever its plugins say: /dev/null, zero, full, random,
// urandom, tty, and a private devpts (ptmx, pts/*).
const std::vector<DeviceNode>& baseDeviceNodes();
// The rules of the base set: the nodes above plus c 5:2 (ptmx) and c 136:* (pts).
std::vector<DeviceRule> baseDeviceRules();
// The rule that allows exactly `node`.
DeviceRule ruleFor(const DeviceNode& node);

struct BindMount {
  std::filesystem::path source;  // on the host; must exist
  std::filesystem::path target;  // in the session's filesystem
  bool readOnly = false;
};

// Where the session's working directory appears, as its cwd and HOME.
inline constexpr const char* kSessionHome = "/home/work";

struct Sandbox {
  std::filesystem::path workDir;            // host path, owned by the session's uid, mode 0700
  std::vector<DeviceNode> devices;          // beyond the base set, bound at their paths
  std::vector<BindMount> mounts;            // after the session's own dirs, in order
  std::vector<std::filesystem::path> hidden;  // masked: a dir by an empty read-only tmpfs, a file by /dev/null
  // No cgroup fences devices on this node: the host's filesystem is then also mounted
  // nodev, so that no node outside the sandbox's /dev opens at all.
  bool hostNodev = false;
};

}  // namespace bai::core
