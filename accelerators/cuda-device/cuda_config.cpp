#include "cuda_config.hpp"

namespace bai::cuda {

CudaConfig parseCudaConfig(std::string_view configJson) {
  std::vector<std::string> known;
  for (const nvml::ConfigKey& key : nvml::kGpuConfigKeys) known.emplace_back(key.name);
  const nlohmann::json config = nvml::configObject(configJson, known);  // kept: items() views it
  CudaConfig result;
  for (const auto& [key, value] : config.items()) nvml::readGpuKey(key, value, result);
  return result;
}

}  // namespace bai::cuda
