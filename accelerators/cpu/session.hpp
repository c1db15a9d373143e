// The session document of prepare_session and release_session, checked against the
// inventory: the host must only hand back devices and amounts this plugin offered.
#pragma once

#include "inventory.hpp"

#include <bai/slots.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace bai::cpu {

struct SessionResources {
  std::string sessionId;
  std::vector<unsigned> cpus;         // OS indexes, sorted, unique
  Quantity memory;                    // bytes, summed over the memory nodes
  std::vector<unsigned> memoryNodes;  // NUMA nodes of the memory, sorted, unique
};

// Throws bai::plugin::StatusError(BAI_ERR_INVALID_ARGUMENT) naming the offending part.
SessionResources parseSession(std::string_view sessionJson, const CpuInventory& inventory);

}  // namespace bai::cpu
