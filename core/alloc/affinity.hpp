// NUMA affinity between device types of one request.
#pragma once

#include <bitset>
#include <initializer_list>
#include <string_view>

#include <bai/result.hpp>

namespace bai::core {

enum class AffinityPolicy {
  Interleaved,       // prefer the hinted NUMA nodes, spread across nodes otherwise
  PreferSingleNode,  // keep the request on the hinted node(s) or on one node when it fits there
};

const char* affinityPolicyName(AffinityPolicy policy);
Result<AffinityPolicy> parseAffinityPolicy(std::string_view text);

// Passed from one device type to the next: the NUMA nodes of the devices already chosen.
// A bit set, because allocation asks "is this node hinted?" once per device.
class AffinityHint {
 public:
  static constexpr int kMaxNumaNodes = 1024;

  AffinityHint() = default;
  AffinityHint(AffinityPolicy policy, std::initializer_list<int> numaNodes);

  AffinityPolicy policy() const { return policy_; }
  bool empty() const { return nodes_.none(); }
  bool contains(int numaNode) const { return numaNode >= 0 && numaNode < kMaxNumaNodes && nodes_[static_cast<std::size_t>(numaNode)]; }
  // Whether a device on `numaNode` suits the hint: hinted nodes and unknown nodes (-1) do.
  bool prefers(int numaNode) const { return !empty() && (numaNode < 0 || contains(numaNode)); }
  // Ignores unknown (-1) and out-of-range nodes.
  void addNode(int numaNode);

 private:
  AffinityPolicy policy_ = AffinityPolicy::Interleaved;
  std::bitset<kMaxNumaNodes> nodes_;
};

}  // namespace bai::core
