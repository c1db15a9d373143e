// Why an agent operation failed, as a kind the caller can act on. The agent's parts never
// choose an HTTP status: agent_api.cpp alone maps each kind to a status and a body.
#pragma once

#include <bai/result.hpp>

#include <string>

namespace bai::core {

enum class AgentErrorKind {
  UnknownSlot,                   // no plugin on this node offers a requested slot
  InsufficientResource,          // the allocator's kinds, one for one
  FractionalResourceFragmented,
  InvalidResourceCombination,
  NotMultipleOfQuantum,
  InvalidResourceArgument,
  UnknownSession,
  InvalidLogStream,              // neither stdout nor stderr
  StateDirUnwritable,            // the session's record could not be written
  SessionStartFailed,            // a plugin, the limits or the runner refused it
  DestroyFailed,                 // the session could not be signalled
  IdentityRefused,               // the owner's uid/gid is not one this agent runs sessions as
  RuntimeUnavailable,            // the agent lacks the runtime the session needs, or it is down
  SessionNotRunning,             // a stream of a session that is not (or no longer) running
  NotInteractive,                // a console of a session started without stdin
  NoSuchService,                 // a service the session does not declare (nor its image)
  ServiceUnreachable,            // nothing answers at the service's port
  TooManyStreams,                // interactive.max-connections-per-session reached
  InvalidStream,                 // a malformed exec request
};

struct AgentError {
  AgentErrorKind kind = AgentErrorKind::InvalidResourceArgument;
  std::string detail;  // for people: what was asked and why it cannot be done
};

template <class T>
using AgentResult = Result<T, AgentError>;

}  // namespace bai::core
