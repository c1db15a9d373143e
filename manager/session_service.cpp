#include "session_service.hpp"

#include "admission.hpp"
#include "http_client.hpp"
#include "quota.hpp"

#include <bai/image_reference.hpp>
#include <bai/protocol.hpp>
#include <bai/request_signing.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <random>

namespace bai::manager {
namespace {

std::string newSessionId() {
  static thread_local std::mt19937_64 random{std::random_device{}()};
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 16; ++i) id += hex[random() & 15];
  return id;
}

// A page and its headers: an agent's longer answer is refused rather than held.
constexpr std::size_t kLogReplyBytes = protocol::kLogPageBytes + (64u << 10);

// The agent's log route for `range`, cut to one page whatever the user asked for.
std::string agentLogPath(const std::string& id, const LogRange& range) {
  std::string path = "/v1/sessions/" + http::urlEncode(id) + "/logs?stream=" + http::urlEncode(range.stream);
  if (range.tail) return path + "&tail=" + std::to_string(std::min(*range.tail, protocol::kLogPageBytes));
  const std::uint64_t limit = std::min(range.limit.value_or(protocol::kLogPageBytes), protocol::kLogPageBytes);
  return path + "&offset=" + std::to_string(range.offset) + "&limit=" + std::to_string(limit);
}

bool visibleTo(const Caller& caller, const SessionRecord& session) {
  return caller.admin || session.owner == caller.accessKey;
}

Outcome<void> checkShape(const NewSession& request) {
  if (request.image && !protocol::isImageReference(*request.image)) {
    return refuse(ErrorKind::InvalidRequest,
                  "image '" + *request.image + "' is not an image reference ([registry/]path[:tag][@sha256:digest])",
                  "image");
  }
  if (!request.command.empty() && request.command[0].empty()) {
    return refuse(ErrorKind::InvalidRequest, "command[0] must not be empty", "command");
  }
  if (request.command.empty() && !request.image) {
    return refuse(ErrorKind::InvalidRequest, "command must be a non-empty array of strings (only a session with an image may leave it out)",
                  "command");
  }
  if (request.name.size() > 256) return refuse(ErrorKind::InvalidRequest, "name is longer than 256 characters");
  if (request.scalingGroup.empty()) return refuse(ErrorKind::InvalidRequest, "scaling_group must not be empty");
  const std::string& key = request.idempotencyKey;
  const bool visible = std::all_of(key.begin(), key.end(), [](char c) { return c > ' ' && c < 0x7f; });
  if (key.size() > 255 || !visible) {
    return refuse(ErrorKind::InvalidRequest, "Idempotency-Key must be 1 to 255 visible ASCII characters");
  }
  return {};
}

// What a retry must repeat to get the same session: every field of the request, in a
// canonical form (the JSON body's own text may differ in spacing or order).
std::string requestDigest(const NewSession& request) {
  const nlohmann::json canonical = {{"name", request.name},         {"command", request.command},
                                    {"env", request.env},           {"resources", request.resources},
                                    {"scaling_group", request.scalingGroup}};
  // A field added later joins the digest only when set, so stored keys keep matching.
  nlohmann::json digested = canonical;
  if (request.image) digested["image"] = *request.image;
  if (request.openStdin) digested["stdin"] = true;
  if (request.tty) digested["tty"] = true;
  for (const auto& service : request.servicePorts) {
    digested["service_ports"].push_back({service.name, service.protocol, service.port});
  }
  for (const auto& mount : request.mounts) {
    digested["mounts"].push_back({mount.folder, mount.target.value_or(""), mount.readOnly});
  }
  return auth::sha256Hex(digested.dump());
}

}  // namespace

SessionService::SessionService(Ledger& ledger, SessionLifecycle& lifecycle, AgentDispatcher& dispatcher, Waiters& waiters)
    : ledger_(ledger), lifecycle_(lifecycle), dispatcher_(dispatcher), waiters_(waiters) {}

Outcome<ResourceSlot> SessionService::admit(const ClusterState& state, const Caller& caller, const NewSession& request) const {
  const std::string& group = request.scalingGroup;
  if (!scalingGroupExists(state, group)) {
    return refuse(ErrorKind::UnknownScalingGroup, "no scaling group '" + group + "' (bai admin scaling-group list)");
  }
  if (const ScalingGroupRecord* record = state.scalingGroup(group); record != nullptr && !record->active) {
    return refuse(ErrorKind::InactiveScalingGroup, "scaling group '" + group + "' is not active");
  }
  const ResourcePolicyRecord* policy = state.policyOfOwner(caller.accessKey);
  const OwnerUsage usage = ownerUsage(state.active, caller.accessKey);
  if (auto why = pendingShortfall(policy, state.tunables.maxPendingPerKeypair, usage)) {
    return refuse(ErrorKind::TooManyPending, *why);
  }
  if (auto allowed = checkImageAllowed(state, group, request.image); !allowed) return Failure{allowed.error()};
  for (const auto& [slot, amount] : request.resources) {
    if (state.registry.find(slot) == nullptr) {
      return refuse(ErrorKind::UnknownSlot, "no agent of this cluster has ever offered slot '" + slot + "'");
    }
  }
  auto parsed = ResourceSlot::parseUserInput(request.resources, state.registry.table());
  if (!parsed) return refuse(ErrorKind::InvalidResource, parsed.error().message);
  auto requested = withDefaultSlots(state, policy, std::move(*parsed));
  if (!requested) return requested;
  // A request over the owner's whole quota would wait forever: refuse it now.
  if (policy != nullptr) {
    if (auto why = quotaShortfall(*policy, OwnerUsage{}, *requested)) {
      return refuse(ErrorKind::ExceedsQuota, "even with nothing else running: " + *why);
    }
  }
  if (auto served = checkServed(state, group, *requested); !served) return Failure{served.error()};
  if (auto runtime = checkRuntimeOffered(state, group, request.image); !runtime) return Failure{runtime.error()};
  return *requested;
}

Outcome<std::optional<SessionRecord>> SessionService::earlierWithKey(const ClusterState& state, const Caller& caller,
                                                                     const NewSession& request,
                                                                     const std::string& digest) const {
  std::optional<SessionRecord> earlier;
  if (request.idempotencyKey.empty()) return earlier;
  auto read = ledger_.store().read([&](StoreTransaction& tx) -> Result<void> {
    auto row = tx.sessionByIdempotencyKey(caller.accessKey, request.idempotencyKey);
    if (!row) return Failure{row.error()};
    earlier = std::move(*row);
    return {};
  });
  if (!read) return refuse(ErrorKind::StoreFailed, read.error().message);
  if (!earlier) return earlier;
  if (earlier->requestDigest != digest) {
    return refuse(ErrorKind::IdempotencyKeyReused, "Idempotency-Key '" + request.idempotencyKey + "' created session '" +
                                                       earlier->id + "' from another request; use a new key for a new request");
  }
  // The ledger's copy is the current one while the session is active.
  if (auto it = state.active.find(earlier->id); it != state.active.end()) earlier = it->second;
  return earlier;
}

Outcome<SessionRecord> SessionService::create(const Caller& caller, const NewSession& request, std::vector<SessionMount> mounts) {
  if (auto shape = checkShape(request); !shape) return Failure{shape.error()};
  const std::string digest = requestDigest(request);
  // Under the ledger's lock, as every creation is: a retry racing its original finds it.
  const Guard guard = ledger_.lock();
  ClusterState& state = ledger_.state(guard);
  auto earlier = earlierWithKey(state, caller, request, digest);
  if (!earlier) return Failure{earlier.error()};
  if (*earlier) return std::move(**earlier);
  auto requested = admit(state, caller, request);
  if (!requested) return Failure{requested.error()};
  SessionRecord session;
  session.id = newSessionId();
  session.name = request.name.empty() ? session.id : request.name;
  session.owner = caller.accessKey;
  session.scalingGroup = request.scalingGroup;
  session.command = request.command;
  session.env = request.env;
  session.image = request.image;
  session.tty = request.tty;
  session.openStdin = request.openStdin || request.tty;
  session.servicePorts = request.servicePorts;
  session.mounts = std::move(mounts);
  for (const auto& [slot, amount] : *requested) {
    if (!amount.isZero()) session.requested.set(slot, amount);
  }
  session.status = SessionStatus::Pending;
  session.createdAtMillis = nowMillis();
  session.idempotencyKey = request.idempotencyKey;
  if (!request.idempotencyKey.empty()) session.requestDigest = digest;
  auto inserted = ledger_.store().write([&](StoreTransaction& tx) -> Result<void> {
    auto seq = tx.insertSession(session);
    if (!seq) return Failure{seq.error()};
    session.enqueueSeq = *seq;
    return {};
  });
  if (!inserted) return refuse(ErrorKind::StoreFailed, inserted.error().message);
  state.active[session.id] = session;
  ledger_.wantPlacement(guard);
  return session;
}

Outcome<std::vector<SessionRecord>> SessionService::list(const Caller& caller, std::optional<SessionStatus> status) {
  SessionFilter filter;
  filter.status = status;
  if (!caller.admin) filter.owner = caller.accessKey;
  std::vector<SessionRecord> out;
  auto read = ledger_.store().read([&](StoreTransaction& tx) -> Result<void> {
    auto rows = tx.sessions(filter);
    if (!rows) return Failure{rows.error()};
    out = std::move(*rows);
    return {};
  });
  if (!read) return refuse(ErrorKind::StoreFailed, read.error().message);
  return out;
}

Outcome<SessionRecord> SessionService::get(const Caller& caller, const std::string& id) {
  {
    const Guard guard = ledger_.lock();
    const ClusterState& state = ledger_.state(guard);
    if (auto it = state.active.find(id); it != state.active.end() && visibleTo(caller, it->second)) return it->second;
  }
  std::optional<SessionRecord> found;
  auto read = ledger_.store().read([&](StoreTransaction& tx) -> Result<void> {
    auto row = tx.session(id);
    if (!row) return Failure{row.error()};
    found = std::move(*row);
    return {};
  });
  if (!read) return refuse(ErrorKind::StoreFailed, read.error().message);
  if (!found || !visibleTo(caller, *found)) return refuse(ErrorKind::UnknownSession, "no session '" + id + "'");
  return *found;
}

std::string SessionService::pendingReason(const std::string& id) const {
  const Guard guard = ledger_.lock();
  const ClusterState& state = ledger_.state(guard);
  auto it = state.pendingReasons.find(id);
  return it == state.pendingReasons.end() ? "" : it->second;
}

void SessionService::wait(const Caller& caller, const std::string& id, std::chrono::milliseconds wait, SessionCallback done) {
  auto current = get(caller, id);
  if (!current || isFinal(current->status) || wait.count() <= 0) return done(std::move(current));
  {
    // Queued under the ledger's lock, so the session cannot end between the look and the queueing.
    const Guard guard = ledger_.lock();
    const ClusterState& state = ledger_.state(guard);
    if (!state.stopping && state.active.count(id) != 0) {
      const auto limit = std::min(wait, state.tunables.maxWait);
      if (waiters_.add(id, caller, std::chrono::steady_clock::now() + limit, done)) return;
      return done(refuse(ErrorKind::ShuttingDown, "retry against the restarted manager"));
    }
  }
  done(get(caller, id));  // it ended between the two looks
}

Outcome<SessionRecord> SessionService::destroy(const Caller& caller, const std::string& id) {
  {
    const Guard guard = ledger_.lock();
    ClusterState& state = ledger_.state(guard);
    auto it = state.active.find(id);
    if (it != state.active.end() && visibleTo(caller, it->second)) {
      SessionRecord updated = it->second;
      if (updated.status == SessionStatus::Pending) {
        updated.status = SessionStatus::Cancelled;
        updated.statusReason = "cancelled before it was placed";
        updated.endedAtMillis = nowMillis();
      } else if (updated.status != SessionStatus::Terminating) {
        updated.status = SessionStatus::Terminating;
        updated.statusReason = "destroy requested";
      }
      Transition t;
      t.sessions.push_back(updated);
      if (auto done = ledger_.commit(guard, std::move(t)); !done) return refuse(ErrorKind::StoreFailed, done.error().message);
      if (updated.status == SessionStatus::Terminating && state.inFlight.count(id) == 0) {
        auto agent = state.agents.find(updated.agentId);
        if (agent != state.agents.end() && agent->second.alive()) lifecycle_.destroy(guard, id);
      }
      return updated;
    }
  }
  return get(caller, id);  // already over (or unknown)
}

void SessionService::logs(const Caller& caller, const std::string& id, const LogRange& range, ReplyCallback done) {
  auto current = get(caller, id);
  if (!current) return done(Failure{current.error()});
  std::string rpcUrl;
  {
    const Guard guard = ledger_.lock();
    const ClusterState& state = ledger_.state(guard);
    auto agent = state.agents.find(current->agentId);
    if (current->agentId.empty() || agent == state.agents.end()) {
      return done(refuse(ErrorKind::SessionNotStarted, "session '" + id + "' is " + sessionStatusName(current->status)));
    }
    rpcUrl = agent->second.record.rpcUrl;
  }
  dispatcher_.get(current->agentId, rpcUrl, agentLogPath(id, range), std::move(done), kLogReplyBytes);
}

}  // namespace bai::manager
