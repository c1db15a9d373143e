#include "runtime/session_files.hpp"

#include "parse_json.hpp"

#include <charconv>
#include <nlohmann/json.hpp>
#include <sched.h>
#include <tuple>

namespace bai::core::session_files {
namespace {

using nlohmann::json;

Result<json> parseObject(std::string_view text, const char* file) {
  auto document = parseJson(text);
  if (!document) {
    return fail(ErrorCode::InvalidArgument, std::string(file) + ": not valid JSON (" + document.error().message + ")");
  }
  if (!document->is_object()) return fail(ErrorCode::InvalidArgument, std::string(file) + ": not a JSON object");
  return document;
}

Failure<Error> badField(const char* field, const char* expected) {
  return fail(ErrorCode::InvalidArgument, std::string("spec.json: '") + field + "' must be " + expected);
}

bool isStringArray(const json& value) {
  if (!value.is_array()) return false;
  for (const json& item : value) {
    if (!item.is_string()) return false;
  }
  return true;
}

bool isNonNegativeInteger(const json& value, std::int64_t max) {
  return value.is_number_integer() && value.get<std::int64_t>() >= 0 && value.get<std::int64_t>() <= max;
}

Result<void> readCommand(const json& spec, ShimSpec& out) {
  auto found = spec.find("command");
  if (found == spec.end() || !isStringArray(*found) || found->empty()) {
    return badField("command", "a non-empty array of strings");
  }
  out.command = found->get<std::vector<std::string>>();
  if (out.command[0].empty()) return badField("command", "an array whose first string is not empty");
  return {};
}

Result<void> readEnv(const json& spec, ShimSpec& out) {
  auto found = spec.find("env");
  if (found == spec.end() || !found->is_object()) return badField("env", "an object of strings");
  for (const auto& [key, value] : found->items()) {
    if (!value.is_string() || key.empty() || key.find('=') != std::string::npos) {
      return badField("env", "an object of strings whose names are not empty and hold no '='");
    }
    out.env[key] = value.get<std::string>();
  }
  return {};
}

Result<void> readOptionalFields(const json& spec, ShimSpec& out) {
  if (auto cwd = spec.find("cwd"); cwd != spec.end()) {
    if (!cwd->is_string() || cwd->get<std::string>().empty()) return badField("cwd", "a non-empty string");
    out.cwd = cwd->get<std::string>();
  }
  if (auto cpus = spec.find("cpus"); cpus != spec.end()) {
    if (!cpus->is_array()) return badField("cpus", "an array of CPU numbers");
    for (const json& cpu : *cpus) {
      if (!isNonNegativeInteger(cpu, CPU_SETSIZE - 1)) return badField("cpus", "an array of CPU numbers");
      out.cpus.push_back(cpu.get<int>());
    }
  }
  if (auto procs = spec.find("cgroup_procs"); procs != spec.end()) {
    if (!isStringArray(*procs)) return badField("cgroup_procs", "an array of paths");
    for (const json& file : *procs) out.cgroupProcs.emplace_back(file.get<std::string>());
  }
  if (auto runAs = spec.find("run_as"); runAs != spec.end()) {
    constexpr std::int64_t kMaxId = 0xfffffffe;  // (uid_t)-1 means "unchanged" to setuid
    if (!runAs->is_object() || !isNonNegativeInteger(runAs->value("uid", json()), kMaxId) ||
        !isNonNegativeInteger(runAs->value("gid", json()), kMaxId)) {
      return badField("run_as", "an object with integer 'uid' and 'gid'");
    }
    out.runAs = std::make_pair(runAs->at("uid").get<uid_t>(), runAs->at("gid").get<gid_t>());
  }
  return {};
}

Result<void> readLogPaths(const json& spec, ShimSpec& out) {
  for (auto [field, target] : {std::pair{"stdout", &out.stdoutPath}, std::pair{"stderr", &out.stderrPath}}) {
    auto found = spec.find(field);
    if (found == spec.end() || !found->is_string() || found->get<std::string>().empty()) {
      return badField(field, "a file path");
    }
    *target = found->get<std::string>();
  }
  return {};
}

// Bounds on what one spec may ask for: generous for any real node, small enough that a
// corrupt spec cannot make the shim build thousands of mounts.
constexpr std::size_t kMaxSandboxEntries = 256;
constexpr std::size_t kMaxPathLength = 4095;
constexpr std::int64_t kMaxDeviceMajor = (1 << 12) - 1;  // the kernel's dev_t: 12-bit major, 20-bit minor
constexpr std::int64_t kMaxDeviceMinor = (1 << 20) - 1;

// Absolute, bounded, without ".." components: the shim resolves it inside the new root.
bool isSandboxPath(const json& value) {
  if (!value.is_string()) return false;
  const std::string& text = value.get_ref<const std::string&>();
  if (text.empty() || text.front() != '/' || text.size() > kMaxPathLength || text.find('\0') != std::string::npos) {
    return false;
  }
  for (const auto& component : std::filesystem::path(text)) {
    if (component == "..") return false;
  }
  return true;
}

bool isAccess(const json& value) {
  if (!value.is_string()) return false;
  return isDeviceAccess(value.get_ref<const std::string&>());
}

Result<void> readSandboxDevices(const json& sandbox, Sandbox& out) {
  json devices = sandbox.value("devices", json::array());
  if (!devices.is_array() || devices.size() > kMaxSandboxEntries) {
    return badField("sandbox.devices", "an array of at most 256 device nodes");
  }
  for (const json& device : devices) {
    const char* expected =
        "an array of {\"path\": absolute path, \"type\": \"c\" or \"b\", \"major\", \"minor\", \"access\": subset of \"rwm\"}";
    if (!device.is_object()) return badField("sandbox.devices", expected);
    json type = device.value("type", json());
    if (!isSandboxPath(device.value("path", json())) || !type.is_string() ||
        (type != "c" && type != "b") || !isNonNegativeInteger(device.value("major", json()), kMaxDeviceMajor) ||
        !isNonNegativeInteger(device.value("minor", json()), kMaxDeviceMinor) || !isAccess(device.value("access", json()))) {
      return badField("sandbox.devices", expected);
    }
    out.devices.push_back(DeviceNode{device["path"].get<std::string>(), type.get<std::string>()[0],
                                     device["major"].get<std::uint32_t>(), device["minor"].get<std::uint32_t>(),
                                     device["access"].get<std::string>()});
  }
  return {};
}

Result<void> readSandboxMounts(const json& sandbox, Sandbox& out) {
  json mounts = sandbox.value("mounts", json::array());
  if (!mounts.is_array() || mounts.size() > kMaxSandboxEntries) {
    return badField("sandbox.mounts", "an array of at most 256 bind mounts");
  }
  for (const json& mount : mounts) {
    json readOnly = mount.is_object() ? mount.value("read_only", json(false)) : json();
    if (!mount.is_object() || !isSandboxPath(mount.value("source", json())) ||
        !isSandboxPath(mount.value("target", json())) || !readOnly.is_boolean()) {
      return badField("sandbox.mounts",
                      "an array of {\"source\", \"target\": absolute paths without '..', \"read_only\": boolean}");
    }
    out.mounts.push_back(
        BindMount{mount["source"].get<std::string>(), mount["target"].get<std::string>(), readOnly.get<bool>()});
  }
  return {};
}

Result<void> readSandbox(const json& spec, ShimSpec& out) {
  auto found = spec.find("sandbox");
  if (found == spec.end()) return {};
  const json& sandbox = *found;
  if (!sandbox.is_object()) return badField("sandbox", "an object");
  Sandbox parsed;
  if (!isSandboxPath(sandbox.value("work_dir", json()))) {
    return badField("sandbox.work_dir", "an absolute path without '..'");
  }
  parsed.workDir = sandbox["work_dir"].get<std::string>();
  if (Result<void> devices = readSandboxDevices(sandbox, parsed); !devices.ok()) return devices;
  if (Result<void> mounts = readSandboxMounts(sandbox, parsed); !mounts.ok()) return mounts;
  json hidden = sandbox.value("hidden", json::array());
  if (!hidden.is_array() || hidden.size() > kMaxSandboxEntries) {
    return badField("sandbox.hidden", "an array of at most 256 absolute paths");
  }
  for (const json& path : hidden) {
    if (!isSandboxPath(path)) return badField("sandbox.hidden", "an array of absolute paths without '..'");
    parsed.hidden.emplace_back(path.get<std::string>());
  }
  json hostNodev = sandbox.value("host_nodev", json(false));
  if (!hostNodev.is_boolean()) return badField("sandbox.host_nodev", "a boolean");
  parsed.hostNodev = hostNodev.get<bool>();
  // The sandbox drops every privilege: the command must have a user to become.
  if (!out.runAs) return badField("run_as", "given with 'sandbox'");
  out.sandbox = std::move(parsed);
  return {};
}

json renderSandbox(const Sandbox& sandbox) {
  json devices = json::array();
  for (const DeviceNode& node : sandbox.devices) {
    devices.push_back({{"path", node.path.string()}, {"type", std::string(1, node.type)}, {"major", node.major},
                       {"minor", node.minor}, {"access", node.access}});
  }
  json mounts = json::array();
  for (const BindMount& mount : sandbox.mounts) {
    mounts.push_back({{"source", mount.source.string()}, {"target", mount.target.string()}, {"read_only", mount.readOnly}});
  }
  json hidden = json::array();
  for (const auto& path : sandbox.hidden) hidden.push_back(path.string());
  return {{"work_dir", sandbox.workDir.string()}, {"devices", std::move(devices)}, {"mounts", std::move(mounts)},
          {"hidden", std::move(hidden)}, {"host_nodev", sandbox.hostNodev}};
}

// Generous for any terminal's scrollback, small enough that a corrupt spec cannot make
// the shim hold much memory while no client is attached.
constexpr std::int64_t kMaxReplayBytes = 16 << 20;

Result<void> readConsole(const json& spec, ShimSpec& out) {
  auto found = spec.find("console");
  if (found == spec.end()) return {};
  const json& console = *found;
  if (!console.is_object()) return badField("console", "an object");
  ShimConsole parsed;
  json tty = console.value("tty", json(false));
  if (!tty.is_boolean()) return badField("console.tty", "a boolean");
  parsed.tty = tty.get<bool>();
  for (auto [key, field, target] :
       {std::tuple{"rows", "console.rows", &parsed.rows}, std::tuple{"cols", "console.cols", &parsed.cols}}) {
    json value = console.value(key, json(*target));
    if (!isNonNegativeInteger(value, 0xffff) || value.get<std::int64_t>() == 0) {
      return badField(field, "an integer from 1 to 65535");
    }
    *target = value.get<std::uint16_t>();
  }
  json replay = console.value("replay_bytes", json(parsed.replayBytes));
  if (!isNonNegativeInteger(replay, kMaxReplayBytes)) {
    return badField("console.replay_bytes", "an integer from 0 to 16777216");
  }
  parsed.replayBytes = replay.get<std::size_t>();
  out.console = parsed;
  return {};
}

bool isPositivePid(const json& value) {
  constexpr std::int64_t kMaxPid = 1 << 22;  // PID_MAX_LIMIT on 64-bit Linux
  return value.is_number_integer() && value.get<std::int64_t>() > 0 && value.get<std::int64_t>() <= kMaxPid;
}

template <class Number>
bool parseNumber(std::string_view text, Number& out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string renderShimSpec(const ShimSpec& spec) {
  json document = {{"command", spec.command}, {"env", spec.env},
                   {"stdout", spec.stdoutPath.string()}, {"stderr", spec.stderrPath.string()}};
  if (spec.cwd) document["cwd"] = spec.cwd->string();
  if (!spec.cpus.empty()) document["cpus"] = spec.cpus;
  if (!spec.cgroupProcs.empty()) {
    json files = json::array();
    for (const auto& file : spec.cgroupProcs) files.push_back(file.string());
    document["cgroup_procs"] = std::move(files);
  }
  if (spec.runAs) document["run_as"] = {{"uid", spec.runAs->first}, {"gid", spec.runAs->second}};
  if (spec.sandbox) document["sandbox"] = renderSandbox(*spec.sandbox);
  if (spec.console) {
    document["console"] = {{"tty", spec.console->tty}, {"rows", spec.console->rows}, {"cols", spec.console->cols},
                           {"replay_bytes", spec.console->replayBytes}};
  }
  return document.dump() + "\n";
}

Result<ShimSpec> parseShimSpec(std::string_view text) {
  Result<json> document = parseObject(text, kSpec);
  if (!document.ok()) return Failure{document.error()};
  ShimSpec spec;
  for (auto read : {readCommand, readEnv, readOptionalFields, readLogPaths, readSandbox, readConsole}) {
    if (Result<void> field = read(*document, spec); !field.ok()) return Failure{field.error()};
  }
  return spec;
}

std::string renderCommandIds(const CommandIds& ids) {
  return std::to_string(ids.pid) + " " + std::to_string(ids.pgid) + "\n";
}

Result<CommandIds> parseCommandIds(std::string_view text) {
  if (!text.empty() && text.back() == '\n') text.remove_suffix(1);
  std::size_t space = text.find(' ');
  CommandIds ids;
  if (space == std::string_view::npos || !parseNumber(text.substr(0, space), ids.pid) ||
      !parseNumber(text.substr(space + 1), ids.pgid) || ids.pid <= 0 || ids.pgid <= 0) {
    return fail(ErrorCode::InvalidArgument, std::string(kCommandIds) + ": expected \"PID PGID\"");
  }
  return ids;
}

std::string renderRecordedExit(const RecordedExit& exit) {
  json document = {{"exit_code", exit.exitCode}, {"ended_at_ms", exit.endedAtMillis}};
  if (exit.signal) document["signal"] = *exit.signal;
  if (!exit.error.empty()) document["error"] = exit.error;
  return document.dump() + "\n";
}

Result<RecordedExit> parseRecordedExit(std::string_view text) {
  Result<json> document = parseObject(text, kExit);
  if (!document.ok()) return Failure{document.error()};
  const json& record = *document;
  RecordedExit exit;
  json code = record.value("exit_code", json());
  json ended = record.value("ended_at_ms", json());
  json signal = record.value("signal", json());
  json error = record.value("error", json(""));
  if (!code.is_number_integer() || !ended.is_number_integer() || !(signal.is_null() || signal.is_number_integer()) ||
      !error.is_string()) {
    return fail(ErrorCode::InvalidArgument, std::string(kExit) + ": unexpected fields");
  }
  exit.exitCode = code.get<int>();
  exit.endedAtMillis = ended.get<std::int64_t>();
  if (signal.is_number_integer()) exit.signal = signal.get<int>();
  exit.error = error.get<std::string>();
  return exit;
}

std::string renderShimIdentity(const ShimIdentity& identity) {
  return json{{"pid", identity.pid}, {"start_time", identity.startTime}}.dump() + "\n";
}

Result<ShimIdentity> parseShimIdentity(std::string_view text) {
  Result<json> document = parseObject(text, kShimIdentity);
  if (!document.ok()) return Failure{document.error()};
  json pid = document->value("pid", json());
  json startTime = document->value("start_time", json());
  if (!isPositivePid(pid) || !startTime.is_number_unsigned()) {
    return fail(ErrorCode::InvalidArgument, std::string(kShimIdentity) + ": expected integer 'pid' and 'start_time'");
  }
  return ShimIdentity{pid.get<pid_t>(), startTime.get<std::uint64_t>()};
}

}  // namespace bai::core::session_files
