// cuda-device: whole NVIDIA GPUs as `cuda.device`, MIG slices as `cuda.device:<profile>-mig`,
// discovered through NVML (dlopen-ed: no driver means zero devices and a reason).
#pragma once

#include "cuda_config.hpp"
#include "nvml.hpp"

#include <bai/plugin.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bai::cuda {

class CudaDeviceAccelerator final : public plugin::Accelerator {
 public:
  CudaDeviceAccelerator(const plugin::Host& host, std::string_view configJson);
  ~CudaDeviceAccelerator() override;
  CudaDeviceAccelerator(const CudaDeviceAccelerator&) = delete;
  CudaDeviceAccelerator& operator=(const CudaDeviceAccelerator&) = delete;

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
  enum class Health { Healthy, Unhealthy, Gone };  // in order of badness
  struct HealthState {
    Health health = Health::Healthy;
    std::string reason;
  };
  // A GPU or a MIG slice, as offered.
  struct Device {
    std::string id;  // GPU: its NVML index at create; slice: its MIG UUID
    std::string uuid;
    std::string model;
    std::string pciBus;
    int numaNode = -1;
    std::optional<std::uint64_t> memory;
    std::optional<unsigned> cores;
    std::string slot;  // empty for a GPU in MIG mode: only its slices are allocated
    std::optional<std::size_t> parent;
    std::string migProfile;
    bool migEnabled = false;
    nvmlDevice_t handle = nullptr;
    HealthState own;       // XIDs and loss seen by this instance
    unsigned xidCount = 0;  // critical XIDs so far
  };
  struct Slot {
    std::string name;
    bool unique = false;
    std::vector<std::size_t> devices;
  };

  static std::string_view healthName(Health health);
  void discover();
  void addGpu(const nvml::Gpu& gpu);
  bool masked(const std::string& index, const std::string& uuid) const;
  void pollHealth();
  void markUnhealthy(std::size_t index, unsigned long long xid);
  HealthState healthOf(std::size_t index) const;
  std::optional<std::size_t> gpuOfHandle(nvmlDevice_t handle) const;
  const Slot* findSlot(std::string_view name) const;
  std::pair<std::string, std::vector<std::size_t>> parseSession(std::string_view sessionJson) const;
  nlohmann::json measures(const std::vector<std::size_t>& devices) const;

  plugin::Host host_;
  CudaConfig config_;
  std::unique_ptr<nvml::Library> nvml_;
  std::string noDeviceReason_;  // why there are no devices, when there are none
  std::optional<std::string> driverVersion_;
  std::string eventsStatus_ = "not watched";
  std::vector<std::string> maskedDevices_;
  std::vector<Device> devices_;
  std::vector<Slot> slots_;  // slots_.front() is cuda.device
  std::map<std::string, std::size_t> deviceById_;
  std::vector<bool> inUse_;
  std::map<std::string, std::vector<std::size_t>> prepared_;
  unsigned countAtCreate_ = 0;
};

}  // namespace bai::cuda
