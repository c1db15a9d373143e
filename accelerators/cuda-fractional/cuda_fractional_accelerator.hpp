// cuda-fractional: NVIDIA GPUs as `cuda.shares` (a fraction map, enforced through MPS
// limits), as whole `cuda.device`s, or as MIG slices `cuda.device:<profile>-mig`, chosen
// per GPU; discovered through NVML (dlopen-ed: no driver means zero devices and a reason).
#pragma once

#include "fractional_config.hpp"
#include "gpu_health.hpp"
#include "nvml.hpp"

#include <bai/plugin.hpp>
#include <bai/slots.hpp>

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

class CudaFractionalAccelerator final : public plugin::Accelerator {
 public:
  CudaFractionalAccelerator(const plugin::Host& host, std::string_view configJson);
  ~CudaFractionalAccelerator() override;
  CudaFractionalAccelerator(const CudaFractionalAccelerator&) = delete;
  CudaFractionalAccelerator& operator=(const CudaFractionalAccelerator&) = delete;

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
  struct Device {
    std::string id;  // GPU: its NVML index at create; slice: its MIG UUID
    std::string uuid;
    std::string model;
    std::string pciBus;
    int numaNode = -1;
    std::optional<std::uint64_t> memory;
    std::optional<unsigned> cores;
    std::string slot;  // empty for a GPU in MIG mode: only its slices are allocated
    bool shares = false;
    Quantity capacity = 1;  // shares of a GPU in shares mode, else 1
    std::optional<std::size_t> parent;
    std::string migProfile;
    bool migEnabled = false;
    nvmlDevice_t handle = nullptr;
  };
  struct Slot {
    std::string name;
    bool unique = false;
    bool fraction = false;
    std::vector<std::size_t> devices;
  };
  struct Grant {
    std::size_t device = 0;
    Quantity amount;
  };
  // What a grant amounts to on its device.
  struct GrantFigures {
    std::optional<std::uint64_t> memoryBytes;
    unsigned smPercent = 100;
    std::optional<std::uint64_t> processingUnits;
  };

  void discover();
  void addGpu(const nvml::Gpu& gpu);
  GpuMode modeOf(const std::string& index, const std::string& uuid) const;
  Quantity sharesOf(const nvml::Gpu& gpu) const;
  const Slot* findSlot(std::string_view name) const;
  std::pair<std::string, std::vector<Grant>> parseSession(std::string_view sessionJson) const;
  std::string sessionId(std::string_view sessionJson) const;
  GrantFigures figures(const Grant& grant) const;
  nlohmann::json usageMeasures(const std::vector<std::size_t>& devices) const;
  void startMps();
  void stopMps();

  plugin::Host host_;
  FractionalConfig config_;
  nvml::HealthTracker health_;  // indexed as devices_
  std::unique_ptr<nvml::Library> nvml_;
  std::string noDeviceReason_;
  std::optional<std::string> driverVersion_;
  std::string eventsStatus_ = "not watched";
  std::string mpsStatus_ = "not managed";
  bool mpsStarted_ = false;
  std::vector<std::string> maskedDevices_;
  std::vector<Device> devices_;
  std::vector<Slot> slots_;  // slots_[0] is cuda.shares, slots_[1] cuda.device
  std::map<std::string, std::size_t> deviceById_;
  std::vector<Quantity> inUse_;
  std::map<std::string, std::vector<Grant>> prepared_;
  unsigned countAtCreate_ = 0;
};

}  // namespace bai::cuda
