// lifo: the newest pending session first (enqueue_seq descending).
#include "common/policy_support.hpp"

#include <algorithm>

namespace {

class Lifo {
 public:
  explicit Lifo(const char* options) { bai::policy::parseOptions(options, {}); }
  void order(const bai_pending_view& view, std::span<std::uint32_t> order) {
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return view.enqueue_seq[a] > view.enqueue_seq[b]; });
  }
};

}  // namespace

BAI_SEQUENCER_POLICY(Lifo, "lifo", "newest pending session first")
