#include "affinity.hpp"

#include <algorithm>
#include <string>

namespace bai::core {

const char* affinityPolicyName(AffinityPolicy policy) {
  return policy == AffinityPolicy::Interleaved ? "interleaved" : "prefer-single-node";
}

Result<AffinityPolicy> parseAffinityPolicy(std::string_view text) {
  if (text == "interleaved") return AffinityPolicy::Interleaved;
  if (text == "prefer-single-node") return AffinityPolicy::PreferSingleNode;
  return fail(ErrorCode::InvalidArgument,
              "unknown affinity policy '" + std::string(text) + "' (expected interleaved or prefer-single-node)");
}

bool AffinityHint::prefers(int numaNode) const {
  return std::binary_search(numaNodes.begin(), numaNodes.end(), numaNode);
}

void AffinityHint::addNode(int numaNode) {
  if (numaNode < 0) return;
  auto it = std::lower_bound(numaNodes.begin(), numaNodes.end(), numaNode);
  if (it == numaNodes.end() || *it != numaNode) numaNodes.insert(it, numaNode);
}

}  // namespace bai::core
