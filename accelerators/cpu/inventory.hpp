// What the cpu plugin offers, read from hwloc once at create: the usable PUs and the
// memory of each NUMA node, with the capacities the allocation maps get.
#pragma once

#include "config.hpp"

#include <bai/slots.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bai::cpu {

struct ProcessingUnit {
  unsigned osIndex = 0;  // the Linux CPU number; also the device id
  int numaNode = -1;     // OS index of its (first) NUMA node; -1 when unknown
  int core = -1;         // hwloc logical index of its core: PUs sharing it are SMT siblings
  int package = -1;      // OS index of its package (socket)
  std::string model;     // hwloc's "CPUModel", empty when the topology does not say
};

struct MemoryNode {
  std::string id;           // "mem<N>" for NUMA node N; "mem" without NUMA information
  int numaNode = -1;
  std::uint64_t bytes = 0;  // the node's local memory
  Quantity capacity;        // bytes times mem_overcommit, floored to whole bytes
};

struct CpuInventory {
  std::string source;                // CpuConfig::sourceName()
  bool isThisMachine = false;        // measures of /proc apply only then
  std::vector<ProcessingUnit> pus;   // allowed PUs only, sorted by osIndex
  std::vector<MemoryNode> memory;    // sorted by numaNode
  Quantity puCapacity = 1;
  unsigned machinePus = 0;           // PUs of the whole machine, allowed or not
  unsigned cores = 0;
  unsigned packages = 0;
  std::uint64_t totalMemory = 0;

  const ProcessingUnit* findPu(std::string_view id) const;
  const MemoryNode* findMemory(std::string_view id) const;
};

// Throws bai::plugin::StatusError: INVALID_ARGUMENT for a bad XML file or synthetic
// description, UNAVAILABLE when this machine's topology cannot be read.
CpuInventory loadInventory(const CpuConfig& config);

}  // namespace bai::cpu
