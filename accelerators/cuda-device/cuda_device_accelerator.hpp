// cuda-device: whole NVIDIA GPUs as `cuda.device`, MIG slices as `cuda.device:<profile>-mig`,
// discovered through NVML (dlopen-ed: no driver means zero devices and a reason).
#pragma once

#include "cuda_config.hpp"
#include "gpu_health.hpp"
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
  };
  struct Slot {
    std::string name;
    bool unique = false;
    std::vector<std::size_t> devices;
  };

  void discover();
  void addGpu(const nvml::Gpu& gpu);
  const Slot* findSlot(std::string_view name) const;
  std::pair<std::string, std::vector<std::size_t>> parseSession(std::string_view sessionJson) const;
  nlohmann::json measures(const std::vector<std::size_t>& devices) const;

  plugin::Host host_;
  CudaConfig config_;
  nvml::HealthTracker health_;  // indexed as devices_
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
