// fifo: the oldest pending session first (enqueue_seq ascending).
#include "common/policy_support.hpp"

#include <algorithm>

namespace {

class Fifo {
 public:
  explicit Fifo(const char* options) { bai::policy::parseOptions(options, {}); }
  void order(const bai_pending_view& view, std::span<std::uint32_t> order) {
    std::sort(order.begin(), order.end(), [&](auto a, auto b) { return view.enqueue_seq[a] < view.enqueue_seq[b]; });
  }
};

}  // namespace

BAI_SEQUENCER_POLICY(Fifo, "fifo", "oldest pending session first")
