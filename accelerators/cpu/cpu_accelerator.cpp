// The cpu accelerator plugin: the intrinsic slots `cpu` (one device per usable PU) and
// `mem` (one device per NUMA node), discovered with hwloc once at create.
#include "config.hpp"
#include "cpu_list.hpp"
#include "inventory.hpp"
#include "proc_stats.hpp"
#include "session.hpp"

#include <bai/plugin.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <unordered_map>
#include <unordered_set>

namespace bai::cpu {
namespace {

using nlohmann::json;

// Thread pools of OpenMP and BLAS runtimes default to one thread per CPU of the host;
// a session bound to a few PUs should start that many.
constexpr const char* kThreadCountVariables[] = {"OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                                                 "NUMEXPR_NUM_THREADS"};

std::string puId(const ProcessingUnit& pu) { return std::to_string(pu.osIndex); }

class CpuAccelerator final : public plugin::Accelerator {
 public:
  CpuAccelerator(const plugin::Host& host, std::string_view configJson)
      : config_(parseConfig(configJson)), inventory_(loadInventory(config_)) {
    host.info(std::to_string(inventory_.pus.size()) + " PUs and " + std::to_string(inventory_.totalMemory) +
              " bytes of memory on " + std::to_string(inventory_.memory.size()) + " memory nodes, from " +
              inventory_.source);
  }

  std::string describe() override {
    const json extra = {
        {"source", inventory_.source},
        {"pus", inventory_.pus.size()},
        {"machine_pus", inventory_.machinePus},
        {"cores", inventory_.cores},
        {"packages", inventory_.packages},
        {"numa_nodes", numaNodeCount()},
        {"memory", std::to_string(inventory_.totalMemory)},
        {"cpu_overcommit", config_.cpuOvercommit.toString()},
        {"mem_overcommit", config_.memOvercommit.toString()},
        {"measures", inventory_.isThisMachine ? "this machine" : "none: the topology is not this machine"},
    };
    return json{{"key", "cpu"}, {"extra_info", extra}}.dump();
  }

  // Built key by key: nlohmann's initializer lists copy every value, which doubles the
  // time on a 384-PU machine.
  std::string listDevices() override {
    json document;
    json& devices = document["devices"] = json::array();
    for (const ProcessingUnit& pu : inventory_.pus) {
      json& device = appendObject(devices);
      device["id"] = puId(pu);
      if (!pu.model.empty()) device["model"] = pu.model;
      device["numa_node"] = pu.numaNode;
      device["processing_units"] = 1;
      device["health"] = "healthy";
      json& extra = device["extra"];
      extra["core"] = pu.core;
      extra["package"] = pu.package;
    }
    for (const MemoryNode& node : inventory_.memory) {
      json& device = appendObject(devices);
      device["id"] = node.id;
      device["numa_node"] = node.numaNode;
      device["memory"] = std::to_string(node.bytes);
      device["processing_units"] = 0;
      device["health"] = "healthy";
    }
    return document.dump();
  }

  std::string slotTypes() override { return R"({"slots":[{"name":"cpu","type":"count"},{"name":"mem","type":"bytes"}]})"; }

  std::string allocMapSpec() override {
    json document;
    json& maps = document["maps"] = json::array();
    json& cpuDevices = discreteMap(maps, "cpu", config_.cpuStrategy);
    const std::string puCapacity = inventory_.puCapacity.toString();
    for (const ProcessingUnit& pu : inventory_.pus) addCapacity(cpuDevices, puId(pu), puCapacity);
    json& memDevices = discreteMap(maps, "mem", config_.memStrategy);
    for (const MemoryNode& node : inventory_.memory) addCapacity(memDevices, node.id, node.capacity.toString());
    return document.dump();
  }

  std::string prepareSession(std::string_view sessionJson) override {
    const SessionResources resources = parseSession(sessionJson, inventory_);
    if (prepared_.count(resources.sessionId) != 0) {
      throw plugin::StatusError(BAI_ERR_INVALID_ARGUMENT, "session " + resources.sessionId + " is prepared already");
    }
    json env = json::object();
    json limits = json::object();
    if (!resources.cpus.empty()) {
      const std::string cpuset = internal::formatCpuList(resources.cpus);
      env["BAI_CPUSET"] = cpuset;
      for (const char* variable : kThreadCountVariables) env[variable] = std::to_string(resources.cpus.size());
      limits["cpuset"] = cpuset;
    }
    if (!resources.memory.isZero()) limits["memory"] = resources.memory.toString();
    if (!resources.memoryNodes.empty()) limits["mems"] = internal::formatCpuList(resources.memoryNodes);
    std::string answer = json{{"env", std::move(env)}, {"limits", std::move(limits)}}.dump();
    prepared_.insert(resources.sessionId);
    return answer;
  }

  // prepare_session only computed values: releasing forgets the id (and refuses a bad document).
  void releaseSession(std::string_view sessionJson) override {
    const SessionResources resources = parseSession(sessionJson, inventory_);
    if (prepared_.erase(resources.sessionId) == 0) {
      throw plugin::StatusError(BAI_ERR_NOT_FOUND, "session " + resources.sessionId + " is not prepared (or released already)");
    }
  }

  // /proc describes this machine only: an XML or synthetic topology gets no measures
  // rather than numbers that belong to other CPUs. The first call measures since boot,
  // so that it never blocks the host's worker thread; later calls, since the previous.
  std::string nodeMeasures() override {
    json measures = json::array();
    if (inventory_.isThisMachine) {
      measures.push_back(cpuUtilisation());
      const MemoryUsage memory = memoryUsage();
      measures.push_back({{"key", "mem"}, {"unit", "bytes"}, {"value", std::to_string(memory.usedBytes)}});
      measures.push_back({{"key", "mem_total"}, {"unit", "bytes"}, {"value", std::to_string(memory.totalBytes)}});
    }
    return json{{"measures", std::move(measures)}}.dump();
  }

  std::string health() override {
    json document;
    json& devices = document["devices"] = json::array();
    for (const ProcessingUnit& pu : inventory_.pus) addHealthy(devices, puId(pu));
    for (const MemoryNode& node : inventory_.memory) addHealthy(devices, node.id);
    return document.dump();
  }

 private:
  static json& appendObject(json& array) { return array.emplace_back(json::object()); }

  // Appends a discrete map for `slot` to `maps`; returns its device list.
  static json& discreteMap(json& maps, const char* slot, const std::string& strategy) {
    json& map = appendObject(maps);
    map["slot"] = slot;
    map["kind"] = "discrete";
    map["strategy"] = strategy;
    return map["devices"] = json::array();
  }

  static void addCapacity(json& devices, const std::string& id, const std::string& capacity) {
    json& device = appendObject(devices);
    device["id"] = id;
    device["capacity"] = capacity;
  }

  static void addHealthy(json& devices, const std::string& id) {
    json& device = appendObject(devices);
    device["id"] = id;
    device["health"] = "healthy";
  }

  unsigned numaNodeCount() const {
    unsigned count = 0;
    for (const MemoryNode& node : inventory_.memory) count += node.numaNode >= 0 ? 1 : 0;
    return count;
  }

  static std::string readOrUnavailable(const char* path) {
    std::optional<std::string> text = readProcFile(path);
    if (!text) throw plugin::StatusError(BAI_ERR_UNAVAILABLE, std::string("cannot read ") + path);
    return std::move(*text);
  }

  // Per PU, and over all of this plugin's PUs (not the host's aggregate line, which
  // also counts CPUs outside the allowed cpuset).
  json cpuUtilisation() {
    const auto now = parsePerCpuTimes(readOrUnavailable("/proc/stat"));
    json perDevice = json::object();
    CpuTimes overallBefore;
    CpuTimes overallNow;
    for (const ProcessingUnit& pu : inventory_.pus) {
      const auto sample = now.find(pu.osIndex);
      if (sample == now.end()) continue;  // offline since create
      const CpuTimes before = previousCpuTimes_[pu.osIndex];
      perDevice[puId(pu)] = busyPercent(before, sample->second);
      overallBefore.busy += before.busy;
      overallBefore.total += before.total;
      overallNow.busy += sample->second.busy;
      overallNow.total += sample->second.total;
      previousCpuTimes_[pu.osIndex] = sample->second;
    }
    return {{"key", "cpu_util"},
            {"unit", "percent"},
            {"value", busyPercent(overallBefore, overallNow)},
            {"per_device", std::move(perDevice)}};
  }

  static MemoryUsage memoryUsage() {
    const auto usage = parseMemoryUsage(readOrUnavailable("/proc/meminfo"));
    if (!usage) throw plugin::StatusError(BAI_ERR_UNAVAILABLE, "/proc/meminfo lacks MemTotal or MemAvailable");
    return *usage;
  }

  CpuConfig config_;
  CpuInventory inventory_;
  std::unordered_map<unsigned, CpuTimes> previousCpuTimes_;  // node_measures' previous sample
  std::unordered_set<std::string> prepared_;                  // ids of the prepared sessions
};

}  // namespace
}  // namespace bai::cpu

BAI_ACCELERATOR_PLUGIN(bai::cpu::CpuAccelerator, "cpu", "bai", BAI_CPU_PLUGIN_VERSION, "cpu",
                       "CPU cores and memory per NUMA node, discovered with hwloc")
