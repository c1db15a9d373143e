// roundrobin: takes agents in turn by id. Remembers the last agent it chose and picks the
// first candidate whose id sorts after it, wrapping to the smallest id. Remembering an id
// rather than a position keeps the turn fair when agents come and go between calls.
#include "common/policy_support.hpp"

#include <string>

namespace {

using bai::policy::idBefore;

class RoundRobin {
 public:
  explicit RoundRobin(const char* options) { bai::policy::parseOptions(options, {}); }

  std::uint32_t select(const bai_session_view&, const bai_candidate_view& view) {
    std::uint32_t next = view.agent_count, smallest = 0;
    for (std::uint32_t i = 0; i < view.agent_count; ++i) {
      const char* id = view.agent_ids[i];
      if (idBefore(id, view.agent_ids[smallest])) smallest = i;
      if (idBefore(last_.c_str(), id) && (next == view.agent_count || idBefore(id, view.agent_ids[next]))) next = i;
    }
    const std::uint32_t chosen = next < view.agent_count ? next : smallest;
    last_ = view.agent_ids[chosen];
    return chosen;
  }

 private:
  std::string last_;  // empty before the first call: every id sorts after it
};

}  // namespace

BAI_SELECTOR_POLICY(RoundRobin, BAI_PREFER_ANY, "roundrobin", "takes agents in turn by id, wrapping around")
