// What a manager operation can refuse, as kinds. The domain says what went wrong and
// why; only the API layer (manager_api.cpp) turns a kind into an HTTP status and body.
#pragma once

#include <bai/result.hpp>

#include <string>
#include <utility>

namespace bai::manager {

enum class ErrorKind {
  InvalidRequest,        // malformed or out-of-domain input
  UnknownSlot,           // no agent ever offered the slot
  InvalidResource,       // an amount that does not parse for its slot type
  ExceedsQuota,          // more than the owner's whole resource policy allows
  SlotNotServed,         // no live agent of the group offers the slot
  InactiveScalingGroup,  // the group takes no new sessions
  TooManyPending,        // the owner's policy caps pending sessions
  ImageNotAllowed,       // the image matches no pattern of the group's allow-list
  NoRuntime,             // no live agent of the group offers the session's runtime, available
  UnknownSession,
  UnknownAgent,
  UnknownKeypair,
  UnknownResourcePolicy,
  UnknownScalingGroup,
  AgentNotRegistered,    // an agent sent events before its first full report
  ScalingGroupExists,
  ResourcePolicyExists,
  SessionNotStarted,     // nothing to read from an agent yet
  IdempotencyKeyReused,  // the key came with another request before
  UidInUse,              // another keypair holds the uid
  UidRangeExhausted,     // every uid of identity.session-uid-range is held
  SessionNotRunning,     // a terminal, exec or tunnel needs a RUNNING session
  NotInteractive,        // attach to a session created without stdin
  TooManyConnections,    // interactive.max-connections-per-session reached
  AgentUnreachable,      // the agent did not answer (or its calls are queued too long)
  UnknownVfolder,        // none of the caller's own or shared folders (existence not revealed)
  AmbiguousVfolder,      // two folders shared with the caller have the name
  VfolderExists,         // the owner has a folder of the name
  VfolderLimit,          // the owner's policy caps folders' count or size
  VfolderReadOnly,       // a write through a read-only share
  VfolderNotOwner,       // only the owner or an admin may delete or share it
  VfolderInUse,          // an active session mounts it
  InvalidPath,           // a path inside a folder that normalizeFolderPath refuses
  StorageUnavailable,    // no proxy configured, or it did not answer
  StorageFailed,         // the proxy answered something the manager cannot read or place
  // The proxy's own refusals, passed through.
  QuotaExceeded,
  NoSuchFile,
  FileExists,
  PathEscapes,
  NotARegularFile,
  TooManyEntries,
  InsufficientStorage,
  StoreFailed,           // the change could not be saved; nothing changed
  ShuttingDown,
};

struct DomainError {
  ErrorKind kind = ErrorKind::InvalidRequest;
  std::string detail;  // for people: names the input and the limit
  std::string field = "";  // the request's field that was wrong, when one was
};

template <class T>
using Outcome = Result<T, DomainError>;

inline Failure<DomainError> refuse(ErrorKind kind, std::string detail, std::string field = "") {
  return Failure<DomainError>{DomainError{kind, std::move(detail), std::move(field)}};
}

}  // namespace bai::manager
