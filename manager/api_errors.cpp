#include "api_errors.hpp"

#include <nlohmann/json.hpp>

#include <array>

namespace bai::manager {
namespace {

struct KindInfo {
  ErrorKind kind;
  int status;
  const char* type;
  const char* title;
};

constexpr std::array kKinds = {
    KindInfo{ErrorKind::InvalidRequest, 400, "invalid-request", "Invalid request"},
    KindInfo{ErrorKind::UnknownSlot, 400, "unknown-slot", "Unknown resource slot"},
    KindInfo{ErrorKind::InvalidResource, 400, "invalid-resource", "Invalid resource amount"},
    KindInfo{ErrorKind::ExceedsQuota, 400, "exceeds-quota", "Request exceeds the resource policy"},
    KindInfo{ErrorKind::SlotNotServed, 400, "slot-not-served", "No agent serves this slot"},
    KindInfo{ErrorKind::InactiveScalingGroup, 400, "inactive-scaling-group", "Scaling group not active"},
    KindInfo{ErrorKind::TooManyPending, 429, "too-many-pending", "Too many pending sessions"},
    KindInfo{ErrorKind::ImageNotAllowed, 403, "image-not-allowed", "The image is not allowed in the scaling group"},
    KindInfo{ErrorKind::NoRuntime, 409, "no-runtime", "No agent offers the session's runtime"},
    KindInfo{ErrorKind::UnknownSession, 404, "unknown-session", "No such session"},
    KindInfo{ErrorKind::UnknownAgent, 404, "unknown-agent", "No such agent"},
    KindInfo{ErrorKind::UnknownKeypair, 404, "unknown-keypair", "No such keypair"},
    KindInfo{ErrorKind::UnknownResourcePolicy, 404, "unknown-resource-policy", "No such resource policy"},
    KindInfo{ErrorKind::UnknownScalingGroup, 404, "unknown-scaling-group", "No such scaling group"},
    KindInfo{ErrorKind::AgentNotRegistered, 409, "unknown-agent", "Agent not registered"},
    KindInfo{ErrorKind::ScalingGroupExists, 409, "scaling-group-exists", "The scaling group exists"},
    KindInfo{ErrorKind::ResourcePolicyExists, 409, "resource-policy-exists", "The resource policy exists"},
    KindInfo{ErrorKind::SessionNotStarted, 409, "no-logs-yet", "The session has not started"},
    KindInfo{ErrorKind::UidInUse, 409, "uid-in-use", "Another keypair holds the uid"},
    KindInfo{ErrorKind::UidRangeExhausted, 409, "uid-range-exhausted", "No uid of the session uid range is free"},
    KindInfo{ErrorKind::IdempotencyKeyReused, 409, "idempotency-key-reused", "The idempotency key was used for another request"},
    KindInfo{ErrorKind::SessionNotRunning, 409, "session-not-running", "The session is not running"},
    KindInfo{ErrorKind::NotInteractive, 409, "not-interactive", "The session has no stdin to attach to"},
    KindInfo{ErrorKind::TooManyConnections, 429, "too-many-connections", "Too many connections to the session"},
    KindInfo{ErrorKind::AgentUnreachable, 502, "agent-unreachable", "The agent did not answer"},
    KindInfo{ErrorKind::UnknownVfolder, 404, "no-such-vfolder", "No such virtual folder"},
    KindInfo{ErrorKind::AmbiguousVfolder, 409, "ambiguous-vfolder", "Several folders shared with you have this name"},
    KindInfo{ErrorKind::VfolderExists, 409, "vfolder-exists", "You have a folder of this name"},
    KindInfo{ErrorKind::VfolderLimit, 403, "vfolder-limit", "The resource policy limits folders"},
    KindInfo{ErrorKind::VfolderReadOnly, 403, "vfolder-read-only", "The folder is shared with you read-only"},
    KindInfo{ErrorKind::VfolderNotOwner, 403, "vfolder-not-owner", "Only the folder's owner or an admin may do this"},
    KindInfo{ErrorKind::VfolderInUse, 409, "vfolder-in-use", "An active session mounts the folder"},
    KindInfo{ErrorKind::InvalidPath, 400, "invalid-path", "Invalid path"},
    KindInfo{ErrorKind::StorageUnavailable, 503, "storage-unavailable", "Storage unavailable"},
    KindInfo{ErrorKind::StorageFailed, 502, "storage-error", "The storage proxy failed"},
    KindInfo{ErrorKind::QuotaExceeded, 413, "quota-exceeded", "The folder's quota is exceeded"},
    KindInfo{ErrorKind::NoSuchFile, 404, "no-such-file", "No such file"},
    KindInfo{ErrorKind::FileExists, 409, "exists", "The path exists"},
    KindInfo{ErrorKind::PathEscapes, 403, "path-escapes", "The path leads outside the folder"},
    KindInfo{ErrorKind::NotARegularFile, 400, "not-a-regular-file", "Not a regular file"},
    KindInfo{ErrorKind::TooManyEntries, 413, "too-many-entries", "Too many entries"},
    KindInfo{ErrorKind::InsufficientStorage, 507, "insufficient-storage", "The volume is full"},
    KindInfo{ErrorKind::StoreFailed, 500, "store-error", "The cluster state could not be saved"},
    KindInfo{ErrorKind::ShuttingDown, 503, "shutting-down", "The manager is stopping"},
};

const KindInfo& infoOf(ErrorKind kind) {
  for (const auto& info : kKinds) {
    if (info.kind == kind) return info;
  }
  return kKinds[0];
}

}  // namespace

int httpStatusOf(ErrorKind kind) { return infoOf(kind).status; }

protocol::ApiError apiErrorOf(const DomainError& failure) {
  const KindInfo& info = infoOf(failure.kind);
  return protocol::ApiError{info.type, info.title, failure.detail};
}

std::string problemJson(const DomainError& failure) {
  const protocol::ApiError problem = apiErrorOf(failure);
  if (failure.field.empty()) return problem.toJson();
  return nlohmann::json{{"type", problem.type}, {"title", problem.title}, {"detail", problem.detail}, {"field", failure.field}}
      .dump();
}

}  // namespace bai::manager
