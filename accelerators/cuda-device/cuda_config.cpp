#include "cuda_config.hpp"

namespace bai::cuda {

CudaConfig parseCudaConfig(std::string_view configJson) { return nvml::parseGpuConfig(configJson); }

}  // namespace bai::cuda
