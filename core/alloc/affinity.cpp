#include "affinity.hpp"

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

AffinityHint::AffinityHint(AffinityPolicy policy, std::initializer_list<int> numaNodes) : policy_(policy) {
  for (int node : numaNodes) addNode(node);
}

void AffinityHint::addNode(int numaNode) {
  if (numaNode >= 0 && numaNode < kMaxNumaNodes) nodes_.set(static_cast<std::size_t>(numaNode));
}

}  // namespace bai::core
