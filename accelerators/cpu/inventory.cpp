#include "inventory.hpp"

#include <bai/plugin.hpp>

#include <hwloc.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <memory>
#include <system_error>

namespace bai::cpu {
namespace {

struct TopologyDeleter {
  void operator()(hwloc_topology* topology) const { hwloc_topology_destroy(topology); }
};
using TopologyHandle = std::unique_ptr<hwloc_topology, TopologyDeleter>;

[[noreturn]] void fail(bai_status status, const std::string& message) { throw plugin::StatusError(status, message); }

// Thread-safe, unlike strerror: instances may be created on several threads at once.
std::string systemError() { return std::generic_category().message(errno); }

void selectSource(hwloc_topology_t topology, const CpuConfig& config) {
  const char* argument = config.topologyArgument.c_str();
  if (config.source == TopologySource::Xml && hwloc_topology_set_xml(topology, argument) != 0) {
    const std::string reason = systemError();
    fail(BAI_ERR_INVALID_ARGUMENT, "topology_xml: cannot read '" + config.topologyArgument + "': " + reason);
  }
  if (config.source == TopologySource::Synthetic && hwloc_topology_set_synthetic(topology, argument) != 0) {
    fail(BAI_ERR_INVALID_ARGUMENT, "synthetic: hwloc rejects the description '" + config.topologyArgument + "'");
  }
}

TopologyHandle loadTopology(const CpuConfig& config) {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) fail(BAI_ERR_OUT_OF_MEMORY, "hwloc_topology_init failed");
  TopologyHandle topology(raw);
  // The host's other threads keep running during create: hwloc must not rebind the
  // process (its x86 backend would, per PU; without it the load is also faster).
  hwloc_topology_set_flags(raw, HWLOC_TOPOLOGY_FLAG_DONT_CHANGE_BINDING);
  // Caches are not offered as slots; skipping them keeps create fast.
  hwloc_topology_set_cache_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_NONE);
  hwloc_topology_set_icache_types_filter(raw, HWLOC_TYPE_FILTER_KEEP_NONE);
  selectSource(raw, config);
  if (hwloc_topology_load(raw) != 0) {
    const std::string reason = systemError();
    const bai_status status =
        config.source == TopologySource::ThisMachine ? BAI_ERR_UNAVAILABLE : BAI_ERR_INVALID_ARGUMENT;
    fail(status, "hwloc cannot load the topology of " + config.sourceName() + ": " + reason);
  }
  return topology;
}

int osIndexOrUnknown(hwloc_obj_t object) {
  return object == nullptr || object->os_index == HWLOC_UNKNOWN_INDEX ? -1 : static_cast<int>(object->os_index);
}

std::string cpuModel(hwloc_obj_t pu) {
  for (hwloc_obj_t object = pu; object != nullptr; object = object->parent) {
    if (const char* model = hwloc_obj_get_info_by_name(object, "CPUModel")) {
      std::string text(model);
      text.erase(text.find_last_not_of(' ') + 1);  // x86 pads the brand string with spaces
      return text;
    }
  }
  return {};
}

std::vector<hwloc_obj_t> objectsOfType(hwloc_topology_t topology, hwloc_obj_type_t type) {
  std::vector<hwloc_obj_t> objects;
  for (hwloc_obj_t o = hwloc_get_next_obj_by_type(topology, type, nullptr); o != nullptr;
       o = hwloc_get_next_obj_by_type(topology, type, o)) {
    objects.push_back(o);
  }
  return objects;
}

int numaNodeOf(const std::vector<hwloc_obj_t>& numaNodes, unsigned puOsIndex) {
  for (hwloc_obj_t node : numaNodes) {
    if (hwloc_bitmap_isset(node->cpuset, puOsIndex)) return osIndexOrUnknown(node);
  }
  return -1;
}

std::vector<ProcessingUnit> processingUnits(hwloc_topology_t topology, const std::vector<hwloc_obj_t>& numaNodes) {
  std::vector<ProcessingUnit> pus;
  for (hwloc_obj_t pu : objectsOfType(topology, HWLOC_OBJ_PU)) {
    hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_CORE, pu);
    pus.push_back({pu->os_index, numaNodeOf(numaNodes, pu->os_index),
                   core == nullptr ? -1 : static_cast<int>(core->logical_index),
                   osIndexOrUnknown(hwloc_get_ancestor_obj_by_type(topology, HWLOC_OBJ_PACKAGE, pu)), cpuModel(pu)});
  }
  std::sort(pus.begin(), pus.end(), [](const auto& a, const auto& b) { return a.osIndex < b.osIndex; });
  return pus;
}

// bytes × factor, floored: a memory capacity is a whole number of bytes.
Quantity overcommitted(std::uint64_t bytes, Quantity factor) {
  return Quantity::fromRaw(factor.timesFloor(bytes) * Quantity::kScale);
}

std::vector<MemoryNode> memoryNodes(hwloc_topology_t topology, const std::vector<hwloc_obj_t>& numaNodes,
                                    Quantity factor) {
  std::vector<MemoryNode> memory;
  for (hwloc_obj_t node : numaNodes) {
    const std::uint64_t bytes = node->attr->numanode.local_memory;
    memory.push_back({"mem" + std::to_string(node->os_index), osIndexOrUnknown(node), bytes,
                      overcommitted(bytes, factor)});
  }
  if (memory.empty()) {  // hwloc 2 always reports a NUMA node; kept for other hwloc builds
    const std::uint64_t bytes = hwloc_get_root_obj(topology)->total_memory;
    memory.push_back({"mem", -1, bytes, overcommitted(bytes, factor)});
  }
  std::sort(memory.begin(), memory.end(), [](const auto& a, const auto& b) { return a.numaNode < b.numaNode; });
  return memory;
}

unsigned countOf(hwloc_topology_t topology, hwloc_obj_type_t type) {
  return static_cast<unsigned>(std::max(0, hwloc_get_nbobjs_by_type(topology, type)));
}

}  // namespace

const ProcessingUnit* CpuInventory::findPu(std::string_view id) const {
  unsigned osIndex = 0;
  const auto [end, error] = std::from_chars(id.data(), id.data() + id.size(), osIndex);
  const bool canonical = error == std::errc() && end == id.data() + id.size() && (id.size() == 1 || id[0] != '0');
  if (id.empty() || !canonical) return nullptr;
  const auto found = std::lower_bound(pus.begin(), pus.end(), osIndex,
                                      [](const ProcessingUnit& pu, unsigned index) { return pu.osIndex < index; });
  return found != pus.end() && found->osIndex == osIndex ? &*found : nullptr;
}

const MemoryNode* CpuInventory::findMemory(std::string_view id) const {
  const auto found = std::find_if(memory.begin(), memory.end(), [&](const MemoryNode& node) { return node.id == id; });
  return found != memory.end() ? &*found : nullptr;
}

CpuInventory loadInventory(const CpuConfig& config) {
  const TopologyHandle topology = loadTopology(config);
  hwloc_topology_t t = topology.get();
  const std::vector<hwloc_obj_t> numaNodes = objectsOfType(t, HWLOC_OBJ_NUMANODE);
  CpuInventory inventory;
  inventory.source = config.sourceName();
  inventory.isThisMachine = config.source == TopologySource::ThisMachine;
  inventory.pus = processingUnits(t, numaNodes);
  inventory.memory = memoryNodes(t, numaNodes, config.memOvercommit);
  inventory.puCapacity = config.cpuOvercommit;
  inventory.machinePus = static_cast<unsigned>(hwloc_bitmap_weight(hwloc_topology_get_complete_cpuset(t)));
  inventory.cores = countOf(t, HWLOC_OBJ_CORE);
  inventory.packages = countOf(t, HWLOC_OBJ_PACKAGE);
  for (const MemoryNode& node : inventory.memory) inventory.totalMemory += node.bytes;
  return inventory;
}

}  // namespace bai::cpu
