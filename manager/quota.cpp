#include "quota.hpp"

namespace bai::manager {

OwnerUsage ownerUsage(const std::map<std::string, SessionRecord>& sessions, const std::string& owner) {
  OwnerUsage usage;
  for (const auto& [id, session] : sessions) {
    if (session.owner != owner || isFinal(session.status)) continue;
    if (session.status == SessionStatus::Pending) {
      ++usage.pending;
    } else {
      ++usage.active;
      usage.held = usage.held + session.requested;
    }
  }
  return usage;
}

std::optional<std::string> quotaShortfall(const ResourcePolicyRecord& policy, const OwnerUsage& usage,
                                          const ResourceSlot& request) {
  const std::string prefix = "keypair policy '" + policy.name + "' allows ";
  if (policy.maxConcurrentSessions > 0 && usage.active >= policy.maxConcurrentSessions) {
    return prefix + std::to_string(policy.maxConcurrentSessions) + " concurrent sessions; " +
           std::to_string(usage.active) + " running";
  }
  for (const auto& [slot, amount] : request) {
    if (amount.isZero()) continue;
    const bool listed = policy.totalResourceSlots.contains(slot.str());
    if (!listed && policy.defaultUnlimited) continue;
    if (!listed) return prefix + "no " + slot.str() + " (unlisted slots are LIMITED); " + amount.toString() + " asked";
    const Quantity limit = policy.totalResourceSlots.get(slot);
    if (limit.isInfinite()) continue;
    const Quantity held = usage.held.get(slot);
    if (held + amount > limit) {
      return prefix + slot.str() + " " + limit.toString() + "; " + held.toString() + " held, " + amount.toString() +
             " more asked";
    }
  }
  return std::nullopt;
}

std::optional<std::string> pendingShortfall(const ResourcePolicyRecord& policy, const OwnerUsage& usage) {
  if (policy.maxPendingSessions > 0 && usage.pending >= policy.maxPendingSessions) {
    return "keypair policy '" + policy.name + "' allows " + std::to_string(policy.maxPendingSessions) +
           " pending sessions; " + std::to_string(usage.pending) + " pending";
  }
  return std::nullopt;
}

std::optional<std::string> pendingShortfall(const ResourcePolicyRecord* policy, int defaultMax, const OwnerUsage& usage) {
  if (policy != nullptr && policy->maxPendingSessions > 0) return pendingShortfall(*policy, usage);
  if (defaultMax > 0 && usage.pending >= defaultMax) {
    return "a keypair may have " + std::to_string(defaultMax) +
           " pending sessions (scheduler.max-pending-per-keypair; a resource policy may set another limit); " +
           std::to_string(usage.pending) + " pending";
  }
  return std::nullopt;
}

}  // namespace bai::manager
