// dispersed: spreads sessions. Picks the agent with the fewest spare device kinds the
// session does not ask for (so CPU-only sessions keep off idle GPU nodes), then the most
// remaining compared slot by slot (the requested slots first, in the view's order), then
// the smallest agent id.
#include "common/policy_support.hpp"

namespace {

using bai::policy::compareRemaining;
using bai::policy::idBefore;
using bai::policy::spareDeviceKinds;

class Dispersed {
 public:
  explicit Dispersed(const char* options) { bai::policy::parseOptions(options, {}); }

  std::uint32_t select(const bai_session_view& session, const bai_candidate_view& view) const {
    std::uint32_t best = 0;
    for (std::uint32_t i = 1; i < view.agent_count; ++i) {
      if (better(session, view, i, best)) best = i;
    }
    return best;
  }

 private:
  static bool better(const bai_session_view& session, const bai_candidate_view& view, std::uint32_t a, std::uint32_t b) {
    const std::uint32_t spareA = spareDeviceKinds(session, view, a), spareB = spareDeviceKinds(session, view, b);
    if (spareA != spareB) return spareA < spareB;
    if (int c = compareRemaining(session, view, a, b); c != 0) return c > 0;
    return idBefore(view.agent_ids[a], view.agent_ids[b]);
  }
};

}  // namespace

BAI_SELECTOR_POLICY(Dispersed, BAI_PREFER_MOST_REMAINING, "dispersed", "spreads: most remaining first")
