// What a submission is checked against before it is queued, beyond its shape: the
// scaling group exists, its image is allowed there and some live agent runs its kind of
// session, the amounts an intrinsic slot gets by default, and that some
// live agent of the group offers each slot in steps the amount is a multiple of. A
// request that could only fail on an agent is refused here, naming the rule.
//
// Threads: callers hold the ledger's lock (the state is read, never changed).
#pragma once

#include "domain_error.hpp"
#include "ledger.hpp"

#include <bai/slots.hpp>

#include <optional>
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

// Refuses an image that matches none of `group`'s allowed_images patterns
// (ImageNotAllowed, naming image, group and patterns); an empty list allows every image.
Outcome<void> checkImageAllowed(const ClusterState& state, const std::string& group,
                                const std::optional<std::string>& image);

// Refuses a session when no live agent of `group` offers the runtime it needs (container
// with an image, process without) as available (NoRuntime, with each agent's reason).
Outcome<void> checkRuntimeOffered(const ClusterState& state, const std::string& group,
                                  const std::optional<std::string>& image);

// The quantum `agent` grants `slot` in: what it reported, else 1 for slots counted in
// whole units (count, bytes, unique); zero when any amount goes.
Quantity slotQuantum(const AgentView& agent, const std::string& slot, const SlotRegistry& registry);

}  // namespace bai::manager
