// The manager's persistent state behind a small interface: SQLite today, PostgreSQL
// later. Callers see typed records and transactions only; no SQL leaves the store.
// Every state change is one write transaction; quantities are stored as exact decimal
// text, never as floating point.
#pragma once

#include "session_identity.hpp"

#include <bai/protocol.hpp>
#include <bai/result.hpp>
#include <bai/slots.hpp>
#include <bai/storage_protocol.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bai::manager {

enum class SessionStatus { Pending, Scheduled, Preparing, Running, Terminating, Terminated, Cancelled, Error };
const char* sessionStatusName(SessionStatus status);  // "PENDING", ...
Result<SessionStatus> parseSessionStatus(std::string_view text);
// TERMINATED, CANCELLED and ERROR: the session is over and holds nothing.
bool isFinal(SessionStatus status);

enum class AgentStatus { Alive, Lost };
const char* agentStatusName(AgentStatus status);  // "ALIVE", "LOST"
Result<AgentStatus> parseAgentStatus(std::string_view text);

struct KeypairRecord {
  std::string accessKey;
  std::string secretKey;
  bool admin = false;
  bool active = true;
  std::int64_t createdAtMillis = 0;
  // Empty: no policy, nothing limited. Initialised so that brace-initialising only the
  // fields above stays free of -Wmissing-field-initializers (as in the records below).
  std::string resourcePolicy = "";
  // The identity its sessions run under. Never 0 in a stored keypair: insertKeypair
  // allocates a uid left 0 and gives a gid left 0 by the store's IdentityPolicy.
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
};

// How a scaling group's pending sessions are ordered and placed.
struct ScalingGroupRecord {
  std::string name;
  std::string description = "";
  std::string sequencer = "fifo";
  std::string selector = "concentrated";
  std::string optionsJson = "{}";  // {"sequencer": {...}, "selector": {...}}
  std::vector<std::string> slotPriority = {};  // empty: the default order
  int holMaxPasses = 16;
  std::int64_t holMaxWaitMillis = 300000;
  bool active = true;
  std::int64_t createdAtMillis = 0;
  // What its agents do when a session's image is missing: "never", "if-missing" or
  // "always" (protocol::parsePullPolicy); never pulling suits offline clusters.
  std::string imagePullPolicy = "never";
  // Image patterns its sessions may use (protocol::imageAllowed); empty: every image.
  std::vector<std::string> allowedImages = {};
};

// A keypair resource policy (quota). A slot absent from totalResourceSlots is unlimited
// when defaultUnlimited, else limited to 0; an infinite amount is unlimited.
struct ResourcePolicyRecord {
  std::string name;
  ResourceSlot totalResourceSlots = {};
  bool defaultUnlimited = true;
  int maxConcurrentSessions = 0;  // 0: unlimited
  int maxPendingSessions = 0;     // 0: unlimited
  std::int64_t createdAtMillis = 0;
  // What a session gets of an intrinsic slot it names no amount of; a slot absent here
  // takes the manager's default.
  ResourceSlot defaultSessionSlots = {};
  std::int64_t maxVfolderCount = 0;   // folders a keypair of the policy owns; 0: unlimited
  std::uint64_t maxVfolderSize = 0;   // the largest quota of one folder (bytes); 0: unlimited
};

// A storage folder (vfolder): the manager's record of a directory a storage proxy serves.
struct VfolderRecord {
  std::string id;     // 32 lower-case hex digits (storage_protocol::isFolderId), random
  std::string name;   // unique per owner
  std::string owner;  // access key
  std::string host;   // "PROXY:VOLUME"
  std::string hostPath;  // the folder's directory, as the proxy answered it: what agents bind
  std::optional<std::uint64_t> quotaBytes = std::nullopt;  // nullopt: no limit
  // What keypairs it is shared with get unless the share names another.
  storage_protocol::Permission permission = storage_protocol::Permission::ReadWrite;
  std::int64_t createdAtMillis = 0;
};

struct VfolderShareRecord {
  std::string folderId;
  std::string accessKey;
  storage_protocol::Permission permission = storage_protocol::Permission::ReadWrite;

  bool operator==(const VfolderShareRecord&) const = default;
};

// A folder bound into a session, with the folder's name as the session was created with it.
struct SessionMount {
  protocol::FolderMount mount;
  std::string folderName;

  bool operator==(const SessionMount&) const = default;
};

struct AgentSlotFigures {
  Quantity capacity;  // what the agent offers (its "available" report)
  Quantity used;      // the manager's reservations on it
  Quantity largest;   // the largest amount one new session can get, as last reported
};

// A way an agent runs sessions ("process", "container"), as its last full report gave it.
struct AgentRuntimeRecord {
  std::string kind;
  bool available = true;
  std::string reason = "";  // why not, when not available

  bool operator==(const AgentRuntimeRecord&) const = default;
};

// An image the agent's container engine has, as its last full report listed it.
struct AgentImageRecord {
  std::string name;  // as the engine lists it: "localhost/bai-test/busybox:1"
  std::string id;    // "sha256:..."
  std::int64_t sizeBytes = 0;

  bool operator==(const AgentImageRecord&) const = default;
};

struct AgentRecord {
  std::string id;
  AgentStatus status = AgentStatus::Alive;
  std::string rpcUrl;  // "http://127.0.0.1:6001"
  std::string region;
  std::string scalingGroup;
  std::string architecture;
  std::string version;
  std::uint64_t digest = 0;  // the agent's state version of the last full report
  std::map<std::string, AgentSlotFigures> slots;
  std::string pluginsJson = "[]";       // plugin reports, as JSON text
  std::string deviceHealthJson = "[]";  // device health reports, as JSON text
  std::uint64_t lastEventSeq = 0;       // every event of this agent with seq <= this is applied
  std::int64_t registeredAtMillis = 0;
  std::int64_t statusChangedAtMillis = 0;
  // A row stored before runtimes were reported reads as one available "process" runtime.
  std::vector<AgentRuntimeRecord> runtimes = {};
  std::vector<AgentImageRecord> images = {};
};

struct SessionRecord {
  std::string id;
  std::string name;
  std::string owner;  // access key of the keypair that created it
  std::string scalingGroup;
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  ResourceSlot requested;
  SessionStatus status = SessionStatus::Pending;
  std::string statusReason;
  std::string agentId;  // empty until scheduled
  std::optional<int> exitCode;
  std::uint64_t enqueueSeq = 0;  // assigned by insertSession: FIFO order, increasing
  std::int64_t createdAtMillis = 0;
  std::int64_t scheduledAtMillis = 0;  // 0: not yet
  std::int64_t startedAtMillis = 0;
  std::int64_t endedAtMillis = 0;
  // The client's Idempotency-Key ("" when it sent none; unique per owner) and a digest of
  // the request it came with: a retry with both the same is answered with this session.
  std::string idempotencyKey = "";
  std::string requestDigest = "";
  // The image it runs in (a container session); nullopt: a host process session.
  std::optional<std::string> image = std::nullopt;
  // Interactive: stdin kept open for attach (`tty` implies it), and the TCP services it
  // declared (the agent adds those of its image's label).
  bool openStdin = false;
  bool tty = false;
  std::vector<protocol::ServicePort> servicePorts = {};
  std::vector<SessionMount> mounts = {};  // fixed at submission
};

// A reservation of `slots` on `agentId` for one session; released ones no longer count
// in the agent's used figures.
struct AllocationRecord {
  std::string sessionId;
  std::string agentId;
  ResourceSlot slots;
  bool released = false;
};

struct SessionFilter {
  std::optional<SessionStatus> status;
  std::optional<std::string> owner;
  std::optional<std::string> agentId;
  bool activeOnly = false;  // only sessions whose status is not final
};

// Valid only inside the function given to Store::write/read. Every call fails with a
// clear message on a storage error; writes through a read transaction fail.
class StoreTransaction {
 public:
  virtual ~StoreTransaction() = default;

  // Conflict if it exists or its uid is another keypair's; NotFound if it names an
  // unknown resource policy. A uid of 0 becomes the lowest uid of the store's range that
  // no keypair holds (OutOfRange when none is left), a gid of 0 the policy's gid for the
  // uid: read the record back to see them.
  virtual Result<void> insertKeypair(const KeypairRecord& keypair) = 0;
  virtual Result<std::optional<KeypairRecord>> keypair(const std::string& accessKey) = 0;
  virtual Result<std::vector<KeypairRecord>> keypairs() = 0;
  // NotFound when either the keypair or the policy (unless `name` is empty) is unknown.
  virtual Result<void> setKeypairResourcePolicy(const std::string& accessKey, const std::string& name) = 0;
  // Both ids from 1 to kMaxSessionId, any range (a gid of 0: the policy's gid for the
  // uid); NotFound for an unknown keypair, Conflict when another keypair holds the uid.
  virtual Result<void> setKeypairIdentity(const std::string& accessKey, std::uint32_t uid, std::uint32_t gid) = 0;

  // Upserts replace every field but createdAtMillis, which an existing row keeps.
  virtual Result<void> upsertScalingGroup(const ScalingGroupRecord& group) = 0;
  virtual Result<std::optional<ScalingGroupRecord>> scalingGroup(const std::string& name) = 0;
  virtual Result<std::vector<ScalingGroupRecord>> scalingGroups() = 0;  // by name
  virtual Result<void> upsertResourcePolicy(const ResourcePolicyRecord& policy) = 0;
  virtual Result<std::optional<ResourcePolicyRecord>> resourcePolicy(const std::string& name) = 0;
  virtual Result<std::vector<ResourcePolicyRecord>> resourcePolicies() = 0;  // by name

  virtual Result<std::map<std::string, SlotType>> slotTypes() = 0;
  virtual Result<void> insertSlotType(const std::string& slot, SlotType type) = 0;  // Conflict if known
  // Count refined to Fraction (a cluster that learned a share slot before fractions had a
  // type of their own); NotFound if unknown.
  virtual Result<void> refineSlotType(const std::string& slot, SlotType type) = 0;

  virtual Result<std::optional<AgentRecord>> agent(const std::string& id) = 0;
  virtual Result<std::vector<AgentRecord>> agents() = 0;
  // Inserts or replaces the agent row and its slot rows (slots absent from `agent` are
  // removed), keeping nothing of an older version.
  virtual Result<void> upsertAgent(const AgentRecord& agent) = 0;
  virtual Result<void> setAgentStatus(const std::string& id, AgentStatus status, std::int64_t atMillis) = 0;
  // Sets the used figure of each slot in `used`; a slot the agent does not have is added
  // with capacity 0 and largest 0.
  virtual Result<void> setAgentUsed(const std::string& id, const ResourceSlot& used) = 0;
  virtual Result<void> setAgentLastEventSeq(const std::string& id, std::uint64_t seq) = 0;

  // Assigns enqueueSeq (returned) and stores the session; Conflict if the id exists.
  virtual Result<std::uint64_t> insertSession(const SessionRecord& session) = 0;
  virtual Result<std::optional<SessionRecord>> session(const std::string& id) = 0;
  // The session `owner` created with Idempotency-Key `key` (never one without a key).
  virtual Result<std::optional<SessionRecord>> sessionByIdempotencyKey(const std::string& owner, const std::string& key) = 0;
  virtual Result<std::vector<SessionRecord>> sessions(const SessionFilter& filter) = 0;  // by enqueueSeq
  // Writes the fields that change over a session's life: status, statusReason, agentId,
  // exitCode and the four timestamps. NotFound if the id is unknown.
  virtual Result<void> updateSession(const SessionRecord& session) = 0;

  virtual Result<void> insertAllocation(const AllocationRecord& allocation) = 0;  // Conflict if the session has one
  virtual Result<std::optional<AllocationRecord>> allocation(const std::string& sessionId) = 0;
  virtual Result<std::vector<AllocationRecord>> allocations(const std::string& agentId) = 0;
  virtual Result<void> setAllocationReleased(const std::string& sessionId, bool released) = 0;
  virtual Result<void> deleteAllocation(const std::string& sessionId) = 0;

  // Folders. Conflict when the id exists or the owner has a folder of that name.
  virtual Result<void> insertVfolder(const VfolderRecord& folder) = 0;
  virtual Result<std::optional<VfolderRecord>> vfolder(const std::string& id) = 0;
  virtual Result<std::optional<VfolderRecord>> vfolderByName(const std::string& owner, const std::string& name) = 0;
  virtual Result<std::vector<VfolderRecord>> vfoldersOwnedBy(const std::string& owner) = 0;     // by name
  virtual Result<std::vector<VfolderRecord>> vfoldersSharedWith(const std::string& accessKey) = 0;  // by name, id
  virtual Result<std::vector<VfolderRecord>> vfolders() = 0;  // every folder, by owner and name
  virtual Result<std::int64_t> countVfoldersOwnedBy(const std::string& owner) = 0;
  // The folder and its shares; NotFound if unknown.
  virtual Result<void> deleteVfolder(const std::string& id) = 0;
  // Adds or replaces the keypair's share; NotFound when the folder or keypair is unknown.
  virtual Result<void> setVfolderShare(const VfolderShareRecord& share) = 0;
  virtual Result<void> removeVfolderShare(const std::string& folderId, const std::string& accessKey) = 0;  // NotFound if none
  virtual Result<std::vector<VfolderShareRecord>> vfolderShares(const std::string& folderId) = 0;  // by access key
  // Whether a session that is not final mounts the folder.
  virtual Result<bool> vfolderMountedByActiveSession(const std::string& folderId) = 0;

  // Nonces of accepted API requests (auth::NonceCache keys), each kept until it expires.
  virtual Result<void> insertRequestNonce(const std::string& key, std::int64_t expiresAtMillis) = 0;  // Conflict if kept
  virtual Result<void> deleteRequestNoncesExpiredBefore(std::int64_t atMillis) = 0;
  // key -> expiry of those that expire at `atMillis` or later.
  virtual Result<std::map<std::string, std::int64_t>> requestNonces(std::int64_t atMillis) = 0;
};

struct StoreOptions {
  bool fullSync = false;  // SQLite synchronous=FULL instead of NORMAL (both durable in WAL against a crash of the process)
  std::chrono::milliseconds busyTimeout{5000};
  // Held for the store's life: a second process asking for it is refused at once, naming
  // the holder (SQLite: an flock on "<file>.lock" beside the database). For the daemon.
  bool exclusive = false;
  // Where keypairs created without a uid get theirs (insertKeypair, and the migration
  // that gave the keypairs of an older database their first one).
  IdentityPolicy identity = {};
};

class Store {
 public:
  virtual ~Store() = default;

  using TransactionFn = std::function<Result<void>(StoreTransaction&)>;
  // One write transaction (BEGIN IMMEDIATE on SQLite: writers are serialised before the
  // first read, so a check-then-write inside `fn` cannot race another writer). Commits
  // when `fn` succeeds; rolls back and returns its error when it fails or throws.
  virtual Result<void> write(const TransactionFn& fn) = 0;
  // A consistent read-only snapshot.
  virtual Result<void> read(const TransactionFn& fn) = 0;

  virtual int schemaVersion() const = 0;
  virtual std::string describe() const = 0;  // "sqlite:///var/lib/bai/manager.db", no secrets
};

// Opens the store named by `url` and brings its schema up to date (versioned migrations,
// each in its own transaction). Accepted: "sqlite:///abs/path.db", "sqlite://rel/path.db",
// "sqlite::memory:" (tests); "postgresql://..." fails with "not built" until that back end
// exists. A database from a newer bai (a schema version above ours) is refused.
Result<std::unique_ptr<Store>> openStore(const std::string& url, const StoreOptions& options = {});

}  // namespace bai::manager
