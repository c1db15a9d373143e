// cuda-fractional: NVIDIA GPUs as `cuda.shares` (a fraction map, enforced through MPS
// limits), as whole `cuda.device`s, or as MIG slices `cuda.device:<profile>-mig`, chosen
// per GPU; the GPU inventory of accelerators/common/ with shares on top.
#pragma once

#include "fractional_config.hpp"
#include "gpu_accelerator.hpp"

#include <bai/slots.hpp>

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace bai::cuda {

class CudaFractionalAccelerator final : public nvml::GpuAccelerator {
 public:
  CudaFractionalAccelerator(const plugin::Host& host, std::string_view configJson);
  ~CudaFractionalAccelerator() override;

 protected:
  void addFacts(nlohmann::json& extraInfo) const override;
  void addDeviceFacts(std::size_t index, nlohmann::json& extra) const override;
  nlohmann::json sessionResources(const std::vector<nvml::GpuGrant>& grants) const override;
  nlohmann::json grantMeasures(const std::vector<nvml::GpuGrant>& grants) const override;

 private:
  // What a grant amounts to on its device.
  struct GrantFigures {
    std::optional<std::uint64_t> memoryBytes;
    unsigned smPercent = 100;
    std::optional<std::uint64_t> processingUnits;
  };

  CudaFractionalAccelerator(const plugin::Host& host, FractionalConfig config);
  GpuMode modeOf(const std::string& index, const std::string& uuid) const;
  Quantity sharesOf(const nvml::Gpu& gpu) const;
  nvml::GpuOffer offerOf(const nvml::Gpu& gpu) const;
  GrantFigures figures(const nvml::GpuGrant& grant) const;
  void startMps();
  void stopMps();

  FractionalConfig config_;
  std::string mpsStatus_ = "not managed";
  bool mpsStarted_ = false;
};

}  // namespace bai::cuda
