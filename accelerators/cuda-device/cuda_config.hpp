// The settings of the cuda-device plugin: the agent's [plugins.cuda] table as JSON. They
// are the settings every CUDA plugin reads (accelerators/common/gpu_config.hpp), no more.
#pragma once

#include "gpu_config.hpp"

#include <string_view>

namespace bai::cuda {

using CudaConfig = nvml::GpuConfig;

// Throws std::invalid_argument naming the key for an unknown key or a wrong type.
CudaConfig parseCudaConfig(std::string_view configJson);

}  // namespace bai::cuda
