// concentrated: packs sessions so whole agents stay free for big ones. Picks the agent
// with the fewest spare device kinds the session does not ask for (so CPU-only sessions
// keep off idle GPU nodes), then the fewest idle slot kinds (idle: nothing of that slot
// reserved, remaining == capacity > 0), then the least remaining compared slot by slot
// (the requested slots first, in the view's order), then the smallest agent id.
//
// Option {"prefer_shared": true} (default false) fights fragmentation of fractional GPUs:
// when the session requests any fraction slot (cuda.shares, or any vendor's slot of type
// "fraction"; policy ABI 1.1, read from the view's slot_is_fraction), agents with more devices already shared
// by other sessions come first, so fresh devices stay whole for sessions that need them.
// A request for whole devices ("cuda.device") ignores it.
#include "common/policy_support.hpp"

#include <cstddef>

namespace {

using bai::policy::compareRemaining;
using bai::policy::idBefore;
using bai::policy::spareDeviceKinds;

bool requestsShares(const bai_session_view& session, const bai_candidate_view& view) {
  // A manager older than ABI 1.1 says nothing of slot types: no packing by shares then.
  if (view.struct_size < offsetof(bai_candidate_view, slot_is_fraction) + sizeof(view.slot_is_fraction)) return false;
  for (std::uint32_t slot = 0; slot < view.slot_count; ++slot) {
    if (session.requested[slot] > 0 && view.slot_is_fraction[slot] != 0) return true;
  }
  return false;
}

std::uint32_t idleKinds(const bai_candidate_view& view, std::uint32_t agent) {
  std::uint32_t idle = 0;
  for (std::uint32_t slot = 0; slot < view.slot_count; ++slot) {
    const double capacity = view.capacity[slot][agent];
    idle += capacity > 0 && view.remaining[slot][agent] == capacity;
  }
  return idle;
}

class Concentrated {
 public:
  explicit Concentrated(const char* options)
      : preferShared_(bai::policy::boolOption(bai::policy::parseOptions(options, {"prefer_shared"}), "prefer_shared",
                                              false)) {}

  std::uint32_t select(const bai_session_view& session, const bai_candidate_view& view) const {
    const bool byShared = preferShared_ && requestsShares(session, view);
    std::uint32_t best = 0;
    for (std::uint32_t i = 1; i < view.agent_count; ++i) {
      if (better(session, view, byShared, i, best)) best = i;
    }
    return best;
  }

 private:
  static bool better(const bai_session_view& session, const bai_candidate_view& view, bool byShared, std::uint32_t a,
                     std::uint32_t b) {
    if (byShared && view.shared_devices[a] != view.shared_devices[b]) {
      return view.shared_devices[a] > view.shared_devices[b];
    }
    const std::uint32_t spareA = spareDeviceKinds(session, view, a), spareB = spareDeviceKinds(session, view, b);
    if (spareA != spareB) return spareA < spareB;
    const std::uint32_t idleA = idleKinds(view, a), idleB = idleKinds(view, b);
    if (idleA != idleB) return idleA < idleB;
    if (int c = compareRemaining(session, view, a, b); c != 0) return c < 0;
    return idBefore(view.agent_ids[a], view.agent_ids[b]);
  }

  bool preferShared_;
};

}  // namespace

BAI_SELECTOR_POLICY(Concentrated, BAI_PREFER_LEAST_REMAINING, "concentrated",
                    "packs: fewest idle slot kinds, then least remaining; prefer_shared for fraction slots")
