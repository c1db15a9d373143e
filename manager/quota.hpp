// Keypair resource policies (quotas) applied to one owner: what its sessions hold and
// how many are pending, against what its policy allows.
#pragma once

#include "store/store.hpp"

#include <bai/slots.hpp>

#include <map>
#include <optional>
#include <string>

namespace bai::manager {

struct OwnerUsage {
  ResourceSlot held;  // the requests of the sessions counted in `active`
  int active = 0;     // sessions holding resources: SCHEDULED to TERMINATING
  int pending = 0;
};

// What the sessions of `owner` among `sessions` (the manager's active ones) hold and wait for.
OwnerUsage ownerUsage(const std::map<std::string, SessionRecord>& sessions, const std::string& owner);

// Why `request` may not be placed now under `policy`, naming the limit and the figures;
// nullopt when it may. Zero amounts never count; an infinite limit is none.
std::optional<std::string> quotaShortfall(const ResourcePolicyRecord& policy, const OwnerUsage& usage,
                                          const ResourceSlot& request);

// Why one more session may not be enqueued under `policy`'s max pending; nullopt when it may.
std::optional<std::string> pendingShortfall(const ResourcePolicyRecord& policy, const OwnerUsage& usage);
// The same with the manager's `defaultMax` (scheduler.max-pending-per-keypair; 0: none)
// for an owner whose policy (may be null) sets no max pending.
std::optional<std::string> pendingShortfall(const ResourcePolicyRecord* policy, int defaultMax, const OwnerUsage& usage);

}  // namespace bai::manager
