// The wire protocol between agent and manager, and the agent's RPC: every JSON shape
// defined once, with parsing that validates and serialisation that round-trips. Both
// daemons and the tests use these types; nothing else writes these documents by hand.
#pragma once

#include <bai/result.hpp>
#include <bai/service_port.hpp>
#include <bai/slots.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bai::protocol {

// Bumped on an incompatible change; a peer answers a newer version with an error.
inline constexpr int kVersion = 1;

// A log read (GET .../logs?stream=&offset=&limit=&tail=) answers at most this many bytes,
// however many were asked for, so that concurrent reads hold bounded memory in both
// daemons. Its headers say where the page lies, so a reader pages to the end:
inline constexpr std::uint64_t kLogPageBytes = 1u << 20;
inline constexpr const char* kLogOffsetHeader = "X-Bai-Log-Offset";         // where this page starts
inline constexpr const char* kLogNextOffsetHeader = "X-Bai-Log-Next-Offset";  // where the next one starts
inline constexpr const char* kLogSizeHeader = "X-Bai-Log-Size";             // the stream's length when read

// slot -> device id -> amount: what one session holds on one agent.
using DeviceAllocation = std::map<std::string, std::map<std::string, Quantity>>;

enum class SessionState { Pending, Preparing, Running, Exited, Failed, Destroyed };
const char* sessionStateName(SessionState state);
Result<SessionState> parseSessionState(std::string_view text);

struct PluginReport {
  std::string name, version, key;
  std::string extraInfoJson = "{}";  // the plugin's describe() extra_info, as JSON text
  // Set once a call into it hung ("health did not return within 5000 ms"): its devices
  // take no new sessions and count as capacity only for what sessions still hold.
  std::optional<std::string> withdrawn{};
};

struct DeviceHealthReport {
  std::string pluginKey, deviceId, health, reason;
};

// How an agent can run sessions: as a sandboxed host process (bai-session-shim) or in a
// container of an image, through a container engine. A configured runtime that cannot run
// sessions now (the engine is down) is reported with its reason.
inline constexpr const char* kProcessRuntime = "process";
inline constexpr const char* kContainerRuntime = "container";
bool isRuntimeKind(std::string_view kind);

struct RuntimeReport {
  std::string kind;        // kProcessRuntime or kContainerRuntime
  bool available = true;
  std::string reason;      // why not, when not available
};

// An image the agent's container engine has, by one of its names.
struct ImageSummary {
  std::string name;  // as the engine lists it: "localhost/bai-test/busybox:1"
  std::string id;    // "sha256:..."
  std::int64_t sizeBytes = 0;
};

// What an agent does when a session's image is not on its engine.
enum class PullPolicy { Never, IfMissing, Always };
const char* pullPolicyName(PullPolicy policy);  // "never", "if-missing", "always"
Result<PullPolicy> parsePullPolicy(std::string_view text);

struct SessionSummary {
  std::string id;
  SessionState state = SessionState::Running;
};

// Everything the manager keeps about an agent; sent in full on registration, after an
// outage, when it changed, or when the manager asks.
struct AgentState {
  std::string rpcAddress;
  std::string region;
  std::string scalingGroup;
  std::string architecture;
  std::string version;
  ResourceSlot available;           // capacity offered to sessions (after reservations)
  ResourceSlot occupied;            // held by sessions now
  ResourceSlot largestAllocatable;  // the largest amount one new session can get, per slot
  std::map<std::string, SlotType> slotTypes;
  // The step each slot is granted in (1 for whole units, 0.01 for a fraction map that
  // grants hundredths); a slot left out takes any amount its type allows.
  std::map<std::string, Quantity> slotQuanta;
  std::vector<PluginReport> plugins;
  std::vector<DeviceHealthReport> deviceHealth;
  std::vector<SessionSummary> sessions;
  // Absent from an agent older than runtimes: it runs processes only.
  std::vector<RuntimeReport> runtimes{};
  std::vector<ImageSummary> images{};  // what its container engine has; empty without one
};

// POST /v1/agents/{id}/heartbeat. `digest` changes whenever the state does; the state
// travels only when `state` is set.
struct Heartbeat {
  std::string agentId;
  std::uint64_t digest = 0;
  std::optional<AgentState> state;

  std::string toJson() const;
  static Result<Heartbeat> fromJson(std::string_view json);
};

struct HeartbeatReply {
  bool sendFull = false;  // the manager's copy is stale: send the whole state next time

  std::string toJson() const;
  static Result<HeartbeatReply> fromJson(std::string_view json);
};

enum class EventKind { Started, Exited, Failed };
const char* eventKindName(EventKind kind);

struct SessionEvent {
  std::uint64_t seq = 0;  // per agent, increasing; the manager acknowledges by it
  std::string sessionId;
  EventKind kind = EventKind::Started;
  std::optional<int> exitCode;  // Exited
  std::string reason;           // Failed
  std::int64_t atMillis = 0;    // Unix time in milliseconds
};

// POST /v1/agents/{id}/events
struct EventBatch {
  std::string agentId;
  std::vector<SessionEvent> events;

  std::string toJson() const;
  static Result<EventBatch> fromJson(std::string_view json);
};

struct EventAck {
  std::uint64_t ackedThrough = 0;  // every event with seq <= this is stored

  std::string toJson() const;
  static Result<EventAck> fromJson(std::string_view json);
};

// ---- The agent's RPC -----------------------------------------------------------------

// A session id is 1 to 128 letters, digits, '-' or '_': the alphabet of the ids the
// manager makes (16 hex digits) and of any id the agent accepts. An id names a directory
// under the agent's state dir, so no '.' or '/' is ever part of one.
bool isSessionId(std::string_view id);

// Whose session it is: the identity its processes run as. The manager gives every user a
// stable uid/gid; the agent checks them against its own allowed ranges before using them.
struct SessionOwner {
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string name;  // USER and LOGNAME; 1 to 64 letters, digits, '.', '-', '_' or '@'
};

// The highest uid or gid a session may run as: 4294967295 is (uid_t)-1, "unchanged" to
// setuid(2), never an identity. The manager allocates and the agent accepts below it.
inline constexpr std::uint32_t kMaxOwnerId = 4294967294;

// The owner's name rule, shared by the manager (which sends it) and the agent.
bool isOwnerName(std::string_view name);

// POST /v1/sessions: idempotent by id.
// A session's service (bai/service_port.hpp). A process session shares the node's
// network, so its services listen on the loopback ports the agent allocates and passes
// in BAI_SERVICE_PORT_<NAME> (also set, to `port`, in containers).
using ServicePort = bai::ServicePort;
// The label's whole value: items separated by ','; duplicates and bad items are errors.
Result<std::vector<ServicePort>> parseServicePortList(std::string_view text);
// BAI_SERVICE_PORT_<NAME>: the name upper-cased, '-' as '_'.
std::string servicePortEnvName(std::string_view serviceName);
inline constexpr std::string_view kServicePortsLabel = "ai.backend.service-ports";
inline constexpr std::size_t kMaxServicePorts = 16;

// A storage folder bound into a session: `source` is the folder's directory on the node
// (a volume the storage proxy serves, mounted at the same path on every agent), `target`
// where the session sees it. The agent binds only sources under its [storage]
// mount-roots, read-only through the kernel when `readOnly`.
struct FolderMount {
  std::string folderId;  // the manager's id, for the agent's records and errors
  std::string source;    // absolute
  std::string target;    // isMountTarget
  bool readOnly = false;

  bool operator==(const FolderMount&) const = default;
};
inline constexpr std::size_t kMaxFolderMounts = 16;
inline constexpr std::string_view kMountTargetRoot = "/home/work";
// Below /home/work (not it): absolute, components separated by single '/', none "." or
// "..", at most 1024 bytes, no control characters.
bool isMountTarget(std::string_view target);

struct CreateSessionRequest {
  std::string sessionId;
  std::vector<std::string> command;  // argv; command[0] is looked up in PATH; empty only with an image
  std::map<std::string, std::string> env;
  ResourceSlot slots;
  // Absent only from a manager older than identities: the agent then refuses the session.
  std::optional<SessionOwner> owner{};
  // With an image the session runs in a container (kContainerRuntime) and `command` may
  // be empty (the image's default); without one it runs as a host process.
  std::optional<std::string> image{};
  PullPolicy pullPolicy = PullPolicy::Never;
  // Interactive: stdin stays open for `bai session attach` (wire "stdin"), on a
  // pseudo-terminal with `tty` (which implies stdin). Neither: stdin is /dev/null.
  bool openStdin = false;
  bool tty = false;
  std::vector<ServicePort> servicePorts = {};  // wire "service_ports"; names unique
  // Folders bound into it (wire "mounts"); targets unique, at most kMaxFolderMounts.
  std::vector<FolderMount> mounts = {};

  std::string toJson() const;
  static Result<CreateSessionRequest> fromJson(std::string_view json);
};

struct SessionInfo {
  std::string id;
  SessionState state = SessionState::Pending;
  std::optional<int> exitCode;
  std::string reason;
  DeviceAllocation allocation;
  std::int64_t pid = 0;
  std::int64_t startedAtMillis = 0;
  std::int64_t endedAtMillis = 0;
  // The session's services once it runs: those declared with it and its image's
  // label's, each with the port the agent connects to (a process session's allocated one).
  std::vector<ServicePort> services = {};

  std::string toJson() const;
  static Result<SessionInfo> fromJson(std::string_view json);
};

// POST /v1/images/refresh on the agent: its runtimes and its engine's images, read again.
struct RuntimeInventory {
  std::vector<RuntimeReport> runtimes;
  std::vector<ImageSummary> images;

  std::string toJson() const;
  static Result<RuntimeInventory> fromJson(std::string_view json);
};

// Errors of both daemons' HTTP APIs: {type, title, detail}.
struct ApiError {
  std::string type;    // a stable identifier: "invalid-request", "unknown-slot", ...
  std::string title;   // short, for people
  std::string detail;  // what exactly was wrong

  std::string toJson() const;
  static Result<ApiError> fromJson(std::string_view json);
};

std::string allocationToJson(const DeviceAllocation& allocation);
Result<DeviceAllocation> allocationFromJson(std::string_view json);

}  // namespace bai::protocol
