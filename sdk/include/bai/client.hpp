// libbai-client's client of the bai-manager API: every request signed with a keypair (see
// bai/request_signing.hpp), typed results, and errors that carry the server's
// {type, title, detail}. Used by the `bai` command line; usable from any C++20 program:
//
//   auto config = bai::client::Config::load();          // BAI_* variables, config file
//   if (!config) { std::cerr << config.error().message << "\n"; return 2; }
//   bai::client::Client api(*config);
//   auto session = api.createSession({.command = {"nvidia-smi"},
//                                     .resources = {{"cpu", "1"}, {"cuda.shares", "0.5"}}});
//   if (!session) std::cerr << session.error().message() << "\n";
//
// A Client holds no connection of its own (each calling thread keeps one kept-alive
// connection), so one Client may be used from several threads at once.
#pragma once

#include <bai/result.hpp>
#include <bai/service_port.hpp>
#include <bai/slots.hpp>
#include <bai/vfolder.hpp>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace bai::client {

// Where a call failed. `status` is the HTTP status of the manager's answer, or 0 when no
// answer came; then `type` is "unreachable" (refused, timed out, TLS failure) or
// "invalid-reply" (an answer that is not what the API documents).
struct ApiError {
  int status = 0;
  std::string type;
  std::string title;
  std::string detail;

  // One line: "title: detail" (or what is there of them).
  std::string message() const;
};

template <class T>
using ClientResult = Result<T, ApiError>;

// Where the manager is and who calls it.
struct Config {
  std::string endpoint = "http://127.0.0.1:8081";
  std::string accessKey;
  std::string secretKey;
  std::string caFile;  // PEM bundle to verify an https endpoint with, instead of the system's
  std::chrono::milliseconds timeout{30000};  // one exchange; a long poll adds its wait
  // createSession sends again when no answer came (refused, reset, timed out) or the
  // manager was stopping (503): at most this many times, waiting retryDelay, then twice
  // as long each time. Its Idempotency-Key makes the manager create the session once.
  int submitRetries = 4;
  std::chrono::milliseconds retryDelay{250};

  // The default file: $BAI_CONFIG, else $XDG_CONFIG_HOME/bai/config.toml, else
  // ~/.config/bai/config.toml.
  static std::filesystem::path defaultFile();

  // Reads `file` (when it exists), then lets BAI_ENDPOINT, BAI_ACCESS_KEY, BAI_SECRET_KEY
  // and BAI_CA_FILE override it. The file is TOML with the optional keys endpoint,
  // access-key, secret-key and ca-file, so the keypair file `bai-manager init` writes is
  // one too. A file holding a secret key must be mode 0600 or stricter, a TOML error
  // names the line, and an unknown key is refused. Missing keys are an error only when
  // the caller asks for credentials (requireCredentials).
  static Result<Config> load(const std::filesystem::path& file = defaultFile());

  // Failure naming what to set when the access or secret key is missing.
  Result<void> requireCredentials() const;
};

// Session states, as the manager names them.
inline constexpr const char* kSessionStates[] = {"PENDING",   "SCHEDULED", "PREPARING", "RUNNING",
                                                 "TERMINATING", "TERMINATED", "ERROR", "CANCELLED"};

// A session's service, reached through Client::connectService (bai/service_port.hpp).
using ServicePort = bai::ServicePort;

struct Session {
  std::string id;
  std::string name;
  std::string owner;
  std::string scalingGroup;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  std::map<std::string, std::string> resources;  // slot -> exact amount ("4294967296" for 4g)
  std::string status;
  std::string statusReason;  // why it waits (PENDING), failed or was stopped
  std::string agent;
  std::optional<int> exitCode;
  std::int64_t createdAtMs = 0;  // 0: not reached
  std::int64_t scheduledAtMs = 0;
  std::int64_t startedAtMs = 0;
  std::int64_t endedAtMs = 0;
  std::string json;  // the document as the manager sent it (for --json output)
  std::string image = "";  // the image it runs in; empty: a host process
  bool openStdin = false;   // its stdin is open for attach (wire "stdin")
  bool tty = false;         // it runs on a pseudo-terminal
  std::vector<ServicePort> servicePorts = {};  // as declared when it was created
  std::int64_t lastActivityAtMs = 0;  // the last terminal or service traffic; 0: none yet
  std::vector<SessionMount> mounts = {};  // the virtual folders it mounts

  // TERMINATED, ERROR or CANCELLED: nothing will change any more.
  bool isFinal() const;
};

struct SessionSpec {
  std::string name;  // empty: the manager names it
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  // As a person types them: {"cpu", "2"}, {"mem", "4g"}, {"cuda.shares", "0.5"}.
  std::vector<std::pair<std::string, std::string>> resources;
  std::string scalingGroup;  // empty: "default"
  // Sent as the Idempotency-Key header: the manager answers a repeated key with the same
  // body with the session it created for it, and a different body with 409. Empty:
  // createSession makes a random one, kept for its retries.
  std::string idempotencyKey = "";
  // NAME[:TAG] of the image to run it in, on an agent with the container runtime; the
  // command may then be empty (the image's own). Empty: a host process.
  std::string image = "";
  // Interactive: its stdin stays open for attachSession (wire "stdin"); with `tty` it
  // runs on a pseudo-terminal (which implies stdin). Neither: stdin is /dev/null.
  bool openStdin = false;
  bool tty = false;
  // Services reached with connectService (wire "service_ports"); names unique.
  std::vector<ServicePort> servicePorts = {};
  // Virtual folders to mount (wire "mounts"); the manager checks the caller's access.
  std::vector<MountRequest> mounts = {};
};

// The manager answers at most one page (1 MiB) per read, however much is asked for.
struct LogQuery {
  std::string stream = "stdout";  // or "stderr"
  std::uint64_t offset = 0;       // bytes already read
  std::optional<std::uint64_t> limit;
  std::optional<std::uint64_t> tail;  // only the last N bytes
};

// One page of a session's log stream, and where it lies in the stream.
struct LogPage {
  std::string text;
  std::uint64_t offset = 0;      // where `text` starts
  std::uint64_t nextOffset = 0;  // where the next page starts
  std::uint64_t size = 0;        // the stream's length when it was read
  // Nothing more was written when this page was read (a running session may write more).
  bool atEnd() const { return nextOffset >= size; }
};

// One slot of an agent, in exact amounts.
struct SlotUsage {
  std::string type;  // count, bytes, unique, unified
  Quantity capacity;
  Quantity used;
  Quantity largestAllocatable;  // the most one session can get on this agent
  Quantity available() const { return capacity - used; }
};

// How an agent can run sessions ("process", "container"), and why not when it cannot now.
struct RuntimeInfo {
  std::string kind;
  bool available = true;
  std::string reason = "";
};

// An image an agent's container engine has.
struct ImageInfo {
  std::string name;  // as the engine lists it: "localhost/bai-test/busybox:1"
  std::string id;    // "sha256:..."
  std::int64_t sizeBytes = 0;
};

// GET /v1/images: one agent's runtimes and images, as it last reported or was refreshed.
struct AgentImages {
  std::string agentId;
  std::string status;
  std::string scalingGroup;
  std::vector<RuntimeInfo> runtimes;
  std::vector<ImageInfo> images;
  std::string json;  // the document as the manager sent it (for --json output)
};

struct AgentInfo {
  std::string id;
  std::string status;  // ALIVE, LOST, TERMINATED
  std::string rpcUrl;
  std::string region;
  std::string scalingGroup;
  std::string architecture;
  std::string version;
  std::map<std::string, SlotUsage> slots;
  double secondsSinceHeartbeat = 0;
  std::int64_t registeredAtMs = 0;
  std::int64_t statusChangedAtMs = 0;
  std::string pluginsJson;       // as the agent reported them
  std::string deviceHealthJson;  // as the agent reported it
  std::string json;  // the document as the manager sent it (for --json output)
  std::vector<RuntimeInfo> runtimes = {};
  std::size_t imageCount = 0;
};

// An agent's devices for one slot, and who holds how much of each.
struct DeviceAllocation {
  std::string id;
  int numaNode = -1;
  Quantity capacity;
  Quantity allocated;
  bool enabled = true;
  std::map<std::string, Quantity> sessions;  // session id -> amount held
};

struct SlotAllocationMap {
  std::string slot;
  std::string type;      // count, bytes, unique
  std::string kind;      // discrete or fraction
  std::string strategy;  // fill or evenly
  Quantity free;
  Quantity largestAllocatable;
  std::vector<DeviceAllocation> devices;
};

struct AllocationMap {
  std::string agentId;
  std::vector<SlotAllocationMap> maps;
  std::string json;  // the document as the manager sent it (for --json output)
};

struct Keypair {
  std::string accessKey;
  bool admin = false;
  bool active = true;
  std::string resourcePolicy;
  std::int64_t createdAtMs = 0;
  std::string json;  // the document as the manager sent it (for --json output)
  // The identity its sessions run under (0 from a manager older than identities).
  std::int64_t uid = 0;
  std::int64_t gid = 0;
};

// Only the answer to createKeypair carries the secret; it is shown once.
struct NewKeypair {
  std::string accessKey;
  std::string secretKey;
  bool admin = false;
  std::string resourcePolicy;
  std::string json;  // the document as the manager sent it (for --json output)
  std::int64_t uid = 0;
  std::int64_t gid = 0;
};

// The uid/gid an admin gives a keypair's sessions; one left unset is the manager's to
// give. Sent as given: the manager checks them (1 to 4294967294, a uid no other holds).
struct KeypairIds {
  std::optional<std::int64_t> uid;
  std::optional<std::int64_t> gid;
};

struct ResourcePolicy {
  std::string name;
  std::map<std::string, std::string> totalResourceSlots;  // slot -> limit ("Infinity": none)
  std::string defaultForUnspecified;                      // LIMITED or UNLIMITED
  int maxConcurrentSessions = 0;                          // 0: no limit
  int maxPendingSessionCount = 0;
  std::int64_t createdAtMs = 0;
  std::string json;  // the document as the manager sent it (for --json output)
  std::uint64_t maxVfolderCount = 0;  // 0: no limit
  std::uint64_t maxVfolderSize = 0;   // bytes; 0: no limit
};

struct ScalingGroup {
  std::string name;
  std::string description;
  std::string sequencer;
  std::string selector;
  std::string optionsJson;  // {"sequencer": {...}, "selector": {...}}
  std::vector<std::string> slotPriority;
  int holMaxPasses = 0;
  std::int64_t holMaxWaitMs = 0;
  bool active = true;
  std::int64_t createdAtMs = 0;
  std::string json;  // the document as the manager sent it (for --json output)
  std::string imagePullPolicy = "never";     // never, if-missing or always
  std::vector<std::string> allowedImages = {};  // image patterns; empty: every image
};

// Any answer of the manager, for routes without a typed call.
struct RawResponse {
  int status = 0;
  std::string contentType;
  std::string body;
  std::map<std::string, std::string> headers = {};  // names in lower case
};

// A terminal's size in character cells; 0 x 0: unknown (not a terminal).
struct TerminalSize {
  std::uint16_t rows = 0;
  std::uint16_t cols = 0;
};

// What SessionStream::receive found next.
struct StreamEvent {
  enum class Kind {
    Stdout,    // `data`: output bytes (a tty's only output; a service's bytes)
    Stderr,    // `data`: standard error bytes (never with a tty)
    Eof,       // a service closed its side: no more Stdout (a tunnel's half-close)
    Exit,      // `exitCode`: the command ended (128 + N: killed by signal N); the stream ends
    Error,     // `data`: why the stream ends, as the server said or the client found
    Closed,    // the connection ended: `closeCode` and `data` (the close reason)
    TimedOut,  // receive's timeout ran out; the stream is still open
  };
  Kind kind = Kind::Closed;
  std::string data = "";
  int exitCode = 0;
  std::uint16_t closeCode = 0;
};

// One open interactive stream of a session: its console (attachSession), an exec
// (execInSession) or a connection to one of its services (connectService), over a
// WebSocket to the manager. Blocking calls for plain threads: one thread may receive
// while another sends; close() from any thread ends a receive() waiting elsewhere.
// Back-pressure is the caller's pace: a send returns once the message is written, and
// nothing more is read from the manager until receive() is called again.
class SessionStream {
 public:
  SessionStream(SessionStream&&) noexcept;
  SessionStream& operator=(SessionStream&&) noexcept;
  ~SessionStream();  // closes the stream (1000) if still open

  // The next event; with a timeout, TimedOut when it runs out first. After Exit, Error
  // or Closed, every further call answers Closed.
  StreamEvent receive(std::optional<std::chrono::milliseconds> timeout = std::nullopt);
  // Input for the command (a service: bytes to it), sent in frames of at most 64 KiB.
  // false: the stream is closed.
  bool sendStdin(std::string_view bytes);
  // No more input: the command reads end of file (a service: a half-close).
  bool closeStdin();
  // The terminal's new size (a command on a tty gets SIGWINCH).
  bool resize(TerminalSize size);
  // Ends the stream (a session keeps running: attach again to reach it).
  void close();

 private:
  struct Impl;
  // Made by Client only; hidden, so it is no part of the library's exports.
  [[gnu::visibility("hidden")]] explicit SessionStream(std::unique_ptr<Impl> impl);
  friend class Client;
  std::unique_ptr<Impl> impl_;
};

// Another command in a running session: the same user, cgroups, namespaces or
// container, and environment.
struct ExecOptions {
  std::vector<std::string> command;
  bool tty = false;        // on its own pseudo-terminal (implies openStdin)
  bool openStdin = false;  // its stdin is the stream's Stdin; otherwise /dev/null
  TerminalSize size = {};  // the terminal's size, with tty
};

class Client {
 public:
  explicit Client(Config config);

  const Config& config() const { return config_; }

  // GET /healthz (unsigned): the manager's version.
  ClientResult<std::string> version() const;

  // Retried with the same Idempotency-Key when no answer came (Config::submitRetries), so
  // a lost answer never makes a second session.
  ClientResult<Session> createSession(const SessionSpec& spec) const;
  // `status` filters by state ("RUNNING"); empty: all of the caller's sessions.
  ClientResult<std::vector<Session>> listSessions(const std::string& status = {}) const;
  // With a wait, the answer comes when the session ends or the wait runs out (a long
  // poll; at most the manager's limit).
  ClientResult<Session> session(const std::string& id,
                                std::chrono::milliseconds wait = std::chrono::milliseconds(0)) const;
  // One page of the log's text (at most 1 MiB): sessionLogPage says where it lies, to read on.
  ClientResult<std::string> sessionLogs(const std::string& id, const LogQuery& query = {}) const;
  ClientResult<LogPage> sessionLogPage(const std::string& id, const LogQuery& query = {}) const;
  ClientResult<Session> destroySession(const std::string& id) const;

  // Interactive streams over WebSockets (wss:// for an https endpoint, verified with
  // Config::caFile), each upgrade request signed as every call is. A refusal is the
  // manager's error: no-such-session, session-not-running, not-interactive (a session
  // created without stdin or tty), no-such-service, too-many-connections.
  //
  // The session's console: its output (what it wrote while no one was attached first,
  // as far as the agent kept it), then Exit when it ends. Needs SessionSpec::openStdin
  // or tty. Closing the stream leaves the session running.
  ClientResult<SessionStream> attachSession(const std::string& id, TerminalSize size = {}) const;
  // Runs another command in the running session; Exit carries its exit code.
  ClientResult<SessionStream> execInSession(const std::string& id, const ExecOptions& options) const;
  // One TCP connection to the session's service `name`: Stdin is bytes to it, Stdout
  // bytes from it, Eof a half-close either way.
  ClientResult<SessionStream> connectService(const std::string& id, const std::string& name) const;

  // slot -> type, every slot the cluster's agents offer.
  ClientResult<std::map<std::string, std::string>> resourceSlots() const;

  // Admin calls.
  ClientResult<std::vector<AgentInfo>> agents() const;
  ClientResult<AgentInfo> agent(const std::string& id) const;
  ClientResult<AllocationMap> allocationMap(const std::string& agentId) const;
  // Images per agent, from what agents last reported; `agentId` non-empty: that one only.
  ClientResult<std::vector<AgentImages>> images(const std::string& agentId = {}) const;
  // Has the agent read its container engine again, and answers what it has now.
  ClientResult<AgentImages> refreshAgentImages(const std::string& agentId) const;

  ClientResult<std::vector<Keypair>> keypairs() const;
  ClientResult<NewKeypair> createKeypair(bool admin, const std::string& resourcePolicy = {}) const;
  ClientResult<NewKeypair> createKeypair(bool admin, const std::string& resourcePolicy, const KeypairIds& ids) const;
  ClientResult<Keypair> keypair(const std::string& accessKey) const;
  // "" removes the policy.
  ClientResult<Keypair> setKeypairResourcePolicy(const std::string& accessKey, const std::string& policy) const;
  // PUT /v1/keypairs/{key}/identity: `ids.uid` is required; a gid left unset is the
  // manager's identity.session-gid for the uid.
  ClientResult<Keypair> setKeypairIdentity(const std::string& accessKey, const KeypairIds& ids) const;

  ClientResult<std::vector<ResourcePolicy>> resourcePolicies() const;
  ClientResult<ResourcePolicy> resourcePolicy(const std::string& name) const;
  // `fieldsJson` is the JSON object the API takes (docs/manager.md), e.g.
  // {"name":"small","total_resource_slots":{"cuda.device":2}}.
  ClientResult<ResourcePolicy> createResourcePolicy(const std::string& fieldsJson) const;
  ClientResult<ResourcePolicy> updateResourcePolicy(const std::string& name, const std::string& fieldsJson) const;

  ClientResult<std::vector<ScalingGroup>> scalingGroups() const;
  ClientResult<ScalingGroup> scalingGroup(const std::string& name) const;
  ClientResult<ScalingGroup> createScalingGroup(const std::string& fieldsJson) const;
  ClientResult<ScalingGroup> updateScalingGroup(const std::string& name, const std::string& fieldsJson) const;

  // Virtual folders (bai/vfolder.hpp). `ref` is a folder's name (the caller's own first,
  // then one shared with them) or its id; one the caller may not see is no-such-vfolder.
  ClientResult<Vfolder> createVfolder(const VfolderSpec& spec) const;
  // The caller's own and those shared with them; `all` (admins): every folder.
  ClientResult<std::vector<Vfolder>> vfolders(bool all = false) const;
  // With used_bytes and file_count measured now by the storage proxy.
  ClientResult<Vfolder> vfolder(const std::string& ref) const;
  ClientResult<void> deleteVfolder(const std::string& ref) const;
  // `permission` "ro" or "rw"; empty: the folder's default.
  ClientResult<Vfolder> shareVfolder(const std::string& ref, const std::string& accessKey,
                                     const std::string& permission = {}) const;
  ClientResult<void> unshareVfolder(const std::string& ref, const std::string& accessKey) const;
  // Paths inside the folder ("" is its root), relayed to its storage proxy.
  ClientResult<std::vector<FileEntry>> vfolderFiles(const std::string& ref, const std::string& path,
                                                    bool recursive = false) const;
  ClientResult<void> vfolderMkdir(const std::string& ref, const std::string& path, bool parents = false) const;
  ClientResult<void> vfolderDelete(const std::string& ref, const std::string& path, bool recursive = false) const;
  ClientResult<void> vfolderMove(const std::string& ref, const std::string& from, const std::string& to) const;
  ClientResult<std::vector<StorageHost>> storageHosts() const;
  // A grant to upload to or download from `path` of the folder, straight with its proxy.
  ClientResult<TransferGrant> vfolderGrant(const std::string& ref, TransferOperation operation,
                                           const std::string& path) const;

  // One signed request; any HTTP status is a RawResponse, only a failed exchange is an
  // error. `target` is the path and query ("/v1/sessions?status=RUNNING").
  ClientResult<RawResponse> call(const std::string& method, const std::string& target, const std::string& body = {},
                                 std::chrono::milliseconds extraTimeout = std::chrono::milliseconds(0)) const;

 private:
  Config config_;
};

// An amount as people read it for its slot type: bytes in the largest binary unit with at
// most two decimals ("4g", "1.5g", "9.21g": rounded, for display only), everything else
// as its exact decimal ("2", "0.5", "Infinity").
std::string formatSlotAmount(const std::string& type, Quantity amount);

}  // namespace bai::client
