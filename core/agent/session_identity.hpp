// Which identities this agent runs sessions as. The manager names each session's owner
// (uid, gid); the agent trusts it only inside its own configured ranges, so that a
// compromised manager cannot make it run a session as root or as a system account.
#pragma once

#include "agent/agent_error.hpp"

#include <bai/protocol.hpp>
#include <bai/result.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace bai::core {

struct IdRange {
  std::uint32_t first = 0;
  std::uint32_t last = 0;
  bool contains(std::uint32_t id) const { return id >= first && id <= last; }
};

// "200000-299999" or a single "1500"; the whole list must not be empty. `key` names the
// config key in errors.
Result<std::vector<IdRange>> parseIdRanges(const std::vector<std::string>& texts, const std::string& key);

struct IdentityPolicy {
  std::vector<IdRange> uidRanges;
  std::vector<IdRange> gidRanges;
  bool allowRootSessions = false;  // runtime.allow-root-sessions: uid/gid 0 accepted
  bool canSwitchUser = true;       // the agent runs as root; else it cannot run anyone's session
};

// Refusals name the owner's id and the ranges; IdentityRefused.
AgentResult<protocol::SessionOwner> checkOwner(const std::optional<protocol::SessionOwner>& owner,
                                               const IdentityPolicy& policy);

}  // namespace bai::core
