// drf: Dominant Resource Fairness. A session's owner's dominant share is the largest
// fraction of any slot of the group that the owner holds now; the owner with the smallest
// share goes first, ties oldest first. Slots with no capacity in the group are skipped
// (nobody can hold a share of them). The order is computed from the shares as they are
// now: sessions placed during this pass do not move their owner back in it.
#include "common/policy_support.hpp"

#include <algorithm>
#include <vector>

namespace {

class Drf {
 public:
  explicit Drf(const char* options) { bai::policy::parseOptions(options, {}); }
  void order(const bai_pending_view& view, std::span<std::uint32_t> order) {
    shares_.assign(view.session_count, 0.0);
    for (std::uint32_t slot = 0; slot < view.slot_count; ++slot) {
      const double capacity = view.group_capacity[slot];
      if (!(capacity > 0)) continue;
      for (std::uint32_t i = 0; i < view.session_count; ++i) {
        shares_[i] = std::max(shares_[i], view.owner_allocated[slot][i] / capacity);
      }
    }
    std::sort(order.begin(), order.end(), [&](auto a, auto b) {
      if (shares_[a] != shares_[b]) return shares_[a] < shares_[b];
      return view.enqueue_seq[a] < view.enqueue_seq[b];
    });
  }

 private:
  std::vector<double> shares_;  // [session], kept to reuse its storage
};

}  // namespace

BAI_SEQUENCER_POLICY(Drf, "drf", "dominant resource fairness: smallest dominant share first, then oldest")
