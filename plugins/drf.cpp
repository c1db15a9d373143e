// drf: Dominant Resource Fairness. An owner's dominant share is the largest fraction of
// any slot of the group that the owner holds; slots with no capacity in the group are
// skipped (nobody can hold a share of them). The order is built by progressive filling:
// the owner with the smallest share (ties: the one whose next session is oldest) gives
// its oldest pending session, whose request is then counted in that owner's share as if
// placed. So one owner's long queue interleaves with others' instead of going first whole.
#include "common/policy_support.hpp"

#include <algorithm>
#include <map>
#include <queue>
#include <string>
#include <vector>

namespace {

class Drf {
 public:
  explicit Drf(const char* options) { bai::policy::parseOptions(options, {}); }

  void order(const bai_pending_view& view, std::span<std::uint32_t> order) {
    // Each owner's sessions, oldest first.
    std::map<std::string, std::vector<std::uint32_t>> byOwner;
    for (std::uint32_t i = 0; i < view.session_count; ++i) byOwner[view.owners[i]].push_back(i);
    struct Owner {
      std::vector<std::uint32_t> sessions;
      std::size_t next = 0;
      std::vector<double> held;  // [slot]
    };
    std::vector<Owner> owners;
    for (auto& [name, sessions] : byOwner) {
      std::sort(sessions.begin(), sessions.end(), [&](auto a, auto b) { return view.enqueue_seq[a] < view.enqueue_seq[b]; });
      Owner owner{std::move(sessions), 0, std::vector<double>(view.slot_count)};
      for (std::uint32_t slot = 0; slot < view.slot_count; ++slot) owner.held[slot] = view.owner_allocated[slot][owner.sessions[0]];
      owners.push_back(std::move(owner));
    }
    auto share = [&](const Owner& owner) {
      double dominant = 0;
      for (std::uint32_t slot = 0; slot < view.slot_count; ++slot) {
        if (view.group_capacity[slot] > 0) dominant = std::max(dominant, owner.held[slot] / view.group_capacity[slot]);
      }
      return dominant;
    };
    // (share, seq of the owner's next session, owner): the smallest first.
    using Entry = std::tuple<double, std::uint64_t, std::size_t>;
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> next;
    for (std::size_t o = 0; o < owners.size(); ++o) next.emplace(share(owners[o]), view.enqueue_seq[owners[o].sessions[0]], o);
    std::size_t out = 0;
    while (!next.empty()) {
      const std::size_t o = std::get<2>(next.top());
      next.pop();
      Owner& owner = owners[o];
      const std::uint32_t session = owner.sessions[owner.next++];
      order[out++] = session;
      for (std::uint32_t slot = 0; slot < view.slot_count; ++slot) owner.held[slot] += view.requested[slot][session];
      if (owner.next < owner.sessions.size()) next.emplace(share(owner), view.enqueue_seq[owner.sessions[owner.next]], o);
    }
  }
};

}  // namespace

BAI_SEQUENCER_POLICY(Drf, "drf", "dominant resource fairness by progressive filling: smallest share first, then oldest")
