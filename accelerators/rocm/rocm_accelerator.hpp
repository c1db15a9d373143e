// The rocm accelerator: whole AMD GPUs as the slot rocm.device, discovered through ROCm
// SMI (dlopened); a node without the library or a GPU offers zero devices and says why.
#pragma once

#include "rocm_smi.hpp"

#include <bai/plugin.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <set>
#include <unordered_map>
#include <vector>

namespace bai::rocm {

struct RocmConfig {
  std::string smiLibrary;               // empty: the default search order
  std::vector<std::string> deviceMask;  // SMI indexes or unique ids of GPUs to hide
  std::string sysfsRoot = "/sys";       // where render nodes and NUMA nodes are read
  std::string devRoot = "/dev";         // where the device nodes are
  std::vector<std::string> cdiSpecDirs = {"/etc/cdi", "/var/run/cdi"};
};

// Validates `configJson` against the declared keys; throws std::invalid_argument naming the key.
RocmConfig parseRocmConfig(std::string_view configJson);

class RocmAccelerator final : public plugin::Accelerator {
 public:
  RocmAccelerator(const plugin::Host& host, std::string_view configJson);

  std::string describe() override;
  std::string listDevices() override;
  std::string slotTypes() override;
  std::string allocMapSpec() override;
  std::string prepareSession(std::string_view sessionJson) override;
  void releaseSession(std::string_view sessionJson) override;
  std::string nodeMeasures() override;
  std::string sessionMeasures(std::string_view sessionJson) override;
  std::string health() override;

 private:
  struct Gpu {
    RocmDevice smi;
    std::string id;    // the SMI index as text
    std::string uuid;  // the unique id as "0x%016x", empty when unknown
    std::string pciBus;
    std::vector<std::string> renderNodes;  // "<dev_root>/dri/renderD128"
  };
  struct Session {
    std::string id;
    std::vector<std::size_t> gpus;  // indexes into gpus_, in SMI order
  };

  void readCdiSpecs();
  std::vector<std::string> cdiDevices(const std::vector<std::size_t>& gpus) const;
  void discover();
  void readSysfs(Gpu& gpu) const;
  bool masked(const Gpu& gpu) const;
  Session parseSession(std::string_view sessionJson) const;
  nlohmann::json measures(const std::vector<std::size_t>& gpus) const;

  plugin::Host host_;
  RocmConfig config_;
  std::unique_ptr<RocmSmi> smi_;
  std::string reason_;  // why there are no devices, when there are none
  std::vector<std::string> masked_;
  std::vector<std::string> unmatchedMask_;
  std::vector<Gpu> gpus_;
  std::unordered_map<std::string, std::size_t> gpuById_;
  std::vector<std::string> inUseBy_;  // per GPU: the session holding it, or empty
  std::unordered_map<std::string, std::vector<std::size_t>> prepared_;
  std::set<std::string> cdiNames_;         // the amd.com/gpu devices of the CDI specs
  std::vector<std::string> cdiSpecFiles_;  // the specs that offered them
};

}  // namespace bai::rocm
