#include "runtime/sandbox_spec.hpp"

namespace bai::core {

const std::vector<DeviceNode>& baseDeviceNodes() {
  static const std::vector<DeviceNode> nodes{
      {"/dev/null", 'c', 1, 3, "rw"},    {"/dev/zero", 'c', 1, 5, "rw"}, {"/dev/full", 'c', 1, 7, "rw"},
      {"/dev/random", 'c', 1, 8, "rw"},  {"/dev/urandom", 'c', 1, 9, "rw"}, {"/dev/tty", 'c', 5, 0, "rw"},
  };
  return nodes;
}

bool isDeviceAccess(std::string_view access) {
  if (access.empty() || access.size() > 3) return false;
  for (std::size_t i = 0; i < access.size(); ++i) {
    if (std::string_view("rwm").find(access[i]) == std::string_view::npos) return false;
    if (access.find(access[i], i + 1) != std::string_view::npos) return false;  // "rr" is not a set
  }
  return true;
}

DeviceRule ruleFor(const DeviceNode& node) { return {node.type, node.major, node.minor, node.access}; }

std::vector<DeviceRule> baseDeviceRules() {
  std::vector<DeviceRule> rules;
  for (const DeviceNode& node : baseDeviceNodes()) rules.push_back(ruleFor(node));
  rules.push_back({'c', 5, 2, "rw"});              // /dev/ptmx
  rules.push_back({'c', 136, std::nullopt, "rw"});  // /dev/pts/*
  return rules;
}

}  // namespace bai::core
