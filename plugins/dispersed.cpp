// dispersed: spreads sessions. Picks the agent with the most remaining, compared slot by
// slot in the view's order (accelerators first), then the smallest agent id.
#include "common/policy_support.hpp"

namespace {

using bai::policy::idBefore;

class Dispersed {
 public:
  explicit Dispersed(const char* options) { bai::policy::parseOptions(options, {}); }

  std::uint32_t select(const bai_session_view&, const bai_candidate_view& view) const {
    std::uint32_t best = 0;
    for (std::uint32_t i = 1; i < view.agent_count; ++i) {
      if (better(view, i, best)) best = i;
    }
    return best;
  }

 private:
  static bool better(const bai_candidate_view& view, std::uint32_t a, std::uint32_t b) {
    for (std::uint32_t slot = 0; slot < view.slot_count; ++slot) {
      const double x = view.remaining[slot][a], y = view.remaining[slot][b];
      if (x != y) return x > y;
    }
    return idBefore(view.agent_ids[a], view.agent_ids[b]);
  }
};

}  // namespace

BAI_SELECTOR_POLICY(Dispersed, BAI_PREFER_MOST_REMAINING, "dispersed", "spreads: most remaining first")
