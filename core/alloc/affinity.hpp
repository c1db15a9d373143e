// NUMA affinity between device types of one request.
#pragma once

#include <string_view>
#include <vector>

#include <bai/result.hpp>

namespace bai::core {

enum class AffinityPolicy {
  Interleaved,       // prefer the hinted NUMA nodes, spread across nodes otherwise
  PreferSingleNode,  // keep the request on the hinted node(s) or on one node when it fits there
};

const char* affinityPolicyName(AffinityPolicy policy);
Result<AffinityPolicy> parseAffinityPolicy(std::string_view text);

// Passed from one device type to the next: the NUMA nodes of the devices already chosen.
struct AffinityHint {
  AffinityPolicy policy = AffinityPolicy::Interleaved;
  std::vector<int> numaNodes;  // sorted, unique; empty for the first device type

  bool prefers(int numaNode) const;
  void addNode(int numaNode);
};

}  // namespace bai::core
