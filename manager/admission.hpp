// What a submission is checked against before it is queued, beyond its shape: the
// scaling group exists, the amounts an intrinsic slot gets by default, and that some
// live agent of the group offers each slot in steps the amount is a multiple of. A
// request that could only fail on an agent is refused here, naming the rule.
//
// Threads: callers hold the ledger's lock (the state is read, never changed).
#pragma once

#include "domain_error.hpp"
#include "ledger.hpp"

#include <bai/slots.hpp>

#include <string>

namespace bai::manager {

// Whether `group` has a record or an agent registered in it.
bool scalingGroupExists(const ClusterState& state, const std::string& group);

// `requested` with a default for every intrinsic slot of the cluster (no namespace:
// cpu, mem) it names no amount of (absent or zero): the owner's `policy`'s
// default_session_slots (may be null), else scheduler.default-session-slots.
Outcome<ResourceSlot> withDefaultSlots(const ClusterState& state, const ResourcePolicyRecord* policy,
                                       ResourceSlot requested);

// Refuses a slot that no live agent of `group` offers (SlotNotServed), and an amount
// that none of those agents grants because it is not a multiple of their quantum for
// the slot (InvalidResource, naming the rule and the nearest valid amounts).
Outcome<void> checkServed(const ClusterState& state, const std::string& group, const ResourceSlot& requested);

// The quantum `agent` grants `slot` in: what it reported, else 1 for slots counted in
// whole units (count, bytes, unique); zero when any amount goes.
Quantity slotQuantum(const AgentView& agent, const std::string& slot, const SlotRegistry& registry);

}  // namespace bai::manager
