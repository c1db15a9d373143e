// Where the NVIDIA driver's device nodes are, as the NVIDIA container toolkit finds them:
// a GPU's /dev/nvidia<minor>, the control and UVM nodes every CUDA process opens, and a
// MIG slice's capability nodes, whose minors the driver publishes under /proc.
#pragma once

#include "nvml.hpp"

#include <bai/result.hpp>

#include <string>
#include <vector>

namespace bai::nvml {

// "<devRoot>/nvidia<minor>".
std::string gpuNodePath(const std::string& devRoot, unsigned minor);

// nvidiactl, nvidia-uvm and nvidia-uvm-tools under `devRoot`, those that exist.
std::vector<std::string> controlNodePaths(const std::string& devRoot);

// "<devRoot>/nvidia-caps/nvidia-cap<N>" for the slice's GPU instance and its compute
// instance, N being the DeviceFileMinor of <procRoot>/driver/nvidia/capabilities/
// gpu<gpuMinor>/mig/gi<g>/access and of .../gi<g>/ci<c>/access. Errors name the file.
Result<std::vector<std::string>> migCapabilityNodePaths(const std::string& devRoot, const std::string& procRoot,
                                                        unsigned gpuMinor, MigInstances instances);

}  // namespace bai::nvml
